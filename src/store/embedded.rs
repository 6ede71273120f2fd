//! The embedded store: one SQLite file holding login states, sessions, users and a revocation
//! log. It needs no server, survives restarts, and several processes may open it at once (WAL
//! mode plus a busy timeout), so `idgate users …` and `idgate sessions …` work while the daemon
//! runs and a revocation made by one process reaches the others through the revocation log.
//!
//! Writers take the lock up front (`BEGIN IMMEDIATE`) so a busy file makes them wait (busy
//! timeout) instead of failing on a stale snapshot.
//!
//! rusqlite is synchronous: every call runs on tokio's blocking pool. The writing connection sits
//! in a `std::sync::Mutex` (never held across an `.await`); SQLite serialises writers anyway.
//! The reads `/auth` makes when its token cache misses (a session, its last activity) go to a
//! few read-only connections of their own, so that concurrent first requests of many sessions
//! are not queued behind one lock or behind a login's write (WAL lets readers and one writer
//! work at once).

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{
    FeedEvent, Identity, LoginState, LoginStates, RefreshRotation, RevocationSink, Rotation,
    SessionRecord, Sessions, StoreError, User, UserRecord, Users,
};

/// How often the revocation log is read by [`Sessions::follow_revocations`].
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

const STORE: &str = "embedded store";

/// Prepared statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 64;

/// Read-only connections for the cold reads of `/auth` (see the module doc).
const READERS: usize = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS login_states (
    state TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    redirect TEXT NOT NULL,
    client_state TEXT,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    binding_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_states_by_expiry ON login_states (expires_at);
CREATE TABLE IF NOT EXISTS sessions (
    sid TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    refresh_hash TEXT NOT NULL,
    idp_tokens BLOB NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
-- Every new session clears the long-expired ones: without this, a scan of all sessions.
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
CREATE TABLE IF NOT EXISTS refresh_grace (
    sid TEXT PRIMARY KEY,
    prev_hash TEXT NOT NULL,
    grace_until INTEGER NOT NULL,
    pair BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS session_activity (
    sid TEXT PRIMARY KEY,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sid TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    name TEXT,
    email TEXT,
    username TEXT,
    groups TEXT NOT NULL,
    permissions TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (realm, provider_id, provider_user_id)
);
";

/// Keys recorded by [`Sessions::remember_once`], kept in a table of their own (created beside
/// [`SCHEMA`]) with an index on the expiry, so expired keys are found without a scan.
const ONCE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS once_keys (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS once_keys_by_expiry ON once_keys (expires_at);
";

/// Expired `once_keys` rows removed per insert at most: the work of one insert stays bounded
/// however many keys expired meanwhile (a backlog drains over the next inserts, and an expired
/// row left behind is treated as absent anyway).
const ONCE_PURGE_BATCH: i64 = 64;

/// Handle to the SQLite file; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections for the cold reads of `/auth`; empty for an in-memory database
    /// (each connection to one would be a database of its own), where the writer reads too.
    readers: Arc<[Mutex<Connection>]>,
    /// The reader to try first, moved on at each read.
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
}

/// `execute` and `query_row` on statements prepared once per connection and kept
/// (`prepare_cached`, see [`STATEMENT_CACHE`]): every query of this store goes through these.
trait CachedStatements {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, row: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl CachedStatements for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, row: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, row)
    }
}

/// Stores one session row, in the caller's transaction.
fn insert_session(c: &Connection, s: &SessionRecord) -> Result<(), StoreError> {
    c.execute_cached(
        "INSERT INTO sessions (sid, user_id, app_id, provider_id, created_at, expires_at,
         refresh_hash, idp_tokens, revoked) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            s.sid,
            s.user_id,
            s.app_id,
            s.provider_id,
            s.created_at,
            s.expires_at,
            s.refresh_hash,
            s.idp_tokens,
            s.revoked as i64
        ],
    )
    .map(|_| ())
    .map_err(unavailable)
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        store: STORE,
        message: e.to_string(),
    }
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

    /// Opens (creating if needed) the file and its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| unavailable(format!("{}: {e}", dir.display())))?;
        }
        let open = || {
            let conn = Connection::open(path)
                .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(unavailable)?;
            // Every statement is prepared once per connection and kept (`prepare_cached`): a
            // login runs a handful of them, and parsing each again cost more than running it.
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok::<_, StoreError>(conn)
        };
        let conn = open()?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        conn.execute_batch(ONCE_SCHEMA).map_err(unavailable)?;
        let in_memory = path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:");
        let readers = if in_memory {
            Vec::new()
        } else {
            (0..READERS)
                .map(|_| {
                    let reader = open()?;
                    // A reader never writes, whatever a bug may ask of it.
                    reader
                        .pragma_update(None, "query_only", true)
                        .map_err(unavailable)?;
                    Ok(Mutex::new(reader))
                })
                .collect::<Result<Vec<_>, StoreError>>()?
        };
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: readers.into(),
            next_reader: Arc::default(),
        })
    }

    /// Like [`Self::run`], for a read: on a reader that is free (or, all busy, the next one in
    /// turn), not on the writer.
    async fn run_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.run(f).await;
        }
        let (readers, next) = (self.readers.clone(), self.next_reader.clone());
        tokio::task::spawn_blocking(move || {
            use std::sync::atomic::Ordering;
            let first = next.fetch_add(1, Ordering::Relaxed) % readers.len();
            let free = (0..readers.len())
                .map(|i| &readers[(first + i) % readers.len()])
                .find_map(|r| r.try_lock().ok());
            let mut guard = match free {
                Some(guard) => guard,
                None => readers[first]
                    .lock()
                    .map_err(|_| unavailable("connection lock poisoned"))?,
            };
            f(&mut guard)
        })
        .await
        .map_err(unavailable)?
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| unavailable("connection lock poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(unavailable)?
    }
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
    })
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, col: &str) -> rusqlite::Result<T> {
        let text: String = row.get(col)?;
        serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
    }
    Ok(User {
        user_id: row.get("user_id")?,
        realm: row.get("realm")?,
        provider_id: row.get("provider_id")?,
        provider_user_id: row.get("provider_user_id")?,
        name: row.get("name")?,
        email: row.get("email")?,
        username: row.get("username")?,
        groups: json(row, "groups")?,
        permissions: json(row, "permissions")?,
        metadata: json(row, "metadata")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn read_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            StoreError::Corrupt {
                store: STORE,
                message: e.to_string(),
            }
        }
        other => unavailable(other),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

#[async_trait]
impl LoginStates for EmbeddedStore {
    async fn put_state(&self, s: &LoginState) -> Result<(), StoreError> {
        let s = s.clone();
        self.run(move |c| {
            c.execute_cached(
                "INSERT INTO login_states (state, app_id, provider_id, redirect, client_state,
                 pkce_verifier, nonce, binding_hash, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    s.state,
                    s.app_id,
                    s.provider_id,
                    s.redirect,
                    s.client_state,
                    s.pkce_verifier,
                    s.nonce,
                    s.binding_hash,
                    s.expires_at
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn purge_expired_states(&self) -> Result<usize, StoreError> {
        self.run(|c| {
            c.execute_cached(
                "DELETE FROM login_states WHERE expires_at < ?1",
                [crate::now_secs()],
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn take_state(&self, state: &str) -> Result<Option<LoginState>, StoreError> {
        let state = state.to_owned();
        self.run(move |c| {
            c.query_row_cached(
                "DELETE FROM login_states WHERE state = ?1 RETURNING *",
                [&state],
                |row| {
                    Ok(LoginState {
                        state: row.get("state")?,
                        app_id: row.get("app_id")?,
                        provider_id: row.get("provider_id")?,
                        redirect: row.get("redirect")?,
                        client_state: row.get("client_state")?,
                        pkce_verifier: row.get("pkce_verifier")?,
                        nonce: row.get("nonce")?,
                        binding_hash: row.get("binding_hash")?,
                        expires_at: row.get("expires_at")?,
                    })
                },
            )
            .optional()
            .map_err(read_err)
        })
        .await
    }
}

#[async_trait]
impl Sessions for EmbeddedStore {
    async fn create_session(
        &self,
        s: &SessionRecord,
        max_per_user: usize,
    ) -> Result<Vec<String>, StoreError> {
        let s = s.clone();
        self.run(move |c| {
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
                tx.execute_cached("INSERT INTO revocations (sid, revoked_at) VALUES (?1, ?2)", params![sid, now])
                    .map_err(unavailable)?;
            }
            // Expired sessions are kept a day for the audit trail, then dropped.
            tx.execute_cached("DELETE FROM sessions WHERE expires_at < ?1", [now - 86_400]).map_err(unavailable)?;
            // Grace records outlive their window only until the next login.
            tx.execute_cached("DELETE FROM refresh_grace WHERE grace_until < ?1", [now]).map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(evicted)
        })
        .await
    }

    /// One transaction for the lot: a million sessions in seconds, not minutes.
    async fn create_sessions(&self, sessions: &[SessionRecord]) -> Result<(), StoreError> {
        let sessions = sessions.to_vec();
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            for s in &sessions {
                insert_session(&tx, s)?;
            }
            tx.commit().map_err(unavailable)
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
                tx.execute_cached(
                    "INSERT INTO revocations (sid, revoked_at) VALUES (?1, ?2)",
                    params![sid, crate::now_secs()],
                )
                .map_err(unavailable)?;
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
                tx.execute_cached("INSERT INTO revocations (sid, revoked_at) VALUES (?1, ?2)", params![sid, now])
                    .map_err(unavailable)?;
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

#[async_trait]
impl Users for EmbeddedStore {
    async fn upsert_login(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<User, StoreError> {
        let id = id.clone();
        let groups = to_json(&default_groups);
        self.run(move |c| {
            let now = crate::now_secs();
            c.query_row_cached(
                "INSERT INTO users (user_id, realm, provider_id, provider_user_id, name, email,
                 username, groups, permissions, metadata, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '[]', '{}', ?9, ?9)
                 ON CONFLICT (realm, provider_id, provider_user_id) DO UPDATE SET
                   name = excluded.name, email = excluded.email, username = excluded.username,
                   updated_at = excluded.updated_at
                 RETURNING *",
                params![
                    uuid::Uuid::new_v4().simple().to_string(),
                    id.realm,
                    id.provider_id,
                    id.provider_user_id,
                    id.name,
                    id.email,
                    id.username,
                    groups,
                    now
                ],
                user_from_row,
            )
            .map_err(read_err)
        })
        .await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let user_id = user_id.to_owned();
        self.run(move |c| {
            c.query_row_cached(
                "SELECT * FROM users WHERE user_id = ?1",
                [&user_id],
                user_from_row,
            )
            .optional()
            .map_err(read_err)
        })
        .await
    }

    async fn find_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let key = (
            realm.to_owned(),
            provider_id.to_owned(),
            provider_user_id.to_owned(),
        );
        self.run(move |c| {
            c.query_row_cached("SELECT * FROM users WHERE realm = ?1 AND provider_id = ?2 AND provider_user_id = ?3", params![key.0, key.1, key.2],
                user_from_row)
            .optional()
            .map_err(read_err)
        })
        .await
    }

    async fn find_ids_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        // This store has no record states: every user is active.
        Ok(self
            .find_by_identity(realm, provider_id, provider_user_id)
            .await?
            .map(|u| u.user_id)
            .into_iter()
            .collect())
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.run(|c| {
            let mut stmt = c
                .prepare_cached("SELECT * FROM users ORDER BY created_at, user_id")
                .map_err(unavailable)?;
            let rows = stmt.query_map([], user_from_row).map_err(unavailable)?;
            rows.collect::<Result<_, _>>().map_err(read_err)
        })
        .await
    }

    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        let groups = to_json(&groups);
        self.run(move |c| {
            let n = c
                .execute_cached(
                    "UPDATE users SET groups = ?1, updated_at = ?2 WHERE user_id = ?3",
                    params![groups, crate::now_secs(), user_id],
                )
                .map_err(unavailable)?;
            Ok(n > 0)
        })
        .await
    }

    async fn ping_users(&self) -> Result<(), StoreError> {
        self.ping_sessions().await
    }

    /// Every user: this store has no states (all are `PUBLIC`), and its unique constraint
    /// keeps one record per identity, so the doctor never finds duplicates here.
    async fn scan_records(&self) -> Result<Option<Vec<UserRecord>>, StoreError> {
        let users = self.list_users().await?;
        Ok(Some(
            users
                .into_iter()
                .map(|u| UserRecord {
                    user_id: u.user_id,
                    state: "PUBLIC".into(),
                    realm: Some(u.realm),
                    provider_id: Some(u.provider_id),
                    provider_user_id: Some(u.provider_user_id),
                    groups: u.groups,
                    permissions: u.permissions,
                    problem: None,
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests;
