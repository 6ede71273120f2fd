//! Unit tests of reading Mia's configuration file: its documented shapes, each provider type's
//! conversion, and problems named in the file's own terms.

use super::providers::discovery_issuer;
use super::*;

/// The shape of the original documentation's Keycloak example (seed), values filled in.
const SEED_SHAPE: &str = r#"{
  "apps": {
    "web": {
      "providers": {
        "kc": {
          "type": "keycloak",
          "clientId": "idgate",
          "clientSecret": "",
          "authUrl": "https://sso.example.com/auth/realms/main/protocol/openid-connect/auth",
          "tokenUrl": "https://sso.example.com/auth/realms/main/protocol/openid-connect/token",
          "userInfoUrl": "https://sso.example.com/auth/realms/main/protocol/openid-connect/userinfo",
          "logoutUrl": "https://sso.example.com/auth/realms/main/protocol/openid-connect/logout",
          "baseUrl": "https://sso.example.com/auth/realms/main/",
          "scope": ["openid", "profile"],
          "order": 10,
          "userSettingsURL": "https://sso.example.com/auth/realms/main/account/"
        }
      },
      "redirectUrl": "https://app.example.com/web-login/oauth/callback",
      "isWebsiteApp": true,
      "realm": "main",
      "issuer": "app.example.com",
      "defaultGroups": ["users"],
      "customTokenClaims": {
        "includeProviderUserId": true,
        "metadataFieldsToIncluded": ["tenant", "profile.team"]
      }
    }
  }
}"#;

fn one_app(text: &str) -> Result<(RawApp, MiaNotices), ConfigError> {
    let (mut apps, notices) = parse(text, "config.json")?;
    match apps.pop() {
        Some((_, app)) => Ok((app, notices)),
        None => Err(ConfigError::invalid("test", "no app")),
    }
}

#[test]
fn the_documented_shape_becomes_an_oidc_app() -> Result<(), ConfigError> {
    let (app, notices) = one_app(SEED_SHAPE)?;
    assert_eq!(app.realm, "main");
    assert!(app.website);
    assert!(app.include_provider_user_id);
    assert_eq!(
        app.metadata_fields,
        Some(vec!["tenant".to_owned(), "profile.team".to_owned()])
    );
    let p = &app.providers["kc"];
    assert_eq!(p.kind, "keycloak");
    assert_eq!(
        p.issuer_url.as_deref(),
        Some("https://sso.example.com/auth/realms/main")
    );
    assert_eq!(p.order, 10);
    assert_eq!(
        p.user_settings_url.as_deref(),
        Some("https://sso.example.com/auth/realms/main/account/")
    );
    assert!(notices.warnings.is_empty(), "{:?}", notices.warnings);
    assert!(notices
        .infos
        .iter()
        .any(|i| i.contains("apps.web.providers.kc.tokenUrl: discovered")));
    Ok(())
}

#[test]
fn both_spellings_of_the_metadata_fields() -> Result<(), ConfigError> {
    let text = SEED_SHAPE.replace("metadataFieldsToIncluded", "metadataFieldsToInclude");
    let (app, _) = one_app(&text)?;
    assert_eq!(app.metadata_fields.map(|f| f.len()), Some(2));
    let text = SEED_SHAPE.replace("userSettingsURL", "userSettingsUrl");
    let (app, _) = one_app(&text)?;
    assert!(app.providers["kc"].user_settings_url.is_some());
    // Without customTokenClaims, no metadata in the token (as in the original).
    let text = SEED_SHAPE.replace("\"customTokenClaims\"", "\"ignoredClaims\"");
    let (app, notices) = one_app(&text)?;
    assert_eq!(app.metadata_fields, Some(vec![]));
    assert!(!app.include_provider_user_id);
    assert!(notices
        .warnings
        .iter()
        .any(|w| w == "config.json: apps.web.ignoredClaims: unknown key, ignored"));
    Ok(())
}

#[test]
fn issuers_by_provider_type() {
    let ms = discovery_issuer(
        "microsoft",
        Some("https://login.microsoftonline.com/t1/oauth2/v2.0/authorize"),
        Some("https://login.microsoftonline.com/t1/oauth2/v2.0/"),
    );
    assert_eq!(
        ms,
        Some((
            "https://login.microsoftonline.com/t1/v2.0".into(),
            "authUrl"
        ))
    );
    let okta = discovery_issuer(
        "okta",
        Some("https://x.okta.com/oauth2/default/v1/authorize"),
        Some("https://x.okta.com/oauth2/default"),
    );
    assert_eq!(
        okta,
        Some(("https://x.okta.com/oauth2/default".into(), "baseUrl"))
    );
    assert_eq!(discovery_issuer("gitlab", None, None), None);
}

#[test]
fn problems_name_the_file_and_the_json_path() {
    let err = |text: &str| {
        one_app(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err(&SEED_SHAPE.replace("\"clientId\"", "\"clientID\""));
    assert_eq!(e, "config.json: apps.web.providers.kc.clientId: missing");
    let e = err(&SEED_SHAPE.replace("\"order\": 10", "\"order\": \"high\""));
    assert!(
        e.starts_with("config.json: apps.web.providers.kc.order: invalid type"),
        "{e}"
    );
    let e = err(&SEED_SHAPE.replace("\"issuer\": \"app.example.com\",", ""));
    assert_eq!(e, "config.json: apps.web.issuer: missing");
    let e = err(&SEED_SHAPE.replace("\"keycloak\"", "\"saml\""));
    assert!(
        e.starts_with("config.json: apps.web.providers.kc.type: `saml` (app `web`, provider `kc`) is not a provider type"),
        "{e}"
    );
    let e = err(&SEED_SHAPE
        .replace("\"keycloak\"", "\"generic\"")
        .replace("\"userInfoUrl\"", "\"userInfo\""));
    assert_eq!(e, "config.json: apps.web.providers.kc.userInfoUrl: missing");
    let e = err("{\"apps\": [}");
    assert!(e.starts_with("config.json: "), "{e}");
}

#[test]
fn plain_oauth2_types_keep_their_endpoints() -> Result<(), ConfigError> {
    let text = r#"{"apps": {"web": {
        "redirectUrl": "https://app.example.com/web-login/oauth/callback",
        "realm": "main", "issuer": "app.example.com",
        "providers": {
          "gh": {"type": "github", "clientId": "c", "clientSecret": "s",
            "authUrl": "https://github.com/login/oauth/authorize",
            "tokenUrl": "https://github.com/login/oauth/access_token",
            "userInfoUrl": "https://api.github.com/user"},
          "bb": {"type": "bitbucket", "clientId": "c", "clientSecret": "s",
            "baseUrl": "https://git.example.com/bitbucket/rest/oauth2/latest"},
          "g": {"type": "generic", "clientId": "c", "clientSecret": "s",
            "authUrl": "https://sso.example.com/oauth/authorize",
            "tokenUrl": "https://sso.example.com/oauth/token",
            "userInfoUrl": "https://sso.example.com/api/me",
            "oidcKeys": {"id": "data.uid", "email": "mail", "color": "x"}},
          "ms": {"type": "azure", "clientId": "c", "clientSecret": "s",
            "authUrl": "https://login.microsoftonline.com/t1/oauth2/v2.0/authorize"}
        }}}}"#;
    let (app, notices) = one_app(text)?;
    let gh = &app.providers["gh"];
    assert_eq!(gh.kind, "github");
    assert_eq!(gh.api_url.as_deref(), Some("https://api.github.com"));
    assert_eq!(
        gh.token_url.as_deref(),
        Some("https://github.com/login/oauth/access_token")
    );
    assert_eq!(app.providers["bb"].kind, "bitbucket-server");
    assert_eq!(
        app.providers["bb"].base_url.as_deref(),
        Some("https://git.example.com/bitbucket")
    );
    assert_eq!(app.providers["bb"].scope, None);
    let g = &app.providers["g"];
    assert_eq!(
        g.userinfo_url.as_deref(),
        Some("https://sso.example.com/api/me")
    );
    let keys = g.keys.as_ref();
    assert_eq!(keys.and_then(|k| k.id.as_deref()), Some("data.uid"));
    assert_eq!(keys.and_then(|k| k.email.as_deref()), Some("mail"));
    assert!(notices
        .warnings
        .iter()
        .any(|w| w.contains("apps.web.providers.g.oidcKeys.color: unknown key")));
    // tokenUrl of an OAuth2 type is read, not "discovered".
    assert!(!notices.infos.iter().any(|i| i.contains("gh.tokenUrl")));
    assert_eq!(app.providers["ms"].kind, "microsoft");
    assert_eq!(
        app.providers["ms"].issuer_url.as_deref(),
        Some("https://login.microsoftonline.com/t1/v2.0")
    );
    Ok(())
}

#[test]
fn validation_errors_use_the_files_spelling() {
    let e = in_file_terms(
        ConfigError::invalid("apps.web.providers.kc.issuer_url", "bad"),
        "config.json",
    );
    assert_eq!(
        e.to_string(),
        "config.json: apps.web.providers.kc.baseUrl: bad"
    );
}

#[test]
fn a_microsoft_provider_on_common_needs_a_tenant_list() -> Result<(), ConfigError> {
    let file = |extra: &str| {
        format!(
            r#"{{"apps": {{"web": {{
            "redirectUrl": "https://app.example.com/web-login/oauth/callback",
            "realm": "main", "issuer": "app.example.com",
            "providers": {{"ms": {{"type": "microsoft", "clientId": "c", "clientSecret": "s",
              "authUrl": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"{extra}}}}}
            }}}}}}"#
        )
    };
    let msg = one_app(&file(""))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.starts_with("config.json: apps.web.providers.ms.tenants: required")
            && msg.contains("`authUrl`")
            && msg.contains("\"tenants\": ["),
        "{msg}"
    );
    assert!(one_app(&file(r#", "tenants": []"#)).is_err());
    let tenant = "775527ff-9a37-4307-8b3d-cc311f58d925";
    let (app, notices) = one_app(&file(&format!(r#", "tenants": ["{tenant}"]"#)))?;
    assert_eq!(
        app.providers["ms"].tenants.as_deref(),
        Some(&[tenant.to_owned()][..])
    );
    assert!(
        !notices.warnings.iter().any(|w| w.contains("tenants")),
        "{:?}",
        notices.warnings
    );
    Ok(())
}

#[test]
fn authorize_state_required_and_the_default_redirect_are_read() -> Result<(), ConfigError> {
    let (app, _) = one_app(SEED_SHAPE)?;
    assert!(
        !app.client_state,
        "off unless the file turns it on, as in Mia"
    );
    assert_eq!(app.default_redirect, None);
    for spelling in [
        "defaultRedirectUrlOnSuccessfulLogin",
        "defaultRedirectUrlOnSuccessfullLogin",
    ] {
        let text = SEED_SHAPE.replace(
            r#""isWebsiteApp": true,"#,
            &format!(
                r#""isWebsiteApp": true, "authorizeStateRequired": true, "{spelling}": "/home","#
            ),
        );
        let (app, notices) = one_app(&text)?;
        assert!(app.client_state, "{spelling}");
        assert_eq!(app.default_redirect.as_deref(), Some("/home"), "{spelling}");
        assert!(notices.warnings.is_empty(), "{:?}", notices.warnings);
        assert!(
            !notices
                .infos
                .iter()
                .any(|i| i.contains("authorizeStateRequired") || i.contains("defaultRedirect")),
            "applied, not merely noticed: {:?}",
            notices.infos
        );
    }
    Ok(())
}

#[test]
fn per_app_cookie_attributes_are_read() -> Result<(), ConfigError> {
    let text = SEED_SHAPE.replace(
        r#""isWebsiteApp": true,"#,
        r#""isWebsiteApp": true,
      "sidCookieCustomAttributes": {"domain": "example.com", "path": "/app", "sameSite": "Strict"},
      "refreshCookieCustomAttributes": {"path": "/", "sameSite": ""},"#,
    );
    let (app, notices) = one_app(&text)?;
    assert_eq!(
        app.cookie,
        Some(crate::config::raw::RawCookieAttributes {
            domain: Some("example.com".into()),
            path: Some("/app".into()),
            same_site: Some("Strict".into()),
        })
    );
    // An empty value is no value.
    assert_eq!(
        app.refresh_cookie,
        Some(crate::config::raw::RawCookieAttributes {
            path: Some("/".into()),
            ..Default::default()
        })
    );
    let said = format!("{:?}{:?}", notices.warnings, notices.infos);
    assert!(!said.contains("CookieCustomAttributes"), "{said}");
    Ok(())
}

#[test]
fn bitbucket_is_bitbucket_server_as_mia_documents_it() -> Result<(), ConfigError> {
    // The documented example, with the server's URL filled in.
    let text = r#"{"apps": {"web": {
        "redirectUrl": "https://app.example.com/web-login/oauth/callback",
        "realm": "main", "issuer": "app.example.com", "defaultGroups": [],
        "providers": {
          "bitbucket": {"type": "bitbucket", "clientId": "c", "clientSecret": "s",
            "authUrl": "https://bb.example.com/rest/oauth2/latest/authorize",
            "tokenUrl": "https://bb.example.com/rest/oauth2/latest/token",
            "userInfoUrl": "https://bb.example.com/plugins/servlet/applinks/whoami",
            "baseUrl": "https://bb.example.com/rest/oauth2/latest",
            "scope": ["PUBLIC_REPOS"], "order": 10,
            "userSettingsURL": "https://bb.example.com/profile/"},
          "cloud": {"type": "bitbucket-cloud", "clientId": "c", "clientSecret": "s"},
          "nobase": {"type": "bitbucket", "clientId": "c", "clientSecret": "s",
            "userInfoUrl": "https://bb2.example.com/ctx/plugins/servlet/applinks/whoami"}
        }}}}"#;
    let (app, notices) = one_app(text)?;
    let bb = &app.providers["bitbucket"];
    assert_eq!(bb.kind, "bitbucket-server");
    assert_eq!(bb.base_url.as_deref(), Some("https://bb.example.com"));
    assert_eq!(
        bb.token_url.as_deref(),
        Some("https://bb.example.com/rest/oauth2/latest/token")
    );
    assert_eq!(bb.api_url, None);
    assert_eq!(bb.userinfo_url, None);
    assert_eq!(app.providers["cloud"].kind, "bitbucket-cloud");
    assert_eq!(
        app.providers["nobase"].base_url.as_deref(),
        Some("https://bb2.example.com/ctx")
    );
    assert!(notices.warnings.is_empty(), "{:?}", notices.warnings);
    // Validated like the TOML's bitbucket-server: the endpoints sit under the base URL.
    let p =
        super::super::providers::validate("web", "bitbucket", bb_raw(text)?, &|p| p.to_owned())?;
    let super::super::Protocol::OAuth2(e) = &p.protocol else {
        return Err(ConfigError::invalid("test", "bitbucket-server is OAuth2"));
    };
    assert_eq!(
        e.user_url.as_str(),
        "https://bb.example.com/plugins/servlet/applinks/whoami"
    );
    // Without any URL to read the server from, the file is refused naming baseUrl.
    let bare = r#"{"apps": {"web": {"redirectUrl": "https://a/cb", "realm": "r", "issuer": "i",
        "providers": {"bb": {"type": "bitbucket", "clientId": "c", "clientSecret": "s"}}}}}"#;
    let err = parse(bare, "config.json").err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("config.json: apps.web.providers.bb.baseUrl: missing")
    );
    Ok(())
}

fn bb_raw(text: &str) -> Result<super::super::raw::RawProvider, ConfigError> {
    let (mut apps, _) = parse(text, "config.json")?;
    let (_, mut app) = apps.remove(0);
    app.providers
        .remove("bitbucket")
        .ok_or_else(|| ConfigError::invalid("test", "no provider"))
}

#[test]
fn provider_groups_and_token_claims_are_read_and_listed_as_applied() -> Result<(), ConfigError> {
    let text = SEED_SHAPE
        .replace(
            r#""isWebsiteApp": true,"#,
            r#""isWebsiteApp": true, "useProviderGroups": true,"#,
        )
        .replace(
            r#""order": 10,"#,
            r#""order": 10, "providerToTokenClaims": {"department": "dept"},"#,
        );
    let (app, notices) = one_app(&text)?;
    assert!(app.use_provider_groups);
    assert_eq!(
        app.providers["kc"]
            .claims_to_token
            .get("department")
            .map(String::as_str),
        Some("dept")
    );
    let said = notices.warnings.join("\n");
    assert!(!said.contains("useProviderGroups"), "{said}");
    assert!(!said.contains("providerToTokenClaims"), "{said}");
    assert!(notices
        .applied
        .contains(&"apps.web.useProviderGroups".to_string()));
    assert!(notices
        .applied
        .contains(&"apps.web.providers.kc.providerToTokenClaims".to_string()));
    // Without them, nothing comes from the IdP (as in Mia).
    let (plain, _) = one_app(SEED_SHAPE)?;
    assert!(!plain.use_provider_groups && plain.providers["kc"].claims_to_token.is_empty());
    Ok(())
}
