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
//! `organizations` endpoint needs a tenant allow-list (see `config/providers/`), which Mia's
//! configuration has no key for: such a file is refused, naming `tenants`, until the provider
//! either names its tenant in `authUrl` (the Mia service reads that too) or carries idgate's own
//! `"tenants": ["<tenant id>", …]`, which is then read like the TOML key.
//!
//! Problems name the file and the JSON path: `config.json: apps.web.providers.kc.clientId: missing`.

//!
//! Here: the file's shape, reading it, apps and errors in the file's terms; `providers.rs`
//! converts each provider; `keys.rs` accounts for every key the file holds.

mod keys;
mod providers;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::raw::RawApp;
use super::ConfigError;
use providers::{convert_provider, MiaProvider};

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
    keys::report_keys(&value, shown, &mut notices);
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
        pages: None,
        introspection: None,
        audiences: BTreeMap::new(),
    })
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
