//! Reaching Redis in each deployment mode: which server answers a command, and which one a
//! subscription goes to.
//!
//! - **standalone**: a bb8 pool of multiplexed connections to the one URL;
//! - **sentinel** (`backend/sentinel.rs`): the same pool, its connections going to the master
//!   the sentinels name when each is opened, so a failover needs no restart;
//! - **cluster** (`backend/cluster.rs`): one multiplexed `ClusterConnection` that follows the
//!   slot map itself, opened on first use.
//!
//! The pools' settings and their errors are in `backend/pool.rs`.
//!
//! Nothing here connects at start-up: pools are built unchecked and fill on demand, which is
//! what lets idgate start with Redis down and recover by itself (`/-/ready` names Redis until
//! then). Every failure becomes [`StoreError::Unavailable`] naming `redis`; messages carry
//! `host:port` at most, never a URL (URLs may hold a password).

mod cluster;
mod pool;
mod sentinel;

use std::sync::Arc;
use std::time::Duration;

use bb8::Pool;
use redis::aio::{ConnectionLike, PubSub};
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, Value,
};

use self::cluster::LazyCluster;
use self::pool::{pool, pool_error, LastError, Manager, Tracked};
use self::sentinel::SentinelLookup;
use super::unavailable;
use crate::config::{RedisConfig, RedisMode};
use crate::store::StoreError;

/// How long a caller waits for a pooled connection (or a new cluster connection) before the
/// store answers "unavailable"; short, so `/auth` and `/-/ready` fail fast while Redis is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// `host:port` of a parsed URL: all of it that may be logged.
pub(super) fn endpoint(info: &ConnectionInfo) -> String {
    info.addr().to_string()
}

/// Parses one configured URL and applies the config's `username`/`password` over it. The error
/// names the URL's position, never its text.
fn node_info(cfg: &RedisConfig, index: usize) -> Result<ConnectionInfo, StoreError> {
    let url = cfg
        .urls
        .get(index)
        .ok_or_else(|| unavailable("no Redis URL configured"))?;
    let info = url.expose().into_connection_info().map_err(|e| {
        unavailable(format!(
            "store.urls[{index}] is not a usable Redis URL: {e}"
        ))
    })?;
    let mut redis = info.redis_settings().clone();
    if let Some(user) = &cfg.username {
        redis = redis.set_username(user);
    }
    if let Some(password) = &cfg.password {
        redis = redis.set_password(password.expose());
    }
    Ok(info.set_redis_settings(redis))
}

/// `info` with the private CAs of `[tls]` (the `redis` client) when it is a verified TLS
/// connection (`rediss://`); plain and `#insecure` connections are left as they are.
fn with_trust(
    info: ConnectionInfo,
    certs: Option<&redis::TlsCertificates>,
) -> Result<ConnectionInfo, RedisError> {
    match (certs, info.addr()) {
        (
            Some(certs),
            ConnectionAddr::TcpTls {
                insecure: false, ..
            },
        ) => Ok(Client::build_with_tls(info, certs.clone())?
            .get_connection_info()
            .clone()),
        _ => Ok(info),
    }
}

pub(super) enum Backend {
    Standalone {
        pool: Pool<Manager<Client>>,
        last_error: LastError,
        client: Box<Client>,
    },
    Sentinel {
        pool: Pool<Manager<Arc<SentinelLookup>>>,
        last_error: LastError,
        lookup: Arc<SentinelLookup>,
    },
    Cluster {
        /// Boxed: it is much larger than the other variants.
        cluster: Box<LazyCluster>,
        /// The seed nodes, tried in turn for the revocation subscription.
        seeds: Vec<Client>,
    },
}

/// A connection for one operation: a clone of a pooled connection (shared: the pool hands it
/// out again at once) or of the cluster connection. Cloned, it is shared by concurrent
/// commands.
#[derive(Clone)]
pub(super) enum Conn {
    Pooled(Tracked),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Whether a command failed on the connection itself (never for the cluster connection,
    /// which reconnects by itself).
    fn broken(&self) -> bool {
        match self {
            Conn::Pooled(c) => c.broken(),
            Conn::Cluster(_) => false,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Pooled(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Pooled(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Pooled(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Backend {
    /// Builds the clients for `cfg`; connects to nothing. Returns the backend and a
    /// description (mode and `host:port`s) for the start-up log line.
    pub(super) fn new(
        cfg: &RedisConfig,
        trust: &crate::tls::TrustStore,
    ) -> Result<(Self, String), StoreError> {
        let certs = trust.redis_certificates();
        let infos = (0..cfg.urls.len())
            .map(|i| {
                node_info(cfg, i).and_then(|info| {
                    with_trust(info, certs.as_ref())
                        .map_err(|e| unavailable(format!("store.urls[{i}]: {e}")))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let endpoints: Vec<String> = infos.iter().map(endpoint).collect();
        match cfg.mode {
            RedisMode::Standalone => {
                let info = infos
                    .into_iter()
                    .next()
                    .ok_or_else(|| unavailable("no Redis URL configured"))?;
                let client = Client::open(info).map_err(unavailable)?;
                let last_error = LastError::default();
                let pool = pool(cfg, &last_error, client.clone());
                let what = format!("standalone at {}", endpoints.join(", "));
                Ok((
                    Backend::Standalone {
                        pool,
                        last_error,
                        client: Box::new(client),
                    },
                    what,
                ))
            }
            RedisMode::Sentinel => sentinel::build(cfg, certs.as_ref(), &endpoints),
            RedisMode::Cluster => cluster::build(infos, certs.as_ref(), &endpoints),
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster { .. })
    }

    /// A pooled connection (or the cluster one) as the pool hands it out: checked only if it
    /// has not answered lately (`backend/pool.rs`). For reads, through [`Backend::read`].
    async fn checked_out(&self) -> Result<Conn, StoreError> {
        match self {
            Backend::Standalone {
                pool, last_error, ..
            } => pool
                .get()
                .await
                .map(|pooled| Conn::Pooled(pooled.clone()))
                .map_err(|e| pool_error(e, last_error)),
            Backend::Sentinel {
                pool, last_error, ..
            } => pool
                .get()
                .await
                .map(|pooled| Conn::Pooled(pooled.clone()))
                .map_err(|e| pool_error(e, last_error)),
            Backend::Cluster { cluster, .. } => cluster.connect().await.map(Conn::Cluster),
        }
    }

    /// A connection for an operation that writes: one that has just answered a `PING`. A
    /// write is never run twice (it may have landed before its connection failed), so the
    /// connection is confirmed first, as every connection was before reads stopped paying for
    /// it. A connection that fails its `PING` is replaced, twice at most.
    pub(super) async fn conn(&self) -> Result<Conn, StoreError> {
        let mut last = None;
        for _ in 0..3 {
            let mut conn = self.checked_out().await?;
            if matches!(conn, Conn::Cluster(_)) {
                return Ok(conn);
            }
            match redis::cmd("PING").query_async::<()>(&mut conn).await {
                Ok(()) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(|| unavailable("no connection answers"), unavailable))
    }

    /// Runs `op`, an operation that only reads, on a connection handed out without a check
    /// when it answered lately; when its connection fails under it (a server restarted since
    /// its last answer), once more on a checked connection: reading twice changes nothing.
    /// `op` gives the connection back with its result, so its state can be asked.
    pub(super) async fn read<T, Op, Fut>(&self, op: Op) -> Result<T, StoreError>
    where
        Op: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = (Result<T, StoreError>, Conn)>,
    {
        match op(self.checked_out().await?).await {
            // The failure made every connection of the pool suspect: the next one is checked
            // before it is handed out.
            (Err(_), conn) if conn.broken() => op(self.checked_out().await?).await.0,
            (done, _) => done,
        }
    }

    /// A dedicated pub/sub connection: to the server (standalone), to the current master
    /// (sentinel), or to the first seed node that answers (cluster: `PUBLISH` is broadcast to
    /// every node over the cluster bus, so any node hears every revocation). Returns it with
    /// the `host:port` it went to.
    pub(super) async fn pubsub(&self) -> Result<(PubSub, String), StoreError> {
        async fn open(client: &Client) -> Result<(PubSub, String), StoreError> {
            let addr = endpoint(client.get_connection_info());
            match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
                Ok(Ok(p)) => Ok((p, addr)),
                Ok(Err(e)) => Err(unavailable(format!("{addr}: {e}"))),
                Err(_) => Err(unavailable(format!("{addr}: no answer"))),
            }
        }
        match self {
            Backend::Standalone { client, .. } => open(client).await,
            Backend::Sentinel { lookup, .. } => {
                let master = tokio::time::timeout(CONNECT_TIMEOUT, lookup.master())
                    .await
                    .map_err(|_| unavailable("the sentinels did not answer"))?
                    .map_err(|e| unavailable(format!("sentinel: {e}")))?;
                open(&master).await
            }
            Backend::Cluster { seeds, .. } => {
                let mut last = unavailable("no cluster node configured");
                for seed in seeds {
                    match open(seed).await {
                        Ok(p) => return Ok(p),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }
}
