//! Sessions in the embedded store: one row each, kept revoked until a day past their end (the
//! audit trail), with their refresh grace records and last activity beside them; revocations
//! go to the log of [`super::revocations`] in the same transaction. Every write is one
//! immediate transaction, so the cap, a rotation or a single-use key is decided once for every
//! process sharing the file.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::revocations::log_revocation;
use super::{read_err, unavailable, CachedStatements, EmbeddedStore};
use crate::store::{
    RefreshRotation, RevocationSink, Rotation, SessionContext, SessionHead, SessionRecord,
    Sessions, StoreError,
};

/// Expired `once_keys` rows removed per insert at most: the work of one insert stays bounded
/// however many keys expired meanwhile (a backlog drains over the next inserts, and an expired
/// row left behind is treated as absent anyway).
const ONCE_PURGE_BATCH: i64 = 64;

/// What `/auth`'s cold path reads of a session ([`SessionHead`]), from the covering index
/// `sessions_head` alone (`schema.rs`): named, since the planner would take the key's own
/// index (a unique one) and then read the row.
pub(super) const SESSION_HEAD: &str =
    "SELECT user_id, app_id, provider_id, created_at, expires_at, revoked
     FROM sessions INDEXED BY sessions_head WHERE sid = ?1";

/// Stores one session row, in the caller's transaction.
fn insert_session(c: &Connection, s: &SessionRecord) -> Result<(), StoreError> {
    c.execute_cached(
        "INSERT INTO sessions (sid, user_id, app_id, provider_id, created_at, expires_at,
         refresh_hash, idp_tokens, revoked, context)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            s.sid,
            s.user_id,
            s.app_id,
            s.provider_id,
            s.created_at,
            s.expires_at,
            s.refresh_hash,
            s.idp_tokens,
            s.revoked as i64,
            super::to_json(&s.context)
        ],
    )
    .map(|_| ())
    .map_err(unavailable)
}

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        sid: row.get("sid")?,
        user_id: row.get("user_id")?,
        app_id: row.get("app_id")?,
        provider_id: row.get("provider_id")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        refresh_hash: row.get("refresh_hash")?,
        idp_tokens: row.get("idp_tokens")?,
        revoked: row.get::<_, i64>("revoked")? != 0,
        context: context_from_json(row.get_ref("context")?.as_str()?)?,
    })
}

/// The `context` column: JSON of a [`SessionContext`]; empty reads as the default (a row of
/// an upgraded file holds `{}`).
fn context_from_json(text: &str) -> rusqlite::Result<SessionContext> {
    if text.is_empty() {
        return Ok(SessionContext::default());
    }
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[async_trait]
impl Sessions for EmbeddedStore {
    async fn create_session(
        &self,
        s: &SessionRecord,
        max_per_user: usize,
    ) -> Result<Vec<String>, StoreError> {
        let s = s.clone();
        self.run_short(move |c| {
            let now = crate::now_secs();
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            insert_session(&tx, &s)?;
            // Beyond the cap, the oldest live sessions of the user go.
            let evicted: Vec<String> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT sid FROM sessions WHERE user_id = ?1 AND revoked = 0 AND expires_at > ?2
                         ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?3",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![s.user_id, now, max_per_user as i64], |r| r.get(0))
                    .map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(read_err)?
            };
            for sid in &evicted {
                tx.execute_cached("UPDATE sessions SET revoked = 1 WHERE sid = ?1", [sid]).map_err(unavailable)?;
                log_revocation(&tx, sid, now)?;
            }
            // Expired sessions are kept a day for the audit trail, then dropped, with their
            // last activity (found through the expiry index).
            tx.execute_cached(
                "DELETE FROM session_activity WHERE sid IN
                 (SELECT sid FROM sessions WHERE expires_at < ?1)",
                [now - 86_400],
            )
            .map_err(unavailable)?;
            tx.execute_cached("DELETE FROM sessions WHERE expires_at < ?1", [now - 86_400]).map_err(unavailable)?;
            // Grace records outlive their window only until the next login.
            tx.execute_cached("DELETE FROM refresh_grace WHERE grace_until < ?1", [now]).map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(evicted)
        })
        .await
    }

    /// One transaction for the lot: a million sessions in seconds, not minutes. Then the file's
    /// lock stays free for [`super::BULK_PAUSE`] before this store writes again (the writer is
    /// held meanwhile), so that a bulk fill of many batches (`idgate sessions mint --count`)
    /// lets another process's writes in between them: a login of a daemon on the same file
    /// waits for one batch, not for the whole fill.
    async fn create_sessions(&self, sessions: &[SessionRecord]) -> Result<(), StoreError> {
        let sessions = sessions.to_vec();
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            for s in &sessions {
                insert_session(&tx, s)?;
            }
            tx.commit().map_err(unavailable)?;
            std::thread::sleep(super::BULK_PAUSE);
            Ok(())
        })
        .await
    }

    async fn get_session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sid = sid.to_owned();
        self.run_read(move |c| {
            c.query_row_cached(
                "SELECT * FROM sessions WHERE sid = ?1",
                [&sid],
                session_from_row,
            )
            .optional()
            .map_err(read_err)
        })
        .await
    }

    async fn session_head(&self, sid: &str) -> Result<Option<SessionHead>, StoreError> {
        let sid = sid.to_owned();
        self.run_read(move |c| {
            c.query_row_cached(SESSION_HEAD, [&sid], |row| {
                Ok(SessionHead {
                    user_id: row.get(0)?,
                    app_id: row.get(1)?,
                    provider_id: row.get(2)?,
                    created_at: row.get(3)?,
                    expires_at: row.get(4)?,
                    revoked: row.get::<_, i64>(5)? != 0,
                })
            })
            .optional()
            .map_err(read_err)
        })
        .await
    }

    async fn revoke_session(&self, sid: &str) -> Result<bool, StoreError> {
        let sid = sid.to_owned();
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let changed = tx
                .execute_cached(
                    "UPDATE sessions SET revoked = 1 WHERE sid = ?1 AND revoked = 0",
                    [&sid],
                )
                .map_err(unavailable)?;
            if changed > 0 {
                log_revocation(&tx, &sid, crate::now_secs())?;
            }
            tx.commit().map_err(unavailable)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        let (sid, old_hash, new_hash) = (sid.to_owned(), old_hash.to_owned(), new_hash.to_owned());
        self.run(move |c| {
            let n = c
                .execute_cached(
                    "UPDATE sessions SET refresh_hash = ?3
                     WHERE sid = ?1 AND refresh_hash = ?2 AND revoked = 0 AND expires_at > ?4",
                    params![sid, old_hash, new_hash, crate::now_secs()],
                )
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn rotate_refresh_graced(
        &self,
        sid: &str,
        r: &RefreshRotation<'_>,
    ) -> Result<Rotation, StoreError> {
        let sid = sid.to_owned();
        let (old, new, pair) = (
            r.old_hash.to_owned(),
            r.new_hash.to_owned(),
            r.sealed_pair.to_vec(),
        );
        let (grace_until, expires_at, now) = (r.grace_until, r.expires_at, r.now);
        self.run(move |c| {
            // One immediate transaction: of two instances sharing the file, one rotates and the
            // other sees the grace record.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let current: Option<String> = tx
                .query_row_cached(
                    "SELECT refresh_hash FROM sessions
                     WHERE sid = ?1 AND revoked = 0 AND expires_at > ?2",
                    params![sid, now],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let Some(current) = current else {
                return Ok(Rotation::Refused);
            };
            if current == old {
                tx.execute_cached(
                    "UPDATE sessions SET refresh_hash = ?2, expires_at = COALESCE(?3, expires_at)
                     WHERE sid = ?1",
                    params![sid, new, expires_at],
                )
                .map_err(unavailable)?;
                tx.execute_cached(
                    "INSERT INTO refresh_grace (sid, prev_hash, grace_until, pair)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (sid) DO UPDATE SET prev_hash = excluded.prev_hash,
                       grace_until = excluded.grace_until, pair = excluded.pair",
                    params![sid, old, grace_until, pair],
                )
                .map_err(unavailable)?;
                tx.commit().map_err(unavailable)?;
                return Ok(Rotation::Rotated);
            }
            let repeated: Option<Vec<u8>> = tx
                .query_row_cached(
                    "SELECT pair FROM refresh_grace
                     WHERE sid = ?1 AND prev_hash = ?2 AND grace_until > ?3",
                    params![sid, old, now],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(repeated.map_or(Rotation::Refused, Rotation::Repeated))
        })
        .await
    }

    async fn touch_session(&self, sid: &str, at: i64) -> Result<(), StoreError> {
        let sid = sid.to_owned();
        self.run(move |c| {
            c.execute_cached(
                "INSERT INTO session_activity (sid, at) VALUES (?1, ?2)
                 ON CONFLICT (sid) DO UPDATE SET at = MAX(at, excluded.at)",
                params![sid, at],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// One transaction for the lot.
    async fn touch_sessions(&self, touches: &[(String, i64)]) -> Result<(), StoreError> {
        let touches = touches.to_vec();
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            for (sid, at) in &touches {
                tx.execute_cached(
                    "INSERT INTO session_activity (sid, at) VALUES (?1, ?2)
                     ON CONFLICT (sid) DO UPDATE SET at = MAX(at, excluded.at)",
                    params![sid, at],
                )
                .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn last_activity(&self, sid: &str) -> Result<Option<i64>, StoreError> {
        let sid = sid.to_owned();
        self.run_read(move |c| {
            c.query_row_cached(
                "SELECT at FROM session_activity WHERE sid = ?1",
                [&sid],
                |r| r.get(0),
            )
            .optional()
            .map_err(read_err)
        })
        .await
    }

    async fn revoke_user_sessions(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let user_id = user_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            let sids: Vec<String> = {
                let mut stmt = tx
                    .prepare_cached("UPDATE sessions SET revoked = 1 WHERE user_id = ?1 AND revoked = 0 RETURNING sid")
                    .map_err(unavailable)?;
                let rows = stmt.query_map([&user_id], |r| r.get(0)).map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(read_err)?
            };
            let now = crate::now_secs();
            for sid in &sids {
                log_revocation(&tx, sid, now)?;
            }
            tx.commit().map_err(unavailable)?;
            Ok(sids)
        })
        .await
    }

    async fn count_live_sessions(&self, now: i64) -> Result<u64, StoreError> {
        self.run(move |c| {
            c.query_row_cached(
                "SELECT COUNT(*) FROM sessions WHERE revoked = 0 AND expires_at > ?1",
                [now],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(unavailable)
        })
        .await
    }

    async fn list_sessions(&self, user_id: Option<&str>) -> Result<Vec<SessionRecord>, StoreError> {
        let user_id = user_id.map(str::to_owned);
        self.run(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT * FROM sessions WHERE (?1 IS NULL OR user_id = ?1) ORDER BY created_at",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([&user_id], session_from_row)
                .map_err(unavailable)?;
            rows.collect::<Result<_, _>>().map_err(read_err)
        })
        .await
    }

    async fn follow_revocations(&self, sink: RevocationSink) {
        self.follow_log(sink).await
    }

    async fn ping_sessions(&self) -> Result<(), StoreError> {
        self.run(|c| {
            c.query_row_cached("SELECT 1", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }

    async fn remember_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.run(move |c| {
            let now = crate::now_secs();
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            // A few expired rows go, found through the expiry index (no scan).
            tx.execute_cached(
                "DELETE FROM once_keys WHERE key IN
                 (SELECT key FROM once_keys WHERE expires_at <= ?1 LIMIT ?2)",
                params![now, ONCE_PURGE_BATCH],
            )
            .map_err(unavailable)?;
            // New, or an expired record of it not purged yet: this call records it.
            let changed = tx
                .execute_cached(
                    "INSERT INTO once_keys (key, expires_at) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
                     WHERE once_keys.expires_at <= ?3",
                    params![key, expires_at, now],
                )
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn purge_expired_sessions(&self, user_id: Option<&str>) -> Result<usize, StoreError> {
        let user_id = user_id.map(str::to_owned);
        self.run(move |c| {
            let now = crate::now_secs();
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            tx.execute_cached(
                "DELETE FROM session_activity WHERE sid IN (SELECT sid FROM sessions
                 WHERE expires_at <= ?1 AND (?2 IS NULL OR user_id = ?2))",
                params![now, user_id],
            )
            .map_err(unavailable)?;
            let gone = tx
                .execute_cached(
                    "DELETE FROM sessions WHERE expires_at <= ?1 AND (?2 IS NULL OR user_id = ?2)",
                    params![now, user_id],
                )
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(gone)
        })
        .await
    }
}
