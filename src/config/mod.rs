//! Configuration in two phases: [`raw`] parses the TOML as written, [`Config::from_raw`] checks
//! it and turns it into typed values (durations, networks, URLs, loaded keys). `idgate
//! check-config` runs exactly this path, so a config it accepts is one `serve` starts with.
//!
//! Relative file paths resolve against the config file's folder, so a config and its keys can
//! move together.
//!
//! Two compatibility inputs join the TOML: the original services' environment variables
//! ([`mod@env`], applied first and winning over the TOML) and the Mia authentication service's
//! configuration JSON ([`mia`], named by `mia_config`), whose apps join `[apps]`.

mod api_keys;
pub mod api_tokens;
mod app_cookies;
mod apps;
mod audit;
mod authorization;
pub mod env;
mod headers;
mod jwt;
mod limits;
mod log;
pub(crate) mod mia;
pub mod pages;
mod providers;
mod raw;
mod server;
mod session;
mod stores;
mod telemetry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use api_tokens::{AudienceConfig, IntrospectionConfig, MachineIdentity};
pub use app_cookies::{CookieAttributes, CookieOverride};
pub use apps::{AppConfig, TokenClaims};
pub use audit::{AuditConfig, AuditTarget, DEFAULT_AUDIT_QUEUE};
pub use env::{Env, EnvReport, ProcessEnv};
pub use jwt::JwtConfig;
pub use limits::{LoginLimitsConfig, Rate};
pub use log::LogConfig;
pub use providers::client_key::ClientKey;
pub use providers::LogoutTarget;
pub use providers::{
    AuthMethod, OAuth2Endpoints, ParMode, Protocol, ProviderConfig, ProviderKind, UserKeys,
};
pub use raw::RawConfig;
pub use server::{ListenAddr, ServerConfig, SocketPerms};
pub use session::{SessionConfig, MAX_REFRESH_GRACE};
pub use stores::{CrudConfig, MongoConfig, RedisConfig, RedisMode, StoreConfig, UsersConfig};
pub use stores::{InactiveUsers, CRUD_DEFAULT_FIELDS, CRUD_FIELDS};
pub use telemetry::TelemetryConfig;

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
    /// `[users] refresh_interval`: how often the records of the users with live sessions here
    /// are read again, so that a change of their groups reaches `/auth` (see `session::refresh`).
    pub users_refresh_interval: Duration,
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
    /// The audit trail (`[audit]`, see `audit`); `None`: off.
    pub audit: Option<AuditConfig>,
    /// `[pages]`: templates that replace built-in pages.
    pub pages: pages::PagesConfig,
    /// `[login_limits]`: the rate limits on the login endpoints.
    pub login_limits: LoginLimitsConfig,
    /// `[telemetry]`: OpenTelemetry traces; `None`: off.
    pub telemetry: Option<TelemetryConfig>,
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

    /// Each section validates itself, in the order of this list (so of two mistakes, the same
    /// one is always reported); the checks across sections are the named calls between them.
    fn validate(raw: RawConfig, dir: &Path) -> Result<Self, ConfigError> {
        let resolve = |p: &Path| resolve_in(dir, p);
        let mut notices = Notices::default();

        let server = server::validate(&raw.server, &resolve)?;
        let jwt = jwt::validate(raw.jwt, &resolve)?;
        let session = session::validate(raw.session, &resolve)?;
        let (store, users, users_refresh_interval) =
            stores::validate(raw.store, raw.users, &resolve)?;
        let headers = headers::validate(raw.headers)?;
        let log = log::validate(raw.log)?;
        let audit = audit::validate(raw.audit, &resolve)?;
        let pages = pages::validate(raw.pages, &resolve)?;
        let login_limits = limits::validate(raw.login_limits)?;
        let telemetry = telemetry::validate(raw.telemetry)?;
        let apps = apps::validate(
            raw.apps,
            raw.mia_config.as_deref(),
            &resolve,
            session.host_prefix,
            &mut notices,
        )?;
        let default_app = default_app(raw.server.default_app, &apps)?;
        let policy =
            authorization::validate(&raw.authorization, raw.mia_auth.as_deref(), &resolve)?;
        let tls = crate::tls::validate(raw.tls, &resolve)?;
        notices.infos.extend(trust_notices(&tls));
        let (api_keys, key_warnings) = api_keys::validate(&raw.api_keys, &resolve)?;
        notices.warnings.extend(key_warnings);
        notices.infos.extend(api_keys::summary(&api_keys));

        Ok(Self {
            audit,
            pages,
            login_limits,
            telemetry,
            tls,
            notices,
            policy,
            api_keys,
            server: ServerConfig {
                default_app,
                ..server
            },
            jwt,
            session,
            store,
            users,
            users_refresh_interval,
            headers,
            log,
            apps,
        })
    }
}

/// `path` as given when absolute, else under `dir` (the config file's folder).
fn resolve_in(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        dir.join(path)
    }
}

/// `server.default_app`, checked against the apps: the one named, which must exist, or the only
/// app; with several apps and none named, anonymous browsers get no default.
fn default_app(
    named: Option<String>,
    apps: &BTreeMap<String, Arc<AppConfig>>,
) -> Result<Option<String>, ConfigError> {
    match named {
        Some(id) if apps.contains_key(&id) => Ok(Some(id)),
        Some(id) => Err(ConfigError::invalid(
            "server.default_app",
            format!("no app named `{id}`"),
        )),
        None if apps.len() == 1 => Ok(apps.keys().next().cloned()),
        None => Ok(None),
    }
}

/// One startup line for each outbound TLS client that trusts more, or other, than the built-in
/// roots.
fn trust_notices(tls: &crate::tls::TlsConfig) -> Vec<String> {
    [
        ("idp", &tls.idp),
        ("crud", &tls.crud),
        ("redis", &tls.redis),
    ]
    .into_iter()
    .filter(|(_, trust)| !trust.is_default())
    .map(|(client, trust)| format!("tls.{client}: trusting {}", trust.describe()))
    .collect()
}

/// `key` as a duration (`"15m"`, `"12h"`), `default` when unset; zero is refused.
fn duration(key: &str, value: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let text = value.as_deref().unwrap_or(default);
    let d = humantime::parse_duration(text)
        .map_err(|e| ConfigError::invalid(key, format!("`{text}`: {e} (e.g. \"15m\", \"12h\")")))?;
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
