//! Sentinel mode: a bb8 pool whose connection manager asks the sentinels for the current
//! master each time it opens a connection (and the `redis` crate checks the answer with
//! `ROLE`), so after a failover the old master's connections, dead (a failed command or
//! check-out `PING`) or demoted (`READONLY`), are dropped, and their replacements go to the new
//! master — no restart (`backend/pool.rs`).

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, TlsMode};

use super::pool::{pool, Connect, LastError};
use super::{unavailable, with_trust, Backend};
use crate::config::RedisConfig;
use crate::store::StoreError;

/// Asks the sentinels where the master of `master_name` is.
pub(in crate::store::redis) struct SentinelLookup {
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

/// Pooled connections go to the master the sentinels name when each is opened.
impl Connect for Arc<SentinelLookup> {
    async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        self.master()
            .await?
            .get_multiplexed_async_connection()
            .await
    }
}

/// The sentinel backend for `cfg`, whose URLs are the sentinels'; `endpoints` name them for
/// the start-up log line.
pub(super) fn build(
    cfg: &RedisConfig,
    certs: Option<&redis::TlsCertificates>,
    endpoints: &[String],
) -> Result<(Backend, String), StoreError> {
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
                .and_then(|info| with_trust(info, certs))
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
    let mut node = SentinelNodeConnectionInfo::default().set_redis_connection_info(node_redis);
    if let Some(tls) = tls {
        node = node.set_tls_mode(tls);
    }
    let sentinel = Sentinel::build(sentinel_urls).map_err(unavailable)?;
    let lookup = Arc::new(SentinelLookup {
        sentinel: tokio::sync::Mutex::new(sentinel),
        master_name: master_name.clone(),
        node,
        certs: certs.cloned(),
    });
    let last_error = LastError::default();
    let pool = pool(cfg, &last_error, lookup.clone());
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
