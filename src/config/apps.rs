//! `[apps.<id>]`, and the apps of the Mia configuration file `mia_config` names, which join them:
//! each app's callback, redirect allow-list, token claims, cookies and providers, validated
//! alike wherever the app was written (a Mia app's errors are renamed to the file's own keys).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use url::Url;

use super::app_cookies::{cookie_override, CookieAttributes};
use super::raw::RawApp;
use super::{mia, providers, ConfigError, Notices, ProviderConfig};
use crate::redirect::AllowedTarget;

#[derive(Debug)]
pub struct AppConfig {
    pub id: String,
    pub realm: String,
    pub issuer: String,
    pub redirect_url: Url,
    pub website: bool,
    pub default_groups: Vec<String>,
    pub default_provider: Option<String>,
    pub allowed_redirects: Vec<AllowedTarget>,
    pub post_logout_redirect_url: Option<Url>,
    pub providers: BTreeMap<String, Arc<ProviderConfig>>,
    /// What the token's `user` claim carries beyond the basics.
    pub token_claims: TokenClaims,
    /// The client makes and checks the login's `state`, and its own callback exchanges the
    /// code without the browser-binding cookie (Mia's `authorizeStateRequired`).
    pub client_state: bool,
    /// `redirect` of a login started without one (Mia's `defaultRedirectUrlOnSuccessfulLogin`),
    /// already validated against `allowed_redirects`.
    pub default_redirect: Option<String>,
    /// The app's own cookie attributes (`[apps.X.cookie]`, `[apps.X.refresh_cookie]`; Mia's
    /// `sidCookieCustomAttributes`, `refreshCookieCustomAttributes`), validated.
    pub cookie_attributes: CookieAttributes,
    /// Groups from the IdP's `groups` claim join the users collection's (Mia's
    /// `useProviderGroups`).
    pub use_provider_groups: bool,
    /// The app's brand on its pages (`[apps.X.pages]`).
    pub pages: super::pages::AppPages,
    /// Opaque bearer tokens of the IdP accepted by introspection (`[apps.X.introspection]`).
    pub introspection: Option<super::api_tokens::IntrospectionConfig>,
    /// The upstream audiences scoped tokens are minted for (`[apps.X.audiences.NAME]`).
    pub audiences: BTreeMap<String, super::api_tokens::AudienceConfig>,
}

/// Mia's `customTokenClaims`: optional parts of the token's `user` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    pub include_provider_user_id: bool,
    /// Dotted paths into the user's `metadata`, split; `None` keeps all of it.
    pub metadata_fields: Option<Vec<Vec<String>>>,
}

impl AppConfig {
    /// The provider a login starts with when none is named: the default one, or the only one.
    pub fn implicit_provider(&self) -> Option<&str> {
        match (&self.default_provider, self.providers.len()) {
            (Some(id), _) => Some(id),
            (None, 1) => self.providers.keys().next().map(String::as_str),
            _ => None,
        }
    }
}

/// The apps of `[apps]`, then those of the file `mia_config` names (what reading it found goes
/// into `notices`). An app may be defined in one of the two only, and there must be at least
/// one. `host_prefix` is `[session]`'s: `__Host-` cookie names restrict an app's attributes.
pub(super) fn validate(
    raw: BTreeMap<String, RawApp>,
    mia_config: Option<&Path>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    host_prefix: bool,
    notices: &mut Notices,
) -> Result<BTreeMap<String, Arc<AppConfig>>, ConfigError> {
    let mut apps = BTreeMap::new();
    for (id, app) in raw {
        let app = validate_app(&id, app, resolve, host_prefix)?;
        apps.insert(id.clone(), Arc::new(app));
    }
    if let Some(file) = mia_config {
        let shown = file.display().to_string();
        let (mia_apps, mia_notices) = mia::load(&resolve(file), &shown)?;
        if !mia_notices.applied.is_empty() {
            notices.infos.push(format!(
                "{shown}: applied: {}",
                mia_notices.applied.join(", ")
            ));
        }
        notices.infos.extend(mia_notices.infos);
        notices.warnings.extend(mia_notices.warnings);
        for (id, app) in mia_apps {
            if apps.contains_key(&id) {
                return Err(ConfigError::invalid(
                    format!("apps.{id}"),
                    format!("is defined both in this file and in {shown}; keep one"),
                ));
            }
            let app = validate_app(&id, app, resolve, host_prefix)
                .map_err(|e| mia::in_file_terms(e, &shown))?;
            apps.insert(id, Arc::new(app));
        }
    }
    if apps.is_empty() {
        return Err(ConfigError::invalid(
            "apps",
            "configure at least one app (in [apps] or in the file mia_config names)",
        ));
    }
    Ok(apps)
}

/// One app, `[apps.<id>]` or converted from the Mia file.
fn validate_app(
    id: &str,
    app: RawApp,
    resolve: &dyn Fn(&Path) -> PathBuf,
    host_prefix: bool,
) -> Result<AppConfig, ConfigError> {
    let key = |k: &str| format!("apps.{id}.{k}");
    let cookie_attributes = CookieAttributes {
        sid: cookie_override(&key("cookie"), app.cookie.as_ref(), host_prefix)?,
        refresh: cookie_override(
            &key("refresh_cookie"),
            app.refresh_cookie.as_ref(),
            host_prefix,
        )?,
    };
    let redirect_url = Url::parse(&app.redirect_url)
        .map_err(|e| ConfigError::invalid(key("redirect_url"), e.to_string()))?;
    // A relative entry (`/home`, as Mia's allow-lists often hold) names a path on the app's own
    // site: idgate accepts every such path anyway (the validator keeps it on the site's
    // origin), so the entry is valid and needs no origin of its own. It must still be a path
    // the validator accepts.
    let mut allowed_redirects = Vec::new();
    for entry in &app.allowed_redirects {
        if entry.starts_with('/') {
            crate::redirect::validate(entry, &[]).map_err(|e| {
                ConfigError::invalid(key("allowed_redirects"), format!("`{entry}`: {e}"))
            })?;
            continue;
        }
        allowed_redirects.push(
            AllowedTarget::parse(entry)
                .map_err(|m| ConfigError::invalid(key("allowed_redirects"), m))?,
        );
    }
    let post_logout_redirect_url = app
        .post_logout_redirect_url
        .as_deref()
        .map(Url::parse)
        .transpose()
        .map_err(|e| ConfigError::invalid(key("post_logout_redirect_url"), e.to_string()))?;
    let default_redirect = app
        .default_redirect
        .as_deref()
        .map(|d| crate::redirect::validate(d, &allowed_redirects))
        .transpose()
        .map_err(|e| {
            ConfigError::invalid(
                key("default_redirect"),
                format!("{e} (add it to allowed_redirects, or make it a relative path)"),
            )
        })?;
    let metadata_fields = match app.metadata_fields {
        None => None,
        Some(fields) => {
            let mut paths = Vec::new();
            for field in &fields {
                let path: Vec<String> = field.split('.').map(str::to_owned).collect();
                if path.iter().any(String::is_empty) {
                    return Err(ConfigError::invalid(
                        key("metadata_fields"),
                        format!("`{field}` is not a dotted path such as `a.b.c`"),
                    ));
                }
                paths.push(path);
            }
            Some(paths)
        }
    };
    let mut providers = BTreeMap::new();
    for (pid, p) in app.providers {
        let provider = providers::validate(id, &pid, p, resolve)?;
        providers.insert(pid, Arc::new(provider));
    }
    if providers.is_empty() {
        return Err(ConfigError::invalid(
            key("providers"),
            "configure at least one provider",
        ));
    }
    if let Some(d) = &app.default_provider {
        if !providers.contains_key(d) {
            return Err(ConfigError::invalid(
                key("default_provider"),
                format!("no provider named `{d}` in this app"),
            ));
        }
    }
    let introspection = super::api_tokens::introspection(id, app.introspection, &providers)?;
    let audiences = super::api_tokens::audiences(id, app.audiences)?;
    Ok(AppConfig {
        introspection,
        audiences,
        id: id.to_owned(),
        realm: app.realm,
        issuer: app.issuer,
        redirect_url,
        website: app.website,
        default_groups: app.default_groups,
        default_provider: app.default_provider,
        allowed_redirects,
        post_logout_redirect_url,
        providers,
        token_claims: TokenClaims {
            include_provider_user_id: app.include_provider_user_id,
            metadata_fields,
        },
        client_state: app.client_state,
        default_redirect,
        cookie_attributes,
        use_provider_groups: app.use_provider_groups,
        pages: super::pages::validate_app(&key("pages"), app.pages)?,
    })
}
