//! Cluster mode: one `ClusterConnection`, which is already multiplexed, follows `MOVED`/`ASK`
//! and refreshes the slot map itself; it is opened on first use so idgate starts while the
//! cluster is down. The seed nodes are kept for the revocation subscription.

use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, ConnectionAddr, ConnectionInfo};

use super::{unavailable, Backend, CONNECT_TIMEOUT};
use crate::store::StoreError;

/// The cluster connection, opened on first use.
pub(in crate::store::redis) struct LazyCluster {
    client: ClusterClient,
    /// Set once; `get_or_try_init` retries on the next call after a failed attempt. The
    /// connection is multiplexed and reconnects to nodes itself once established.
    conn: tokio::sync::OnceCell<ClusterConnection>,
}

impl LazyCluster {
    /// The connection, opened now if it is not yet; a failed attempt is tried again by the
    /// next call.
    pub(super) async fn connect(&self) -> Result<ClusterConnection, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                match tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_connection())
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
        Ok(conn.clone())
    }
}

/// The cluster backend seeded by `infos`; `endpoints` name them for the start-up log line.
pub(super) fn build(
    infos: Vec<ConnectionInfo>,
    certs: Option<&redis::TlsCertificates>,
    endpoints: &[String],
) -> Result<(Backend, String), StoreError> {
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
    if let (Some(certs), true) = (certs.cloned(), verified_tls) {
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
