//! The original services' environment variables, read under their own names so a project can
//! bring its deployment environment along (`USERS_CRUD_BASE_URL`, `REDIS_HOSTS`,
//! `MIA_JWT_TOKEN_*`, `USER_PROPERTIES_TO_PROXY`, …; the full table is in `docs/migrating.md`).
//!
//! They are applied to the parsed TOML before validation and **win over it**, as an operator
//! moving a deployment over expects: the variables that configured the old services configure
//! idgate. Every variable that had a meaning for the original services is recognised; the ones
//! idgate has no use for (its Nginx snippets already do their job, or the feature works
//! differently) are reported as "recognised, no effect" instead of being silently ignored.
//!
//! The environment is read through the small [`Env`] trait, so tests pass a map and never touch
//! the process environment. Nothing here logs: tracing is not set up while the config loads, so
//! the names used go into an [`EnvReport`] that `serve` logs (names only, never values) and
//! `check-config` prints.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::raw::{RawConfig, RawJwt, RawStore, RawUsers};
use super::ConfigError;

/// Where environment variables come from.
pub trait Env {
    /// The value of `name`; an empty value counts as unset (as orchestrators often leave them).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

impl Env for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| (*v).to_owned())
    }
}

/// Which variables were applied, and which were recognised but have no effect (and why).
#[derive(Debug, Clone, Default)]
pub struct EnvReport {
    pub used: Vec<&'static str>,
    pub no_effect: Vec<(&'static str, &'static str)>,
    /// Config key → the variable that set it, so a validation error can name the variable.
    origins: Vec<(&'static str, &'static str)>,
}

impl EnvReport {
    fn used(&mut self, name: &'static str, key: &'static str) {
        self.used.push(name);
        self.origins.push((key, name));
    }

    fn no_effect(&mut self, name: &'static str, why: &'static str) {
        self.no_effect.push((name, why));
    }

    /// Names the variable behind the key of a validation error: `store.urls (from REDIS_HOSTS)`.
    pub fn attribute(&self, err: ConfigError) -> ConfigError {
        match err {
            ConfigError::Invalid { key, message } => {
                let origin = self.origins.iter().rev().find(|(k, _)| {
                    key == *k || key.strip_prefix(k).is_some_and(|r| r.starts_with('.'))
                });
                match origin {
                    Some((_, name)) => ConfigError::Invalid {
                        key: format!("{key} (from {name})"),
                        message,
                    },
                    None => ConfigError::Invalid { key, message },
                }
            }
            other => other,
        }
    }

    /// The startup log lines: names only, never values.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.used.is_empty() {
            lines.push(format!(
                "environment variables of the original services applied: {}",
                self.used.join(", ")
            ));
        }
        if !self.no_effect.is_empty() {
            let list: Vec<String> = self
                .no_effect
                .iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect();
            lines.push(format!("recognised, no effect: {}", list.join("; ")));
        }
        lines
    }
}

/// Variables the original services read that idgate recognises but does not need.
const NO_EFFECT: &[(&str, &str)] = &[
    ("HTTP_PORT", "idgate listens where [server] listen says"),
    ("SERVICE_PREFIX", "idgate's paths are fixed; Nginx routes them"),
    ("SERVICE_VERSION", "not needed"),
    ("DELAY_SHUTDOWN_SECONDS", "see [server] shutdown_grace"),
    ("ORIGINAL_PROTOCOL_HEADER", "the Nginx snippet sends X-Forwarded-Proto"),
    ("ADDITIONAL_HEADERS_TO_PROXY", "fixed headers for the CRUD service go in [users] headers"),
    ("PROVIDER_TOKEN_PASS_PHRASE", "the IdP tokens are encrypted with [session] token_key_file, or a key derived from the signing key"),
    ("EXPIRE_DELTA_PROVIDER_TOKEN_SEC", "not needed"),
    ("EXPOSE_METRICS", "idgate's metrics are not configured through it"),
    ("NAMESPACED_METRICS_PREFIX", "idgate's metric names are fixed"),
    ("HEADERS_TO_PROXY", "idgate reads the session from the request Nginx hands it"),
    ("AUTHORIZATION_HEADERS_TO_PROXY", "idgate reads the sid cookie and Authorization: Bearer itself"),
    ("USERINFO_URL", "idgate verifies the session itself"),
    ("BACKOFFICE_USERINFO_URL", "idgate verifies the session itself"),
    ("CUSTOM_USER_ID_KEY", "mia-userid is always the token's user.userId"),
    ("CUSTOM_PERMISSIONS_KEY", "permissions come from the users collection's `permissions`"),
    ("USERID_HEADER_KEY", "read only with TRUST_MIA_USER_HEADERS, which idgate refuses"),
    ("GROUPS_HEADER_KEY", "read only with TRUST_MIA_USER_HEADERS, which idgate refuses"),
    ("USER_PROPERTIES_HEADER_KEY", "read only with TRUST_MIA_USER_HEADERS, which idgate refuses"),
];

/// The header names Mia's authorization service read the backoffice flag and the client type
/// under, with their defaults. idgate's snippets hand both to idgate and to the upstream under
/// the default names (`proxy_set_header` needs a literal name): the default is applied as is,
/// another name stops startup saying where to change it.
const HEADER_KEYS: &[(&str, &str)] = &[
    ("BACKOFFICE_HEADER_KEY", "isbackoffice"),
    ("CLIENT_TYPE_HEADER_KEY", "client-type"),
];

/// Applies the original services' variables to `raw`; `dir` is where relative paths resolve.
pub fn apply(raw: &mut RawConfig, env: &dyn Env, dir: &Path) -> Result<EnvReport, ConfigError> {
    let mut report = EnvReport::default();
    apply_users(raw, env, &mut report);
    apply_redis(raw, env, &mut report)?;
    apply_jwt(raw, env, dir, &mut report)?;
    apply_session(raw, env, &mut report)?;
    apply_authorization(raw, env, &mut report)?;
    apply_files(raw, env, dir, &mut report);
    apply_header_keys(env, &mut report)?;
    apply_tls(raw, env, &mut report)?;
    if let Some(level) = env.var("LOG_LEVEL") {
        raw.log.level = Some(log_level(&level)?);
        report.used("LOG_LEVEL", "log.level");
    }
    for (name, why) in NO_EFFECT {
        if env.var(name).is_some() {
            report.no_effect(name, why);
        }
    }
    Ok(report)
}

/// `BACKOFFICE_HEADER_KEY`, `CLIENT_TYPE_HEADER_KEY` (applied when they keep the default name,
/// refused otherwise) and `TRUST_MIA_USER_HEADERS` (refused when true: idgate never takes an
/// identity from request headers).
fn apply_header_keys(env: &dyn Env, report: &mut EnvReport) -> Result<(), ConfigError> {
    for (name, default) in HEADER_KEYS {
        let Some(value) = env.var(name) else {
            continue;
        };
        if !value.trim().eq_ignore_ascii_case(default) {
            return Err(ConfigError::invalid(
                *name,
                format!(
                    "idgate's Nginx snippets pass this header as `{default}`; to give the \
                     upstream another name, change the `proxy_set_header {default}` line of your \
                     copy of idgate-protect.conf and unset {name}"
                ),
            ));
        }
        report.used(name, "nginx snippets");
    }
    if bool_var(env, "TRUST_MIA_USER_HEADERS")? == Some(true) {
        return Err(ConfigError::invalid(
            "TRUST_MIA_USER_HEADERS",
            "idgate never takes the user from request headers (anyone can send them); it \
             verifies the session itself: unset it, or set it to false",
        ));
    }
    if env.var("TRUST_MIA_USER_HEADERS").is_some() {
        report.no_effect(
            "TRUST_MIA_USER_HEADERS",
            "false: the session is verified, as idgate always does",
        );
    }
    Ok(())
}

fn apply_users(raw: &mut RawConfig, env: &dyn Env, report: &mut EnvReport) {
    let Some(url) = env.var("USERS_CRUD_BASE_URL") else {
        return;
    };
    match &mut raw.users {
        Some(RawUsers::Crud { base_url, .. }) => *base_url = url,
        other => {
            *other = Some(RawUsers::Crud {
                base_url: url,
                headers: BTreeMap::new(),
                timeout: None,
                fields: None,
                inactive_users: None,
            })
        }
    }
    report.used("USERS_CRUD_BASE_URL", "users.base_url");
}

fn apply_redis(
    raw: &mut RawConfig,
    env: &dyn Env,
    report: &mut EnvReport,
) -> Result<(), ConfigError> {
    let hosts = match env.var("REDIS_HOSTS") {
        Some(h) => Some(("REDIS_HOSTS", h)),
        None => env.var("REDIS_HOST").map(|h| ("REDIS_HOST", h)),
    };
    let tls = bool_var(env, "REDIS_TLS")?;
    let env_mode = match env.var("REDIS_MODE").as_deref() {
        None => None,
        Some("normal" | "standalone") => Some("standalone"),
        Some("sentinel") => Some("sentinel"),
        Some("cluster") => Some("cluster"),
        Some(other) => {
            return Err(ConfigError::invalid(
                "REDIS_MODE",
                format!("`{other}` is not one of normal, sentinel (or cluster)"),
            ))
        }
    };
    let urls = match &hosts {
        Some((name, list)) => {
            let urls = redis_urls(list, tls.unwrap_or(false));
            if urls.is_empty() {
                return Err(ConfigError::invalid(*name, "lists no host"));
            }
            if !matches!(raw.store, Some(RawStore::Redis { .. })) {
                raw.store = Some(RawStore::Redis {
                    mode: None,
                    urls: Vec::new(),
                    master_name: None,
                    scope: None,
                    username: None,
                    password: None,
                    password_file: None,
                    pool_size: None,
                });
            }
            Some((*name, urls))
        }
        None => None,
    };
    let scope = match env.var("REDIS_SESSIONS_SCOPE") {
        Some(s) => Some(("REDIS_SESSIONS_SCOPE", s)),
        None => env
            .var("REDIS_SESSION_SCOPE")
            .map(|s| ("REDIS_SESSION_SCOPE", s)),
    };
    let Some(RawStore::Redis {
        mode,
        urls: store_urls,
        master_name,
        scope: store_scope,
        username,
        password,
        password_file,
        ..
    }) = &mut raw.store
    else {
        for name in [
            "REDIS_MODE",
            "REDIS_MASTER_NAME",
            "REDIS_USERNAME",
            "REDIS_PASSWORD",
            "REDIS_TLS",
            "REDIS_SESSIONS_SCOPE",
            "REDIS_SESSION_SCOPE",
        ] {
            if env.var(name).is_some() {
                report.no_effect(name, "[store] is not Redis (REDIS_HOSTS selects it)");
            }
        }
        return Ok(());
    };
    if let Some((name, urls)) = urls {
        *store_urls = urls;
        report.used(name, "store.urls");
    } else if tls.is_some() {
        report.no_effect(
            "REDIS_TLS",
            "applies to REDIS_HOSTS entries; write rediss:// URLs in [store] urls",
        );
    }
    if let Some(m) = env_mode {
        *mode = Some(m.to_owned());
        report.used("REDIS_MODE", "store.mode");
    }
    if let Some(v) = env.var("REDIS_MASTER_NAME") {
        *master_name = Some(v);
        report.used("REDIS_MASTER_NAME", "store.master_name");
    }
    if let Some(v) = env.var("REDIS_USERNAME") {
        *username = Some(v);
        report.used("REDIS_USERNAME", "store.username");
    }
    if let Some(v) = env.var("REDIS_PASSWORD") {
        *password = Some(v);
        *password_file = None;
        report.used("REDIS_PASSWORD", "store.password");
    }
    if let Some((name, v)) = scope {
        *store_scope = Some(v);
        report.used(name, "store.scope");
    }
    Ok(())
}

/// `host:port` entries become `redis://host:port` (`rediss://` with `REDIS_TLS`); entries
/// already written as URLs (`redis://user:pass@host:6379/0`) are kept as they are.
fn redis_urls(list: &str, tls: bool) -> Vec<String> {
    let scheme = if tls { "rediss" } else { "redis" };
    list.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains("://") {
                h.to_owned()
            } else {
                format!("{scheme}://{h}")
            }
        })
        .collect()
}

fn apply_jwt(
    raw: &mut RawConfig,
    env: &dyn Env,
    dir: &Path,
    report: &mut EnvReport,
) -> Result<(), ConfigError> {
    if env.var("MIA_JWT_TOKEN_PRIVATE_KEY_PASSWORD").is_some() {
        return Err(ConfigError::invalid(
            "MIA_JWT_TOKEN_PRIVATE_KEY_PASSWORD",
            "password-protected keys are not supported: decrypt the key once \
             (openssl pkey -in key.pem -out plain.pem) and protect the file's permissions instead",
        ));
    }
    let method = env.var("MIA_JWT_TOKEN_SIGNING_METHOD");
    let key_file = env.var("MIA_JWT_TOKEN_PRIVATE_KEY_FILE_PATH");
    let kid = env.var("MIA_JWT_TOKEN_PRIVATE_KEY_KID");
    let sign_key = env.var("MIA_JWT_TOKEN_SIGN_KEY");
    if method.is_none() && key_file.is_none() && kid.is_none() && sign_key.is_none() {
        return Ok(());
    }
    // Without a [jwt] section, the original's default: HS256, or RS256 when a key file is named.
    let jwt = raw.jwt.get_or_insert_with(|| RawJwt {
        algorithm: if key_file.is_some() { "RS256" } else { "HS256" }.into(),
        private_key_file: None,
        key_id: "mia".into(),
        verification_keys: Vec::new(),
        secret: None,
    });
    if let Some(m) = method {
        jwt.algorithm = m.to_ascii_uppercase();
        report.used("MIA_JWT_TOKEN_SIGNING_METHOD", "jwt.algorithm");
    }
    if let Some(f) = key_file {
        jwt.private_key_file = Some(key_path(&f, dir));
        jwt.secret = None;
        report.used(
            "MIA_JWT_TOKEN_PRIVATE_KEY_FILE_PATH",
            "jwt.private_key_file",
        );
    }
    if let Some(k) = kid {
        jwt.key_id = k;
        report.used("MIA_JWT_TOKEN_PRIVATE_KEY_KID", "jwt.key_id");
    }
    if let Some(secret) = sign_key {
        if jwt.algorithm == "HS256" {
            jwt.secret = Some(crate::crypto::Secret::new(secret));
            report.used("MIA_JWT_TOKEN_SIGN_KEY", "jwt.secret");
        } else {
            report.no_effect(
                "MIA_JWT_TOKEN_SIGN_KEY",
                "the signing algorithm is not HS256",
            );
        }
    }
    Ok(())
}

/// The original documents the key path both with and without its extension: take the path as
/// written when it exists, else the same path with `.pem`.
fn key_path(value: &str, dir: &Path) -> PathBuf {
    let written = PathBuf::from(value);
    let resolved = if written.is_absolute() {
        written.clone()
    } else {
        dir.join(&written)
    };
    let with_pem = PathBuf::from(format!("{value}.pem"));
    let resolved_pem = dir.join(&with_pem);
    if !resolved.exists() && resolved_pem.exists() {
        with_pem
    } else {
        written
    }
}

fn apply_session(
    raw: &mut RawConfig,
    env: &dyn Env,
    report: &mut EnvReport,
) -> Result<(), ConfigError> {
    if let Some(n) = number_var(env, "MIA_JWT_TOKEN_VALID_DURATION_SEC")? {
        raw.session.access_ttl = Some(format!("{n}s"));
        report.used("MIA_JWT_TOKEN_VALID_DURATION_SEC", "session.access_ttl");
    }
    if let Some(n) = number_var(env, "MIA_REFRESH_TOKEN_VALID_DURATION_SEC")? {
        raw.session.lifetime = Some(format!("{n}s"));
        // Mia gives every refresh token it issues (at login and at each refresh) this lifetime:
        // a session lives as long as it is refreshed in time.
        raw.session.sliding_lifetime = Some(true);
        report.used("MIA_REFRESH_TOKEN_VALID_DURATION_SEC", "session.lifetime");
    }
    if let Some(wipe) = bool_var(env, "INVALID_REFRESH_TOKEN_WIPES_COOKIES")? {
        raw.session.invalid_refresh_wipes_cookies = Some(wipe);
        report.used(
            "INVALID_REFRESH_TOKEN_WIPES_COOKIES",
            "session.invalid_refresh_wipes_cookies",
        );
    }
    if let Some(n) = number_var(env, "STATE_MANAGER_EXPIRATION_TIME_MINUTES")? {
        raw.session.login_state_ttl = Some(format!("{n}m"));
        report.used(
            "STATE_MANAGER_EXPIRATION_TIME_MINUTES",
            "session.login_state_ttl",
        );
    }
    if let Some(n) = number_var(env, "STORED_ACCESS_TOKEN_NUMBER")? {
        raw.session.max_per_user = Some(n as usize);
        report.used("STORED_ACCESS_TOKEN_NUMBER", "session.max_per_user");
    }
    Ok(())
}

fn apply_authorization(
    raw: &mut RawConfig,
    env: &dyn Env,
    report: &mut EnvReport,
) -> Result<(), ConfigError> {
    if let Some(list) = env.var("USER_PROPERTIES_TO_PROXY") {
        raw.headers.user_properties = Some(
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        );
        report.used("USER_PROPERTIES_TO_PROXY", "headers.user_properties");
    }
    if let Some(strict) = bool_var(env, "AUTHORIZATION_STRICT_MODE_ENABLED")? {
        raw.authorization.strict = Some(strict);
        report.used("AUTHORIZATION_STRICT_MODE_ENABLED", "authorization.strict");
    }
    Ok(())
}

/// `CONFIG_FILE_PATH` + `CONFIG_FILE_NAME` (authentication service, name without `.json`) name
/// `mia_config`; `CONFIGURATION_PATH` + `CONFIGURATION_FILE_NAME` (authorization service) name
/// `mia_auth`.
fn apply_files(raw: &mut RawConfig, env: &dyn Env, dir: &Path, report: &mut EnvReport) {
    match (env.var("CONFIG_FILE_PATH"), env.var("CONFIG_FILE_NAME")) {
        (Some(folder), Some(name)) => {
            let name = if name.ends_with(".json") {
                name
            } else {
                format!("{name}.json")
            };
            raw.mia_config = Some(Path::new(&folder).join(name));
            report.used("CONFIG_FILE_PATH", "mia_config");
            report.used("CONFIG_FILE_NAME", "mia_config");
        }
        (Some(_), None) => report.no_effect("CONFIG_FILE_PATH", "needs CONFIG_FILE_NAME too"),
        (None, Some(_)) => report.no_effect("CONFIG_FILE_NAME", "needs CONFIG_FILE_PATH too"),
        (None, None) => {}
    }
    match (
        env.var("CONFIGURATION_PATH"),
        env.var("CONFIGURATION_FILE_NAME"),
    ) {
        (Some(folder), Some(name)) => {
            let mut path = Path::new(&folder).join(&name);
            let exists = |p: &Path| {
                if p.is_absolute() {
                    p.exists()
                } else {
                    dir.join(p).exists()
                }
            };
            if !exists(&path) && Path::new(&name).extension().is_none() {
                path = Path::new(&folder).join(format!("{name}.json"));
            }
            raw.mia_auth = Some(path);
            report.used("CONFIGURATION_PATH", "mia_auth");
            report.used("CONFIGURATION_FILE_NAME", "mia_auth");
        }
        (Some(_), None) => {
            report.no_effect("CONFIGURATION_PATH", "needs CONFIGURATION_FILE_NAME too")
        }
        (None, Some(_)) => {
            report.no_effect("CONFIGURATION_FILE_NAME", "needs CONFIGURATION_PATH too")
        }
        (None, None) => {}
    }
}

fn bool_var(env: &dyn Env, name: &'static str) -> Result<Option<bool>, ConfigError> {
    match env.var(name) {
        None => Ok(None),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(ConfigError::invalid(
                name,
                format!("`{v}` is not true or false"),
            )),
        },
    }
}

fn number_var(env: &dyn Env, name: &'static str) -> Result<Option<u64>, ConfigError> {
    match env.var(name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(ConfigError::invalid(
                name,
                format!("`{v}` is not a whole number above zero"),
            )),
        },
    }
}

/// The original's levels (pino's) as a tracing filter.
fn log_level(value: &str) -> Result<String, ConfigError> {
    let level = match value.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" => "warn",
        "error" | "fatal" => "error",
        "silent" => "off",
        other => {
            return Err(ConfigError::invalid(
                "LOG_LEVEL",
                format!("`{other}` is not one of trace, debug, info, warn, error, fatal, silent"),
            ))
        }
    };
    Ok(level.to_owned())
}

#[cfg(test)]
mod tests;

/// The private CAs: `ADDITIONALS_CA_FOLDER` (the identity providers' CA folder) becomes
/// `[tls.idp] ca_dirs`, added to the built-in roots as its name says; `REDIS_TLS_CACERT` (the
/// Redis server's CA, effective with `REDIS_TLS=true` only, as the original documents) becomes
/// `[tls.redis] ca_files` with the built-in roots off: a TLS client given a CA trusts that CA
/// instead of the public ones (Node's `ca` option, which the original service is built on).
/// `ADDITIONAL_CA_FOLDER`, without the S, is read as a fallback spelling of the first.
fn apply_tls(
    raw: &mut RawConfig,
    env: &dyn Env,
    report: &mut EnvReport,
) -> Result<(), ConfigError> {
    let folder = match env.var("ADDITIONALS_CA_FOLDER") {
        Some(f) => Some(("ADDITIONALS_CA_FOLDER", f)),
        None => env
            .var("ADDITIONAL_CA_FOLDER")
            .map(|f| ("ADDITIONAL_CA_FOLDER", f)),
    };
    if let Some((name, folder)) = folder {
        let idp = raw.tls.idp.get_or_insert_with(Default::default);
        idp.ca_dirs = Some(vec![PathBuf::from(folder)]);
        report.used(name, "tls.idp.ca_dirs");
    }
    if let Some(file) = env.var("REDIS_TLS_CACERT") {
        let redis_tls = bool_var(env, "REDIS_TLS")?.unwrap_or(false);
        let redis_store = matches!(raw.store, Some(RawStore::Redis { .. }));
        if redis_tls && redis_store {
            let redis = raw.tls.redis.get_or_insert_with(Default::default);
            redis.ca_files = Some(vec![PathBuf::from(file)]);
            redis.builtin_roots = Some(false);
            report.used("REDIS_TLS_CACERT", "tls.redis.ca_files");
        } else if redis_store {
            report.no_effect(
                "REDIS_TLS_CACERT",
                "effective only with REDIS_TLS=true, as in the original service",
            );
        } else {
            report.no_effect(
                "REDIS_TLS_CACERT",
                "[store] is not Redis (REDIS_HOSTS selects it)",
            );
        }
    }
    Ok(())
}
