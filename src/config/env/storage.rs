//! The variables that point idgate at its backends, as they did the original services: the users
//! CRUD service (`USERS_CRUD_BASE_URL`), Redis (`REDIS_HOSTS`, `REDIS_MODE`, credentials, scope,
//! `REDIS_TLS`), and the private CAs those connections and the IdPs' trust.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{bool_var, Env, EnvReport};
use crate::config::raw::{RawConfig, RawStore, RawUsers};
use crate::config::ConfigError;

pub(super) fn apply_users(raw: &mut RawConfig, env: &dyn Env, report: &mut EnvReport) {
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
                refresh_interval: None,
            })
        }
    }
    report.used("USERS_CRUD_BASE_URL", "users.base_url");
}

pub(super) fn apply_redis(
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

/// The private CAs: `ADDITIONALS_CA_FOLDER` (the identity providers' CA folder) becomes
/// `[tls.idp] ca_dirs`, added to the built-in roots as its name says; `REDIS_TLS_CACERT` (the
/// Redis server's CA, effective with `REDIS_TLS=true` only, as the original documents) becomes
/// `[tls.redis] ca_files` with the built-in roots off: a TLS client given a CA trusts that CA
/// instead of the public ones (Node's `ca` option, which the original service is built on).
/// `ADDITIONAL_CA_FOLDER`, without the S, is read as a fallback spelling of the first.
pub(super) fn apply_tls(
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
