//! The two Mia files a config names: the apps of `mia_config` join the TOML's, and the route
//! rules of `mia_auth` are read here, by the config layer.

use super::*;

#[test]
fn mia_apps_join_the_toml_apps() -> Result<(), ConfigError> {
    let text = format!("mia_config = \"config.json\"\n{MINIMAL}");
    let c = load_env(&text, &[("config.json", MIA_JSON)], &[])?;
    assert_eq!(c.apps.keys().collect::<Vec<_>>(), ["mobile", "web"]);
    let mobile = &c.apps["mobile"];
    assert!(!mobile.website);
    assert_eq!(
        mobile.token_claims,
        TokenClaims {
            include_provider_user_id: true,
            metadata_fields: Some(vec![vec!["a".into(), "b".into()]]),
        }
    );
    assert_eq!(
        mobile.providers["okta"].protocol,
        Protocol::Oidc {
            issuer: "https://x.okta.com/oauth2/default".into()
        }
    );
    assert_eq!(mobile.providers["okta"].kind, ProviderKind::Okta);
    // An unchanged Mia login site posts only code and state: RFC 9207's iss is not required.
    assert!(!mobile.providers["okta"].require_iss);
    assert!(c.apps["web"].providers.values().all(|p| p.require_iss));
    // TOML apps keep all metadata and no providerUserId unless asked.
    assert_eq!(c.apps["web"].token_claims, TokenClaims::default());
    // Two apps, no default: the chooser decides.
    assert_eq!(c.server.default_app, None);
    // The app's own cookie attributes are applied to that app alone.
    assert_eq!(
        mobile.cookie_attributes.sid.domain.as_deref(),
        Some("example.com")
    );
    assert!(c.apps["web"].cookie_attributes.is_empty());

    // The same id in both places is an error naming it.
    let clash = MIA_JSON.replace("\"mobile\"", "\"web\"");
    let err = load_env(&text, &[("config.json", &clash)], &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("apps.web: is defined both"), "{err}");

    // Validation errors of a Mia app use the file's names.
    let bad = MIA_JSON.replace("https://m.example.com/web-login", "not a url");
    let err = load_env(&text, &[("config.json", &bad)], &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("config.json: apps.mobile.redirectUrl: "),
        "{err}"
    );
    Ok(())
}

#[test]
fn mia_provider_groups_and_token_claims_are_applied() -> Result<(), ConfigError> {
    let text = format!("mia_config = \"config.json\"\n{MINIMAL}");
    let json = MIA_JSON
        .replace(
            "\"customTokenClaims\"",
            "\"useProviderGroups\": true, \"customTokenClaims\"",
        )
        .replace(
            "\"type\": \"okta\",",
            "\"type\": \"okta\", \"providerToTokenClaims\": {\"department\": \"dept\"},",
        );
    let c = load_env(&text, &[("config.json", &json)], &[])?;
    let mobile = &c.apps["mobile"];
    assert!(mobile.use_provider_groups);
    assert_eq!(
        mobile.providers["okta"]
            .claims_to_token
            .get("department")
            .map(String::as_str),
        Some("dept")
    );
    // A mapping idgate refuses is named in the file's terms.
    let bad = json.replace("\"dept\"", "\"groups\"");
    let err = load_env(&text, &[("config.json", &bad)], &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("config.json: apps.mobile.providers.okta.providerToTokenClaims: "),
        "{err}"
    );
    Ok(())
}

/// `mia_auth` is read by the config layer (policy does no I/O): its rules reach the table, and
/// a file that cannot be read or parsed stops loading, naming `mia_auth` and the file.
#[test]
fn mia_auth_is_read_here_and_named_when_it_fails() -> Result<(), ConfigError> {
    let text = format!("mia_auth = \"auth.json\"\n{MINIMAL}");
    let rules = r#"{"/admin/": {"ALL": {"authorization": {"expression": "groups.admin"}}}}"#;
    let c = load_env(&text, &[("auth.json", rules)], &[])?;
    let session = crate::policy::Context {
        session: true,
        ..Default::default()
    };
    assert_eq!(
        c.policy.decide("GET", "/admin/x", None, &session),
        crate::policy::Decision::Forbidden
    );
    let err = load_env(&text, &[], &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("mia_auth: ") && err.contains("auth.json: ") && err.contains("os error"),
        "{err}"
    );
    let err = load_env(&text, &[("auth.json", "{")], &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("mia_auth: ") && err.contains("auth.json: EOF"),
        "{err}"
    );
    Ok(())
}
