//! The Mia authentication service's configuration JSON (`{"apps": {appId: {providers: …}}}`),
//! read as it is and turned into idgate apps (the top-level `mia_config` key names it).
//!
//! "As it is" means tolerant, unlike the TOML: the file was written for another program, so keys
//! idgate does not know are reported (a warning naming each one with its JSON path) rather than
//! refused, and the spellings the original documentation uses interchangeably are all accepted
//! (`metadataFieldsToInclude` / `metadataFieldsToIncluded`, `userSettingsURL` /
//! `userSettingsUrl`). Keys idgate knows but handles differently (cookie attributes,
//! endpoints it discovers instead) get a notice saying what to do instead.
//!
//! Every provider type whose IdP speaks OpenID Connect (`keycloak`, `okta`,
//! `microsoft`/`azure`, `gitlab`, `auth0`, `google`, `oidc`) becomes the idgate type of the same
//! name, discovered from its issuer: the Keycloak realm or Microsoft tenant in `authUrl`, else
//! `baseUrl`; `tokenUrl`, `userInfoUrl` come from discovery, and `logoutUrl` is where `/logout`
//! goes, as in Mia (none without it: Mia's logout stays away from the IdP). The plain OAuth2 types
//! keep their endpoints: `github` takes `authUrl` and `tokenUrl` (vendor defaults otherwise) and
//! its API from `userInfoUrl` (`…/user` → the API base); `bitbucket` is Bitbucket **Server** in
//! the Mia service (its documented example points at `…/rest/oauth2/latest/…` and the
//! `…/plugins/servlet/applinks/whoami` endpoint) and becomes idgate's `bitbucket-server`, whose
//! base URL is read off `baseUrl` (`{server}/rest/oauth2/latest`), else `userInfoUrl` or `authUrl`,
//! with `authUrl` and `tokenUrl` kept as written (`bitbucket-cloud`, idgate's own name, is
//! Bitbucket Cloud, as in the TOML); `generic` needs
//! `authUrl`, `tokenUrl` and `userInfoUrl`, and its `oidcKeys` say which userinfo keys hold
//! `id`, `name`, `username` and `email`.
//!
//! A `microsoft` provider whose `authUrl` (or `baseUrl`) is the multi-tenant `common` or
//! `organizations` endpoint needs a tenant allow-list (see `config/providers.rs`), which Mia's
//! configuration has no key for: such a file is refused, naming `tenants`, until the provider
//! either names its tenant in `authUrl` (the Mia service reads that too) or carries idgate's own
//! `"tenants": ["<tenant id>", …]`, which is then read like the TOML key.
//!
//! Problems name the file and the JSON path: `config.json: apps.web.providers.kc.clientId: missing`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::raw::{RawApp, RawProvider, RawUserKeys};
use super::{ConfigError, ProviderKind};

#[derive(Debug, Default, Deserialize)]
struct MiaFile {
    #[serde(default)]
    apps: BTreeMap<String, MiaApp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MiaApp {
    #[serde(default)]
    providers: BTreeMap<String, MiaProvider>,
    redirect_url: Option<String>,
    realm: Option<String>,
    issuer: Option<String>,
    #[serde(default)]
    default_groups: Vec<String>,
    #[serde(default)]
    is_website_app: bool,
    #[serde(default)]
    allowed_redirect_urls_on_successful_login: Vec<String>,
    custom_token_claims: Option<MiaTokenClaims>,
    #[serde(default)]
    authorize_state_required: bool,
    /// The spelling before Mia's 3.0.0 (`Successfull`) is read too.
    #[serde(alias = "defaultRedirectUrlOnSuccessfullLogin")]
    default_redirect_url_on_successful_login: Option<String>,
    sid_cookie_custom_attributes: Option<MiaCookieAttributes>,
    refresh_cookie_custom_attributes: Option<MiaCookieAttributes>,
    #[serde(default)]
    use_provider_groups: bool,
}

/// `sidCookieCustomAttributes`, `refreshCookieCustomAttributes`: Domain, Path, SameSite.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MiaCookieAttributes {
    domain: Option<String>,
    path: Option<String>,
    same_site: Option<String>,
}

impl From<MiaCookieAttributes> for super::raw::RawCookieAttributes {
    fn from(c: MiaCookieAttributes) -> Self {
        Self {
            domain: c.domain.filter(|d| !d.is_empty()),
            path: c.path.filter(|p| !p.is_empty()),
            same_site: c.same_site.filter(|s| !s.is_empty()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MiaTokenClaims {
    #[serde(default)]
    include_provider_user_id: bool,
    #[serde(alias = "metadataFieldsToIncluded")]
    metadata_fields_to_include: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MiaProvider {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    auth_url: Option<String>,
    token_url: Option<String>,
    user_info_url: Option<String>,
    oidc_keys: Option<BTreeMap<String, String>>,
    base_url: Option<String>,
    scope: Option<Vec<String>>,
    order: Option<i64>,
    label: Option<String>,
    #[serde(rename = "userSettingsURL", alias = "userSettingsUrl")]
    user_settings_url: Option<String>,
    /// idgate's own key (`microsoft`): the tenant allow-list, see `config/providers.rs`.
    tenants: Option<Vec<String>>,
    /// Where `/logout` sends the browser to end the IdP's session; without it, logout stays
    /// away from the IdP.
    logout_url: Option<String>,
    /// IdP claim → token claim, copied at login.
    #[serde(default)]
    provider_to_token_claims: BTreeMap<String, String>,
}

/// Keys of an app that idgate reads, and the ones it knows but handles elsewhere.
const APP_KEYS: &[&str] = &[
    "providers",
    "redirectUrl",
    "realm",
    "issuer",
    "defaultGroups",
    "isWebsiteApp",
    "allowedRedirectUrlsOnSuccessfulLogin",
    "customTokenClaims",
    "authorizeStateRequired",
    "defaultRedirectUrlOnSuccessfulLogin",
    "defaultRedirectUrlOnSuccessfullLogin",
    "sidCookieCustomAttributes",
    "refreshCookieCustomAttributes",
    "useProviderGroups",
];
const APP_KEYS_HANDLED_ELSEWHERE: &[(&str, &str)] = &[];
const CLAIMS_KEYS: &[&str] = &[
    "includeProviderUserId",
    "metadataFieldsToInclude",
    "metadataFieldsToIncluded",
];
const PROVIDER_KEYS: &[&str] = &[
    "type",
    "clientId",
    "clientSecret",
    "authUrl",
    "baseUrl",
    "scope",
    "order",
    "label",
    "userSettingsURL",
    "userSettingsUrl",
    "tenants",
    "logoutUrl",
    "providerToTokenClaims",
];
/// Provider keys read only for the plain OAuth2 types (`github`, `bitbucket`, `generic`).
const OAUTH2_PROVIDER_KEYS: &[&str] = &["tokenUrl", "userInfoUrl", "oidcKeys"];
const PROVIDER_KEYS_HANDLED_ELSEWHERE: &[(&str, &str)] = &[
    ("tokenUrl", "discovered from the issuer"),
    ("userInfoUrl", "discovered from the issuer"),
    ("skipRefreshProviderTokenOnMiaTokenRefresh", "no effect"),
    (
        "oidcKeys",
        "OIDC claims are read under their standard names (oidcKeys is for `generic`)",
    ),
];
/// The `oidcKeys` entries idgate reads.
const OIDC_KEYS: &[&str] = &["id", "name", "username", "email"];

/// What reading the file found worth telling the operator (logged at startup).
#[derive(Debug, Default, Clone)]
pub struct MiaNotices {
    /// Keys idgate does not know: possibly a typo, so a warning.
    pub warnings: Vec<String>,
    /// Keys idgate knows and handles differently.
    pub infos: Vec<String>,
    /// Every key of the file idgate applies, by JSON path (`apps.web.redirectUrl`), for the
    /// startup log and `check-config`: with the warnings and infos, every key the file holds
    /// is accounted for.
    pub applied: Vec<String>,
}

/// Reads the file at `path`; `shown` is how messages name it (as written in the TOML).
pub fn load(path: &Path, shown: &str) -> Result<(Vec<(String, RawApp)>, MiaNotices), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, shown)
}

/// Parses the text of a Mia configuration file into idgate apps (still to be validated).
pub fn parse(text: &str, shown: &str) -> Result<(Vec<(String, RawApp)>, MiaNotices), ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Parse {
        path: shown.into(),
        message: e.to_string(),
    })?;
    let mut notices = MiaNotices::default();
    report_keys(&value, shown, &mut notices);
    let file: MiaFile = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::invalid(format!("{shown}: {path}"), e.into_inner().to_string())
    })?;
    let mut apps = Vec::new();
    for (id, app) in file.apps {
        apps.push((id.clone(), convert_app(&id, app, shown, &mut notices)?));
    }
    Ok((apps, notices))
}

fn convert_app(
    id: &str,
    app: MiaApp,
    shown: &str,
    notices: &mut MiaNotices,
) -> Result<RawApp, ConfigError> {
    let at = |k: &str| format!("{shown}: apps.{id}.{k}");
    let missing = |k: &str| ConfigError::invalid(at(k), "missing");
    let mut providers = BTreeMap::new();
    for (pid, p) in app.providers {
        providers.insert(pid.clone(), convert_provider(id, &pid, p, shown, notices)?);
    }
    let (include_provider_user_id, metadata_fields) = match app.custom_token_claims {
        Some(c) => (c.include_provider_user_id, c.metadata_fields_to_include),
        None => (false, None),
    };
    Ok(RawApp {
        realm: app.realm.ok_or_else(|| missing("realm"))?,
        issuer: app.issuer.ok_or_else(|| missing("issuer"))?,
        redirect_url: app.redirect_url.ok_or_else(|| missing("redirectUrl"))?,
        website: app.is_website_app,
        default_groups: app.default_groups,
        default_provider: None,
        allowed_redirects: app.allowed_redirect_urls_on_successful_login,
        post_logout_redirect_url: None,
        include_provider_user_id,
        // The original puts `metadata` in the token only when fields are listed.
        metadata_fields: Some(metadata_fields.unwrap_or_default()),
        providers,
        client_state: app.authorize_state_required,
        // An empty default is no default (Mia sets no `Location` then).
        default_redirect: app
            .default_redirect_url_on_successful_login
            .filter(|d| !d.is_empty()),
        cookie: app.sid_cookie_custom_attributes.map(Into::into),
        refresh_cookie: app.refresh_cookie_custom_attributes.map(Into::into),
        use_provider_groups: app.use_provider_groups,
    })
}

fn convert_provider(
    app: &str,
    id: &str,
    p: MiaProvider,
    shown: &str,
    notices: &mut MiaNotices,
) -> Result<RawProvider, ConfigError> {
    let at = |k: &str| format!("{shown}: apps.{app}.providers.{id}.{k}");
    let missing = |k: &str| ConfigError::invalid(at(k), "missing");
    let written = p.kind.clone().ok_or_else(|| missing("type"))?;
    let kind = match written.as_str() {
        "azure" => ProviderKind::Microsoft,
        // Bitbucket Server in the Mia service, whatever the TOML's `bitbucket` means.
        "bitbucket" => ProviderKind::BitbucketServer,
        other => ProviderKind::parse(other).ok_or_else(|| {
            let all: Vec<_> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
            ConfigError::invalid(
                at("type"),
                format!(
                    "`{written}` (app `{app}`, provider `{id}`) is not a provider type idgate \
                     knows ({}, azure)",
                    all.join(", ")
                ),
            )
        })?,
    };
    if !kind.is_oidc() {
        return convert_oauth2_provider(app, id, kind, p, shown, notices);
    }
    let kind = kind.as_str();
    let (mut issuer, from) = discovery_issuer(kind, p.auth_url.as_deref(), p.base_url.as_deref())
        .ok_or_else(|| missing("baseUrl"))?;
    if kind == "auth0" && !issuer.ends_with('/') {
        // Auth0's issuer is the tenant URL with its trailing slash.
        issuer.push('/');
    }
    url::Url::parse(&issuer).map_err(|e| ConfigError::invalid(at(from), e.to_string()))?;
    let endpoint = super::providers::microsoft_endpoint(&issuer);
    if kind == "microsoft"
        && matches!(endpoint.as_str(), "common" | "organizations")
        && p.tenants.as_ref().is_none_or(Vec::is_empty)
    {
        // Said in the file's own terms: the TOML wording would name keys this file lacks.
        return Err(ConfigError::invalid(
            at("tenants"),
            format!(
                "required: `{from}` names Microsoft's multi-tenant `{endpoint}` endpoint, which \
                 signs in the accounts of every Entra ID tenant; either point `{from}` at your \
                 tenant (its tenant id in place of `{endpoint}`, which the Mia service reads as \
                 well) or add \"tenants\": [\"<tenant id>\", …] to this provider (read by \
                 idgate only)"
            ),
        ));
    }
    notices.infos.push(format!(
        "{shown}: apps.{app}.providers.{id}: `{kind}` provider, discovered from {issuer}"
    ));
    let mut scope = p
        .scope
        .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
    if !scope.iter().any(|s| s == "openid") {
        scope.insert(0, "openid".into());
        notices.infos.push(format!(
            "{shown}: apps.{app}.providers.{id}.scope: `openid` added (idgate needs the id_token)"
        ));
    }
    Ok(RawProvider {
        kind: kind.into(),
        issuer_url: Some(issuer),
        client_id: p.client_id.ok_or_else(|| missing("clientId"))?,
        client_secret: Some(p.client_secret.ok_or_else(|| missing("clientSecret"))?),
        client_secret_file: None,
        scope: Some(scope),
        label: p.label,
        order: p.order.unwrap_or(0),
        user_settings_url: p.user_settings_url,
        auth_method: None,
        auth_url: None,
        token_url: None,
        userinfo_url: None,
        api_url: None,
        keys: None,
        tenants: p.tenants,
        timeout: None,
        // Mia goes to the IdP at logout only when `logoutUrl` says where.
        logout_url: Some(p.logout_url.unwrap_or_else(|| "none".into())),
        base_url: None,
        claims_to_token: p.provider_to_token_claims,
    })
}

/// A `github`, `bitbucket` or `generic` provider: explicit endpoints, no discovery.
fn convert_oauth2_provider(
    app: &str,
    id: &str,
    kind: ProviderKind,
    p: MiaProvider,
    shown: &str,
    notices: &mut MiaNotices,
) -> Result<RawProvider, ConfigError> {
    let at = |k: &str| format!("{shown}: apps.{app}.providers.{id}.{k}");
    let missing = |k: &str| ConfigError::invalid(at(k), "missing");
    let generic = kind == ProviderKind::Generic;
    let base_url = if kind == ProviderKind::BitbucketServer {
        Some(bitbucket_server_base(&p).ok_or_else(|| missing("baseUrl"))?)
    } else {
        None
    };
    let user_info_url = match (&base_url, p.user_info_url) {
        (Some(base), Some(u)) => {
            if u.trim_end_matches('/') != format!("{base}{BITBUCKET_WHOAMI}") {
                notices.warnings.push(format!(
                    "{}: `{u}` is not {base}{BITBUCKET_WHOAMI}: idgate asks the server's \
                     whoami endpoint under the base URL",
                    at("userInfoUrl")
                ));
            }
            None
        }
        (_, u) => u,
    };
    let (api_url, userinfo_url) = match (generic, user_info_url) {
        (false, _) if base_url.is_some() => (None, None),
        (true, Some(u)) => (None, Some(u)),
        (true, None) => return Err(missing("userInfoUrl")),
        (false, Some(u)) => match u.trim_end_matches('/').strip_suffix("/user") {
            Some(base) => (Some(base.to_owned()), None),
            None => {
                notices.warnings.push(format!(
                    "{}: `{u}` does not end in /user: the vendor's default API is used",
                    at("userInfoUrl")
                ));
                (None, None)
            }
        },
        (false, None) => (None, None),
    };
    let keys = match p.oidc_keys {
        Some(map) if generic => {
            for k in map.keys().filter(|k| !OIDC_KEYS.contains(&k.as_str())) {
                notices.warnings.push(format!(
                    "{}.{k}: unknown key, ignored (idgate reads {})",
                    at("oidcKeys"),
                    OIDC_KEYS.join(", ")
                ));
            }
            Some(RawUserKeys {
                id: map.get("id").cloned(),
                name: map.get("name").cloned(),
                username: map.get("username").cloned(),
                email: map.get("email").cloned(),
                email_verified: None,
            })
        }
        _ => None,
    };
    if generic && (p.auth_url.is_none() || p.token_url.is_none()) {
        return Err(missing(if p.auth_url.is_none() {
            "authUrl"
        } else {
            "tokenUrl"
        }));
    }
    notices.infos.push(format!(
        "{shown}: apps.{app}.providers.{id}: `{}` provider (OAuth2)",
        kind.as_str()
    ));
    Ok(RawProvider {
        kind: kind.as_str().into(),
        issuer_url: None,
        client_id: p.client_id.ok_or_else(|| missing("clientId"))?,
        client_secret: Some(p.client_secret.ok_or_else(|| missing("clientSecret"))?),
        client_secret_file: None,
        scope: p.scope,
        label: p.label,
        order: p.order.unwrap_or(0),
        user_settings_url: p.user_settings_url,
        auth_method: None,
        auth_url: p.auth_url,
        token_url: p.token_url,
        userinfo_url,
        api_url,
        keys,
        tenants: p.tenants,
        timeout: None,
        logout_url: Some(oauth2_logout_url(
            app,
            id,
            kind,
            p.logout_url,
            shown,
            notices,
        )),
        base_url,
        claims_to_token: p.provider_to_token_claims,
    })
}

/// Mia ignores `logoutUrl` (with a warning) for the providers that are not OpenID Connect
/// (`github`, `bitbucket`), and leaves `generic` ones to the operator: the same here.
fn oauth2_logout_url(
    app: &str,
    id: &str,
    kind: ProviderKind,
    logout_url: Option<String>,
    shown: &str,
    notices: &mut MiaNotices,
) -> String {
    match logout_url {
        Some(u) if kind == ProviderKind::Generic => u,
        Some(_) => {
            notices.warnings.push(format!(
                "{shown}: apps.{app}.providers.{id}.logoutUrl: ignored, `{}` is not an OpenID \
                 Connect provider (as the Mia service does)",
                kind.as_str()
            ));
            "none".into()
        }
        None => "none".into(),
    }
}

/// Bitbucket Server's whoami endpoint, under the server's base URL.
const BITBUCKET_WHOAMI: &str = "/plugins/servlet/applinks/whoami";

/// A Mia `bitbucket` provider's server base URL: `baseUrl` is documented as
/// `{server}/rest/oauth2/latest`; `userInfoUrl` (`{server}/plugins/servlet/applinks/whoami`)
/// and `authUrl` (`{server}/rest/oauth2/latest/authorize`) say it too. A `baseUrl` that is
/// none of those is taken as the server itself.
fn bitbucket_server_base(p: &MiaProvider) -> Option<String> {
    let strip = |u: &Option<String>, suffix: &str| {
        u.as_deref()
            .map(|u| u.trim_end_matches('/'))
            .and_then(|u| u.strip_suffix(suffix))
            .map(str::to_owned)
    };
    strip(&p.base_url, "/rest/oauth2/latest")
        .or_else(|| strip(&p.user_info_url, BITBUCKET_WHOAMI))
        .or_else(|| strip(&p.auth_url, "/rest/oauth2/latest/authorize"))
        .or_else(|| {
            p.base_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned())
        })
}

/// The issuer to discover a provider from, and the key it was taken from. Keycloak's realm and
/// Microsoft's tenant are read off `authUrl` (their `baseUrl` is not the issuer in every
/// documented example); every other type uses `baseUrl`.
fn discovery_issuer(
    kind: &str,
    auth_url: Option<&str>,
    base_url: Option<&str>,
) -> Option<(String, &'static str)> {
    let from_auth = auth_url.and_then(|a| match kind {
        "keycloak" => a
            .split_once("/protocol/openid-connect/")
            .map(|(realm, _)| realm.to_owned()),
        "microsoft" | "azure" => a
            .split_once("/oauth2/v2.0/")
            .map(|(tenant, _)| format!("{tenant}/v2.0")),
        _ => None,
    });
    match (from_auth, base_url) {
        (Some(i), _) => Some((i, "authUrl")),
        (None, Some(b)) => Some((b.trim_end_matches('/').to_owned(), "baseUrl")),
        (None, None) => None,
    }
}

/// Lists the keys idgate does not read, with their JSON paths.
fn report_keys(value: &Value, shown: &str, notices: &mut MiaNotices) {
    let Some(top) = value.as_object() else {
        return;
    };
    for key in top.keys().filter(|k| *k != "apps") {
        notices
            .warnings
            .push(format!("{shown}: {key}: unknown key, ignored"));
    }
    let Some(apps) = top.get("apps").and_then(Value::as_object) else {
        return;
    };
    for (app_id, app) in apps {
        let Some(app) = app.as_object() else { continue };
        let base = format!("apps.{app_id}");
        check_object(
            app,
            &base,
            APP_KEYS,
            APP_KEYS_HANDLED_ELSEWHERE,
            shown,
            notices,
        );
        if let Some(claims) = app.get("customTokenClaims").and_then(Value::as_object) {
            check_object(
                claims,
                &format!("{base}.customTokenClaims"),
                CLAIMS_KEYS,
                &[],
                shown,
                notices,
            );
        }
        let providers = app.get("providers").and_then(Value::as_object);
        for (pid, p) in providers.into_iter().flatten() {
            if let Some(p) = p.as_object() {
                let path = format!("{base}.providers.{pid}");
                let oauth2 = matches!(
                    p.get("type").and_then(Value::as_str),
                    Some(
                        "github" | "bitbucket" | "bitbucket-cloud" | "bitbucket-server" | "generic"
                    )
                );
                let mut known = PROVIDER_KEYS.to_vec();
                if oauth2 {
                    known.extend_from_slice(OAUTH2_PROVIDER_KEYS);
                }
                check_object(
                    p,
                    &path,
                    &known,
                    PROVIDER_KEYS_HANDLED_ELSEWHERE,
                    shown,
                    notices,
                );
            }
        }
    }
}

fn check_object(
    object: &serde_json::Map<String, Value>,
    path: &str,
    known: &[&str],
    elsewhere: &[(&str, &str)],
    shown: &str,
    notices: &mut MiaNotices,
) {
    for key in object.keys() {
        if known.contains(&key.as_str()) {
            notices.applied.push(format!("{path}.{key}"));
            continue;
        }
        match elsewhere.iter().find(|(k, _)| k == key) {
            Some((_, how)) => notices.infos.push(format!("{shown}: {path}.{key}: {how}")),
            None => notices
                .warnings
                .push(format!("{shown}: {path}.{key}: unknown key, ignored")),
        }
    }
}

/// Renames the idgate key in a validation error of a Mia app back to the file's own spelling:
/// `apps.web.redirect_url` → `config.json: apps.web.redirectUrl`.
pub fn in_file_terms(err: ConfigError, shown: &str) -> ConfigError {
    match err {
        ConfigError::Invalid { key, message } => {
            let (head, last) = key.rsplit_once('.').unwrap_or(("", key.as_str()));
            let last = match last {
                "redirect_url" => "redirectUrl",
                "allowed_redirects" => "allowedRedirectUrlsOnSuccessfulLogin",
                "default_groups" => "defaultGroups",
                "issuer_url" | "base_url" => "baseUrl",
                "auth_url" => "authUrl",
                "token_url" => "tokenUrl",
                "userinfo_url" | "api_url" => "userInfoUrl",
                "keys" => "oidcKeys",
                "client_id" => "clientId",
                "client_secret" | "client_secret_file" => "clientSecret",
                "user_settings_url" => "userSettingsURL",
                "metadata_fields" => "customTokenClaims.metadataFieldsToInclude",
                "claims_to_token" => "providerToTokenClaims",
                other => other,
            };
            let key = if head.is_empty() {
                last.to_owned()
            } else {
                format!("{head}.{last}")
            };
            ConfigError::Invalid {
                key: format!("{shown}: {key}"),
                message,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
