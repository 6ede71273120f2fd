//! The storage sections of the config: `[store]` (login states and sessions: embedded SQLite,
//! or Redis standalone/Sentinel/Cluster) and `[users]` (embedded, a MongoDB collection, or a CRUD
//! HTTP service), validated into typed values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::{duration, raw, ConfigError};

#[derive(Debug, Clone)]
pub enum StoreConfig {
    Embedded { path: PathBuf },
    Redis(RedisConfig),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    Standalone,
    Sentinel,
    Cluster,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub mode: RedisMode,
    /// Validated `redis://` / `rediss://` URLs, or in standalone mode a unix socket's
    /// (`unix://`, `redis+unix://`); credentials, if any, inside.
    pub urls: Vec<crate::crypto::Secret>,
    pub master_name: Option<String>,
    pub scope: String,
    pub username: Option<String>,
    pub password: Option<crate::crypto::Secret>,
    pub pool_size: u32,
}

#[derive(Debug, Clone)]
pub enum UsersConfig {
    Embedded { path: PathBuf },
    Mongodb(MongoConfig),
    Crud(CrudConfig),
}

#[derive(Debug, Clone)]
pub struct MongoConfig {
    /// May hold credentials, hence a `Secret`.
    pub uri: crate::crypto::Secret,
    pub database: String,
    pub collection: String,
    pub sessions_collection: String,
    /// Whether idgate may create its partial unique identity index (`create_index`): never
    /// required, created only where the collection allows it (see `store::mongo`).
    pub create_index: bool,
    /// What a login whose identity only non-PUBLIC documents hold gets (`inactive_users`).
    pub inactive_users: InactiveUsers,
}

#[derive(Debug, Clone)]
pub struct CrudConfig {
    pub base_url: Url,
    pub headers: Vec<(String, crate::crypto::Secret)>,
    pub timeout: Duration,
    /// The user fields idgate may write (`fields`): a collection defined with a schema refuses
    /// any other with 400. Always holds the identity fields.
    pub fields: Vec<String>,
    /// What a login whose identity only non-PUBLIC documents hold gets (`inactive_users`).
    pub inactive_users: InactiveUsers,
}

/// A login whose identity the users collection holds only in documents that are not `PUBLIC`
/// (trashed, deleted to the trash, draft).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InactiveUsers {
    /// Refused with 403: moving a user out of PUBLIC is how the console blocks one, and
    /// re-creating it would give the person the default groups again behind the operator's back.
    #[default]
    Refuse,
    /// Mia's authentication service: a new PUBLIC document with the default groups; the old
    /// one stays where it is.
    Recreate,
}

/// Every user field idgate knows how to write to a CRUD collection.
pub const CRUD_FIELDS: [&str; 9] = [
    "realm",
    "providerId",
    "providerUserId",
    "name",
    "email",
    "username",
    "groups",
    "permissions",
    "metadata",
];

/// The fields written when `fields` is not set: the users collection of Mia's authentication
/// service as its documentation defined it before `metadata` (no `permissions` either).
pub const CRUD_DEFAULT_FIELDS: [&str; 7] = [
    "realm",
    "providerId",
    "providerUserId",
    "name",
    "email",
    "username",
    "groups",
];

fn inactive_users(key: &str, value: Option<String>) -> Result<InactiveUsers, ConfigError> {
    match value.as_deref() {
        None | Some("refuse") => Ok(InactiveUsers::Refuse),
        Some("recreate") => Ok(InactiveUsers::Recreate),
        Some(other) => Err(ConfigError::invalid(
            key,
            format!("`{other}` is not one of refuse, recreate"),
        )),
    }
}

fn crud_fields(fields: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let Some(fields) = fields else {
        return Ok(CRUD_DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect());
    };
    let mut out: Vec<String> = Vec::new();
    for field in fields {
        if !CRUD_FIELDS.contains(&field.as_str()) {
            return Err(ConfigError::invalid(
                "users.fields",
                format!(
                    "`{field}` is not a user field idgate writes (one of {})",
                    CRUD_FIELDS.join(", ")
                ),
            ));
        }
        if !out.contains(&field) {
            out.push(field);
        }
    }
    for needed in ["realm", "providerId", "providerUserId"] {
        if !out.iter().any(|f| f == needed) {
            return Err(ConfigError::invalid(
                "users.fields",
                format!("must list `{needed}`: idgate finds users by it"),
            ));
        }
    }
    Ok(out)
}

/// `[store]`, then `[users]`, which depends on it (an embedded users store defaults to the
/// embedded store's file). Either may be missing from the TOML only because the original
/// services' variables can supply it (see `env/`), so its absence names those too.
pub(super) fn validate(
    store: Option<raw::RawStore>,
    users: Option<raw::RawUsers>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<(StoreConfig, UsersConfig, Duration), ConfigError> {
    let store = store.ok_or_else(|| {
        ConfigError::invalid(
            "store",
            "missing: add a [store] section (or set REDIS_HOSTS)",
        )
    })?;
    let store = validate_store(store, resolve)?;
    let users = users.ok_or_else(|| {
        ConfigError::invalid(
            "users",
            "missing: add a [users] section (or set USERS_CRUD_BASE_URL)",
        )
    })?;
    let refresh = refresh_interval(&users)?;
    let users = validate_users(users, &store, resolve)?;
    Ok((store, users, refresh))
}

/// Validates `[store]`.
fn validate_store(
    store: raw::RawStore,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<StoreConfig, ConfigError> {
    let store = match store {
        raw::RawStore::Embedded { path } => StoreConfig::Embedded {
            path: resolve(&path),
        },
        raw::RawStore::Redis {
            mode,
            urls,
            master_name,
            scope,
            username,
            password,
            password_file,
            pool_size,
        } => {
            let mode = match mode.as_deref().unwrap_or("standalone") {
                "standalone" => RedisMode::Standalone,
                "sentinel" => RedisMode::Sentinel,
                "cluster" => RedisMode::Cluster,
                other => {
                    return Err(ConfigError::invalid(
                        "store.mode",
                        format!("`{other}` is not one of standalone, sentinel, cluster"),
                    ))
                }
            };
            if urls.is_empty() {
                return Err(ConfigError::invalid(
                    "store.urls",
                    "needs at least one redis:// URL",
                ));
            }
            for u in &urls {
                redis_url(u, mode)?;
            }
            if mode == RedisMode::Sentinel && master_name.is_none() {
                return Err(ConfigError::invalid(
                    "store.master_name",
                    "is required in sentinel mode",
                ));
            }
            let password = match (password, password_file) {
                (Some(p), None) => Some(p),
                (None, Some(f)) => Some(
                    std::fs::read_to_string(resolve(&f))
                        .map_err(|e| ConfigError::invalid("store.password_file", e.to_string()))?
                        .trim()
                        .to_owned(),
                ),
                (None, None) => None,
                (Some(_), Some(_)) => {
                    return Err(ConfigError::invalid(
                        "store.password",
                        "set password or password_file, not both",
                    ))
                }
            };
            StoreConfig::Redis(RedisConfig {
                mode,
                urls: urls.into_iter().map(crate::crypto::Secret::new).collect(),
                master_name,
                scope: scope.unwrap_or_else(|| "idgate".into()),
                username,
                password: password.map(crate::crypto::Secret::new),
                pool_size: pool_size.unwrap_or(16).max(1),
            })
        }
    };
    Ok(store)
}

/// Checks one of `store.urls`: `redis://` or `rediss://` (TLS) in every mode; in standalone
/// mode also a unix socket, `unix:///path` or `redis+unix:///path` (a Redis on the same host
/// with no TCP port open). Sentinels name their masters by host and port, and a cluster's
/// nodes each other, so those modes take network URLs only. The error never quotes the URL:
/// it may hold a password.
fn redis_url(url: &str, mode: RedisMode) -> Result<(), ConfigError> {
    const KEY: &str = "store.urls";
    let parsed = Url::parse(url).map_err(|e| ConfigError::invalid(KEY, e.to_string()))?;
    match parsed.scheme() {
        "redis" | "rediss" => Ok(()),
        "unix" | "redis+unix" => {
            if mode != RedisMode::Standalone {
                return Err(ConfigError::invalid(
                    KEY,
                    "a unix socket (unix://, redis+unix://) serves standalone mode only: \
                     sentinels and cluster nodes are reached by host and port",
                ));
            }
            let has_host = parsed.host_str().is_some_and(|h| !h.is_empty());
            if has_host || !parsed.path().starts_with('/') {
                return Err(ConfigError::invalid(
                    KEY,
                    "a unix socket URL names the socket's absolute path, as \
                     unix:///run/redis/redis.sock",
                ));
            }
            Ok(())
        }
        _ => Err(ConfigError::invalid(
            KEY,
            "URLs must start with redis://, rediss:// (TLS), or unix:// (a socket, standalone mode)",
        )),
    }
}

/// The shortest `users.refresh_interval`: each round reads every active user's record.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// `users.refresh_interval` (any kind of users store): how often the records of the users with
/// live sessions are read again (see `session::refresh`).
fn refresh_interval(users: &raw::RawUsers) -> Result<Duration, ConfigError> {
    const KEY: &str = "users.refresh_interval";
    let (raw::RawUsers::Embedded {
        refresh_interval, ..
    }
    | raw::RawUsers::Mongodb {
        refresh_interval, ..
    }
    | raw::RawUsers::Crud {
        refresh_interval, ..
    }) = users;
    let d = duration(KEY, refresh_interval.clone(), "60s")?;
    if d < MIN_REFRESH_INTERVAL {
        return Err(ConfigError::invalid(KEY, "at least 1s"));
    }
    Ok(d)
}

/// Validates `[users]`; an embedded users store defaults to the embedded `[store]` file.
fn validate_users(
    users: raw::RawUsers,
    store: &StoreConfig,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<UsersConfig, ConfigError> {
    let users = match users {
        raw::RawUsers::Embedded { path, .. } => match (path, &store) {
            (Some(p), _) => UsersConfig::Embedded { path: resolve(&p) },
            (None, StoreConfig::Embedded { path }) => UsersConfig::Embedded { path: path.clone() },
            (None, StoreConfig::Redis(_)) => {
                return Err(ConfigError::invalid(
                    "users.path",
                    "an embedded users store needs a path when [store] is not embedded",
                ))
            }
        },
        raw::RawUsers::Mongodb {
            uri,
            database,
            collection,
            sessions_collection,
            create_index,
            inactive_users: inactive,
            ..
        } => {
            if !uri.starts_with("mongodb://") && !uri.starts_with("mongodb+srv://") {
                return Err(ConfigError::invalid(
                    "users.uri",
                    "must start with mongodb:// or mongodb+srv://",
                ));
            }
            UsersConfig::Mongodb(MongoConfig {
                uri: crate::crypto::Secret::new(uri),
                database,
                collection: collection.unwrap_or_else(|| "users".into()),
                sessions_collection: sessions_collection
                    .unwrap_or_else(|| "idgate_sessions".into()),
                create_index: create_index.unwrap_or(true),
                inactive_users: inactive_users("users.inactive_users", inactive)?,
            })
        }
        raw::RawUsers::Crud {
            base_url,
            headers,
            timeout,
            fields,
            inactive_users: inactive,
            ..
        } => {
            let base_url = Url::parse(&base_url)
                .map_err(|e| ConfigError::invalid("users.base_url", e.to_string()))?;
            if !matches!(base_url.scheme(), "http" | "https") {
                return Err(ConfigError::invalid(
                    "users.base_url",
                    "must be an http(s) URL",
                ));
            }
            UsersConfig::Crud(CrudConfig {
                base_url,
                headers: headers
                    .into_iter()
                    .map(|(k, v)| (k, crate::crypto::Secret::new(v)))
                    .collect(),
                timeout: duration("users.timeout", timeout, "5s")?,
                fields: crud_fields(fields)?,
                inactive_users: inactive_users("users.inactive_users", inactive)?,
            })
        }
    };
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crud_fields_default_to_mias_older_users_collection() {
        let fields = crud_fields(None).unwrap();
        assert_eq!(fields, CRUD_DEFAULT_FIELDS.map(String::from).to_vec());
        assert!(!fields.iter().any(|f| f == "permissions" || f == "metadata"));
    }

    #[test]
    fn crud_fields_are_checked() {
        let list = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let ok = crud_fields(list(&[
            "realm",
            "providerId",
            "providerUserId",
            "metadata",
            "realm",
        ]))
        .unwrap();
        assert_eq!(
            ok,
            vec!["realm", "providerId", "providerUserId", "metadata"]
        );
        let err = crud_fields(list(&["realm", "providerId", "providerUserId", "avatar"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("avatar"), "{err}");
        let err = crud_fields(list(&["realm", "providerId", "groups"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("providerUserId"), "{err}");
    }

    #[test]
    fn a_unix_socket_serves_standalone_mode_only_and_names_an_absolute_path() {
        use RedisMode::{Cluster, Sentinel, Standalone};
        for ok in [
            "redis://127.0.0.1:6379",
            "rediss://user:pw@cache:6380/0",
            "unix:///run/redis/redis-server.sock",
            "redis+unix:///run/redis/redis-server.sock?db=2",
        ] {
            redis_url(ok, Standalone).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for mode in [Sentinel, Cluster] {
            redis_url("redis://10.0.0.1:26379", mode).unwrap();
            for socket in ["unix:///run/redis.sock", "redis+unix:///run/redis.sock"] {
                let err = redis_url(socket, mode).unwrap_err().to_string();
                assert!(
                    err.starts_with("store.urls: a unix socket"),
                    "{mode:?}: {err}"
                );
                assert!(err.contains("standalone mode only"), "{err}");
            }
        }
        // A path the socket cannot be found at: relative, or behind a host.
        for bad in ["unix:redis.sock", "unix://cache/run/redis.sock"] {
            let err = redis_url(bad, Standalone).unwrap_err().to_string();
            assert!(err.contains("absolute path"), "{bad}: {err}");
        }
        // Any other scheme, and the URL's secrets are never quoted back.
        for bad in ["http://user:hunter2@cache:6379", "file:///run/redis.sock"] {
            let err = redis_url(bad, Standalone).unwrap_err().to_string();
            assert!(err.contains("must start with redis://"), "{bad}: {err}");
            assert!(!err.contains("hunter2") && !err.contains("/run/"), "{err}");
        }
    }

    #[test]
    fn inactive_users_values() {
        assert_eq!(inactive_users("k", None).unwrap(), InactiveUsers::Refuse);
        assert_eq!(
            inactive_users("k", Some("recreate".into())).unwrap(),
            InactiveUsers::Recreate
        );
        assert!(inactive_users("k", Some("allow".into())).is_err());
    }

    #[test]
    fn refresh_interval_defaults_to_a_minute_and_is_at_least_a_second_for_every_kind() {
        let embedded = |v: Option<&str>| raw::RawUsers::Embedded {
            path: None,
            refresh_interval: v.map(str::to_owned),
        };
        assert_eq!(
            refresh_interval(&embedded(None)).unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_interval(&embedded(Some("5s"))).unwrap(),
            Duration::from_secs(5)
        );
        for bad in ["500ms", "0s", "soon"] {
            let err = refresh_interval(&embedded(Some(bad)))
                .unwrap_err()
                .to_string();
            assert!(err.contains("users.refresh_interval"), "{bad}: {err}");
        }
        // The other kinds take it too, from the TOML.
        for kind in [
            "kind = \"mongodb\"\nuri = \"mongodb://h\"\ndatabase = \"d\"",
            "kind = \"crud\"\nbase_url = \"http://crud/users\"",
        ] {
            let raw: raw::RawUsers =
                toml::from_str(&format!("{kind}\nrefresh_interval = \"2m\"")).unwrap();
            assert_eq!(refresh_interval(&raw).unwrap(), Duration::from_secs(120));
        }
    }
}
