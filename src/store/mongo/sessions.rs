//! The durable copy of sessions in MongoDB, beside a primary store (Redis in production), so a
//! primary that restarts empty loses no session.
//!
//! Documents: `{ _id: sid, userId, appId, providerId, createdAt: Date, expiresAt: Date,
//! refreshHash, idpTokens: Binary, revoked, context: { clientAddr, userAgent, acr, amr,
//! authTime } }` (a copy without `context`, written before it existed, reads as an empty one),
//! with a TTL index on `expiresAt` (MongoDB drops a session once it has expired) and an index
//! on `userId`.
//!
//! - **create**: MongoDB first, then the primary. A MongoDB failure therefore leaves nothing
//!   anywhere; a primary failure deletes the copy just written. (Writing the primary first would
//!   need a delete the [`Sessions`] trait does not offer: the best undo there is a revocation,
//!   which leaves a dead record and a spurious revocation event behind.)
//! - **get**: the primary; on a miss, MongoDB, and a live session found there is restored into
//!   the primary (with no per-user cap, so restoring never evicts anything).
//! - **revoke**: a session only MongoDB holds is restored first, so the primary's revocation
//!   feed announces the revocation to every instance; then MongoDB, then the primary.
//! - **list**: both, the primary's record winning for a session both hold.
//! - the revocation feed is the primary's, and so are `remember_once` records; ping checks both.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use super::{date, Redactor, STORE};
use crate::store::{
    sort_oldest_first, RefreshRotation, RevocationSink, Rotation, SessionContext, SessionHead,
    SessionRecord, Sessions, StoreError,
};

/// The cap passed to the primary when restoring: no cap at all, yet small enough that any
/// store's integer conversion of it stays positive (`usize::MAX` reads as -1 in SQLite).
const NO_CAP: usize = u32::MAX as usize;

pub(super) struct MirroredSessions {
    primary: Arc<dyn Sessions>,
    copies: Collection<Document>,
    redactor: Redactor,
    /// Set once the TTL and user indexes are known to exist.
    indexes_ready: AtomicBool,
}

fn to_doc(s: &SessionRecord) -> Document {
    doc! {
        "_id": &s.sid,
        "userId": &s.user_id,
        "appId": &s.app_id,
        "providerId": &s.provider_id,
        "createdAt": date(s.created_at),
        "expiresAt": date(s.expires_at),
        "refreshHash": &s.refresh_hash,
        "idpTokens": Binary { subtype: BinarySubtype::Generic, bytes: s.idp_tokens.clone() },
        "revoked": s.revoked,
        "context": context_doc(&s.context),
    }
}

/// The session's context as a subdocument (`{clientAddr, userAgent, acr, amr, authTime}`).
fn context_doc(c: &SessionContext) -> Document {
    let opt = |v: &Option<String>| v.as_deref().map_or(Bson::Null, |s| Bson::String(s.into()));
    doc! {
        "clientAddr": opt(&c.client_addr),
        "userAgent": opt(&c.user_agent),
        "acr": opt(&c.acr),
        "amr": c.amr.iter().map(|m| Bson::String(m.clone())).collect::<Vec<_>>(),
        "authTime": c.auth_time.map_or(Bson::Null, Bson::Int64),
    }
}

/// The `context` subdocument; missing (a copy written before it existed) reads as the default.
fn context_from(d: &Document) -> Result<SessionContext, StoreError> {
    let bad = || StoreError::corrupt(STORE, "a session copy has no usable `context`");
    let c = match d.get("context") {
        None | Some(Bson::Null) => return Ok(SessionContext::default()),
        Some(Bson::Document(c)) => c,
        Some(_) => return Err(bad()),
    };
    let text = |field: &str| match c.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad()),
    };
    Ok(SessionContext {
        client_addr: text("clientAddr")?,
        user_agent: text("userAgent")?,
        acr: text("acr")?,
        amr: match c.get("amr") {
            None | Some(Bson::Null) => Vec::new(),
            Some(Bson::Array(a)) => a
                .iter()
                .map(|m| m.as_str().map(str::to_owned).ok_or_else(bad))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad()),
        },
        auth_time: match c.get("authTime") {
            None | Some(Bson::Null) => None,
            Some(Bson::Int64(t)) => Some(*t),
            Some(Bson::Int32(t)) => Some(i64::from(*t)),
            Some(_) => return Err(bad()),
        },
    })
}

fn from_doc(d: &Document) -> Result<SessionRecord, StoreError> {
    let bad =
        |field: &str| StoreError::corrupt(STORE, format!("a session copy has no usable `{field}`"));
    let text = |field: &str| d.get_str(field).map(str::to_owned).map_err(|_| bad(field));
    let secs = |field: &str| {
        d.get_datetime(field)
            .map(|t| t.timestamp_millis().div_euclid(1000))
            .map_err(|_| bad(field))
    };
    Ok(SessionRecord {
        sid: text("_id")?,
        user_id: text("userId")?,
        app_id: text("appId")?,
        provider_id: text("providerId")?,
        created_at: secs("createdAt")?,
        expires_at: secs("expiresAt")?,
        refresh_hash: text("refreshHash")?,
        idp_tokens: match d.get("idpTokens") {
            Some(Bson::Binary(b)) => b.bytes.clone(),
            _ => return Err(bad("idpTokens")),
        },
        revoked: d.get_bool("revoked").map_err(|_| bad("revoked"))?,
        context: context_from(d)?,
    })
}

impl MirroredSessions {
    pub(super) fn new(
        primary: Arc<dyn Sessions>,
        copies: Collection<Document>,
        redactor: Redactor,
    ) -> Self {
        Self {
            primary,
            copies,
            redactor,
            indexes_ready: AtomicBool::new(false),
        }
    }

    fn err(&self, e: mongodb::error::Error) -> StoreError {
        self.redactor.unavailable(e)
    }

    async fn ensure_indexes(&self) -> Result<(), StoreError> {
        if self.indexes_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let ttl = IndexModel::builder()
            .keys(doc! { "expiresAt": 1 })
            .options(
                IndexOptions::builder()
                    .name("idgate_sessions_ttl".to_owned())
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build();
        let by_user = IndexModel::builder()
            .keys(doc! { "userId": 1 })
            .options(
                IndexOptions::builder()
                    .name("idgate_sessions_user".to_owned())
                    .build(),
            )
            .build();
        self.copies
            .create_indexes([ttl, by_user])
            .await
            .map_err(|e| self.err(e))?;
        self.indexes_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Creates the indexes now if MongoDB answers; otherwise they are created on first use.
    pub(super) async fn ensure_indexes_logged(&self) {
        if let Err(e) = self.ensure_indexes().await {
            tracing::warn!(error = %e, "the session copies' indexes are not in place yet");
        }
    }

    /// The copies matching `filter`.
    async fn copies_where(&self, filter: Document) -> Result<Vec<SessionRecord>, StoreError> {
        let docs: Vec<Document> = self
            .copies
            .find(filter)
            .await
            .map_err(|e| self.err(e))?
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        docs.iter().map(from_doc).collect()
    }

    async fn copy_of(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        match self
            .copies
            .find_one(doc! { "_id": sid })
            .await
            .map_err(|e| self.err(e))?
        {
            Some(d) => from_doc(&d).map(Some),
            None => Ok(None),
        }
    }

    /// Puts a live copy back into the primary. A failure is logged, not returned: the caller
    /// still has the record, and the next lookup tries again.
    async fn restore(&self, rec: &SessionRecord) {
        match self.primary.create_session(rec, NO_CAP).await {
            Ok(_) => tracing::info!(user = %rec.user_id, "session restored from its MongoDB copy"),
            Err(e) => {
                tracing::warn!(error = %e, user = %rec.user_id, "cannot restore a session from its MongoDB copy")
            }
        }
    }

    /// Deletes the copy of `sid`; used to undo a create.
    async fn delete_copy(&self, sid: &str) {
        if let Err(e) = self.copies.delete_one(doc! { "_id": sid }).await {
            tracing::error!(error = %self.redactor.clean(e), "cannot delete a half-created session copy");
        }
    }
}

#[async_trait]
impl Sessions for MirroredSessions {
    async fn create_session(
        &self,
        s: &SessionRecord,
        max_per_user: usize,
    ) -> Result<Vec<String>, StoreError> {
        if let Err(e) = self.ensure_indexes().await {
            tracing::warn!(error = %e, "the session copies' indexes are not in place yet");
        }
        self.copies
            .insert_one(to_doc(s))
            .await
            .map_err(|e| self.err(e))?;
        let evicted = match self.primary.create_session(s, max_per_user).await {
            Ok(evicted) => evicted,
            Err(e) => {
                self.delete_copy(&s.sid).await;
                return Err(e);
            }
        };
        if !evicted.is_empty() {
            if let Err(e) = self
                .copies
                .update_many(
                    doc! { "_id": { "$in": &evicted } },
                    doc! { "$set": { "revoked": true } },
                )
                .await
            {
                // The evicted sessions are revoked in the primary, but their copies would come
                // back alive after a primary restart: undo the whole create instead.
                if let Err(undo) = self.primary.revoke_session(&s.sid).await {
                    tracing::error!(error = %undo, "cannot undo a session in the primary");
                }
                self.delete_copy(&s.sid).await;
                return Err(self.err(e));
            }
        }
        Ok(evicted)
    }

    async fn get_session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        if let Some(rec) = self.primary.get_session(sid).await? {
            return Ok(Some(rec));
        }
        let Some(rec) = self.copy_of(sid).await? else {
            return Ok(None);
        };
        if rec.is_alive(crate::now_secs()) {
            self.restore(&rec).await;
        }
        Ok(Some(rec))
    }

    async fn session_head(&self, sid: &str) -> Result<Option<SessionHead>, StoreError> {
        if let Some(head) = self.primary.session_head(sid).await? {
            return Ok(Some(head));
        }
        Ok(self.get_session(sid).await?.map(SessionHead::from))
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        // Restores a copy-only session first, so the compare-and-set runs on the primary.
        self.get_session(sid).await?;
        if !self.primary.rotate_refresh(sid, old_hash, new_hash).await? {
            return Ok(false);
        }
        // The copy follows; if it cannot, a later restore would bring back the old hash, which
        // only makes the new refresh token fail after a primary loss — never the reverse.
        if let Err(e) = self
            .copies
            .update_one(
                doc! { "_id": sid },
                doc! { "$set": { "refreshHash": new_hash } },
            )
            .await
        {
            tracing::warn!(error = %self.err(e), "the MongoDB copy of a session kept its previous refresh hash");
        }
        Ok(true)
    }

    async fn rotate_refresh_graced(
        &self,
        sid: &str,
        r: &RefreshRotation<'_>,
    ) -> Result<Rotation, StoreError> {
        // The decision is the primary's (atomic there, shared by every instance); the grace
        // record is short-lived and stays there. Restores a copy-only session first.
        self.get_session(sid).await?;
        let outcome = self.primary.rotate_refresh_graced(sid, r).await?;
        if outcome != Rotation::Rotated {
            return Ok(outcome);
        }
        let mut set = doc! { "refreshHash": r.new_hash };
        if let Some(until) = r.expires_at {
            set.insert("expiresAt", date(until));
        }
        // As in `rotate_refresh`: a copy left behind only makes the new token fail after a
        // primary loss (and a slid session end early), never the reverse.
        if let Err(e) = self
            .copies
            .update_one(doc! { "_id": sid }, doc! { "$set": set })
            .await
        {
            tracing::warn!(error = %self.err(e), "the MongoDB copy of a session kept its previous refresh hash");
        }
        Ok(outcome)
    }

    async fn touch_session(&self, sid: &str, at: i64) -> Result<(), StoreError> {
        self.primary.touch_session(sid, at).await
    }

    async fn touch_sessions(&self, touches: &[(String, i64)]) -> Result<(), StoreError> {
        self.primary.touch_sessions(touches).await
    }

    async fn last_activity(&self, sid: &str) -> Result<Option<i64>, StoreError> {
        self.primary.last_activity(sid).await
    }

    /// The primary's records: short-lived, shared by every instance, nothing to keep durable.
    async fn remember_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        self.primary.remember_once(key, expires_at).await
    }

    /// The copies' TTL index drops expired documents within a minute or so; this drops them at
    /// once (same filter), then asks the primary to clean up after itself.
    async fn purge_expired_sessions(&self, user_id: Option<&str>) -> Result<usize, StoreError> {
        let mut filter = doc! { "expiresAt": { "$lte": date(crate::now_secs()) } };
        if let Some(u) = user_id {
            filter.insert("userId", u);
        }
        let copies = self
            .copies
            .delete_many(filter)
            .await
            .map_err(|e| self.err(e))?;
        let primary = self.primary.purge_expired_sessions(user_id).await?;
        Ok(primary + copies.deleted_count as usize)
    }

    async fn revoke_session(&self, sid: &str) -> Result<bool, StoreError> {
        // Restores a copy-only session, so the primary's revocation feed carries this one.
        self.get_session(sid).await?;
        let copy = self
            .copies
            .update_one(
                doc! { "_id": sid, "revoked": false },
                doc! { "$set": { "revoked": true } },
            )
            .await
            .map_err(|e| self.err(e))?;
        let primary = self.primary.revoke_session(sid).await?;
        Ok(primary || copy.modified_count > 0)
    }

    async fn revoke_user_sessions(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let live = self
            .copies_where(doc! {
                "userId": user_id,
                "revoked": false,
                "expiresAt": { "$gt": date(crate::now_secs()) },
            })
            .await?;
        let mut sids = Vec::new();
        for rec in live {
            if self.primary.get_session(&rec.sid).await?.is_none() {
                self.restore(&rec).await;
            }
            sids.push(rec.sid);
        }
        self.copies
            .update_many(
                doc! { "userId": user_id, "revoked": false },
                doc! { "$set": { "revoked": true } },
            )
            .await
            .map_err(|e| self.err(e))?;
        sids.extend(self.primary.revoke_user_sessions(user_id).await?);
        sids.sort();
        sids.dedup();
        Ok(sids)
    }

    async fn list_sessions(&self, user_id: Option<&str>) -> Result<Vec<SessionRecord>, StoreError> {
        let filter = match user_id {
            Some(u) => doc! { "userId": u },
            None => Document::new(),
        };
        let mut all = BTreeMap::new();
        for rec in self.copies_where(filter).await? {
            all.insert(rec.sid.clone(), rec);
        }
        for rec in self.primary.list_sessions(user_id).await? {
            all.insert(rec.sid.clone(), rec);
        }
        let mut list: Vec<SessionRecord> = all.into_values().collect();
        sort_oldest_first(&mut list);
        Ok(list)
    }

    async fn follow_revocations(&self, sink: RevocationSink) {
        self.primary.follow_revocations(sink).await
    }

    async fn ping_sessions(&self) -> Result<(), StoreError> {
        self.primary.ping_sessions().await?;
        self.copies
            .client()
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| self.err(e))?;
        self.ensure_indexes_logged().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_survives_the_round_trip_through_bson() {
        let rec = SessionRecord {
            sid: "s1".into(),
            user_id: "u".into(),
            app_id: "web".into(),
            provider_id: "dev".into(),
            created_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            refresh_hash: "h".into(),
            idp_tokens: vec![1, 2, 3],
            revoked: false,
            context: SessionContext {
                client_addr: Some("2001:db8::1".into()),
                user_agent: Some("curl/8".into()),
                acr: None,
                amr: vec!["pwd".into()],
                auth_time: Some(1_700_000_000),
            },
        };
        assert_eq!(from_doc(&to_doc(&rec)).unwrap(), rec);
        // A copy written before the context existed.
        let mut old = to_doc(&rec);
        old.remove("context");
        assert_eq!(from_doc(&old).unwrap().context, SessionContext::default());
        let mut garbled = to_doc(&rec);
        garbled.insert("context", "x");
        assert!(from_doc(&garbled).is_err());
    }
}
