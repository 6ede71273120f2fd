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
//!
//! Here: the [`Env`] trait, the report, the variables of headers, authorization, logging and
//! the Mia files; `storage.rs` has the backends' (users, Redis, CAs), `sessions.rs` the
//! session tokens'.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

mod sessions;
mod storage;

use super::raw::RawConfig;
use super::ConfigError;
use sessions::{apply_jwt, apply_session};
use storage::{apply_redis, apply_tls, apply_users};

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
