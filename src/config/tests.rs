//! Unit tests of the parent module, kept apart so the module itself stays readable.
use super::server::socket_perms;
use super::*;

#[test]
fn socket_mode_and_group() {
    let groups = "root:x:0:\nwww-data:x:33:\nidgate:x:998:\n";
    assert_eq!(
        socket_perms(None, None, groups).unwrap(),
        SocketPerms::default()
    );
    let p = socket_perms(Some("0666"), Some("www-data"), groups).unwrap();
    assert_eq!((p.mode, p.gid), (0o666, Some(33)));
    assert_eq!(
        socket_perms(Some("660"), Some("42"), groups).unwrap().gid,
        Some(42)
    );
    for (mode, group, key) in [
        (Some("0999"), None, "server.socket_mode"),
        (Some("01777"), None, "server.socket_mode"),
        (None, Some("nginx"), "server.socket_group"),
    ] {
        match socket_perms(mode, group, groups) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{other:?}"),
        }
    }
}

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
