//! Reaching Redis in each deployment mode: which server answers a command, and which one a
//! subscription goes to.
//!
//! - **standalone**: a bb8 pool of multiplexed connections (`bb8_redis`) to the one URL;
//! - **sentinel**: the same pool, but its connection manager asks the sentinels for the current
//!   master each time it opens a connection (and the `redis` crate checks the answer with
//!   `ROLE`), so after a failover the dead connections fail their check-out `PING`, are dropped,
//!   and their replacements go to the new master — no restart;
//! - **cluster**: one `ClusterConnection`, which is already multiplexed, follows `MOVED`/`ASK`
//!   and refreshes the slot map itself; it is opened on first use so idgate starts while the
//!   cluster is down.
//!
//! Nothing here connects at start-up: pools are built unchecked and fill on demand, which is
//! what lets idgate start with Redis down and recover by itself (`/-/ready` names Redis until
//! then). Every failure becomes [`StoreError::Unavailable`] naming `redis`; messages carry
//! `host:port` at most, never a URL (URLs may hold a password).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bb8::{ErrorSink, ManageConnection, Pool, PooledConnection, RunError};
use bb8_redis::RedisConnectionManager;
use redis::aio::{ConnectionLike, MultiplexedConnection, PubSub};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, TlsMode, Value,
};

use super::STORE;
use crate::config::{RedisConfig, RedisMode};
use crate::store::StoreError;

/// How long a caller waits for a pooled connection (or a new cluster connection) before the
/// store answers "unavailable"; short, so `/auth` and `/-/ready` fail fast while Redis is down.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn unavailable(message: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        store: STORE,
        message: message.to_string(),
    }
}

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

/// Remembers the last connection error of a pool, so a check-out that times out can say why
/// instead of only "timed out".
#[derive(Debug, Clone, Default)]
pub(super) struct LastError(Arc<Mutex<Option<String>>>);

impl LastError {
    fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

impl ErrorSink<RedisError> for LastError {
    fn sink(&self, error: RedisError) {
        // A std mutex: held for one assignment, never across an `.await`.
        if let Ok(mut last) = self.0.lock() {
            *last = Some(error.to_string());
        }
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<RedisError>> {
        Box::new(self.clone())
    }
}

/// Asks the sentinels where the master of `master_name` is.
pub(super) struct SentinelLookup {
    /// `redis::sentinel::Sentinel` needs `&mut self` (it caches its sentinel connections); a
    /// tokio mutex because the lookup awaits the sentinels while holding it. Lookups happen only
    /// when a connection is opened, so contention is negligible.
    sentinel: tokio::sync::Mutex<Sentinel>,
    master_name: String,
    node: SentinelNodeConnectionInfo,
    /// The private CAs the master's TLS connection trusts (the sentinels name the master by
    /// address only, so they are applied to the client they answer).
    certs: Option<redis::TlsCertificates>,
}

impl SentinelLookup {
    pub(super) async fn master(&self) -> Result<Client, RedisError> {
        let mut sentinel = self.sentinel.lock().await;
        let client = sentinel
            .async_master_for(&self.master_name, Some(&self.node))
            .await?;
        match &self.certs {
            Some(_) => Client::open(with_trust(
                client.get_connection_info().clone(),
                self.certs.as_ref(),
            )?),
            None => Ok(client),
        }
    }
}

/// bb8 manager whose connections always go to the master the sentinels name right now.
pub(super) struct SentinelManager(Arc<SentinelLookup>);

impl ManageConnection for SentinelManager {
    type Connection = MultiplexedConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        self.0
            .master()
            .await?
            .get_multiplexed_async_connection()
            .await
    }

    async fn is_valid(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        redis::cmd("PING").query_async::<()>(conn).await
    }

    fn has_broken(&self, _: &mut MultiplexedConnection) -> bool {
        false
    }
}

/// The cluster connection, opened on first use.
pub(super) struct LazyCluster {
    client: ClusterClient,
    /// Set once; `get_or_try_init` retries on the next call after a failed attempt. The
    /// connection is multiplexed and reconnects to nodes itself once established.
    conn: tokio::sync::OnceCell<ClusterConnection>,
}

pub(super) enum Backend {
    Standalone {
        pool: Pool<RedisConnectionManager>,
        last_error: LastError,
        client: Box<Client>,
    },
    Sentinel {
        pool: Pool<SentinelManager>,
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

/// A connection for one operation: a pooled one (returned to the pool on drop) or a clone of
/// the cluster connection.
pub(super) enum Conn<'a> {
    Standalone(PooledConnection<'a, RedisConnectionManager>),
    Sentinel(PooledConnection<'a, SentinelManager>),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
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
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

fn pool_builder<M: ManageConnection<Error = RedisError>>(
    cfg: &RedisConfig,
    last_error: &LastError,
) -> bb8::Builder<M> {
    Pool::builder()
        .max_size(cfg.pool_size)
        .connection_timeout(CONNECT_TIMEOUT)
        // Check-out runs a PING: the only way bb8 learns that a multiplexed connection died
        // (e.g. its master was killed), so the pool replaces it instead of failing forever.
        .test_on_check_out(true)
        .error_sink(Box::new(last_error.clone()))
}

fn pool_error(e: RunError<RedisError>, last_error: &LastError) -> StoreError {
    match e {
        RunError::User(e) => unavailable(e),
        RunError::TimedOut => unavailable(match last_error.take() {
            Some(why) => format!(
                "no connection within {} s ({why})",
                CONNECT_TIMEOUT.as_secs()
            ),
            None => format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
        }),
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
                let client = Client::open(info.clone()).map_err(unavailable)?;
                let manager = RedisConnectionManager::new(info).map_err(unavailable)?;
                let last_error = LastError::default();
                let pool = pool_builder(cfg, &last_error).build_unchecked(manager);
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
            RedisMode::Sentinel => {
                let master_name = cfg
                    .master_name
                    .clone()
                    .ok_or_else(|| unavailable("sentinel mode needs store.master_name"))?;
                // The URLs are the sentinels' (with their own credentials, if any); the
                // config's username/password are the data nodes'. TLS to the sentinels means
                // TLS to the master too.
                let sentinel_urls: Vec<ConnectionInfo> = cfg
                    .urls
                    .iter()
                    .enumerate()
                    .map(|(i, url)| {
                        url.expose()
                            .into_connection_info()
                            .and_then(|info| with_trust(info, certs.as_ref()))
                            .map_err(|e| unavailable(format!("store.urls[{i}]: {e}")))
                    })
                    .collect::<Result<_, _>>()?;
                let tls = sentinel_urls.iter().find_map(|i| match i.addr() {
                    ConnectionAddr::TcpTls { insecure, .. } => Some(if *insecure {
                        TlsMode::Insecure
                    } else {
                        TlsMode::Secure
                    }),
                    _ => None,
                });
                let mut node_redis = redis::RedisConnectionInfo::default();
                if let Some(user) = &cfg.username {
                    node_redis = node_redis.set_username(user);
                }
                if let Some(password) = &cfg.password {
                    node_redis = node_redis.set_password(password.expose());
                }
                let mut node =
                    SentinelNodeConnectionInfo::default().set_redis_connection_info(node_redis);
                if let Some(tls) = tls {
                    node = node.set_tls_mode(tls);
                }
                let sentinel = Sentinel::build(sentinel_urls).map_err(unavailable)?;
                let lookup = Arc::new(SentinelLookup {
                    sentinel: tokio::sync::Mutex::new(sentinel),
                    master_name: master_name.clone(),
                    node,
                    certs: certs.clone(),
                });
                let last_error = LastError::default();
                let pool =
                    pool_builder(cfg, &last_error).build_unchecked(SentinelManager(lookup.clone()));
                let what = format!(
                    "sentinel master `{master_name}` via {}",
                    endpoints.join(", ")
                );
                Ok((
                    Backend::Sentinel {
                        pool,
                        last_error,
                        lookup,
                    },
                    what,
                ))
            }
            RedisMode::Cluster => {
                let seeds = infos
                    .iter()
                    .cloned()
                    .map(Client::open)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)?;
                let mut builder = ClusterClient::builder(infos);
                let verified_tls = seeds.iter().any(|c| {
                    matches!(
                        c.get_connection_info().addr(),
                        ConnectionAddr::TcpTls {
                            insecure: false,
                            ..
                        }
                    )
                });
                if let (Some(certs), true) = (certs.clone(), verified_tls) {
                    // The nodes the slot map names get the same CAs as the seeds (`certs`
                    // would also turn TLS on, hence only for `rediss://` seeds).
                    builder = builder.certs(certs);
                }
                let client = builder
                    .connection_timeout(Duration::from_secs(1))
                    .response_timeout(Duration::from_secs(1))
                    // Few retries: a command should fail fast (and `/auth` refuse) rather than
                    // wait out a long outage.
                    .retries(2)
                    .build()
                    .map_err(unavailable)?;
                let what = format!("cluster seeded by {}", endpoints.join(", "));
                Ok((
                    Backend::Cluster {
                        cluster: Box::new(LazyCluster {
                            client,
                            conn: tokio::sync::OnceCell::new(),
                        }),
                        seeds,
                    },
                    what,
                ))
            }
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster { .. })
    }

    /// A connection for one operation.
    pub(super) async fn conn(&self) -> Result<Conn<'_>, StoreError> {
        match self {
            Backend::Standalone {
                pool, last_error, ..
            } => pool
                .get()
                .await
                .map(Conn::Standalone)
                .map_err(|e| pool_error(e, last_error)),
            Backend::Sentinel {
                pool, last_error, ..
            } => pool
                .get()
                .await
                .map(Conn::Sentinel)
                .map_err(|e| pool_error(e, last_error)),
            Backend::Cluster { cluster, .. } => {
                let conn = cluster
                    .conn
                    .get_or_try_init(|| async {
                        match tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            cluster.client.get_async_connection(),
                        )
                        .await
                        {
                            Ok(Ok(c)) => Ok(c),
                            Ok(Err(e)) => Err(unavailable(format!("cluster: {e}"))),
                            Err(_) => Err(unavailable(format!(
                                "cluster: no connection within {} s",
                                CONNECT_TIMEOUT.as_secs()
                            ))),
                        }
                    })
                    .await?;
                Ok(Conn::Cluster(conn.clone()))
            }
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
