//! The revocation log: how a revocation made by one process reaches every other process
//! sharing the file. Each revocation appends its session id to the `revocations` table in the
//! transaction that revokes; every process reads the log on from where it left off, every
//! [`POLL_INTERVAL`], and hands what it finds to its feed (`Sessions::follow_revocations`).

use rusqlite::{params, Connection};

use super::{read_err, unavailable, CachedStatements, EmbeddedStore};
use crate::store::{FeedEvent, RevocationSink, StoreError};

/// How often the revocation log is read by `Sessions::follow_revocations`.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Logs that `sid` was revoked at `at`, in the caller's transaction.
pub(super) fn log_revocation(c: &Connection, sid: &str, at: i64) -> Result<(), StoreError> {
    c.execute_cached(
        "INSERT INTO revocations (sid, revoked_at) VALUES (?1, ?2)",
        params![sid, at],
    )
    .map(|_| ())
    .map_err(unavailable)
}

impl EmbeddedStore {
    /// Revocations logged after `cursor` (`-1`: start at the end of the log), and the new
    /// cursor.
    pub async fn revocations_since(&self, cursor: i64) -> Result<(i64, Vec<String>), StoreError> {
        self.run(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT seq, sid FROM revocations WHERE seq > ?1 ORDER BY seq")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([cursor], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(unavailable)?;
            let mut last = cursor;
            let mut sids = Vec::new();
            for row in rows {
                let (seq, sid) = row.map_err(read_err)?;
                last = seq;
                sids.push(sid);
            }
            if cursor < 0 {
                // First call: start from the end of the log.
                let end: i64 = c
                    .query_row_cached("SELECT COALESCE(MAX(seq), 0) FROM revocations", [], |r| {
                        r.get(0)
                    })
                    .map_err(unavailable)?;
                return Ok((end, Vec::new()));
            }
            Ok((last, sids))
        })
        .await
    }

    /// Reads the log for ever, from its end at the first call: every revocation logged since
    /// becomes [`FeedEvent::Revoked`], and each read that answered a [`FeedEvent::Healthy`].
    pub(super) async fn follow_log(&self, sink: RevocationSink) {
        let mut cursor = -1;
        loop {
            match self.revocations_since(cursor).await {
                Ok((next, sids)) => {
                    cursor = next;
                    for sid in sids {
                        sink(FeedEvent::Revoked(sid));
                    }
                    sink(FeedEvent::Healthy);
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the revocation log"),
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}
