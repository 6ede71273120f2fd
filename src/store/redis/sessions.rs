//! Sessions in Redis: one hash each, `{scope}:session:{sid}`, holding the record as JSON, the
//! revocation flag and the refresh grace fields (see the keys table of the parent's doc),
//! expiring when the session ends. A revoked session keeps its key, flagged, until then, so an
//! instance that never saw the revocation still refuses it; every revocation is published on
//! `{scope}:revocations` for the feed (`feed.rs`). What spans a user's sessions (the cap,
//! revoking them all, cleaning up) is in `user_sets.rs`.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use redis::Value;
use serde::{Deserialize, Serialize};

use super::backend::Conn;
use super::scripts::{KEEP_USER_SET, PUT_SESSION, REVOKE, ROTATE_GRACED, ROTATE_REFRESH, TOUCH};
use super::{corrupt, feed, named, unavailable, RedisStore};
use crate::store::{
    count_alive, sort_oldest_first, RefreshRotation, RevocationSink, Rotation, SessionContext,
    SessionHead, SessionRecord, Sessions, StoreError,
};

/// The most sessions one activity script call raises (outside cluster mode): a call runs
/// three commands a session, and Redis serves no one else meanwhile, so a batch of thousands
/// (`session::activity`) goes as several calls, pipelined.
const TOUCH_CHUNK: usize = 256;

/// A session as stored (the id is in the key; the revocation flag and the IdP tokens beside
/// the record, in fields of their own).
///
/// The IdP tokens (an access, a refresh and an ID token, sealed: kilobytes) stay out of the
/// record: the first request of every session reads the record ([`HeadReads`]), and never
/// needs them. Measured with `examples/cold.rs` (RS256, 10 000 sessions), 4.5 KB of tokens
/// inside the record made each first request 5–10 µs slower (Redis's reply, the socket, the
/// parse).
///
/// [`HeadReads`]: super::head_reads::HeadReads
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSession {
    user_id: String,
    app_id: String,
    provider_id: String,
    created_at: i64,
    expires_at: i64,
    refresh_hash: String,
    /// Sealed IdP tokens, base64, in records written before they moved to the hash's
    /// `idpTokens` field; empty in those written since (an idgate of before then, reading one
    /// during a rolling upgrade, finds a session without IdP tokens, not a corrupt one).
    idp_tokens: String,
    /// Absent in records written before it: the default. Read leniently (see
    /// [`lenient_context`]).
    #[serde(default, deserialize_with = "lenient_context")]
    context: SessionContext,
}

/// The fields of a [`StoredSession`] that make its [`SessionHead`]; the rest of the record is
/// skipped unread (no IdP tokens decoded, no context built).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredHead {
    user_id: String,
    app_id: String,
    provider_id: String,
    created_at: i64,
    expires_at: i64,
}

/// Reads the record's `context`, as written by idgate or as the refresh scripts leave it: they
/// decode and re-encode the record with Redis' cjson, which writes an empty list (`amr: []`)
/// as an empty object (`{}`) — read back here as the empty list it was.
fn lenient_context<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SessionContext, D::Error> {
    let mut value = serde_json::Value::deserialize(d)?;
    if let Some(amr) = value.get_mut("amr") {
        if amr.as_object().is_some_and(serde_json::Map::is_empty) {
            *amr = serde_json::Value::Array(Vec::new());
        }
    }
    if value.is_null() {
        return Ok(SessionContext::default());
    }
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

impl RedisStore {
    pub(super) async fn read_session(
        &self,
        conn: &mut Conn,
        sid: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let (record, revoked, idp_tokens): (Option<String>, Option<String>, Option<String>) =
            redis::cmd("HMGET")
                .arg(self.session_key(sid))
                .arg("record")
                .arg("revoked")
                .arg("idpTokens")
                .query_async(conn)
                .await
                .map_err(unavailable)?;
        record
            .map(|record| decode_session(sid, &record, revoked.is_some(), idp_tokens.as_deref()))
            .transpose()
    }

    /// The session's record (JSON, without the IdP tokens) and whether it is flagged revoked.
    pub(super) async fn read_stored(
        &self,
        conn: &mut Conn,
        sid: &str,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let (record, revoked): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.session_key(sid))
            .arg("record")
            .arg("revoked")
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        Ok(record.map(|record| (record, revoked.is_some())))
    }

    /// Flags `sid` revoked, drops it from its user's set and tells every instance; `true` when
    /// this call did it.
    pub(super) async fn revoke_in(&self, conn: &mut Conn, sid: &str) -> Result<bool, StoreError> {
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
                self.forget_member(conn, &self.user_key(&s.user_id), sid)
                    .await?;
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
}

/// The head of a stored session: the rest of the record is skipped unread.
pub(super) fn decode_head(record: &str, revoked: bool) -> Result<SessionHead, StoreError> {
    let s: StoredHead = serde_json::from_str(record).map_err(|e| corrupt("session", e))?;
    Ok(SessionHead {
        user_id: s.user_id,
        app_id: s.app_id,
        provider_id: s.provider_id,
        created_at: s.created_at,
        expires_at: s.expires_at,
        revoked,
    })
}

/// A session from its hash's fields: the record, the revocation flag, the IdP tokens (the
/// `idpTokens` field; inside the record in sessions written before it).
fn decode_session(
    sid: &str,
    record: &str,
    revoked: bool,
    idp_tokens: Option<&str>,
) -> Result<SessionRecord, StoreError> {
    let s: StoredSession = serde_json::from_str(record).map_err(|e| corrupt("session", e))?;
    let sealed = match idp_tokens {
        Some(apart) if s.idp_tokens.is_empty() => apart,
        _ => &s.idp_tokens,
    };
    let idp_tokens = B64
        .decode(sealed)
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
        context: s.context,
    })
}

/// A session's record (JSON) and its IdP tokens (sealed, base64; empty when it has none), the
/// two fields [`PUT_SESSION`] stores.
fn encode_session(s: &SessionRecord) -> Result<(String, String), StoreError> {
    let record = serde_json::to_string(&StoredSession {
        user_id: s.user_id.clone(),
        app_id: s.app_id.clone(),
        provider_id: s.provider_id.clone(),
        created_at: s.created_at,
        expires_at: s.expires_at,
        refresh_hash: s.refresh_hash.clone(),
        idp_tokens: String::new(),
        context: s.context.clone(),
    })
    .map_err(|e| corrupt("session", e))?;
    Ok((record, B64.encode(&s.idp_tokens)))
}

#[async_trait]
impl Sessions for RedisStore {
    async fn create_session(
        &self,
        s: &SessionRecord,
        max_per_user: usize,
    ) -> Result<Vec<String>, StoreError> {
        let (record, idp_tokens) = encode_session(s)?;
        self.bounded("storing a session", async {
            let mut conn = self.backend.conn().await?;
            PUT_SESSION
                .key(self.session_key(&s.sid))
                .arg(&record)
                .arg(if s.revoked { "1" } else { "0" })
                .arg(s.expires_at)
                .arg(&idp_tokens)
                .invoke_async::<()>(&mut conn)
                .await
                .map_err(unavailable)?;
            if s.revoked {
                return Ok(Vec::new());
            }
            self.add_within_cap(&mut conn, s, max_per_user).await
        })
        .await
    }

    async fn get_session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.bounded(
            "reading a session",
            self.backend
                .read(|mut conn| async move { (self.read_session(&mut conn, sid).await, conn) }),
        )
        .await
    }

    async fn session_head(&self, sid: &str) -> Result<Option<SessionHead>, StoreError> {
        let stored = if self.backend.is_cluster() {
            let read = self
                .backend
                .read(|mut conn| async move { (self.read_stored(&mut conn, sid).await, conn) });
            // Boxed: the future of the read outside cluster mode (the cold path's) stays small.
            Box::pin(self.bounded("reading a session", read)).await?
        } else {
            // Answered by its deadline: the reads' task keeps it (`head_reads.rs`).
            let read = self.heads.read(self.session_key(sid)).await;
            named("reading a session", read)?
        };
        stored
            .map(|(record, revoked)| decode_head(&record, revoked))
            .transpose()
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
        self.touch_sessions(&[(sid.to_owned(), at)]).await
    }

    /// All at once on one connection (checked once), never a round trip (or a check) each:
    /// [`TOUCH_CHUNK`] sessions to a script call, the calls pipelined on the multiplexed
    /// connection. In cluster mode one session to a call, since two sessions' keys may live
    /// in different slots.
    async fn touch_sessions(&self, touches: &[(String, i64)]) -> Result<(), StoreError> {
        let chunk = if self.backend.is_cluster() {
            1
        } else {
            TOUCH_CHUNK
        };
        self.bounded("recording session activity", async {
            let conn = self.backend.conn().await?;
            futures_util::future::join_all(touches.chunks(chunk).map(|batch| {
                let mut conn = conn.clone();
                let mut call = TOUCH.prepare_invoke();
                for (sid, at) in batch {
                    // Kept a day past the last activity: longer than any sensible idle timeout.
                    call.key(format!("{}:activity:{sid}", self.scope)).arg(*at);
                }
                async move {
                    call.invoke_async::<()>(&mut conn)
                        .await
                        .map_err(unavailable)
                }
            }))
            .await
            .into_iter()
            .collect()
        })
        .await
    }

    async fn last_activity(&self, sid: &str) -> Result<Option<i64>, StoreError> {
        let key = format!("{}:activity:{sid}", self.scope);
        self.bounded(
            "reading session activity",
            self.backend.read(|mut conn| async {
                let seen = redis::cmd("GET").arg(&key).query_async(&mut conn).await;
                (seen.map_err(unavailable), conn)
            }),
        )
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
        self.revoke_members(user_id).await
    }

    /// Expired sessions are gone with their keys' TTL; a revoked one keeps its key, marked: so
    /// the live ones are the session keys without the mark, asked in pipelined batches (no
    /// record is read). A cluster cannot pipeline across nodes: there, the records are read.
    async fn count_live_sessions(&self, now: i64) -> Result<u64, StoreError> {
        if self.backend.is_cluster() {
            let all = self.list_sessions(None).await?;
            return Ok(count_alive(&all, now));
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
                Some(user) => self.members(&mut conn, &self.user_key(user)).await?,
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
            sort_oldest_first(&mut list);
            Ok(list)
        })
        .await
    }

    async fn follow_revocations(&self, sink: RevocationSink) {
        feed::follow(&self.backend, &self.channel(), sink).await
    }

    /// Session records expire by themselves (`EXPIREAT`); what stays behind are their entries
    /// in the users' sets: see `RedisStore::purge_sets`.
    async fn purge_expired_sessions(&self, user_id: Option<&str>) -> Result<usize, StoreError> {
        self.purge_sets(user_id).await
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
            context: SessionContext {
                client_addr: Some("192.0.2.7".into()),
                user_agent: Some("Mozilla/5.0".into()),
                acr: Some("urn:mfa".into()),
                amr: vec!["pwd".into(), "otp".into()],
                auth_time: Some(1_700_000_000),
            },
        };
        let (json, tokens) = encode_session(&s).unwrap();
        assert!(
            json.contains(r#""idpTokens":"""#),
            "the record keeps an empty idpTokens for an idgate of before the split: {json}"
        );
        assert_eq!(tokens, "AAH/");
        assert_eq!(
            decode_session("s1", &json, false, Some(&tokens)).unwrap(),
            s
        );
        assert!(
            decode_session("s1", &json, true, Some(&tokens))
                .unwrap()
                .revoked
        );
        // No IdP tokens: an empty field (not stored), read back as none.
        let none = SessionRecord {
            idp_tokens: Vec::new(),
            ..s.clone()
        };
        let (json_none, tokens_none) = encode_session(&none).unwrap();
        assert_eq!(tokens_none, "");
        assert_eq!(decode_session("s1", &json_none, false, None).unwrap(), none);
        // Written before the IdP tokens moved out of the record: they are read from it.
        let inside = r#"{"userId":"u","appId":"web","providerId":"dev","createdAt":1,"expiresAt":2,"refreshHash":"h","idpTokens":"AAH/"}"#;
        assert_eq!(
            decode_session("s1", inside, false, None)
                .unwrap()
                .idp_tokens,
            vec![0, 1, 255]
        );
        // Written before the context existed, or re-encoded by cjson (`amr` as `{}`).
        let old = r#"{"userId":"u","appId":"web","providerId":"dev","createdAt":1,"expiresAt":2,"refreshHash":"h","idpTokens":""}"#;
        assert_eq!(
            decode_session("s1", old, false, None).unwrap().context,
            SessionContext::default()
        );
        let cjson = r#"{"userId":"u","appId":"web","providerId":"dev","createdAt":1,"expiresAt":2,"refreshHash":"h","idpTokens":"","context":{"amr":{},"clientAddr":"192.0.2.7"}}"#;
        let ctx = decode_session("s1", cjson, false, None).unwrap().context;
        assert_eq!(ctx.client_addr.as_deref(), Some("192.0.2.7"));
        assert!(ctx.amr.is_empty());
        assert!(matches!(
            decode_session("s1", "{", false, None),
            Err(StoreError::Corrupt { store: "redis", .. })
        ));
        assert!(matches!(
            decode_session("s1", &json_none, false, Some("not base64!")),
            Err(StoreError::Corrupt { store: "redis", .. })
        ));
    }
}
