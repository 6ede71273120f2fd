//! Configuration in two phases: [`raw`] parses the TOML as written, [`Config::from_raw`] checks
//! it and turns it into typed values (durations, networks, URLs, loaded keys). `idgate
//! check-config` runs exactly this path, so a config it accepts is one `serve` starts with.
//!
//! Relative file paths resolve against the config file's folder, so a config and its keys can
//! move together.
//!
//! Two compatibility inputs join the TOML: the original services' environment variables
//! ([`env`], applied first and winning over the TOML) and the Mia authentication service's
//! configuration JSON ([`mia`], named by `mia_config`), whose apps join `[apps]`.

mod api_keys;
pub mod env;
pub(crate) mod mia;
mod providers;
mod raw;
mod server;
mod stores;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::jwt::KeyMaterial;
use crate::redirect::AllowedTarget;
pub use env::{Env, EnvReport, ProcessEnv};
pub use providers::LogoutTarget;
pub use providers::{
    AuthMethod, OAuth2Endpoints, Protocol, ProviderConfig, ProviderKind, UserKeys,
};
pub use raw::RawConfig;
pub use server::{ListenAddr, ServerConfig, SocketPerms};
pub use stores::{CrudConfig, MongoConfig, RedisConfig, RedisMode, StoreConfig, UsersConfig};
pub use stores::{InactiveUsers, CRUD_DEFAULT_FIELDS, CRUD_FIELDS};

/// A configuration problem, always naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl From<crate::tls::TlsConfigError> for ConfigError {
    fn from(e: crate::tls::TlsConfigError) -> Self {
        Self::Invalid {
            key: e.key,
            message: e.message,
        }
    }
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub jwt: JwtConfig,
    pub session: SessionConfig,
    pub store: StoreConfig,
    pub users: UsersConfig,
    pub headers: crate::headers::IdentityHeaders,
    pub log: LogConfig,
    pub apps: BTreeMap<String, Arc<AppConfig>>,
    pub policy: crate::policy::RouteTable,
    /// `[[api_keys]]`, hashed (see `apikeys`).
    pub api_keys: crate::apikeys::ApiKeys,
    /// What the compatibility inputs told us, logged once tracing is up.
    pub notices: Notices,
    /// Whom the outbound TLS clients trust (`[tls]`, see `tls.rs`).
    pub tls: crate::tls::TlsConfig,
}

/// Startup messages gathered while the config loads (tracing is not set up yet then): which
/// original environment variables were applied, and what the Mia configuration file holds that
/// idgate ignores or handles differently.
#[derive(Debug, Clone, Default)]
pub struct Notices {
    pub infos: Vec<String>,
    pub warnings: Vec<String>,
}

impl Notices {
    /// Logs every notice (`serve` calls it right after setting up tracing).
    pub fn log(&self) {
        for line in &self.infos {
            tracing::info!("{line}");
        }
        for line in &self.warnings {
            tracing::warn!("{line}");
        }
    }
}

#[derive(Debug)]
pub struct JwtConfig {
    pub signing: KeyMaterial,
    pub verification: Vec<KeyMaterial>,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Lifetime of the session JWT.
    pub access_ttl: Duration,
    /// Lifetime of the session behind it (and of the cookies).
    pub lifetime: Duration,
    pub idle_timeout: Option<Duration>,
    pub login_state_ttl: Duration,
    pub cookie_secure: bool,
    pub cookie_domain: Option<String>,
    pub cookie_path: String,
    pub cookie_same_site: cookie::SameSite,
    /// `__Host-` / `__Secure-` cookie names (see `cookie`).
    pub host_prefix: bool,
    pub token_cache_entries: usize,
    /// Key for the IdP tokens kept at rest; `None` derives one from the signing key.
    pub token_key: Option<Vec<u8>>,
    pub max_per_user: usize,
    pub outage_grace: Duration,
    /// `lifetime` counts from the last refresh (Mia's refresh-token lifetime), not the login.
    pub sliding_lifetime: bool,
    /// How long a refresh token just used still gets the pair it was exchanged for; zero: never.
    pub refresh_grace: Duration,
    /// `/refreshtoken` clears the cookies when it refuses a refresh token.
    pub invalid_refresh_wipes_cookies: bool,
}

#[cfg(test)]
impl SessionConfig {
    /// The defaults, for unit tests that need a `SessionConfig`.
    pub fn for_tests() -> Self {
        Self {
            access_ttl: Duration::from_secs(900),
            lifetime: Duration::from_secs(43_200),
            idle_timeout: None,
            login_state_ttl: Duration::from_secs(120),
            cookie_secure: true,
            cookie_domain: None,
            cookie_path: "/".into(),
            cookie_same_site: cookie::SameSite::Lax,
            host_prefix: false,
            token_cache_entries: 16,
            token_key: None,
            max_per_user: 10,
            outage_grace: Duration::from_secs(30),
            sliding_lifetime: false,
            refresh_grace: Duration::from_secs(5),
            invalid_refresh_wipes_cookies: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub json: bool,
    pub level: String,
}

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
}

/// Per-app cookie attributes, each `None` where `[session]`'s apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieAttributes {
    pub sid: CookieOverride,
    pub refresh: CookieOverride,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieOverride {
    pub domain: Option<String>,
    pub path: Option<String>,
    pub same_site: Option<cookie::SameSite>,
}

impl CookieAttributes {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Validates an app's cookie attributes: a path starting with `/` without `;` or controls, a
/// plain domain, SameSite `lax` or `strict`; none of them with `__Host-` names, which forbid a
/// Domain and any Path but `/`.
fn cookie_override(
    key: &str,
    raw: Option<&raw::RawCookieAttributes>,
    host_prefix: bool,
) -> Result<CookieOverride, ConfigError> {
    let Some(raw) = raw else {
        return Ok(CookieOverride::default());
    };
    let bad = |what: &str, m: String| ConfigError::invalid(format!("{key}.{what}"), m);
    let plain = |v: &str| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    };
    if let Some(p) = &raw.path {
        if !p.starts_with('/') || !plain(p) {
            return Err(bad(
                "path",
                format!("`{p}` must be a path starting with `/`"),
            ));
        }
    }
    if let Some(d) = &raw.domain {
        if !plain(d) || d.contains('/') {
            return Err(bad("domain", format!("`{d}` is not a domain")));
        }
    }
    if host_prefix && (raw.domain.is_some() || raw.path.as_deref().is_some_and(|p| p != "/")) {
        return Err(ConfigError::invalid(
            key,
            "[session] host_prefix names the cookies __Host-, which allows no Domain and no \
             Path but `/`",
        ));
    }
    let same_site = match raw
        .same_site
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => None,
        Some("lax") => Some(cookie::SameSite::Lax),
        Some("strict") => Some(cookie::SameSite::Strict),
        Some(other) => {
            return Err(bad(
                "same_site",
                format!("`{other}`: lax or strict (a session cookie is never sent cross-site)"),
            ))
        }
    };
    Ok(CookieOverride {
        domain: raw.domain.clone(),
        path: raw.path.clone(),
        same_site,
    })
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

impl Config {
    /// Reads, parses and validates the file at `path`, with the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, &ProcessEnv)
    }

    /// [`Config::load`] with the environment given.
    pub fn load_with_env(path: &Path, env: &dyn Env) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path, env)
    }

    /// Parses and validates `text`, the TOML of the file at `path` (relative paths resolve
    /// against its folder), with the environment `env`.
    pub fn from_toml(text: &str, path: &Path, env: &dyn Env) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_raw_with_env(raw, dir, env)
    }

    /// Validates a parsed config, ignoring the environment; `dir` is where relative paths
    /// resolve.
    pub fn from_raw(raw: RawConfig, dir: &Path) -> Result<Self, ConfigError> {
        Self::from_raw_with_env(raw, dir, &std::collections::HashMap::new())
    }

    /// Applies the original services' environment variables from `env`, then validates.
    pub fn from_raw_with_env(
        mut raw: RawConfig,
        dir: &Path,
        env: &dyn Env,
    ) -> Result<Self, ConfigError> {
        let report = env::apply(&mut raw, env, dir)?;
        let mut config = Self::validate(raw, dir).map_err(|e| report.attribute(e))?;
        let mut infos = report.lines();
        infos.append(&mut config.notices.infos);
        config.notices.infos = infos;
        Ok(config)
    }

    fn validate(raw: RawConfig, dir: &Path) -> Result<Self, ConfigError> {
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                dir.join(p)
            }
        };

        let server = server::validate(&raw.server, &resolve)?;

        let jwt = raw.jwt.ok_or_else(|| {
            ConfigError::invalid(
                "jwt",
                "missing: add a [jwt] section (or set MIA_JWT_TOKEN_SIGN_KEY or \
                 MIA_JWT_TOKEN_PRIVATE_KEY_FILE_PATH)",
            )
        })?;
        let signing = match (&jwt.secret, &jwt.private_key_file) {
            (Some(secret), _) => KeyMaterial::signing_from_bytes(
                &jwt.algorithm,
                secret.expose().as_bytes().to_vec(),
                "the value",
                &jwt.key_id,
            )
            .map_err(|m| ConfigError::invalid("jwt.secret", m))?,
            (None, Some(file)) => {
                KeyMaterial::load_signing(&jwt.algorithm, &resolve(file), &jwt.key_id)
                    .map_err(|m| ConfigError::invalid("jwt.private_key_file", m))?
            }
            (None, None) => {
                return Err(ConfigError::invalid("jwt.private_key_file", "missing"));
            }
        };
        let mut verification = Vec::new();
        for (i, k) in jwt.verification_keys.iter().enumerate() {
            let key =
                KeyMaterial::load_verifying(&k.algorithm, &resolve(&k.key_file), &k.key_id)
                    .map_err(|m| ConfigError::invalid(format!("jwt.verification_keys[{i}]"), m))?;
            verification.push(key);
        }

        let s = raw.session;
        let same_site = match s.cookie_same_site.as_deref().unwrap_or("lax") {
            v if v.eq_ignore_ascii_case("lax") => cookie::SameSite::Lax,
            v if v.eq_ignore_ascii_case("strict") => cookie::SameSite::Strict,
            v if v.eq_ignore_ascii_case("none") => cookie::SameSite::None,
            other => {
                return Err(ConfigError::invalid(
                    "session.cookie_same_site",
                    format!("`{other}` is not one of lax, strict, none"),
                ))
            }
        };
        let token_key = match &s.token_key_file {
            None => None,
            Some(p) => {
                let bytes = std::fs::read(resolve(p))
                    .map_err(|e| ConfigError::invalid("session.token_key_file", e.to_string()))?;
                if bytes.len() < 32 {
                    return Err(ConfigError::invalid(
                        "session.token_key_file",
                        "needs at least 32 bytes of key material",
                    ));
                }
                Some(bytes)
            }
        };
        let session = SessionConfig {
            access_ttl: duration("session.access_ttl", s.access_ttl, "15m")?,
            lifetime: duration("session.lifetime", s.lifetime, "12h")?,
            idle_timeout: s
                .idle_timeout
                .map(|t| duration("session.idle_timeout", Some(t), "0s"))
                .transpose()?,
            login_state_ttl: duration("session.login_state_ttl", s.login_state_ttl, "2m")?,
            cookie_secure: s.cookie_secure.unwrap_or(true),
            cookie_domain: s.cookie_domain,
            cookie_path: s.cookie_path.unwrap_or_else(|| "/".into()),
            cookie_same_site: same_site,
            host_prefix: s.host_prefix.unwrap_or(false),
            token_cache_entries: s.token_cache_entries.unwrap_or(100_000).max(16),
            token_key,
            max_per_user: match s.max_per_user {
                Some(0) => {
                    return Err(ConfigError::invalid(
                        "session.max_per_user",
                        "must be at least 1",
                    ))
                }
                Some(n) => n,
                None => 10,
            },
            outage_grace: duration("session.outage_grace", s.outage_grace, "30s")?,
            sliding_lifetime: s.sliding_lifetime.unwrap_or(false),
            refresh_grace: refresh_grace(s.refresh_grace)?,
            invalid_refresh_wipes_cookies: s.invalid_refresh_wipes_cookies.unwrap_or(false),
        };
        if session.host_prefix
            && (!session.cookie_secure
                || session.cookie_domain.is_some()
                || session.cookie_path != "/")
        {
            return Err(ConfigError::invalid(
                "session.host_prefix",
                "`__Host-` cookies need cookie_secure = true, no cookie_domain and cookie_path \
                 \"/\"",
            ));
        }
        if session.lifetime < session.access_ttl {
            return Err(ConfigError::invalid(
                "session.lifetime",
                "must be at least session.access_ttl",
            ));
        }

        let store = raw.store.ok_or_else(|| {
            ConfigError::invalid(
                "store",
                "missing: add a [store] section (or set REDIS_HOSTS)",
            )
        })?;
        let store = stores::validate_store(store, &resolve)?;
        let users = raw.users.ok_or_else(|| {
            ConfigError::invalid(
                "users",
                "missing: add a [users] section (or set USERS_CRUD_BASE_URL)",
            )
        })?;
        let users = stores::validate_users(users, &store, &resolve)?;

        let headers = validate_headers(raw.headers)?;
        let log = LogConfig {
            json: match raw.log.format.as_deref().unwrap_or("plain") {
                "plain" => false,
                "json" => true,
                other => {
                    return Err(ConfigError::invalid(
                        "log.format",
                        format!("`{other}` is not one of plain, json"),
                    ))
                }
            },
            level: raw.log.level.unwrap_or_else(|| "info".into()),
        };

        let mut apps = BTreeMap::new();
        for (id, app) in raw.apps {
            let app = validate_app(&id, app, &resolve, session.host_prefix)?;
            apps.insert(id.clone(), Arc::new(app));
        }
        let mut notices = Notices::default();
        if let Some(file) = &raw.mia_config {
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
                let app = validate_app(&id, app, &resolve, session.host_prefix)
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
        let default_app = match raw.server.default_app {
            Some(id) if apps.contains_key(&id) => Some(id),
            Some(id) => {
                return Err(ConfigError::invalid(
                    "server.default_app",
                    format!("no app named `{id}`"),
                ))
            }
            None if apps.len() == 1 => apps.keys().next().cloned(),
            None => None,
        };

        let policy_key = if raw.mia_auth.is_some() {
            "mia_auth"
        } else {
            "authorization.routes"
        };
        let policy = crate::policy::RouteTable::build_with(
            raw.mia_auth.as_deref().map(resolve).as_deref(),
            &raw.authorization.routes,
            crate::policy::Matching {
                strict: raw.authorization.strict.unwrap_or(true),
                case_insensitive: raw.authorization.case_insensitive.unwrap_or(false),
            },
        )
        .map_err(|e| ConfigError::invalid(policy_key, e.to_string()))?;

        let tls = crate::tls::validate(raw.tls, &resolve)?;
        for (client, trust) in [
            ("idp", &tls.idp),
            ("crud", &tls.crud),
            ("redis", &tls.redis),
        ] {
            if !trust.is_default() {
                notices
                    .infos
                    .push(format!("tls.{client}: trusting {}", trust.describe()));
            }
        }

        let (api_keys, key_notices) = api_keys::validate(&raw.api_keys, &resolve)?;
        notices.warnings.extend(key_notices);
        if !api_keys.is_empty() {
            notices.infos.push(format!(
                "{} API key(s) configured: /auth reads the `client-key` and `secret` headers and \
                 the `mia_client_key` cookie, and refuses a request whose key is not one of them",
                api_keys.len()
            ));
        }

        Ok(Self {
            tls,
            notices,
            policy,
            api_keys,
            server: ServerConfig {
                default_app,
                ..server
            },
            jwt: JwtConfig {
                signing,
                verification,
            },
            session,
            store,
            users,
            headers,
            log,
            apps,
        })
    }
}

fn validate_app(
    id: &str,
    app: raw::RawApp,
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
    Ok(AppConfig {
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
    })
}

fn validate_headers(raw: raw::RawHeaders) -> Result<crate::headers::IdentityHeaders, ConfigError> {
    use crate::headers::{Field, OAUTH2_PROXY_PROFILE};
    use http::HeaderName;
    let extra: Vec<(HeaderName, Field)> =
        match (raw.profile.as_deref().unwrap_or("mia"), raw.custom) {
            ("mia", None) => Vec::new(),
            ("oauth2-proxy", None) => OAUTH2_PROXY_PROFILE
                .iter()
                .map(|(n, f)| (HeaderName::from_static(n), *f))
                .collect(),
            ("custom", Some(map)) => {
                let mut out = Vec::new();
                for (field, name) in map {
                    let f = Field::parse(&field).ok_or_else(|| {
                        ConfigError::invalid(
                            format!("headers.custom.{field}"),
                            "not one of user_id, email, name, username, groups, user_properties",
                        )
                    })?;
                    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        ConfigError::invalid(
                            format!("headers.custom.{field}"),
                            format!("`{name}` is not a header name"),
                        )
                    })?;
                    out.push((n, f));
                }
                out
            }
            ("custom", None) => {
                return Err(ConfigError::invalid(
                    "headers.custom",
                    "profile = \"custom\" needs [headers.custom]",
                ))
            }
            (_, Some(_)) => {
                return Err(ConfigError::invalid(
                    "headers.custom",
                    "only with profile = \"custom\"",
                ))
            }
            (other, None) => {
                return Err(ConfigError::invalid(
                    "headers.profile",
                    format!("`{other}` is not one of mia, oauth2-proxy, custom"),
                ))
            }
        };
    Ok(crate::headers::IdentityHeaders {
        user_properties: raw
            .user_properties
            .unwrap_or_else(|| vec!["name".into(), "email".into()]),
        extra,
        pass_token: raw.pass_token.unwrap_or(false),
        max_value_bytes: raw.max_value_bytes.unwrap_or(4096).max(64),
    })
}

fn duration(key: &str, value: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let text = value.as_deref().unwrap_or(default);
    let d = humantime::parse_duration(text)
        .map_err(|e| ConfigError::invalid(key, format!("`{text}`: {e} (e.g. \"15m\", \"12h\")")))?;
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "must be longer than zero"));
    }
    Ok(d)
}

/// `session.refresh_grace`: zero turns it off; more than [`MAX_REFRESH_GRACE`] is refused (a
/// refresh token stolen and replayed inside the window revokes nothing).
fn refresh_grace(value: Option<String>) -> Result<Duration, ConfigError> {
    const KEY: &str = "session.refresh_grace";
    let text = value.as_deref().unwrap_or("5s");
    let d = humantime::parse_duration(text)
        .map_err(|e| ConfigError::invalid(KEY, format!("`{text}`: {e} (e.g. \"5s\", \"0s\")")))?;
    if d > MAX_REFRESH_GRACE {
        return Err(ConfigError::invalid(
            KEY,
            "at most 60s: within the window a replayed refresh token does not revoke the session",
        ));
    }
    Ok(d)
}

/// Longest `session.refresh_grace` accepted.
pub const MAX_REFRESH_GRACE: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests;
