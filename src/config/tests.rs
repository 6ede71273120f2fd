//! Unit tests of loading a whole config: defaults, the key named by each mistake, the
//! environment's part. The helpers here (a minimal config, loading with files and variables)
//! serve the tests by subject: [`apps`], [`lifecycle`] (sessions and cookies over time) and
//! [`mia`] (the two Mia files). Each section's own checks are tested beside it where they need
//! no whole config (`server.rs`, `stores.rs`, `api_keys.rs`, `providers/tests.rs`, …).

use super::*;

mod api_tokens;
mod apps;
mod keys;
mod lifecycle;
mod mia;

const MINIMAL: &str = r#"
    [server]
    listen = ["127.0.0.1:0"]
    [jwt]
    algorithm = "HS256"
    private_key_file = "k.secret"
    key_id = "k1"
    [store]
    kind = "embedded"
    path = "idgate.db"
    [users]
    kind = "embedded"
    [apps.web]
    realm = "web"
    issuer = "http://localhost"
    redirect_url = "http://localhost/web-login/oauth/callback"
    [apps.web.providers.dev]
    type = "oidc"
    issuer_url = "http://127.0.0.1:9000"
    client_id = "idgate"
    client_secret = "s"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().map_err(|e| ConfigError::invalid("tmp", e.to_string()))?;
    std::fs::write(
        dir.path().join("k.secret"),
        "0123456789abcdef0123456789abcdef",
    )
    .map_err(|e| ConfigError::invalid("tmp", e.to_string()))?;
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: "t".into(),
        message: e.to_string(),
    })?;
    Config::from_raw(raw, dir.path())
}

/// Loads `text` with `files` written next to it and `env` as the environment.
fn load_env(
    text: &str,
    files: &[(&str, &str)],
    env: &[(&'static str, &'static str)],
) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().map_err(|e| ConfigError::invalid("tmp", e.to_string()))?;
    let mut all = vec![("k.secret", "0123456789abcdef0123456789abcdef")];
    all.extend_from_slice(files);
    for (name, body) in all {
        std::fs::write(dir.path().join(name), body)
            .map_err(|e| ConfigError::invalid("tmp", e.to_string()))?;
    }
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: "t".into(),
        message: e.to_string(),
    })?;
    let env: BTreeMap<&str, &str> = env.iter().copied().collect();
    Config::from_raw_with_env(raw, dir.path(), &env)
}

const MIA_JSON: &str = r#"{"apps": {"mobile": {
    "providers": {"okta": {"type": "okta", "clientId": "c", "clientSecret": "s",
        "baseUrl": "https://x.okta.com/oauth2/default", "scope": ["openid"], "label": "Okta"}},
    "redirectUrl": "https://m.example.com/web-login/oauth/callback",
    "realm": "m", "issuer": "m.example.com", "defaultGroups": ["users"],
    "customTokenClaims": {"includeProviderUserId": true, "metadataFieldsToInclude": ["a.b"]},
    "sidCookieCustomAttributes": {"domain": "example.com"}
}}}"#;

#[test]
fn minimal_config_gets_defaults() -> Result<(), ConfigError> {
    let c = load(MINIMAL)?;
    assert_eq!(c.session.access_ttl, Duration::from_secs(900));
    assert!(c.session.cookie_secure);
    assert_eq!(c.server.default_app.as_deref(), Some("web"));
    assert_eq!(c.apps["web"].implicit_provider(), Some("dev"));
    assert!(c.server.trusted_peers.iter().any(|n| n.contains(
        &"127.0.0.1"
            .parse::<std::net::IpAddr>()
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
    )));
    Ok(())
}

#[test]
fn unknown_key_is_named() {
    let text = MINIMAL
        .replace("[session]", "")
        .replace("[store]", "[store]\npathh = 1");
    let err = load(&text).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("pathh"), "{err}");
    let text = format!("{MINIMAL}\n[session]\naccess_tll = \"1m\"\n");
    let err = load(&text).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("access_tll"), "{err}");
}

#[test]
fn environment_supplies_and_overrides_sections() -> Result<(), ConfigError> {
    // No [jwt], [store] or [users]: the original's variables are enough.
    let text = MINIMAL
        .replace("[jwt]\n    algorithm = \"HS256\"\n    private_key_file = \"k.secret\"\n    key_id = \"k1\"", "")
        .replace("[store]\n    kind = \"embedded\"\n    path = \"idgate.db\"", "")
        .replace("[users]\n    kind = \"embedded\"", "");
    assert!(!text.contains("[jwt]") && !text.contains("[store]") && !text.contains("[users]"));
    let err = load_env(&text, &[], &[]).err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.starts_with("jwt: missing")));
    let c = load_env(
        &text,
        &[],
        &[
            (
                "MIA_JWT_TOKEN_SIGN_KEY",
                "an HS256 secret of at least 32 bytes!",
            ),
            ("REDIS_HOSTS", "127.0.0.1:6379"),
            ("REDIS_SESSIONS_SCOPE", "tenant"),
            ("USERS_CRUD_BASE_URL", "http://crud-service/users"),
            ("AUTHORIZATION_STRICT_MODE_ENABLED", "false"),
        ],
    )?;
    assert!(matches!(&c.store, StoreConfig::Redis(r) if r.scope == "tenant"));
    assert!(
        matches!(&c.users, UsersConfig::Crud(u) if u.base_url.as_str() == "http://crud-service/users")
    );
    assert_eq!(c.jwt.signing.key_id, "mia");
    assert!(c.notices.infos.iter().any(|l| l.contains("REDIS_HOSTS")));

    // Env wins over the TOML, and a bad value names the variable behind the key.
    let err = load_env(MINIMAL, &[], &[("REDIS_HOSTS", "http://cache:6379")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("store.urls (from REDIS_HOSTS): "), "{err}");
    let err = load_env(MINIMAL, &[], &[("MIA_JWT_TOKEN_SIGN_KEY", "short")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("jwt.secret (from MIA_JWT_TOKEN_SIGN_KEY): "),
        "{err}"
    );
    assert!(!err.contains("short"), "{err}");
    Ok(())
}

#[test]
fn bad_values_name_their_key() {
    let text = MINIMAL.replace("127.0.0.1:0", "nonsense");
    let err = load(&text).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("server.listen"), "{err}");
    let text = MINIMAL.replace("type = \"oidc\"", "type = \"saml\"");
    let err = load(&text).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("apps.web.providers.dev.type"), "{err}");
    let text = format!("{MINIMAL}\n[session]\naccess_ttl = \"soon\"\n");
    let err = load(&text).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("session.access_ttl"), "{err}");
}
