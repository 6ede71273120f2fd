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
//! | `{scope}:session:{sid}` | hash | `record`: the session, JSON; `revoked`: present once revoked; after a refresh, `prevHash`, `graceUntil`, `gracePair` (the refresh grace window, see `Sessions::rotate_refresh_graced`) | `expires_at` |
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

mod backend;
mod feed;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use redis::{Script, Value};
use serde::{Deserialize, Serialize};

use self::backend::{unavailable, Backend, Conn};
use super::{
    LoginState, LoginStates, RefreshRotation, RevocationSink, Rotation, SessionRecord, Sessions,
    StoreError,
};
use crate::config::RedisConfig;

const STORE: &str = "redis";

/// Upper bound on one store operation, connection included: a Redis that stopped answering
/// makes callers fail (and `/auth` refuse) after this, not hang.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Stores a session: the record, no revocation flag, the expiry. One key, so atomic.
static PUT_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[1])
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'revoked', '1') end
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1",
    )
});

/// Adds a session to its user's set with a score above every other member's (creation order,
/// even within one second), keeps the set until its latest session expires, and returns the
/// members oldest first.
static ADD_TO_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local score = tonumber(ARGV[1]) * 1000
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] ~= nil and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
redis.call('ZADD', KEYS[1], score, ARGV[2])
local wanted = tonumber(ARGV[3]) - tonumber(ARGV[4])
if wanted > 0 and redis.call('TTL', KEYS[1]) < wanted then
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
return redis.call('ZRANGE', KEYS[1], 0, -1)",
    )
});

/// Flags a session revoked; returns its record when this call revoked it, nil when it was
/// missing or already revoked. Keeps the key's expiry.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local rec = redis.call('HGET', KEYS[1], 'record')
if not rec then return false end
if redis.call('HSETNX', KEYS[1], 'revoked', '1') == 0 then return false end
return rec",
    )
});

/// Replaces the refresh hash in a live session's record if it is still ARGV[1] (compare and
/// set, one key, so atomic); 1 when replaced.
static ROTATE_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return 0 end
local rec = redis.call('HGET', KEYS[1], 'record')
if not rec then return 0 end
local s = cjson.decode(rec)
if s['refreshHash'] ~= ARGV[1] then return 0 end
s['refreshHash'] = ARGV[2]
redis.call('HSET', KEYS[1], 'record', cjson.encode(s))
return 1",
    )
});

/// A refresh with a grace window (see `Sessions::rotate_refresh_graced`), one key, so atomic.
/// ARGV: old hash, new hash, sealed pair (base64), grace end, new session end ('' keeps it),
/// now. Returns {1} rotated, {2, pair} a repeat within the window, {0} refused. The previous
/// hash, the window's end and the sealed pair sit in the session's hash beside `record`.
static ROTATE_GRACED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return {0} end
local rec = redis.call('HGET', KEYS[1], 'record')
if not rec then return {0} end
local s = cjson.decode(rec)
local now = tonumber(ARGV[6])
if tonumber(s['expiresAt']) <= now then return {0} end
if s['refreshHash'] == ARGV[1] then
  s['refreshHash'] = ARGV[2]
  if ARGV[5] ~= '' then s['expiresAt'] = tonumber(ARGV[5]) end
  redis.call('HSET', KEYS[1], 'record', cjson.encode(s), 'prevHash', ARGV[1],
    'graceUntil', ARGV[4], 'gracePair', ARGV[3])
  if ARGV[5] ~= '' then redis.call('EXPIREAT', KEYS[1], ARGV[5]) end
  return {1}
end
local prev = redis.call('HMGET', KEYS[1], 'prevHash', 'graceUntil', 'gracePair')
if prev[1] == ARGV[1] and tonumber(prev[2] or '0') > now and prev[3] then
  return {2, prev[3]}
end
return {0}",
    )
});

/// Keeps a user's session set at least until ARGV[1] (a session's lifetime slid past it).
static KEEP_USER_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local ttl = redis.call('TTL', KEYS[1])
local wanted = tonumber(ARGV[1]) - tonumber(ARGV[2])
if ttl >= 0 and ttl < wanted then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
return 1",
    )
});

/// Raises a session's last activity to ARGV[1] (never lowers it) and keeps it a day.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], 86400)
return 1",
    )
});

/// A login state as stored (the id is in the key).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredState {
    app_id: String,
    provider_id: String,
    redirect: String,
    client_state: Option<String>,
    pkce_verifier: String,
    nonce: String,
    binding_hash: String,
    expires_at: i64,
}

/// A session as stored (the id is in the key, the revocation flag beside the record).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSession {
    user_id: String,
    app_id: String,
    provider_id: String,
    created_at: i64,
    expires_at: i64,
    refresh_hash: String,
    /// Sealed IdP tokens, base64.
    idp_tokens: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        store: STORE,
        message: format!("{what}: {e}"),
    }
}

/// Login states and sessions in Redis; cheap to share (`Arc`s inside the backend).
pub struct RedisStore {
    backend: Backend,
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
        Ok(Self {
            backend,
            scope: cfg.scope.clone(),
        })
    }

    fn state_key(&self, id: &str) -> String {
        format!("{}:state:{id}", self.scope)
    }

    fn session_key(&self, sid: &str) -> String {
        format!("{}:session:{sid}", self.scope)
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
            Ok(r) => r.map_err(|e| match e {
                StoreError::Unavailable { message, .. } => {
                    unavailable(format!("{what}: {message}"))
                }
                other => other,
            }),
            Err(_) => Err(unavailable(format!(
                "{what}: no answer within {} s",
                OP_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn read_session(
        &self,
        conn: &mut Conn<'_>,
        sid: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let (record, revoked): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.session_key(sid))
            .arg("record")
            .arg("revoked")
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        let Some(record) = record else {
            return Ok(None);
        };
        decode_session(sid, &record, revoked.is_some()).map(Some)
    }

    /// Flags `sid` revoked, drops it from its user's set and tells every instance; `true` when
    /// this call did it.
    async fn revoke_in(&self, conn: &mut Conn<'_>, sid: &str) -> Result<bool, StoreError> {
        let record: Option<String> = REVOKE
            .key(self.session_key(sid))
            .invoke_async(conn)
            .await
            .map_err(unavailable)?;
        let Some(record) = record else {
            return Ok(false);
        };
        match serde_json::from_str::<StoredSession>(&record) {
            Ok(s) => {
                redis::cmd("ZREM")
                    .arg(self.user_key(&s.user_id))
                    .arg(sid)
                    .query_async::<()>(conn)
                    .await
                    .map_err(unavailable)?;
            }
            Err(e) => tracing::warn!(error = %e, "revoked a session whose record is unreadable"),
        }
        redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(sid)
            .query_async::<()>(conn)
            .await
            .map_err(unavailable)?;
        Ok(true)
    }

    /// Every session key under the scope.
    async fn session_keys(&self, conn: &mut Conn<'_>) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}:session:*", escape_glob(&self.scope));
        self.scan_keys(conn, &pattern).await
    }

    /// Every key matching `pattern` (a glob whose literal parts are escaped).
    async fn scan_keys(
        &self,
        conn: &mut Conn<'_>,
        pattern: &str,
    ) -> Result<Vec<String>, StoreError> {
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

fn decode_session(sid: &str, record: &str, revoked: bool) -> Result<SessionRecord, StoreError> {
    let s: StoredSession = serde_json::from_str(record).map_err(|e| corrupt("session", e))?;
    let idp_tokens = B64
        .decode(&s.idp_tokens)
        .map_err(|e| corrupt("session idp tokens", e))?;
    Ok(SessionRecord {
        sid: sid.to_owned(),
        user_id: s.user_id,
        app_id: s.app_id,
        provider_id: s.provider_id,
        created_at: s.created_at,
        expires_at: s.expires_at,
        refresh_hash: s.refresh_hash,
        idp_tokens,
        revoked,
    })
}

fn encode_session(s: &SessionRecord) -> Result<String, StoreError> {
    serde_json::to_string(&StoredSession {
        user_id: s.user_id.clone(),
        app_id: s.app_id.clone(),
        provider_id: s.provider_id.clone(),
        created_at: s.created_at,
        expires_at: s.expires_at,
        refresh_hash: s.refresh_hash.clone(),
        idp_tokens: B64.encode(&s.idp_tokens),
    })
    .map_err(|e| corrupt("session", e))
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

#[async_trait]
impl LoginStates for RedisStore {
    async fn put_state(&self, s: &LoginState) -> Result<(), StoreError> {
        let json = serde_json::to_string(&StoredState {
            app_id: s.app_id.clone(),
            provider_id: s.provider_id.clone(),
            redirect: s.redirect.clone(),
            client_state: s.client_state.clone(),
            pkce_verifier: s.pkce_verifier.clone(),
            nonce: s.nonce.clone(),
            binding_hash: s.binding_hash.clone(),
            expires_at: s.expires_at,
        })
        .map_err(|e| corrupt("login state", e))?;
        let ttl = (s.expires_at - crate::now_secs()).max(1);
        self.bounded("storing a login state", async {
            let mut conn = self.backend.conn().await?;
            redis::cmd("SET")
                .arg(self.state_key(&s.state))
                .arg(json)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }

    async fn take_state(&self, state: &str) -> Result<Option<LoginState>, StoreError> {
        let json: Option<String> = self
            .bounded("taking a login state", async {
                let mut conn = self.backend.conn().await?;
                redis::cmd("GETDEL")
                    .arg(self.state_key(state))
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)
            })
            .await?;
        let Some(json) = json else {
            return Ok(None);
        };
        let s: StoredState = serde_json::from_str(&json).map_err(|e| corrupt("login state", e))?;
        Ok(Some(LoginState {
            state: state.to_owned(),
            app_id: s.app_id,
            provider_id: s.provider_id,
            redirect: s.redirect,
            client_state: s.client_state,
            pkce_verifier: s.pkce_verifier,
            nonce: s.nonce,
            binding_hash: s.binding_hash,
            expires_at: s.expires_at,
        }))
    }
}

#[async_trait]
impl Sessions for RedisStore {
    async fn create_session(
        &self,
        s: &SessionRecord,
        max_per_user: usize,
    ) -> Result<Vec<String>, StoreError> {
        let record = encode_session(s)?;
        self.bounded("storing a session", async {
            let mut conn = self.backend.conn().await?;
            PUT_SESSION
                .key(self.session_key(&s.sid))
                .arg(&record)
                .arg(if s.revoked { "1" } else { "0" })
                .arg(s.expires_at)
                .invoke_async::<()>(&mut conn)
                .await
                .map_err(unavailable)?;
            if s.revoked {
                return Ok(Vec::new());
            }
            let members: Vec<String> = ADD_TO_USER
                .key(self.user_key(&s.user_id))
                .arg(s.created_at)
                .arg(&s.sid)
                .arg(s.expires_at)
                .arg(crate::now_secs())
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if members.len() <= max_per_user {
                return Ok(Vec::new());
            }
            // Over the cap, perhaps only because of dead members: look at each. At most a few
            // more than the cap, and only on logins, so one read each is fine.
            let now = crate::now_secs();
            let others: Vec<&String> = members.iter().filter(|m| **m != s.sid).collect();
            let mut live = Vec::new();
            for sid in others {
                match self.read_session(&mut conn, sid).await? {
                    Some(r) if r.is_alive(now) => live.push(sid.clone()),
                    _ => {
                        redis::cmd("ZREM")
                            .arg(self.user_key(&s.user_id))
                            .arg(sid)
                            .query_async::<()>(&mut conn)
                            .await
                            .map_err(unavailable)?;
                    }
                }
            }
            let excess = (live.len() + 1).saturating_sub(max_per_user);
            let mut evicted = Vec::new();
            for sid in live.into_iter().take(excess) {
                if self.revoke_in(&mut conn, &sid).await? {
                    evicted.push(sid);
                }
            }
            Ok(evicted)
        })
        .await
    }

    async fn get_session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.bounded("reading a session", async {
            let mut conn = self.backend.conn().await?;
            self.read_session(&mut conn, sid).await
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        self.bounded("rotating a refresh token", async {
            let mut conn = self.backend.conn().await?;
            let done: i64 = ROTATE_REFRESH
                .key(self.session_key(sid))
                .arg(old_hash)
                .arg(new_hash)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(done == 1)
        })
        .await
    }

    async fn rotate_refresh_graced(
        &self,
        sid: &str,
        r: &RefreshRotation<'_>,
    ) -> Result<Rotation, StoreError> {
        self.bounded("rotating a refresh token", async {
            let mut conn = self.backend.conn().await?;
            let answer: Vec<Value> = ROTATE_GRACED
                .key(self.session_key(sid))
                .arg(r.old_hash)
                .arg(r.new_hash)
                .arg(B64.encode(r.sealed_pair))
                .arg(r.grace_until)
                .arg(r.expires_at.map(|e| e.to_string()).unwrap_or_default())
                .arg(r.now)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            match answer.as_slice() {
                [Value::Int(1)] => {
                    if let Some(until) = r.expires_at {
                        // The user's set lives as long as its latest session: follow the slide,
                        // or an administrator's revocation would miss this session.
                        if let Some(rec) = self.read_session(&mut conn, sid).await? {
                            KEEP_USER_SET
                                .key(self.user_key(&rec.user_id))
                                .arg(until)
                                .arg(r.now)
                                .invoke_async::<()>(&mut conn)
                                .await
                                .map_err(unavailable)?;
                        }
                    }
                    Ok(Rotation::Rotated)
                }
                [Value::Int(2), Value::BulkString(pair)] => B64
                    .decode(pair)
                    .map(Rotation::Repeated)
                    .map_err(|e| corrupt("refresh grace pair", e)),
                [Value::Int(0)] => Ok(Rotation::Refused),
                other => Err(corrupt(
                    "refresh rotation answer",
                    format!("{} values", other.len()),
                )),
            }
        })
        .await
    }

    async fn touch_session(&self, sid: &str, at: i64) -> Result<(), StoreError> {
        self.bounded("recording session activity", async {
            let mut conn = self.backend.conn().await?;
            // Kept a day past the last activity: longer than any sensible idle timeout.
            TOUCH
                .key(format!("{}:activity:{sid}", self.scope))
                .arg(at)
                .invoke_async::<()>(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }

    async fn last_activity(&self, sid: &str) -> Result<Option<i64>, StoreError> {
        self.bounded("reading session activity", async {
            let mut conn = self.backend.conn().await?;
            redis::cmd("GET")
                .arg(format!("{}:activity:{sid}", self.scope))
                .query_async(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }

    async fn revoke_session(&self, sid: &str) -> Result<bool, StoreError> {
        self.bounded("revoking a session", async {
            let mut conn = self.backend.conn().await?;
            self.revoke_in(&mut conn, sid).await
        })
        .await
    }

    async fn revoke_user_sessions(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        self.bounded("revoking a user's sessions", async {
            let mut conn = self.backend.conn().await?;
            let sids: Vec<String> = redis::cmd("ZRANGE")
                .arg(self.user_key(user_id))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let mut revoked = Vec::new();
            for sid in sids {
                if self.revoke_in(&mut conn, &sid).await? {
                    revoked.push(sid);
                } else {
                    // Expired or already revoked: only its membership was left.
                    redis::cmd("ZREM")
                        .arg(self.user_key(user_id))
                        .arg(&sid)
                        .query_async::<()>(&mut conn)
                        .await
                        .map_err(unavailable)?;
                }
            }
            Ok(revoked)
        })
        .await
    }

    /// Expired sessions are gone with their keys' TTL; a revoked one keeps its key, marked: so
    /// the live ones are the session keys without the mark, asked in pipelined batches (no
    /// record is read). A cluster cannot pipeline across nodes: there, the records are read.
    async fn count_live_sessions(&self, now: i64) -> Result<u64, StoreError> {
        if self.backend.is_cluster() {
            let all = self.list_sessions(None).await?;
            return Ok(all.iter().filter(|s| s.is_alive(now)).count() as u64);
        }
        self.bounded("counting sessions", async {
            let mut conn = self.backend.conn().await?;
            let keys = self.session_keys(&mut conn).await?;
            let mut live = 0;
            for batch in keys.chunks(500) {
                let mut pipe = redis::pipe();
                for key in batch {
                    pipe.cmd("HEXISTS").arg(key).arg("revoked");
                }
                let revoked: Vec<bool> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
                live += revoked.iter().filter(|r| !**r).count() as u64;
            }
            Ok(live)
        })
        .await
    }

    async fn list_sessions(&self, user_id: Option<&str>) -> Result<Vec<SessionRecord>, StoreError> {
        self.bounded("listing sessions", async {
            let mut conn = self.backend.conn().await?;
            let sids: Vec<String> = match user_id {
                Some(user) => redis::cmd("ZRANGE")
                    .arg(self.user_key(user))
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?,
                None => {
                    let prefix = self.session_key("");
                    self.session_keys(&mut conn)
                        .await?
                        .into_iter()
                        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
                        .collect()
                }
            };
            let mut list = Vec::with_capacity(sids.len());
            for sid in &sids {
                // Gone between the listing and the read: expired, skip it.
                if let Some(r) = self.read_session(&mut conn, sid).await? {
                    list.push(r);
                }
            }
            list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.sid.cmp(&b.sid)));
            Ok(list)
        })
        .await
    }

    async fn follow_revocations(&self, sink: RevocationSink) {
        feed::follow(&self.backend, &self.channel(), sink).await
    }

    /// Session records expire by themselves (`EXPIREAT`); what stays behind are their entries
    /// in the users' sorted sets (Mia's "user queues"), removed here one user at a time and
    /// deliberately not atomically, as Mia does, so a long clean-up never blocks Redis.
    async fn purge_expired_sessions(&self, user_id: Option<&str>) -> Result<usize, StoreError> {
        let user_keys = match user_id {
            Some(u) => vec![self.user_key(u)],
            None => {
                self.bounded("listing the users' session sets", async {
                    let mut conn = self.backend.conn().await?;
                    self.scan_keys(
                        &mut conn,
                        &format!("{}:user:*:sessions", escape_glob(&self.scope)),
                    )
                    .await
                })
                .await?
            }
        };
        let mut removed = 0;
        for key in user_keys {
            removed += self
                .bounded("cleaning a user's session set", async {
                    let mut conn = self.backend.conn().await?;
                    let sids: Vec<String> = redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    let mut gone = 0;
                    for sid in sids {
                        let exists: bool = redis::cmd("EXISTS")
                            .arg(self.session_key(&sid))
                            .query_async(&mut conn)
                            .await
                            .map_err(unavailable)?;
                        if !exists {
                            let n: usize = redis::cmd("ZREM")
                                .arg(&key)
                                .arg(&sid)
                                .query_async(&mut conn)
                                .await
                                .map_err(unavailable)?;
                            gone += n;
                        }
                    }
                    Ok(gone)
                })
                .await?;
        }
        Ok(removed)
    }

    async fn remember_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        // EXAT in the past would store nothing: such a key is recorded for a second.
        let expires_at = expires_at.max(crate::now_secs() + 1);
        self.bounded("recording a single-use key", async {
            let mut conn = self.backend.conn().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("{}:once:{key}", self.scope))
                .arg("1")
                .arg("NX")
                .arg("EXAT")
                .arg(expires_at)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(set.is_some())
        })
        .await
    }

    async fn ping_sessions(&self) -> Result<(), StoreError> {
        self.bounded("ping", async {
            let mut conn = self.backend.conn().await?;
            redis::cmd("PING")
                .query_async::<Value>(&mut conn)
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_through_their_stored_form() {
        let s = SessionRecord {
            sid: "s1".into(),
            user_id: "u".into(),
            app_id: "web".into(),
            provider_id: "dev".into(),
            created_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            refresh_hash: "h".into(),
            idp_tokens: vec![0, 1, 255],
            revoked: false,
        };
        let json = encode_session(&s).unwrap();
        assert_eq!(decode_session("s1", &json, false).unwrap(), s);
        assert!(decode_session("s1", &json, true).unwrap().revoked);
        assert!(matches!(
            decode_session("s1", "{", false),
            Err(StoreError::Corrupt { store: "redis", .. })
        ));
    }

    #[test]
    fn glob_characters_in_the_scope_are_escaped() {
        assert_eq!(escape_glob("app"), "app");
        assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
