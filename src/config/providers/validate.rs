//! Validation of one provider (`[apps.<app>.providers.<id>]`, or one converted from the Mia
//! file): its type, the endpoint keys its protocol allows (any other is an error naming the key,
//! never silently ignored), the vendor's defaults, the client secret, logout and timeout.

use std::path::{Path, PathBuf};

use url::Url;

use super::claims::claims_to_token;
use super::client_key::ClientKey;
use super::microsoft::microsoft_tenants;
use super::{
    AuthMethod, LogoutTarget, OAuth2Endpoints, ParMode, Protocol, ProviderConfig, ProviderKind,
    UserKeys, MAX_IDP_TIMEOUT, SIGNING_ALGS,
};
use crate::config::raw::{RawProvider, RawUserKeys};
use crate::config::ConfigError;

/// Validates provider `pid` of app `app`; `resolve` turns relative paths into absolute ones.
pub(in crate::config) fn validate(
    app: &str,
    pid: &str,
    p: RawProvider,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ProviderConfig, ConfigError> {
    let pkey = |k: &str| format!("apps.{app}.providers.{pid}.{k}");
    let kind = ProviderKind::parse(&p.kind).ok_or_else(|| {
        let all: Vec<_> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
        ConfigError::invalid(
            pkey("type"),
            format!(
                "`{}` is not a supported provider type ({})",
                p.kind,
                all.join(", ")
            ),
        )
    })?;
    let only_for = |key: &str, set: bool, allowed: bool, types: &str| {
        if set && !allowed {
            Err(ConfigError::invalid(
                pkey(key),
                format!("only for type {types}, not `{}`", kind.as_str()),
            ))
        } else {
            Ok(())
        }
    };
    let oauth2_vendor = matches!(kind, ProviderKind::Github | ProviderKind::BitbucketCloud);
    if p.kind == "bitbucket" {
        // The TOML's `bitbucket` is Bitbucket Cloud; a server's endpoints mean the operator
        // wanted Bitbucket Server (Mia's `bitbucket`).
        for (key, value) in [("auth_url", &p.auth_url), ("token_url", &p.token_url)] {
            if value
                .as_deref()
                .is_some_and(|v| v.contains("/rest/oauth2/"))
            {
                return Err(ConfigError::invalid(
                    pkey(key),
                    "is a Bitbucket Server endpoint, but `type = \"bitbucket\"` is Bitbucket \
                     Cloud in this file: use `type = \"bitbucket-server\"` with `base_url` \
                     (or `bitbucket-cloud` to say Cloud explicitly)",
                ));
            }
        }
    }
    let generic = kind == ProviderKind::Generic;
    only_for(
        "issuer_url",
        p.issuer_url.is_some(),
        kind.is_oidc(),
        "oidc, keycloak, okta, microsoft, google, auth0, gitlab",
    )?;
    only_for(
        "auth_url",
        p.auth_url.is_some(),
        !kind.is_oidc(),
        "github, bitbucket-cloud, bitbucket-server, generic",
    )?;
    only_for(
        "token_url",
        p.token_url.is_some(),
        !kind.is_oidc(),
        "github, bitbucket-cloud, bitbucket-server, generic",
    )?;
    only_for(
        "api_url",
        p.api_url.is_some(),
        oauth2_vendor,
        "github, bitbucket-cloud",
    )?;
    only_for(
        "base_url",
        p.base_url.is_some(),
        kind == ProviderKind::BitbucketServer,
        "bitbucket-server",
    )?;
    only_for("userinfo_url", p.userinfo_url.is_some(), generic, "generic")?;
    only_for("keys", p.keys.is_some(), generic, "generic")?;
    only_for(
        "tenants",
        p.tenants.is_some(),
        kind == ProviderKind::Microsoft,
        "microsoft",
    )?;
    let oidc_types = "oidc, keycloak, okta, microsoft, google, auth0, gitlab";
    only_for(
        "require_iss",
        p.require_iss.is_some(),
        kind.is_oidc(),
        oidc_types,
    )?;
    only_for(
        "id_token_signing_algs",
        p.id_token_signing_algs.is_some(),
        kind.is_oidc(),
        oidc_types,
    )?;
    let id_token_signing_algs = p
        .id_token_signing_algs
        .map(|list| signing_algs(list, &pkey("id_token_signing_algs")))
        .transpose()?;

    let url =
        |key: &str, value: Option<String>, default: Option<&str>| -> Result<Url, ConfigError> {
            let text = value
                .or_else(|| default.map(str::to_owned))
                .ok_or_else(|| {
                    ConfigError::invalid(pkey(key), format!("missing (type `{}`)", kind.as_str()))
                })?;
            let parsed = Url::parse(&text)
                .map_err(|e| ConfigError::invalid(pkey(key), format!("`{text}`: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::invalid(pkey(key), "must be an http(s) URL"));
            }
            Ok(parsed)
        };
    let protocol = match kind {
        _ if kind.is_oidc() => {
            let text = p
                .issuer_url
                .clone()
                .or_else(|| kind.default_issuer().map(str::to_owned));
            url("issuer_url", text.clone(), None)?;
            Protocol::Oidc {
                issuer: text.unwrap_or_default(),
            }
        }
        ProviderKind::BitbucketServer => {
            // "Bitbucket OAuth 2.0 provider API": the endpoints are under the server's base URL
            // (with its context path, if any).
            let base = url("base_url", p.base_url.clone(), None)?;
            let base = base.as_str().trim_end_matches('/').to_owned();
            let at = |path: &str| url("base_url", Some(format!("{base}{path}")), None);
            Protocol::OAuth2(Box::new(OAuth2Endpoints {
                auth_url: match p.auth_url.clone() {
                    Some(u) => url("auth_url", Some(u), None)?,
                    None => at("/rest/oauth2/latest/authorize")?,
                },
                token_url: match p.token_url.clone() {
                    Some(u) => url("token_url", Some(u), None)?,
                    None => at("/rest/oauth2/latest/token")?,
                },
                user_url: at("/plugins/servlet/applinks/whoami")?,
                emails_url: None,
                users_url: Some(at("/rest/api/latest/users")?),
                keys: UserKeys::default(),
            }))
        }
        ProviderKind::Github | ProviderKind::BitbucketCloud => {
            let (auth, token, api) = if kind == ProviderKind::Github {
                (
                    "https://github.com/login/oauth/authorize",
                    "https://github.com/login/oauth/access_token",
                    "https://api.github.com",
                )
            } else {
                (
                    "https://bitbucket.org/site/oauth2/authorize",
                    "https://bitbucket.org/site/oauth2/access_token",
                    "https://api.bitbucket.org/2.0",
                )
            };
            let api = url("api_url", p.api_url.clone(), Some(api))?;
            let base = api.as_str().trim_end_matches('/').to_owned();
            Protocol::OAuth2(Box::new(OAuth2Endpoints {
                auth_url: url("auth_url", p.auth_url.clone(), Some(auth))?,
                token_url: url("token_url", p.token_url.clone(), Some(token))?,
                user_url: url("api_url", Some(format!("{base}/user")), None)?,
                emails_url: Some(url("api_url", Some(format!("{base}/user/emails")), None)?),
                users_url: None,
                keys: UserKeys::default(),
            }))
        }
        _ => Protocol::OAuth2(Box::new(OAuth2Endpoints {
            auth_url: url("auth_url", p.auth_url.clone(), None)?,
            token_url: url("token_url", p.token_url.clone(), None)?,
            user_url: url("userinfo_url", p.userinfo_url.clone(), None)?,
            emails_url: None,
            users_url: None,
            keys: user_keys(p.keys, &pkey("keys"))?,
        })),
    };
    let auth_method = match p.auth_method.as_deref() {
        None => kind.default_auth_method(),
        Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some("client_secret_jwt") => AuthMethod::ClientSecretJwt,
        Some("private_key_jwt") => AuthMethod::PrivateKeyJwt,
        Some(other) => {
            return Err(ConfigError::invalid(
                pkey("auth_method"),
                format!(
                    "`{other}` is not one of client_secret_basic, client_secret_post, \
                     client_secret_jwt, private_key_jwt"
                ),
            ))
        }
    };
    let key_only = auth_method == AuthMethod::PrivateKeyJwt;
    let client_key = client_key(
        p.client_key_file.as_deref(),
        p.client_key_id.as_deref(),
        key_only,
        resolve,
        &pkey,
    )?;
    let par = par_mode(p.par.as_deref(), kind, &pkey)?;
    let tenants = match &protocol {
        Protocol::Oidc { issuer } if kind == ProviderKind::Microsoft => {
            microsoft_tenants(issuer, p.tenants, &pkey("tenants"))?
        }
        _ => Vec::new(),
    };
    let secret = match (p.client_secret, p.client_secret_file) {
        (Some(_), _) | (_, Some(_)) if key_only => {
            return Err(ConfigError::invalid(
                pkey("client_secret"),
                "not used with auth_method = \"private_key_jwt\" (the client_key_file \
                 authenticates the client): remove it",
            ))
        }
        (None, None) if key_only => String::new(),
        (Some(s), None) => s,
        (None, Some(f)) => std::fs::read_to_string(resolve(&f))
            .map_err(|e| ConfigError::invalid(pkey("client_secret_file"), e.to_string()))?
            .trim()
            .to_owned(),
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                pkey("client_secret"),
                "set client_secret or client_secret_file, not both",
            ))
        }
        (None, None) => {
            return Err(ConfigError::invalid(
                pkey("client_secret"),
                "missing (or set client_secret_file)",
            ))
        }
    };
    if auth_method == AuthMethod::ClientSecretJwt && secret.len() < 32 {
        // RFC 7518 §3.2: an HS256 key at least as long as the hash (256 bits).
        return Err(ConfigError::invalid(
            pkey("client_secret"),
            "client_secret_jwt signs HS256 with the secret, which needs at least 32 bytes \
             (RFC 7518 §3.2)",
        ));
    }
    let logout = match p.logout_url.as_deref().map(str::trim) {
        None if kind.is_oidc() => LogoutTarget::Discovered,
        None | Some("none" | "") => LogoutTarget::None,
        Some("discovery") if kind.is_oidc() => LogoutTarget::Discovered,
        Some("discovery") => {
            return Err(ConfigError::invalid(
                pkey("logout_url"),
                format!(
                    "`{}` providers have no discovery: give an URL or \"none\"",
                    kind.as_str()
                ),
            ))
        }
        Some(u) => match url::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => LogoutTarget::Url(url),
            Ok(_) => {
                return Err(ConfigError::invalid(
                    pkey("logout_url"),
                    "must be an http(s) URL, \"discovery\" or \"none\"",
                ))
            }
            Err(e) => return Err(ConfigError::invalid(pkey("logout_url"), e.to_string())),
        },
    };
    let claims_to_token = claims_to_token(p.claims_to_token, &pkey("claims_to_token"))?;
    let timeout = crate::config::duration(&pkey("timeout"), p.timeout, "10s")?;
    if timeout > MAX_IDP_TIMEOUT {
        return Err(ConfigError::invalid(
            pkey("timeout"),
            "at most 60s: a login holds a connection while it waits",
        ));
    }
    let logo_url = match p.logo_url {
        Some(l) if !crate::config::pages::is_site_path(&l) => {
            return Err(ConfigError::invalid(
                pkey("logo_url"),
                "a path on the site itself, such as /assets/sso.svg",
            ))
        }
        l => l,
    };
    Ok(ProviderConfig {
        logo_url,
        claims_to_token,
        timeout,
        logout,
        label: p.label.unwrap_or_else(|| pid.to_owned()),
        id: pid.to_owned(),
        kind,
        protocol,
        auth_method,
        client_id: p.client_id,
        client_secret: crate::crypto::Secret::new(secret),
        scope: p.scope.unwrap_or_else(|| kind.default_scope()),
        order: p.order,
        user_settings_url: p.user_settings_url,
        tenants,
        client_key,
        par,
        require_iss: p.require_iss.unwrap_or(true),
        id_token_signing_algs,
    })
}

/// The client key of a `private_key_jwt` provider (required then, refused otherwise).
fn client_key(
    file: Option<&Path>,
    kid: Option<&str>,
    key_only: bool,
    resolve: &dyn Fn(&Path) -> PathBuf,
    pkey: &dyn Fn(&str) -> String,
) -> Result<Option<std::sync::Arc<ClientKey>>, ConfigError> {
    if !key_only {
        for (key, set) in [
            ("client_key_file", file.is_some()),
            ("client_key_id", kid.is_some()),
        ] {
            if set {
                return Err(ConfigError::invalid(
                    pkey(key),
                    "only with auth_method = \"private_key_jwt\"",
                ));
            }
        }
        return Ok(None);
    }
    let Some(file) = file else {
        return Err(ConfigError::invalid(
            pkey("client_key_file"),
            "missing: auth_method = \"private_key_jwt\" signs with this key",
        ));
    };
    if let Some(kid) = kid {
        if kid.is_empty() || kid.len() > 256 || kid.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                pkey("client_key_id"),
                "1 to 256 printable characters",
            ));
        }
    }
    ClientKey::load(&resolve(file), kid)
        .map(|k| Some(std::sync::Arc::new(k)))
        .map_err(|why| ConfigError::invalid(pkey("client_key_file"), why))
}

/// `par`: `auto` (default), `always` or `never`; OIDC types only (plain OAuth2 has no
/// discovery to find the endpoint in).
fn par_mode(
    raw: Option<&str>,
    kind: ProviderKind,
    pkey: &dyn Fn(&str) -> String,
) -> Result<ParMode, ConfigError> {
    let mode = match raw {
        None | Some("auto") => ParMode::Auto,
        Some("always") => ParMode::Always,
        Some("never") => ParMode::Never,
        Some(other) => {
            return Err(ConfigError::invalid(
                pkey("par"),
                format!("`{other}` is not one of auto, always, never"),
            ))
        }
    };
    if raw.is_some() && !kind.is_oidc() {
        return Err(ConfigError::invalid(
            pkey("par"),
            format!(
                "only for the OpenID Connect types (discovery names the endpoint), not `{}`",
                kind.as_str()
            ),
        ));
    }
    Ok(mode)
}

/// `id_token_signing_algs`: a non-empty list of names from [`SIGNING_ALGS`], without repeats.
fn signing_algs(list: Vec<String>, key: &str) -> Result<Vec<String>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "empty: no id_token could be accepted (leave the key out for what discovery advertises)",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for alg in list {
        if alg.eq_ignore_ascii_case("none") {
            return Err(ConfigError::invalid(
                key,
                "`none` cannot be accepted: an unsigned id_token proves nothing",
            ));
        }
        if !SIGNING_ALGS.contains(&alg.as_str()) {
            let shown: String = alg.chars().take(20).collect();
            return Err(ConfigError::invalid(
                key,
                format!("`{shown}` is not one of {}", SIGNING_ALGS.join(", ")),
            ));
        }
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(out)
}

fn user_keys(raw: Option<RawUserKeys>, key: &str) -> Result<UserKeys, ConfigError> {
    let mut keys = UserKeys::default();
    let Some(raw) = raw else { return Ok(keys) };
    for (field, value, slot) in [
        ("id", raw.id, &mut keys.id),
        ("name", raw.name, &mut keys.name),
        ("username", raw.username, &mut keys.username),
        ("email", raw.email, &mut keys.email),
        (
            "email_verified",
            raw.email_verified,
            &mut keys.email_verified,
        ),
    ] {
        if let Some(v) = value {
            if v.is_empty() || v.split('.').any(str::is_empty) {
                return Err(ConfigError::invalid(
                    format!("{key}.{field}"),
                    format!("`{v}` is not a key or a dotted path such as `data.id`"),
                ));
            }
            *slot = v;
        }
    }
    Ok(keys)
}
