//! Provider types (`type = …` under `[apps.<app>.providers.<id>]`) and their defaults: which
//! protocol each speaks, where its endpoints are, which scopes it asks for, how the client
//! authenticates at the token endpoint, and where the user id comes from.
//!
//! | type | protocol | endpoints (default) | scope (default) | token auth | user id |
//! |---|---|---|---|---|---|
//! | `oidc` | OIDC discovery | `issuer_url` (required) | `openid profile email` | basic | `sub` |
//! | `keycloak` | OIDC discovery | `issuer_url` = the realm, `https://host/realms/<realm>` (required) | `openid profile email` | basic | `sub` |
//! | `okta` | OIDC discovery | `issuer_url`, e.g. `https://<org>.okta.com/oauth2/default` (required) | `openid profile email` | basic | `sub` |
//! | `microsoft` | OIDC discovery | `issuer_url`, default `https://login.microsoftonline.com/common/v2.0` (then `tenants` is required, see below); a tenant: `…/<tenant>/v2.0`; B2C: `https://<t>.b2clogin.com/<t>.onmicrosoft.com/<policy>/v2.0` | `openid profile email` | post | `sub` |
//! | `google` | OIDC discovery | `issuer_url` = `https://accounts.google.com` | `openid profile email` | post | `sub` |
//! | `auth0` | OIDC discovery | `issuer_url` = `https://<tenant>.auth0.com/` (required) | `openid profile email` | post | `sub` |
//! | `gitlab` | OIDC discovery | `issuer_url` = `https://gitlab.com` (or the self-managed instance) | `openid profile email` | post | `sub` (the numeric user id) |
//! | `github` | OAuth2 | `auth_url` `https://github.com/login/oauth/authorize`, `token_url` `https://github.com/login/oauth/access_token`, `api_url` `https://api.github.com` | `read:user user:email` | post | `id` of `GET /user` (numeric, as a string) |
//! | `bitbucket-cloud` (TOML also `bitbucket`) | OAuth2 | `auth_url` `https://bitbucket.org/site/oauth2/authorize`, `token_url` `https://bitbucket.org/site/oauth2/access_token`, `api_url` `https://api.bitbucket.org/2.0` | `account email` | basic | `uuid` of `GET /user` |
//! | `bitbucket-server` (Server / Data Center; Mia's `bitbucket`) | OAuth2 | `base_url` (required); `auth_url` `{base_url}/rest/oauth2/latest/authorize`, `token_url` `{base_url}/rest/oauth2/latest/token` | `PUBLIC_REPOS` | post | the username `GET {base_url}/plugins/servlet/applinks/whoami` answers |
//! | `generic` | OAuth2 | `auth_url`, `token_url`, `userinfo_url` (all required) | none | basic | the userinfo key `keys.id` names (default `sub`) |
//!
//! `microsoft` on a multi-tenant endpoint — `…/common/v2.0` (the default) or
//! `…/organizations/v2.0`, on any Microsoft cloud — signs in accounts of every Entra ID tenant
//! (and, on `common`, personal accounts), all under the same signing keys: `tenants = ["<tenant
//! id>", …]` is then required, and an id_token (or a back-channel logout token) of a tenant not
//! listed is refused. The tenant is the `tid` claim and the one in `iss`, which must agree. On
//! `…/consumers/v2.0` the list defaults to the personal-accounts tenant
//! (`9188040d-6c67-4c5b-b112-36a304b66dad`); on a single tenant's endpoint or B2C it is optional
//! and, when given, checked against `tid`. Tenant ids are GUIDs (a tenant's domain name is not
//! what tokens carry).
//!
//! Two Bitbucket products: in idgate's TOML `bitbucket` has always meant Bitbucket Cloud and
//! still does (existing configurations keep working), `bitbucket-cloud` being its explicit
//! name; Bitbucket Server / Data Center is `bitbucket-server`, which Mia's configuration file
//! calls `bitbucket` (see `mia.rs`). A TOML `bitbucket` provider pointed at a server's
//! `/rest/oauth2/` endpoints is refused, naming `bitbucket-server`, rather than run as Cloud.
//!
//! `auth_method = "client_secret_basic" | "client_secret_post"` overrides the column "token
//! auth". Endpoint keys belong to their protocol: `issuer_url` to the OIDC types, `auth_url`,
//! `token_url` and `api_url` to `github`/`bitbucket-cloud`, `base_url`, `auth_url` and
//! `token_url` to `bitbucket-server`, `auth_url`, `token_url`, `userinfo_url`
//! and `keys` to `generic`, `tenants` to `microsoft`; any other combination is a configuration
//! error naming the key, so a key that would be silently ignored never is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use url::Url;

use super::raw::{RawProvider, RawUserKeys};
use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Oidc,
    Keycloak,
    Okta,
    Microsoft,
    Google,
    Auth0,
    Gitlab,
    Github,
    /// Bitbucket Cloud (bitbucket.org).
    BitbucketCloud,
    /// Bitbucket Server / Data Center, at the project's own base URL.
    BitbucketServer,
    Generic,
}

impl ProviderKind {
    pub const ALL: [Self; 11] = [
        Self::Oidc,
        Self::Keycloak,
        Self::Okta,
        Self::Microsoft,
        Self::Google,
        Self::Auth0,
        Self::Gitlab,
        Self::Github,
        Self::BitbucketCloud,
        Self::BitbucketServer,
        Self::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Keycloak => "keycloak",
            Self::Okta => "okta",
            Self::Microsoft => "microsoft",
            Self::Google => "google",
            Self::Auth0 => "auth0",
            Self::Gitlab => "gitlab",
            Self::Github => "github",
            Self::BitbucketCloud => "bitbucket-cloud",
            Self::BitbucketServer => "bitbucket-server",
            Self::Generic => "generic",
        }
    }

    /// The type named `s` in the TOML, where `bitbucket` is Bitbucket Cloud (see the module
    /// doc; the Mia file maps its own `bitbucket` itself).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bitbucket" => Some(Self::BitbucketCloud),
            _ => Self::ALL.into_iter().find(|k| k.as_str() == s),
        }
    }

    /// Whether the type signs in with OpenID Connect (discovery, id_token) rather than plain
    /// OAuth2 and a user API.
    pub fn is_oidc(self) -> bool {
        !matches!(
            self,
            Self::Github | Self::BitbucketCloud | Self::BitbucketServer | Self::Generic
        )
    }

    /// The issuer when the vendor has a fixed one.
    fn default_issuer(self) -> Option<&'static str> {
        match self {
            Self::Google => Some("https://accounts.google.com"),
            Self::Gitlab => Some("https://gitlab.com"),
            Self::Microsoft => Some("https://login.microsoftonline.com/common/v2.0"),
            _ => None,
        }
    }

    /// How the vendor's documentation has the client authenticate at the token endpoint.
    fn default_auth_method(self) -> AuthMethod {
        match self {
            // Bitbucket Server documents `client_id` and `client_secret` as token request
            // parameters, not HTTP Basic.
            Self::Microsoft
            | Self::Google
            | Self::Auth0
            | Self::Gitlab
            | Self::Github
            | Self::BitbucketServer => AuthMethod::ClientSecretPost,
            _ => AuthMethod::ClientSecretBasic,
        }
    }

    fn default_scope(self) -> Vec<String> {
        let list: &[&str] = match self {
            Self::Github => &["read:user", "user:email"],
            Self::BitbucketCloud => &["account", "email"],
            // The narrowest scope Bitbucket Server's OAuth 2.0 provider offers (what Mia's
            // documented example asks for); reading the user needs no more.
            Self::BitbucketServer => &["PUBLIC_REPOS"],
            Self::Generic => &[],
            _ => &["openid", "profile", "email"],
        };
        list.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Where a provider's endpoints are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Discovered from `{issuer}/.well-known/openid-configuration`. The issuer is kept as
    /// written (a trailing slash matters to Auth0), validated as a URL.
    Oidc { issuer: String },
    /// Plain OAuth2 with explicit endpoints and a user API.
    OAuth2(Box<OAuth2Endpoints>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Endpoints {
    pub auth_url: Url,
    pub token_url: Url,
    /// `GET` with the access token: the user's profile.
    pub user_url: Url,
    /// The user's addresses when the profile hides them (GitHub, Bitbucket Cloud).
    pub emails_url: Option<Url>,
    /// Bitbucket Server: its users API (`{base}/rest/api/latest/users`), where the name
    /// `user_url` (whoami) answers is looked up for the display name and address.
    pub users_url: Option<Url>,
    /// Which keys of the profile hold what (`generic`; fixed for the vendors).
    pub keys: UserKeys,
}

/// Which keys of a userinfo answer hold the user's fields (Mia's `oidcKeys`); dotted paths
/// reach into nested objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeys {
    pub id: String,
    pub name: String,
    pub username: String,
    pub email: String,
    /// The flag saying the address is verified: `false` (or `"false"`) there drops the
    /// address; absent, the address is kept.
    pub email_verified: String,
}

impl Default for UserKeys {
    fn default() -> Self {
        Self {
            id: "sub".into(),
            name: "name".into(),
            username: "preferred_username".into(),
            email: "email".into(),
            email_verified: "email_verified".into(),
        }
    }
}

/// The tenant of Microsoft's personal accounts, the only one the `consumers` endpoint serves.
pub const MICROSOFT_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

pub struct ProviderConfig {
    pub id: String,
    pub kind: ProviderKind,
    pub protocol: Protocol,
    pub auth_method: AuthMethod,
    pub client_id: String,
    pub client_secret: crate::crypto::Secret,
    pub scope: Vec<String>,
    pub label: String,
    pub order: i64,
    pub user_settings_url: Option<String>,
    /// `microsoft`: the tenant ids (lowercase GUIDs) whose tokens are accepted; empty means
    /// no check, which only a single-tenant or B2C issuer allows (see the module doc).
    pub tenants: Vec<String>,
    /// Where `/logout` sends a browser to end the IdP's session too.
    pub logout: LogoutTarget,
    /// IdP claim name → name under the token's `user` claim (`claims_to_token`, Mia's
    /// `providerToTokenClaims`), validated by [`claims_to_token`].
    pub claims_to_token: BTreeMap<String, String>,
    /// How long one request to the IdP may take (`timeout`, default 10 s, at most
    /// [`MAX_IDP_TIMEOUT`]): a login waiting on an IdP that does not answer fails after it.
    pub timeout: std::time::Duration,
}

/// Longest `timeout` a provider may have: a login holds a connection while it waits.
pub const MAX_IDP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where `/logout` sends a browser after ending idgate's session (`logout_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutTarget {
    /// Nowhere at the IdP: the browser goes to `redirect` (Mia without `logoutUrl`).
    None,
    /// The IdP's discovered `end_session_endpoint` (OIDC types).
    Discovered,
    /// This URL (Mia's `logoutUrl`), with `post_logout_redirect_uri` and `id_token_hint`.
    Url(url::Url),
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("protocol", &self.protocol)
            .field("auth_method", &self.auth_method)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("tenants", &self.tenants)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Validates provider `pid` of app `app`; `resolve` turns relative paths into absolute ones.
pub(super) fn validate(
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
    let tenants = match &protocol {
        Protocol::Oidc { issuer } if kind == ProviderKind::Microsoft => {
            microsoft_tenants(issuer, p.tenants, &pkey("tenants"))?
        }
        _ => Vec::new(),
    };
    let auth_method = match p.auth_method.as_deref() {
        None => kind.default_auth_method(),
        Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some(other) => {
            return Err(ConfigError::invalid(
                pkey("auth_method"),
                format!("`{other}` is not one of client_secret_basic, client_secret_post"),
            ))
        }
    };
    let secret = match (p.client_secret, p.client_secret_file) {
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
    let timeout = super::duration(&pkey("timeout"), p.timeout, "10s")?;
    if timeout > MAX_IDP_TIMEOUT {
        return Err(ConfigError::invalid(
            pkey("timeout"),
            "at most 60s: a login holds a connection while it waits",
        ));
    }
    Ok(ProviderConfig {
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
    })
}

/// Names of the token's `user` claim idgate fills itself: `claims_to_token` may not write them
/// (an IdP would then decide the user id, the groups or the permissions).
const RESERVED_USER_CLAIMS: &[&str] = &[
    "userId",
    "groups",
    "email",
    "name",
    "username",
    "permissions",
    "metadata",
    "providerUserId",
    "userSettingsURL",
];
/// At most this many entries in one provider's `claims_to_token`.
const MAX_CLAIMS_TO_TOKEN: usize = 32;

/// Validates `claims_to_token` (`key` names it in errors): IdP claim names that are not empty,
/// token claim names of letters, digits and `_` (at most 64, starting with a letter) that are
/// neither reserved nor written twice.
fn claims_to_token(
    raw: BTreeMap<String, String>,
    key: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    if raw.len() > MAX_CLAIMS_TO_TOKEN {
        return Err(ConfigError::invalid(
            key,
            format!("at most {MAX_CLAIMS_TO_TOKEN} claims"),
        ));
    }
    let mut targets = std::collections::BTreeSet::new();
    for (from, to) in &raw {
        if from.is_empty() || from.len() > 128 {
            return Err(ConfigError::invalid(
                key,
                "an IdP claim name must have 1 to 128 characters",
            ));
        }
        let well_formed = to.len() <= 64
            && to.starts_with(|c: char| c.is_ascii_alphabetic())
            && to.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "`{from}` → `{to}`: `{to}` is not a token claim name (a letter, then \
                     letters, digits or `_`; at most 64)"
                ),
            ));
        }
        if RESERVED_USER_CLAIMS.contains(&to.as_str()) {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "`{from}` → `{to}`: `{to}` is filled by idgate itself and cannot come from \
                     the IdP"
                ),
            ));
        }
        if !targets.insert(to.as_str()) {
            return Err(ConfigError::invalid(
                key,
                format!("`{from}` → `{to}`: `{to}` is written by two IdP claims"),
            ));
        }
    }
    Ok(raw)
}

/// The tenant allow-list of a `microsoft` provider at `issuer` (see the module doc); `key`
/// names the setting in errors.
fn microsoft_tenants(
    issuer: &str,
    given: Option<Vec<String>>,
    key: &str,
) -> Result<Vec<String>, ConfigError> {
    let endpoint = microsoft_endpoint(issuer);
    let tenants = match given {
        Some(list) => list
            .into_iter()
            .map(|t| {
                if is_guid(&t) {
                    Ok(t.to_ascii_lowercase())
                } else {
                    Err(ConfigError::invalid(
                        key,
                        format!(
                            "`{t}` is not a tenant id: a GUID such as \
                             {MICROSOFT_CONSUMERS_TENANT} (tokens carry the tenant's id, not its \
                             domain name)"
                        ),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        None if endpoint == "consumers" => vec![MICROSOFT_CONSUMERS_TENANT.to_owned()],
        None => Vec::new(),
    };
    if tenants.is_empty() && matches!(endpoint.as_str(), "common" | "organizations") {
        return Err(ConfigError::invalid(
            key,
            format!(
                "required: the issuer `{issuer}` is Microsoft's multi-tenant `{endpoint}` \
                 endpoint, which signs in the accounts of every Entra ID tenant; list the \
                 tenant ids allowed to sign in (tenants = [\"<tenant id>\"]), or set issuer_url \
                 to one tenant's https://login.microsoftonline.com/<tenant id>/v2.0"
            ),
        ));
    }
    Ok(tenants)
}

/// The first path segment of a Microsoft issuer, lowercase: `common`, `organizations`,
/// `consumers`, a tenant id or domain, or a B2C tenant's name.
pub(super) fn microsoft_endpoint(issuer: &str) -> String {
    Url::parse(issuer)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_ascii_lowercase))
        })
        .unwrap_or_default()
}

/// Whether `s` is a GUID in its usual text form (8-4-4-4-12 hexadecimal digits).
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
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

#[cfg(test)]
mod tests;
