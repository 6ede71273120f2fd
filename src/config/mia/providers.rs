//! One Mia provider to one idgate provider: the OpenID Connect types are discovered from the
//! issuer read off `authUrl` or `baseUrl`; the plain OAuth2 types (`github`, `bitbucket`, which
//! is Bitbucket Server here, `generic`) keep their endpoints. What the conversion changes or
//! ignores goes into the notices.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::MiaNotices;
use crate::config::raw::{RawProvider, RawUserKeys};
use crate::config::{ConfigError, ProviderKind};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MiaProvider {
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
    /// idgate's own key (`microsoft`): the tenant allow-list, see `config/providers/`.
    tenants: Option<Vec<String>>,
    /// Where `/logout` sends the browser to end the IdP's session; without it, logout stays
    /// away from the IdP.
    logout_url: Option<String>,
    /// IdP claim → token claim, copied at login.
    #[serde(default)]
    provider_to_token_claims: BTreeMap<String, String>,
}

/// The `oidcKeys` entries idgate reads.
const OIDC_KEYS: &[&str] = &["id", "name", "username", "email"];

pub(super) fn convert_provider(
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
    let endpoint = crate::config::providers::microsoft_endpoint(&issuer);
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
        logo_url: None,
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
        client_key_file: None,
        client_key_id: None,
        par: None,
        // Mia goes to the IdP at logout only when `logoutUrl` says where.
        logout_url: Some(p.logout_url.unwrap_or_else(|| "none".into())),
        base_url: None,
        claims_to_token: p.provider_to_token_claims,
        // An unchanged Mia login site posts only `code` and `state` to /oauth/token: a
        // discovered RFC 9207 `iss` cannot be required of it (see the README, `require_iss`).
        require_iss: Some(false),
        id_token_signing_algs: None,
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
        logo_url: None,
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
        client_key_file: None,
        client_key_id: None,
        par: None,
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
        require_iss: None,
        id_token_signing_algs: None,
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
pub(super) fn discovery_issuer(
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
