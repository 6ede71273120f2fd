//! Unit tests of provider validation: vendor defaults, which keys belong to which types,
//! Microsoft's tenants, the two Bitbucket products, the IdP timeout, the client key of
//! `private_key_jwt` and `par`.

use std::path::Path;

use super::*;
use crate::config::raw::{RawProvider, RawUserKeys};
use crate::config::ConfigError;

fn raw(kind: &str) -> RawProvider {
    RawProvider {
        kind: kind.into(),
        issuer_url: None,
        client_id: "c".into(),
        client_secret: Some("s".into()),
        client_secret_file: None,
        scope: None,
        label: None,
        logo_url: None,
        order: 0,
        user_settings_url: None,
        auth_method: None,
        auth_url: None,
        token_url: None,
        userinfo_url: None,
        api_url: None,
        keys: None,
        tenants: None,
        logout_url: None,
        base_url: None,
        claims_to_token: Default::default(),
        timeout: None,
        client_key_file: None,
        client_key_id: None,
        par: None,
        require_iss: None,
        id_token_signing_algs: None,
    }
}

#[test]
fn the_idp_timeout_defaults_to_ten_seconds_and_is_bounded() {
    let p = check(raw("google")).unwrap();
    assert_eq!(p.timeout, std::time::Duration::from_secs(10));
    let p = check(RawProvider {
        timeout: Some("2s".into()),
        ..raw("google")
    })
    .unwrap();
    assert_eq!(p.timeout, std::time::Duration::from_secs(2));
    for bad in ["61s", "0s", "soon"] {
        let e = check(RawProvider {
            timeout: Some(bad.into()),
            ..raw("google")
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("apps.web.providers.p.timeout"),
            "{bad}: {e}"
        );
    }
    // 60 s is the bound itself.
    assert!(check(RawProvider {
        timeout: Some("60s".into()),
        ..raw("google")
    })
    .is_ok());
}

#[test]
fn require_iss_and_the_signing_algorithms_belong_to_the_oidc_types() {
    let p = check(raw("google")).unwrap();
    assert!(p.require_iss);
    assert_eq!(p.id_token_signing_algs, None);
    let p = check(RawProvider {
        require_iss: Some(false),
        id_token_signing_algs: Some(vec!["ES256".into(), "RS256".into(), "ES256".into()]),
        ..raw("google")
    })
    .unwrap();
    assert!(!p.require_iss);
    assert_eq!(
        p.id_token_signing_algs,
        Some(vec!["ES256".to_owned(), "RS256".to_owned()])
    );
    for (key, bad) in [
        (
            "require_iss",
            RawProvider {
                require_iss: Some(true),
                ..raw("github")
            },
        ),
        (
            "id_token_signing_algs",
            RawProvider {
                id_token_signing_algs: Some(vec!["RS256".into()]),
                ..raw("github")
            },
        ),
    ] {
        let e = check(bad).unwrap_err().to_string();
        assert!(
            e.contains(&format!("providers.p.{key}")) && e.contains("only for"),
            "{e}"
        );
    }
    for (algs, says) in [
        (vec!["none"], "`none` cannot be accepted"),
        (vec!["RS256", "NONE"], "`none` cannot be accepted"),
        (vec!["RS1"], "`RS1` is not one of"),
        (vec![], "empty"),
    ] {
        let e = check(RawProvider {
            id_token_signing_algs: Some(algs.iter().map(|a| (*a).to_owned()).collect()),
            ..raw("oidc")
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("id_token_signing_algs") && e.contains(says),
            "{algs:?}: {e}"
        );
    }
}

fn check(p: RawProvider) -> Result<ProviderConfig, ConfigError> {
    validate("web", "p", p, &|p: &Path| p.to_owned())
}

#[test]
fn vendor_defaults() -> Result<(), ConfigError> {
    let g = check(raw("google"))?;
    assert_eq!(
        g.protocol,
        Protocol::Oidc {
            issuer: "https://accounts.google.com".into()
        }
    );
    assert_eq!(g.auth_method, AuthMethod::ClientSecretPost);
    assert_eq!(g.scope, ["openid", "profile", "email"]);
    let gh = check(raw("github"))?;
    let Protocol::OAuth2(e) = &gh.protocol else {
        return Err(ConfigError::invalid("test", "github is OAuth2"));
    };
    assert_eq!(e.user_url.as_str(), "https://api.github.com/user");
    assert_eq!(
        e.emails_url.as_ref().map(Url::as_str),
        Some("https://api.github.com/user/emails")
    );
    assert_eq!(gh.scope, ["read:user", "user:email"]);
    let mut bb = raw("bitbucket");
    bb.api_url = Some("http://127.0.0.1:9/2.0/".into());
    let bb = check(bb)?;
    let Protocol::OAuth2(e) = &bb.protocol else {
        return Err(ConfigError::invalid("test", "bitbucket is OAuth2"));
    };
    assert_eq!(e.user_url.as_str(), "http://127.0.0.1:9/2.0/user");
    assert_eq!(bb.auth_method, AuthMethod::ClientSecretBasic);
    // The TOML's `bitbucket` is Bitbucket Cloud, as it always was.
    assert_eq!(bb.kind, ProviderKind::BitbucketCloud);
    assert_eq!(
        check(raw("bitbucket-cloud"))?.kind,
        ProviderKind::BitbucketCloud
    );
    // Bitbucket Server: everything under the base URL, context path included.
    let mut bs = raw("bitbucket-server");
    bs.base_url = Some("https://git.example.com/bitbucket/".into());
    let bs = check(bs)?;
    let Protocol::OAuth2(e) = &bs.protocol else {
        return Err(ConfigError::invalid("test", "bitbucket-server is OAuth2"));
    };
    assert_eq!(
        e.auth_url.as_str(),
        "https://git.example.com/bitbucket/rest/oauth2/latest/authorize"
    );
    assert_eq!(
        e.token_url.as_str(),
        "https://git.example.com/bitbucket/rest/oauth2/latest/token"
    );
    assert_eq!(
        e.user_url.as_str(),
        "https://git.example.com/bitbucket/plugins/servlet/applinks/whoami"
    );
    assert_eq!(
        e.users_url.as_ref().map(Url::as_str),
        Some("https://git.example.com/bitbucket/rest/api/latest/users")
    );
    assert_eq!(bs.auth_method, AuthMethod::ClientSecretPost);
    assert_eq!(bs.scope, ["PUBLIC_REPOS"]);
    // Auth0's issuer keeps its trailing slash.
    let mut a0 = raw("auth0");
    a0.issuer_url = Some("https://t.auth0.com/".into());
    assert_eq!(
        check(a0)?.protocol,
        Protocol::Oidc {
            issuer: "https://t.auth0.com/".into()
        }
    );
    Ok(())
}

#[test]
fn keys_belong_to_their_types() {
    let err = |p: RawProvider| check(p).err().map(|e| e.to_string()).unwrap_or_default();
    let mut p = raw("github");
    p.issuer_url = Some("https://x".into());
    assert!(err(p).starts_with("apps.web.providers.p.issuer_url: only for type oidc"));
    let mut p = raw("keycloak");
    p.auth_url = Some("https://x".into());
    assert!(err(p).starts_with("apps.web.providers.p.auth_url: only for type github"));
    assert_eq!(
        err(raw("keycloak")),
        "apps.web.providers.p.issuer_url: missing (type `keycloak`)"
    );
    assert_eq!(
        err(raw("generic")),
        "apps.web.providers.p.auth_url: missing (type `generic`)"
    );
    let mut p = raw("oidc");
    p.issuer_url = Some("https://x".into());
    p.auth_method = Some("tls_client_auth".into());
    assert!(err(p).starts_with("apps.web.providers.p.auth_method: `tls_client_auth`"));
    let mut p = raw("generic");
    p.auth_url = Some("https://x/a".into());
    p.token_url = Some("https://x/t".into());
    p.userinfo_url = Some("https://x/u".into());
    p.keys = Some(RawUserKeys {
        id: Some("data..id".into()),
        name: None,
        username: None,
        email: None,
        email_verified: None,
    });
    assert!(err(p).starts_with("apps.web.providers.p.keys.id: "));
    let mut p = raw("google");
    p.tenants = Some(vec![super::MICROSOFT_CONSUMERS_TENANT.into()]);
    assert!(err(p).starts_with("apps.web.providers.p.tenants: only for type microsoft"));
}

#[test]
fn microsoft_multi_tenant_endpoints_need_a_tenant_list() -> Result<(), ConfigError> {
    let err = |p: RawProvider| check(p).err().map(|e| e.to_string()).unwrap_or_default();
    let tenant = "775527FF-9a37-4307-8b3d-cc311f58d925";
    // The default issuer is `common`: no list, no start, and the message says what to add.
    let msg = err(raw("microsoft"));
    assert!(
        msg.starts_with("apps.web.providers.p.tenants: required")
            && msg.contains("common")
            && msg.contains("tenants = ["),
        "{msg}"
    );
    for issuer in [
        "https://login.microsoftonline.com/organizations/v2.0",
        "https://login.microsoftonline.us/Common/v2.0",
    ] {
        let mut p = raw("microsoft");
        p.issuer_url = Some(issuer.into());
        assert!(err(p).contains("tenants: required"), "{issuer}");
        let mut p = raw("microsoft");
        p.issuer_url = Some(issuer.into());
        p.tenants = Some(vec![]);
        assert!(err(p).contains("tenants: required"), "{issuer} with []");
    }
    let mut p = raw("microsoft");
    p.tenants = Some(vec![tenant.into()]);
    assert_eq!(check(p)?.tenants, [tenant.to_ascii_lowercase()]);
    let mut p = raw("microsoft");
    p.tenants = Some(vec!["contoso.onmicrosoft.com".into()]);
    assert!(err(p).contains("is not a tenant id"));
    // One tenant's endpoint, or B2C: no list needed; consumers: the personal-accounts tenant.
    let mut p = raw("microsoft");
    p.issuer_url = Some(format!("https://login.microsoftonline.com/{tenant}/v2.0"));
    assert!(check(p)?.tenants.is_empty());
    let mut p = raw("microsoft");
    p.issuer_url = Some("https://c.b2clogin.com/c.onmicrosoft.com/B2C_1_signin/v2.0".into());
    assert!(check(p)?.tenants.is_empty());
    let mut p = raw("microsoft");
    p.issuer_url = Some("https://login.microsoftonline.com/consumers/v2.0".into());
    assert_eq!(check(p)?.tenants, [super::MICROSOFT_CONSUMERS_TENANT]);
    Ok(())
}

#[test]
fn bitbucket_server_needs_its_base_url_and_the_cloud_name_stays_cloud() {
    let err = |p: RawProvider| check(p).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        err(raw("bitbucket-server")),
        "apps.web.providers.p.base_url: missing (type `bitbucket-server`)"
    );
    let mut p = raw("bitbucket-cloud");
    p.base_url = Some("https://git.example.com".into());
    assert!(err(p).starts_with("apps.web.providers.p.base_url: only for type bitbucket-server"));
    let mut p = raw("bitbucket-server");
    p.base_url = Some("https://git.example.com".into());
    p.api_url = Some("https://git.example.com/rest".into());
    assert!(
        err(p).starts_with("apps.web.providers.p.api_url: only for type github, bitbucket-cloud")
    );
    let mut p = raw("bitbucket-server");
    p.base_url = Some("ftp://git.example.com".into());
    assert!(err(p).contains("must be an http(s) URL"));
    // A TOML `bitbucket` (Cloud) aimed at a server's endpoints is refused, naming the type to use.
    let mut p = raw("bitbucket");
    p.auth_url = Some("https://git.example.com/rest/oauth2/latest/authorize".into());
    let m = err(p);
    assert!(
        m.starts_with("apps.web.providers.p.auth_url: is a Bitbucket Server endpoint")
            && m.contains("bitbucket-server"),
        "{m}"
    );
    let mut p = raw("bitbucket");
    p.token_url = Some("https://git.example.com/rest/oauth2/latest/token".into());
    assert!(err(p).starts_with("apps.web.providers.p.token_url: is a Bitbucket Server"));
    // bitbucket-cloud may be pointed anywhere (a proxy), like before.
    let mut p = raw("bitbucket-cloud");
    p.auth_url = Some("https://proxy.example.com/rest/oauth2/x".into());
    assert!(check(p).is_ok());
}

/// What `check` refuses `p` with ("" when it accepts it).
fn err(p: RawProvider) -> String {
    check(p).err().map(|e| e.to_string()).unwrap_or_default()
}

fn key_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn private_key_jwt(file: Option<&str>) -> RawProvider {
    RawProvider {
        issuer_url: Some("https://idp.example".into()),
        auth_method: Some("private_key_jwt".into()),
        client_secret: None,
        client_key_file: file.map(key_fixture),
        ..raw("oidc")
    }
}

#[test]
fn private_key_jwt_needs_a_key_file_and_no_secret() {
    let p = check(private_key_jwt(Some("es256.pem"))).unwrap();
    assert_eq!(p.auth_method, AuthMethod::PrivateKeyJwt);
    let key = p.client_key.unwrap();
    assert_eq!(key.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(key.jwk["kid"], key.kid.as_str());
    let named = check(RawProvider {
        client_key_id: Some("idgate-1".into()),
        ..private_key_jwt(Some("rs256.pem"))
    })
    .unwrap();
    assert_eq!(named.client_key.unwrap().kid, "idgate-1");

    assert_eq!(
        err(private_key_jwt(None)),
        "apps.web.providers.p.client_key_file: missing: auth_method = \"private_key_jwt\" signs \
         with this key"
    );
    let e = err(RawProvider {
        client_secret: Some("s".into()),
        ..private_key_jwt(Some("es256.pem"))
    });
    assert!(
        e.starts_with("apps.web.providers.p.client_secret: not used"),
        "{e}"
    );
    let e = err(private_key_jwt(Some("ed25519.pem")));
    assert!(
        e.starts_with("apps.web.providers.p.client_key_file: ")
            && e.contains("ed25519.pem: not an RSA (RS256) or P-256 (ES256) private key"),
        "{e}"
    );
    let e = err(private_key_jwt(Some("no-such-key.pem")));
    assert!(e.contains("no-such-key.pem: "), "{e}");
    for bad in ["", "a\nb"] {
        let e = err(RawProvider {
            client_key_id: Some(bad.into()),
            ..private_key_jwt(Some("es256.pem"))
        });
        assert!(e.starts_with("apps.web.providers.p.client_key_id: "), "{e}");
    }
}

#[test]
fn a_client_key_belongs_to_private_key_jwt_only() {
    for method in [None, Some("client_secret_jwt"), Some("client_secret_post")] {
        let e = err(RawProvider {
            auth_method: method.map(str::to_owned),
            client_key_file: Some(key_fixture("es256.pem")),
            ..raw("google")
        });
        assert_eq!(
            e,
            "apps.web.providers.p.client_key_file: only with auth_method = \"private_key_jwt\""
        );
        let e = err(RawProvider {
            auth_method: method.map(str::to_owned),
            client_key_id: Some("k".into()),
            ..raw("google")
        });
        assert!(
            e.starts_with("apps.web.providers.p.client_key_id: only with"),
            "{e}"
        );
    }
    let e = err(RawProvider {
        auth_method: Some("client_secret_jwt".into()),
        ..raw("google")
    });
    assert!(
        e.starts_with("apps.web.providers.p.client_secret: client_secret_jwt signs HS256"),
        "a one-byte secret: {e}"
    );
    let p = check(RawProvider {
        auth_method: Some("client_secret_jwt".into()),
        client_secret: Some("x".repeat(32)),
        ..raw("google")
    })
    .unwrap();
    assert_eq!(p.auth_method, AuthMethod::ClientSecretJwt);
    assert!(p.client_key.is_none());
}

#[test]
fn par_is_auto_always_or_never_for_the_oidc_types() {
    assert_eq!(check(raw("google")).unwrap().par, ParMode::Auto);
    for (text, mode) in [
        ("auto", ParMode::Auto),
        ("always", ParMode::Always),
        ("never", ParMode::Never),
    ] {
        let p = check(RawProvider {
            par: Some(text.into()),
            ..raw("google")
        })
        .unwrap();
        assert_eq!(p.par, mode);
    }
    let e = err(RawProvider {
        par: Some("sometimes".into()),
        ..raw("google")
    });
    assert_eq!(
        e,
        "apps.web.providers.p.par: `sometimes` is not one of auto, always, never"
    );
    let e = err(RawProvider {
        par: Some("always".into()),
        ..raw("github")
    });
    assert!(
        e.starts_with("apps.web.providers.p.par: only for the OpenID Connect"),
        "{e}"
    );
}
