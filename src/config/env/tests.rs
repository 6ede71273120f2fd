//! Unit tests of the original services' environment variables: what each sets, what wins, what
//! is refused, and how a validation error names the variable behind a key.

use std::path::PathBuf;

use super::*;
use crate::config::raw::{RawStore, RawUsers};

fn raw(text: &str) -> RawConfig {
    match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => unreachable!("test TOML does not parse: {e}"),
    }
}

const BASE: &str = r#"
    [server]
    listen = ["127.0.0.1:0"]
    [store]
    kind = "embedded"
    path = "idgate.db"
    [users]
    kind = "embedded"
"#;

fn env(pairs: &[(&'static str, &'static str)]) -> BTreeMap<&'static str, &'static str> {
    pairs.iter().copied().collect()
}

#[test]
fn crud_and_redis_variables_replace_the_toml_sections() -> Result<(), ConfigError> {
    let mut r = raw(BASE);
    let e = env(&[
        ("USERS_CRUD_BASE_URL", "http://crud-service/users"),
        ("REDIS_HOSTS", "10.0.0.1:26379, redis://10.0.0.2:26379"),
        ("REDIS_MODE", "sentinel"),
        ("REDIS_MASTER_NAME", "mymaster"),
        ("REDIS_SESSION_SCOPE", "tenant-a"),
        ("REDIS_PASSWORD", "pw"),
    ]);
    let report = apply(&mut r, &e, Path::new("/"))?;
    assert!(matches!(
        &r.users,
        Some(RawUsers::Crud { base_url, .. }) if base_url == "http://crud-service/users"
    ));
    match &r.store {
        Some(RawStore::Redis {
            mode,
            urls,
            master_name,
            scope,
            password,
            ..
        }) => {
            assert_eq!(mode.as_deref(), Some("sentinel"));
            assert_eq!(urls, &["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"]);
            assert_eq!(master_name.as_deref(), Some("mymaster"));
            assert_eq!(scope.as_deref(), Some("tenant-a"));
            assert_eq!(password.as_deref(), Some("pw"));
        }
        other => unreachable!("store not redis: {other:?}"),
    }
    assert!(report.used.contains(&"REDIS_SESSION_SCOPE"));
    // Names only, never values.
    let lines = report.lines().join("\n");
    assert!(
        lines.contains("REDIS_PASSWORD") && !lines.contains("pw,") && !lines.contains("mymaster")
    );
    Ok(())
}

#[test]
fn both_spellings_of_the_session_scope_and_tls_hosts() -> Result<(), ConfigError> {
    let mut r = raw(BASE);
    let e = env(&[
        ("REDIS_HOST", "cache:6380"),
        ("REDIS_TLS", "true"),
        ("REDIS_SESSIONS_SCOPE", "plural"),
        ("REDIS_SESSION_SCOPE", "singular"),
    ]);
    apply(&mut r, &e, Path::new("/"))?;
    match &r.store {
        Some(RawStore::Redis { urls, scope, .. }) => {
            assert_eq!(urls, &["rediss://cache:6380"]);
            assert_eq!(scope.as_deref(), Some("plural"));
        }
        other => unreachable!("store not redis: {other:?}"),
    }
    Ok(())
}

#[test]
fn redis_details_without_redis_have_no_effect() -> Result<(), ConfigError> {
    let mut r = raw(BASE);
    let e = env(&[
        ("REDIS_SESSIONS_SCOPE", "x"),
        ("HEADERS_TO_PROXY", "cookie"),
    ]);
    let report = apply(&mut r, &e, Path::new("/"))?;
    assert!(matches!(r.store, Some(RawStore::Embedded { .. })));
    let names: Vec<_> = report.no_effect.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["REDIS_SESSIONS_SCOPE", "HEADERS_TO_PROXY"]);
    assert!(report
        .lines()
        .join("\n")
        .contains("recognised, no effect: REDIS_SESSIONS_SCOPE"));
    Ok(())
}

#[test]
fn jwt_from_the_environment() -> Result<(), ConfigError> {
    let mut r = raw(BASE);
    let e = env(&[("MIA_JWT_TOKEN_SIGN_KEY", "0123456789abcdef0123456789abcdef")]);
    apply(&mut r, &e, Path::new("/"))?;
    let jwt = r
        .jwt
        .as_ref()
        .map(|j| (j.algorithm.clone(), j.secret.is_some()));
    assert_eq!(jwt, Some(("HS256".to_owned(), true)));

    let dir = tempfile::tempdir().map_err(|e| ConfigError::invalid("tmp", e.to_string()))?;
    std::fs::write(dir.path().join("private-key.pem"), "x")
        .map_err(|e| ConfigError::invalid("tmp", e.to_string()))?;
    let mut r = raw(BASE);
    let e = env(&[
        ("MIA_JWT_TOKEN_SIGNING_METHOD", "RS256"),
        ("MIA_JWT_TOKEN_PRIVATE_KEY_FILE_PATH", "private-key"),
        ("MIA_JWT_TOKEN_PRIVATE_KEY_KID", "kid-1"),
        ("MIA_JWT_TOKEN_SIGN_KEY", "left over from HS256 days"),
    ]);
    let report = apply(&mut r, &e, dir.path())?;
    let jwt = r.jwt.as_ref();
    assert_eq!(jwt.map(|j| j.algorithm.as_str()), Some("RS256"));
    assert_eq!(
        jwt.and_then(|j| j.private_key_file.clone()),
        Some(PathBuf::from("private-key.pem"))
    );
    assert_eq!(jwt.map(|j| j.key_id.as_str()), Some("kid-1"));
    assert!(jwt.is_some_and(|j| j.secret.is_none()));
    assert_eq!(
        report.no_effect.first().map(|(n, _)| *n),
        Some("MIA_JWT_TOKEN_SIGN_KEY")
    );

    let mut r = raw(BASE);
    let e = env(&[("MIA_JWT_TOKEN_PRIVATE_KEY_PASSWORD", "pw")]);
    let err = apply(&mut r, &e, Path::new("/"))
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.starts_with("MIA_JWT_TOKEN_PRIVATE_KEY_PASSWORD:")));
    Ok(())
}

#[test]
fn authorization_session_and_file_variables() -> Result<(), ConfigError> {
    let mut r = raw(BASE);
    let e = env(&[
        ("USER_PROPERTIES_TO_PROXY", "name, email,metadata"),
        ("AUTHORIZATION_STRICT_MODE_ENABLED", "false"),
        ("MIA_JWT_TOKEN_VALID_DURATION_SEC", "3600"),
        ("MIA_REFRESH_TOKEN_VALID_DURATION_SEC", "86400"),
        ("STATE_MANAGER_EXPIRATION_TIME_MINUTES", "5"),
        ("STORED_ACCESS_TOKEN_NUMBER", "3"),
        ("CONFIG_FILE_PATH", "/configs"),
        ("CONFIG_FILE_NAME", "config"),
        ("CONFIGURATION_PATH", "/auth"),
        ("CONFIGURATION_FILE_NAME", "auth.json"),
        ("LOG_LEVEL", "fatal"),
    ]);
    apply(&mut r, &e, Path::new("/"))?;
    assert_eq!(
        r.headers.user_properties,
        Some(vec!["name".into(), "email".into(), "metadata".into()])
    );
    assert_eq!(r.authorization.strict, Some(false));
    assert_eq!(r.session.access_ttl.as_deref(), Some("3600s"));
    assert_eq!(r.session.lifetime.as_deref(), Some("86400s"));
    assert_eq!(r.session.login_state_ttl.as_deref(), Some("5m"));
    assert_eq!(r.session.max_per_user, Some(3));
    assert_eq!(r.mia_config, Some(PathBuf::from("/configs/config.json")));
    assert_eq!(r.mia_auth, Some(PathBuf::from("/auth/auth.json")));
    assert_eq!(r.log.level.as_deref(), Some("error"));
    Ok(())
}

#[test]
fn bad_values_name_the_variable() {
    for (name, value) in [
        ("AUTHORIZATION_STRICT_MODE_ENABLED", "maybe"),
        ("MIA_JWT_TOKEN_VALID_DURATION_SEC", "1h"),
        ("REDIS_MODE", "cluster-ish"),
        ("LOG_LEVEL", "loud"),
        ("REDIS_HOSTS", " , "),
    ] {
        let mut r = raw(BASE);
        let e = env(&[(name, value)]);
        let err = apply(&mut r, &e, Path::new("/"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with(&format!("{name}:"))),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn validation_errors_name_the_variable_behind_a_key() {
    let mut report = EnvReport::default();
    report.used("REDIS_HOSTS", "store.urls");
    let err = report.attribute(ConfigError::invalid("store.urls", "bad"));
    assert_eq!(err.to_string(), "store.urls (from REDIS_HOSTS): bad");
    let err = report.attribute(ConfigError::invalid("store.urlsx", "bad"));
    assert_eq!(err.to_string(), "store.urlsx: bad");
}

#[test]
fn header_keys_apply_at_their_default_names_and_trusting_user_headers_is_refused() {
    // The default names are what the snippets use: applied.
    let mut r = raw(BASE);
    let e = env(&[
        ("BACKOFFICE_HEADER_KEY", "isbackoffice"),
        ("CLIENT_TYPE_HEADER_KEY", "Client-Type"),
        ("TRUST_MIA_USER_HEADERS", "false"),
        ("USERID_HEADER_KEY", "x-user"),
    ]);
    let report = apply(&mut r, &e, Path::new("/")).unwrap();
    assert!(report.used.contains(&"BACKOFFICE_HEADER_KEY"));
    assert!(report.used.contains(&"CLIENT_TYPE_HEADER_KEY"));
    let lines = report.lines().join("\n");
    assert!(lines.contains("TRUST_MIA_USER_HEADERS (false"), "{lines}");
    assert!(
        lines.contains("USERID_HEADER_KEY (read only with"),
        "{lines}"
    );
    // Another name stops startup naming the variable and the snippet line to change.
    for (name, value) in [
        ("BACKOFFICE_HEADER_KEY", "x-backoffice"),
        ("CLIENT_TYPE_HEADER_KEY", "x-client"),
    ] {
        let err = apply(&mut raw(BASE), &env(&[(name, value)]), Path::new("/"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(name) && err.contains("proxy_set_header"),
            "{name}: {err}"
        );
    }
    // Trusting identity headers is refused, and so is a value that is not a boolean.
    for value in ["true", "1", "maybe"] {
        let err = apply(
            &mut raw(BASE),
            &env(&[("TRUST_MIA_USER_HEADERS", value)]),
            Path::new("/"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("TRUST_MIA_USER_HEADERS"), "{value}: {err}");
    }
}

#[test]
fn private_ca_variables_map_onto_tls() -> Result<(), ConfigError> {
    let mut r = raw(BASE);
    let e = env(&[
        ("ADDITIONALS_CA_FOLDER", "/etc/ssl/idp-ca"),
        ("REDIS_HOSTS", "10.0.0.1:6379"),
        ("REDIS_TLS", "true"),
        ("REDIS_TLS_CACERT", "/etc/ssl/redis/ca.pem"),
    ]);
    let report = apply(&mut r, &e, Path::new("/"))?;
    let idp = r.tls.idp.clone().unwrap_or_default();
    assert_eq!(idp.ca_dirs, Some(vec![PathBuf::from("/etc/ssl/idp-ca")]));
    assert_eq!(
        idp.builtin_roots, None,
        "additional: the built-in roots stay"
    );
    let redis = r.tls.redis.clone().unwrap_or_default();
    assert_eq!(
        redis.ca_files,
        Some(vec![PathBuf::from("/etc/ssl/redis/ca.pem")])
    );
    assert_eq!(
        redis.builtin_roots,
        Some(false),
        "the Redis CA replaces the public roots"
    );
    assert!(r.tls.crud.is_none() && r.tls.ca_files.is_none());
    assert!(report.used.contains(&"ADDITIONALS_CA_FOLDER"));
    assert!(report.used.contains(&"REDIS_TLS_CACERT"));
    // An error about the folder names the variable.
    let err = report.attribute(ConfigError::invalid("tls.idp.ca_dirs", "x: missing"));
    assert!(
        err.to_string().contains("(from ADDITIONALS_CA_FOLDER)"),
        "{err}"
    );

    // Without REDIS_TLS=true the CA has no effect, as the original documents; the other
    // spelling of the folder variable is read too.
    let mut r = raw(BASE);
    let e = env(&[
        ("ADDITIONAL_CA_FOLDER", "cas"),
        ("REDIS_HOSTS", "10.0.0.1:6379"),
        ("REDIS_TLS_CACERT", "/etc/ssl/redis/ca.pem"),
    ]);
    let report = apply(&mut r, &e, Path::new("/"))?;
    assert!(r.tls.redis.is_none());
    assert!(report
        .no_effect
        .iter()
        .any(|(n, _)| *n == "REDIS_TLS_CACERT"));
    assert_eq!(
        r.tls.idp.and_then(|t| t.ca_dirs),
        Some(vec![PathBuf::from("cas")])
    );
    Ok(())
}
