//! Redis as the store of login states and sessions — standalone, Sentinel or Cluster — with
//! revocations broadcast by publish/subscribe (`redis/feed.rs`); how each mode is reached is in
//! `redis/backend.rs`.
//!
//! # Keys
//!
//! Every key starts with the configured scope (Mia's `REDIS_SESSION_SCOPE`):
//!
//! | key | type | content | expiry |
//! |---|---|---|---|
//! | `{scope}:state:{id}` | string | the login state, JSON | its TTL; taken with `GETDEL` (single use, atomic) |
//! | `{scope}:session:{sid}` | hash | `record`: the session, JSON, without its IdP tokens; `idpTokens`: the IdP tokens, sealed, base64 (absent when none; inside `record` in sessions written before 2026-12-04); `revoked`: present once revoked; after a refresh, `prevHash`, `graceUntil`, `gracePair` (the refresh grace window, see `Sessions::rotate_refresh_graced`) | `expires_at` |
//! | `{scope}:user:{uid}:sessions` | sorted set | the user's live session ids, scored by creation | the latest `expires_at` |
//! | `{scope}:once:{key}` | string | `1`: `key` was recorded by `remember_once` (`SET NX EXAT`, one key, so atomic in every mode) | the caller's expiry |
//!
//! and the channel `{scope}:revocations` carries the id of every revoked session.
//!
//! A revoked session keeps its key (flagged) until it expires, so an instance that never saw it
//! still refuses it; it leaves its user's set at once, so the set holds live sessions only:
//! `list_sessions(Some(user))` lists live sessions, `list_sessions(None)` (a `SCAN`, or `KEYS`
//! on every master in cluster mode — an admin command, not a hot path) lists revoked ones too
//! until they expire.
//!
//! # Atomicity, and why no hash tags
//!
//! A session's key and its user's set live in different cluster slots, and no command spans
//! both: each step is atomic on its own key (one-key Lua scripts, `GETDEL`), and the steps are
//! ordered so an interruption leaves nothing worse than a set member whose session is gone,
//! which the next cap check prunes. Putting every key under one hash tag would make multi-key
//! transactions possible but would also put every session on one node, defeating the cluster.
//!
//! The per-user cap runs after the new session is stored: the user's set is read in creation
//! order (a script gives each member a strictly increasing score, so sessions created in the
//! same second keep their order), dead members are pruned, and the oldest live sessions beyond
//! the cap are revoked like any other — never the one just created.
//!
//! # Files
//!
//! How each mode is reached is in `backend.rs`; the Lua scripts in `scripts.rs`; login states,
//! sessions and the users' session sets in `states.rs`, `sessions.rs` and `user_sets.rs`; the
//! cold path's session reads, pipelined together, in `head_reads.rs`; the revocation feed in
//! `feed.rs`.

mod backend;
mod feed;
mod head_reads;
mod scripts;
mod sessions;
mod states;
mod user_sets;

use std::sync::Arc;
use std::time::Duration;

use self::backend::{Backend, Conn};
use super::{LoginStates, Sessions, StoreError};
use crate::config::RedisConfig;

const STORE: &str = "redis";

/// Upper bound on one store operation, connection included: a Redis that stopped answering
/// makes callers fail (and `/auth` refuse) after this, not hang.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

fn unavailable(message: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(STORE, message)
}

/// The error of an operation not answered within [`OP_TIMEOUT`].
fn timed_out() -> StoreError {
    unavailable(format!("no answer within {} s", OP_TIMEOUT.as_secs()))
}

/// `r`, an unavailability saying which operation (`what`) failed.
fn named<T>(what: &str, r: Result<T, StoreError>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        StoreError::Unavailable { message, .. } => unavailable(format!("{what}: {message}")),
        other => other,
    })
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(STORE, format!("{what}: {e}"))
}

/// Login states and sessions in Redis; cheap to share (`Arc`s inside the backend).
pub struct RedisStore {
    backend: Arc<Backend>,
    /// The cold path's session reads, pipelined together (`head_reads.rs`).
    heads: head_reads::HeadReads,
    scope: String,
}

/// Opens the Redis store; it answers both as [`LoginStates`] and [`Sessions`]. Connects to
/// nothing: Redis may be down at start-up, the first operations then fail with
/// [`StoreError::Unavailable`] until it is back.
pub async fn open(
    cfg: &RedisConfig,
) -> Result<(Arc<dyn LoginStates>, Arc<dyn Sessions>), StoreError> {
    let store = Arc::new(RedisStore::new(cfg)?);
    Ok((store.clone(), store))
}

/// [`open`] with TLS connections trusting `trust` (`[tls]`, the `redis` client).
pub async fn open_with_trust(
    cfg: &RedisConfig,
    trust: &crate::tls::TrustStore,
) -> Result<(Arc<dyn LoginStates>, Arc<dyn Sessions>), StoreError> {
    let store = Arc::new(RedisStore::with_trust(cfg, trust)?);
    Ok((store.clone(), store))
}

impl RedisStore {
    pub fn new(cfg: &RedisConfig) -> Result<Self, StoreError> {
        Self::with_trust(cfg, &crate::tls::TrustStore::default())
    }

    /// [`RedisStore::new`] with TLS connections trusting `trust`.
    pub fn with_trust(
        cfg: &RedisConfig,
        trust: &crate::tls::TrustStore,
    ) -> Result<Self, StoreError> {
        let (backend, what) = Backend::new(cfg, trust)?;
        tracing::info!(redis = %what, scope = %cfg.scope, "session store: redis");
        let backend = Arc::new(backend);
        Ok(Self {
            heads: head_reads::HeadReads::new(backend.clone()),
            backend,
            scope: cfg.scope.clone(),
        })
    }

    fn state_key(&self, id: &str) -> String {
        format!("{}:state:{id}", self.scope)
    }

    fn session_key(&self, sid: &str) -> String {
        [self.scope.as_str(), ":session:", sid].concat()
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}:user:{user_id}:sessions", self.scope)
    }

    fn channel(&self) -> String {
        format!("{}:revocations", self.scope)
    }

    /// Runs one store operation (connection included) bounded by [`OP_TIMEOUT`]; errors say
    /// which operation failed.
    async fn bounded<T>(
        &self,
        what: &str,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(OP_TIMEOUT, op).await {
            Ok(r) => named(what, r),
            Err(_) => named(what, Err(timed_out())),
        }
    }

    /// Every session key under the scope.
    async fn session_keys(&self, conn: &mut Conn) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}:session:*", escape_glob(&self.scope));
        self.scan_keys(conn, &pattern).await
    }

    /// Every key matching `pattern` (a glob whose literal parts are escaped).
    async fn scan_keys(&self, conn: &mut Conn, pattern: &str) -> Result<Vec<String>, StoreError> {
        if self.backend.is_cluster() {
            // SCAN cursors are per node and the cluster client cannot route them; KEYS goes
            // to every master and the answers are combined. Only the admin listing uses it.
            return redis::cmd("KEYS")
                .arg(pattern)
                .query_async(conn)
                .await
                .map_err(unavailable);
        }
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(conn)
                .await
                .map_err(unavailable)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

/// Escapes Redis glob characters, so a scope like `a*` matches only itself.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_scope_are_escaped() {
        assert_eq!(escape_glob("app"), "app");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
