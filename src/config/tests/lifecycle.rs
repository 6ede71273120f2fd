//! The lifecycle settings (how long sessions, tokens and refresh tokens live, and what a refused
//! refresh does to the cookies), from the TOML and from Mia's configuration.

use super::*;

/// Issue 11 item 5: the lifecycle settings, from the TOML and from Mia's configuration.
#[test]
fn lifecycle_settings_from_the_toml_and_from_mia() -> Result<(), ConfigError> {
    // idgate's defaults: absolute lifetime, a 5 s grace window, cookies kept on a refusal,
    // logout through the OIDC provider's discovered end-session endpoint.
    let c = load(MINIMAL)?;
    assert!(!c.session.sliding_lifetime);
    assert_eq!(c.session.refresh_grace, Duration::from_secs(5));
    assert!(!c.session.invalid_refresh_wipes_cookies);
    assert_eq!(
        c.apps["web"].providers["dev"].logout,
        LogoutTarget::Discovered
    );
    let with = |session: &str, provider: &str| {
        load(&MINIMAL.replace(
            "client_secret = \"s\"",
            &format!("client_secret = \"s\"\n{provider}\n[session]\n{session}"),
        ))
    };
    let c = with("refresh_grace = \"0s\"", "logout_url = \"none\"")?;
    assert_eq!(c.session.refresh_grace, Duration::ZERO);
    assert_eq!(c.apps["web"].providers["dev"].logout, LogoutTarget::None);
    let c = with("", "logout_url = \"https://sso.example/logout\"")?;
    assert!(matches!(
        &c.apps["web"].providers["dev"].logout,
        LogoutTarget::Url(u) if u.as_str() == "https://sso.example/logout"
    ));
    for (session, provider, key) in [
        ("refresh_grace = \"61s\"", "", "session.refresh_grace"),
        ("", "logout_url = \"javascript:alert(1)\"", "logout_url"),
        ("", "logout_url = \"not a url\"", "logout_url"),
    ] {
        let err = with(session, provider)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(key), "{session} {provider}: {err}");
    }

    // Mia: logoutUrl when given, else no IdP logout; the refresh-token lifetime slides;
    // INVALID_REFRESH_TOKEN_WIPES_COOKIES is applied.
    let mia = r#"{"apps": {"mobile": {
        "providers": {
          "okta": {"type": "okta", "clientId": "c", "clientSecret": "s",
            "baseUrl": "https://x.okta.com/oauth2/default",
            "logoutUrl": "https://x.okta.com/oauth2/default/v1/logout"},
          "kc": {"type": "keycloak", "clientId": "c", "clientSecret": "s",
            "baseUrl": "https://sso.example.com/realms/main"},
          "gh": {"type": "github", "clientId": "c", "clientSecret": "s",
            "logoutUrl": "https://github.com/logout"}},
        "redirectUrl": "https://m.example.com/web-login/oauth/callback",
        "realm": "m", "issuer": "m.example.com", "defaultGroups": []
    }}}"#;
    let text = format!("mia_config = \"config.json\"\n{MINIMAL}");
    let c = load_env(
        &text,
        &[("config.json", mia)],
        &[
            ("MIA_REFRESH_TOKEN_VALID_DURATION_SEC", "3600"),
            ("INVALID_REFRESH_TOKEN_WIPES_COOKIES", "true"),
        ],
    )?;
    assert!(c.session.sliding_lifetime);
    assert_eq!(c.session.lifetime, Duration::from_secs(3600));
    assert!(c.session.invalid_refresh_wipes_cookies);
    let providers = &c.apps["mobile"].providers;
    assert!(matches!(
        &providers["okta"].logout,
        LogoutTarget::Url(u) if u.as_str() == "https://x.okta.com/oauth2/default/v1/logout"
    ));
    assert_eq!(providers["kc"].logout, LogoutTarget::None);
    assert_eq!(providers["gh"].logout, LogoutTarget::None);
    assert!(c
        .notices
        .warnings
        .iter()
        .any(|w| w.contains("providers.gh.logoutUrl: ignored")));
    let c = load_env(
        &text,
        &[("config.json", mia)],
        &[("INVALID_REFRESH_TOKEN_WIPES_COOKIES", "false")],
    )?;
    assert!(!c.session.invalid_refresh_wipes_cookies);
    assert!(
        !c.session.sliding_lifetime,
        "absolute unless Mia's lifetime is read"
    );
    let err = load_env(
        &text,
        &[("config.json", mia)],
        &[("INVALID_REFRESH_TOKEN_WIPES_COOKIES", "sometimes")],
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("INVALID_REFRESH_TOKEN_WIPES_COOKIES"), "{err}");
    Ok(())
}
