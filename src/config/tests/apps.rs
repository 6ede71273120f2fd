//! An app's checks as a whole config sees them: the default redirect against the allow-list,
//! relative allow-list entries, cookie attributes, and what the IdP may add to the session.

use super::*;

#[test]
fn a_default_redirect_must_be_an_allowed_one() -> Result<(), ConfigError> {
    let with = |lines: &str| {
        MINIMAL.replace(
            "redirect_url = \"http://localhost/web-login/oauth/callback\"",
            &format!("redirect_url = \"http://localhost/web-login/oauth/callback\"\n{lines}"),
        )
    };
    let c = load(&with("default_redirect = \"/home\"\nclient_state = true"))?;
    assert_eq!(c.apps["web"].default_redirect.as_deref(), Some("/home"));
    assert!(c.apps["web"].client_state);
    assert!(!load(MINIMAL)?.apps["web"].client_state);
    let err = load(&with("default_redirect = \"https://evil.example/\""))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("apps.web.default_redirect"), "{err}");
    let c = load(&with(
        "default_redirect = \"https://app.example/home\"\nallowed_redirects = [\"https://app.example/\"]",
    ))?;
    assert_eq!(
        c.apps["web"].default_redirect.as_deref(),
        Some("https://app.example/home")
    );
    Ok(())
}

#[test]
fn relative_allow_list_entries_are_paths_on_the_site() -> Result<(), ConfigError> {
    let with = |list: &str| {
        MINIMAL.replace(
            "redirect_url = \"http://localhost/web-login/oauth/callback\"",
            &format!(
                "redirect_url = \"http://localhost/web-login/oauth/callback\"\nallowed_redirects = {list}"
            ),
        )
    };
    // Mia's allow-lists hold relative entries next to absolute ones: both load.
    let c = load(&with(r#"["/home", "/app/", "https://app.example/portal"]"#))?;
    let allowed = &c.apps["web"].allowed_redirects;
    assert_eq!(allowed.len(), 1, "only the absolute entry needs an origin");
    assert!(crate::redirect::validate("https://app.example/portal/x", allowed).is_ok());
    assert!(crate::redirect::validate("/home", allowed).is_ok());
    // A relative entry the validator would refuse stops startup naming it.
    for bad in [
        r#"["//evil.example"]"#,
        r#"["/%2F/evil.example"]"#,
        r#"["home"]"#,
    ] {
        let err = load(&with(bad))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("apps.web.allowed_redirects"),
            "{bad}: {err}"
        );
    }
    Ok(())
}

#[test]
fn an_apps_cookie_attributes_are_checked() {
    let with = |lines: &str| {
        MINIMAL.replace(
            "redirect_url = \"http://localhost/web-login/oauth/callback\"",
            &format!("redirect_url = \"http://localhost/web-login/oauth/callback\"\n{lines}"),
        )
    };
    let ok = load(&with(
        "[apps.web.cookie]\ndomain = \"example.com\"\npath = \"/app\"\nsame_site = \"Strict\"",
    ))
    .unwrap();
    let attrs = &ok.apps["web"].cookie_attributes;
    assert_eq!(attrs.sid.same_site, Some(cookie::SameSite::Strict));
    assert_eq!(attrs.sid.path.as_deref(), Some("/app"));
    assert!(attrs.refresh == CookieOverride::default());
    for (lines, key) in [
        (
            "[apps.web.cookie]\nsame_site = \"none\"",
            "apps.web.cookie.same_site",
        ),
        ("[apps.web.cookie]\npath = \"app\"", "apps.web.cookie.path"),
        (
            "[apps.web.refresh_cookie]\npath = \"/a;b\"",
            "apps.web.refresh_cookie.path",
        ),
        (
            "[apps.web.cookie]\ndomain = \"a.example/x\"",
            "apps.web.cookie.domain",
        ),
    ] {
        let err = load(&with(lines))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with(key), "{lines}: {err}");
    }
    // __Host- names allow no Domain and no Path but `/`.
    let text = format!(
        "{}\n[session]\nhost_prefix = true\ncookie_secure = true\n",
        with("[apps.web.cookie]\npath = \"/app\"")
    );
    let err = load(&text).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("host_prefix"), "{err}");
}

#[test]
fn groups_and_claims_from_the_idp_are_opt_in_and_checked() {
    let with = |app_lines: &str, provider_lines: &str| {
        MINIMAL
            .replace(
                "redirect_url = \"http://localhost/web-login/oauth/callback\"",
                &format!(
                    "redirect_url = \"http://localhost/web-login/oauth/callback\"\n{app_lines}"
                ),
            )
            .replace(
                "client_secret = \"s\"",
                &format!("client_secret = \"s\"\n{provider_lines}"),
            )
    };
    let off = load(MINIMAL).unwrap();
    assert!(!off.apps["web"].use_provider_groups);
    assert!(off.apps["web"].providers["dev"].claims_to_token.is_empty());
    let on = load(&with(
        "use_provider_groups = true",
        "claims_to_token = { department = \"dept\", \"https://example.test/roles\" = \"roles\" }",
    ))
    .unwrap();
    assert!(on.apps["web"].use_provider_groups);
    let map = &on.apps["web"].providers["dev"].claims_to_token;
    assert_eq!(map.get("department").map(String::as_str), Some("dept"));
    assert_eq!(
        map.get("https://example.test/roles").map(String::as_str),
        Some("roles")
    );
    // The IdP may not write what idgate fills itself, nor one name twice, nor a name that is
    // not one.
    for (lines, said) in [
        (
            "claims_to_token = { realm_groups = \"groups\" }",
            "filled by idgate",
        ),
        ("claims_to_token = { sub = \"userId\" }", "filled by idgate"),
        (
            "claims_to_token = { a = \"x\", b = \"x\" }",
            "written by two",
        ),
        (
            "claims_to_token = { a = \"x-y\" }",
            "not a token claim name",
        ),
        ("claims_to_token = { a = \"\" }", "not a token claim name"),
        ("claims_to_token = { \"\" = \"x\" }", "1 to 128"),
    ] {
        let err = load(&with("", lines))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("apps.web.providers.dev.claims_to_token: ") && err.contains(said),
            "{lines}: {err}"
        );
    }
}
