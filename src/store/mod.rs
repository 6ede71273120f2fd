//! Where login states, sessions and users live. Each kind of data has a trait, so the routes do
//! not know which store is configured; `embedded` (one SQLite file) implements all three.
//!
//! - `embedded`: states, sessions and users in one SQLite file;
//! - `redis`: states and sessions in Redis (standalone, Sentinel, Cluster), revocations by
//!   publish/subscribe;
//! - `mongo`: the users collection, and a durable copy of sessions beside Redis;
//! - `crud`: users behind a CRUD HTTP service.
//!
//! What MongoDB and the CRUD service share is written once: the user document (`user_doc`), the
//! login rule of a collection with record states and possible duplicates (`first_login`), and
//! the rule choosing among duplicates ([`DUPLICATE_RULE`], `duplicates`). Every store reports
//! failures as a [`StoreError`] naming it (`error`), and keeps the records of `records`. This
//! file holds the traits each store implements. The rules behind the traits are checked the same way
//! on every backend by the store contract (`tests/store_contract`).
//!
//! None of these is on the `/auth` hot path for a session already seen: see `session`.

pub mod crud;
mod duplicates;
pub mod embedded;
mod error;
mod first_login;
pub mod mongo;
mod records;
pub mod redis;
mod user_doc;

use std::sync::Arc;

use async_trait::async_trait;

pub use duplicates::{DuplicateNotes, DUPLICATE_RULE};
pub use error::StoreError;
pub(crate) use records::{count_alive, sort_oldest_first};
pub use records::{
    Identity, LoginState, SessionContext, SessionHead, SessionRecord, StepUpRequest, User,
    UserRecord,
};

/// What a store's revocation feed reports (see [`Sessions::follow_revocations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// This session was revoked (by any process).
    Revoked(String),
    /// The feed is connected and current: nothing revoked before now was missed.
    Healthy,
    /// The feed was interrupted and revocations may have been missed (e.g. a Redis reconnect):
    /// every cached verification must be forgotten. Send it before the first `Healthy` that
    /// follows the interruption.
    Lost,
}

/// Receives [`FeedEvent`]s; called from the feed's task, so it must be quick.
pub type RevocationSink = Arc<dyn Fn(FeedEvent) + Send + Sync>;

#[async_trait]
pub trait LoginStates: Send + Sync {
    async fn put_state(&self, state: &LoginState) -> Result<(), StoreError>;
    /// Removes and returns the state: a second call with the same id returns `None`.
    async fn take_state(&self, state: &str) -> Result<Option<LoginState>, StoreError>;
    /// Drops the expired states, for stores whose records do not expire by themselves; called
    /// on a timer, never on the request path, so a flood of started logins costs `/authorize`
    /// nothing. Returns how many went.
    async fn purge_expired_states(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
    /// Spends one request of the login rate-limit bucket `key` (the GCRA rule of
    /// `limits::gcra`, with these two parameters in milliseconds): `Some(Ok(()))` it passed,
    /// `Some(Err(ms))` refused, to retry after `ms`. `None`: this store does not share buckets
    /// between instances, so the caller counts in its own process.
    async fn spend(
        &self,
        _key: &str,
        _emission_ms: u64,
        _tolerance_ms: u64,
    ) -> Result<Option<Result<(), u64>>, StoreError> {
        Ok(None)
    }
}

#[async_trait]
pub trait Sessions: Send + Sync {
    /// Stores a new session; when the user then has more than `max_per_user` live sessions,
    /// revokes the oldest and returns their ids.
    async fn create_session(
        &self,
        session: &SessionRecord,
        max_per_user: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Stores many new sessions of distinct users (no cap applies): `idgate sessions mint
    /// --store-only` filling a benchmark's store with a million sessions. This default stores
    /// each as [`Self::create_session`] does, [`BULK_IN_FLIGHT`] at a time (on Redis the shared
    /// connection then sends their commands together, where one at a time each waited for its
    /// round trip); stores with a faster way override it. After a failure no more are
    /// started, and those in flight are waited for, not dropped halfway (a session stored
    /// without its place in its user's set); the first error is returned.
    async fn create_sessions(&self, sessions: &[SessionRecord]) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        let mut failed = None;
        let mut next = sessions.iter();
        loop {
            while failed.is_none() && in_flight.len() < BULK_IN_FLIGHT {
                match next.next() {
                    Some(s) => in_flight.push(self.create_session(s, usize::MAX)),
                    None => break,
                }
            }
            match in_flight.next().await {
                Some(Err(e)) => {
                    failed.get_or_insert(e);
                }
                Some(Ok(_)) => {}
                None => break,
            }
        }
        failed.map_or(Ok(()), Err)
    }
    async fn get_session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// [`Self::get_session`] cut to its [`SessionHead`], on every token's first use: the whole
    /// record, unless a store has a narrower read.
    async fn session_head(&self, sid: &str) -> Result<Option<SessionHead>, StoreError> {
        Ok(self.get_session(sid).await?.map(SessionHead::from))
    }
    /// Marks the session revoked; `false` when there was no such live session.
    async fn revoke_session(&self, sid: &str) -> Result<bool, StoreError>;
    /// The single-use step of a refresh: replaces the session's refresh-token hash with
    /// `new_hash` if it is still `old_hash` and the session is alive. `false` otherwise (a
    /// refresh token used twice, or an ended session).
    async fn rotate_refresh(
        &self,
        sid: &str,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError>;
    /// Records that the session was used at `at` (for the idle timeout; never lowers it).
    async fn touch_session(&self, sid: &str, at: i64) -> Result<(), StoreError>;
    /// [`Self::touch_session`] for many sessions (`session::activity` batches them). One by one
    /// unless a store has a faster way; stops at the first failure.
    async fn touch_sessions(&self, touches: &[(String, i64)]) -> Result<(), StoreError> {
        for (sid, at) in touches {
            self.touch_session(sid, *at).await?;
        }
        Ok(())
    }
    /// When the session was last reported used, if ever.
    async fn last_activity(&self, sid: &str) -> Result<Option<i64>, StoreError>;
    /// Revokes every session of a user and returns their ids.
    async fn revoke_user_sessions(&self, user_id: &str) -> Result<Vec<String>, StoreError>;
    async fn list_sessions(&self, user_id: Option<&str>) -> Result<Vec<SessionRecord>, StoreError>;
    /// How many sessions are alive (for `/-/metrics`); `now` is the current time, for backends
    /// whose records do not expire by themselves. This default reads them all; a backend that
    /// can count where the data lives does so.
    async fn count_live_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let all = self.list_sessions(None).await?;
        Ok(count_alive(&all, now))
    }
    /// Runs until the process ends: reports every revocation made from now on, by any process
    /// sharing the store, and [`FeedEvent::Healthy`] at least every second while the feed is
    /// current. How `/auth` stays free of I/O yet honours logouts everywhere.
    async fn follow_revocations(&self, sink: RevocationSink);
    async fn ping_sessions(&self) -> Result<(), StoreError>;
    /// Records `key` until `expires_at` (seconds since the epoch): `true` the first time,
    /// `false` while an earlier record of it lasts. Every instance sharing the store sees the
    /// same records, so a single-use token (a back-channel logout token's `jti`) is accepted
    /// once in the whole deployment. Atomic: of two simultaneous calls, one gets `true`.
    async fn remember_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError>;
    /// Drops what is left of expired sessions (of `user_id`, or of every user): the records
    /// themselves where the store keeps them past their expiry, and their entries in the
    /// per-user lists. Live and revoked-but-unexpired sessions stay (a revoked one must keep
    /// refusing its tokens until it would have expired). Returns how many entries went.
    /// `DELETE /expired-sessions`, Mia's clean-up of its users' queues; never on the request
    /// path of a login or `/auth`. The default suits a store whose records and lists expire by
    /// themselves.
    async fn purge_expired_sessions(&self, user_id: Option<&str>) -> Result<usize, StoreError> {
        let _ = user_id;
        Ok(0)
    }
    /// A refresh with a grace window, in one atomic step on the session (every instance
    /// sharing the store agrees on its outcome):
    ///
    /// - `old_hash` is the session's current refresh hash: it becomes `new_hash`; `old_hash`,
    ///   `sealed_pair` and `grace_until` are kept beside it (replacing any earlier ones), and
    ///   the session's end moves to `expires_at` when given (sliding lifetime) →
    ///   [`Rotation::Rotated`].
    /// - `old_hash` is the hash the last rotation replaced and `now < grace_until`: nothing
    ///   changes → [`Rotation::Repeated`] with the pair that rotation kept.
    /// - otherwise (used earlier, after the window, never issued, a dead session) →
    ///   [`Rotation::Refused`].
    ///
    /// The default body, for a store that keeps no grace record, is the plain
    /// [`Sessions::rotate_refresh`]: no grace and no sliding.
    async fn rotate_refresh_graced(
        &self,
        sid: &str,
        r: &RefreshRotation<'_>,
    ) -> Result<Rotation, StoreError> {
        Ok(if self.rotate_refresh(sid, r.old_hash, r.new_hash).await? {
            Rotation::Rotated
        } else {
            Rotation::Refused
        })
    }
}

/// One refresh as [`Sessions::rotate_refresh_graced`] applies it.
#[derive(Debug, Clone, Copy)]
pub struct RefreshRotation<'a> {
    /// Hash of the refresh token presented.
    pub old_hash: &'a str,
    /// Hash of the refresh token issued in its place.
    pub new_hash: &'a str,
    /// The answer issued for it (session JWT and new refresh token), sealed with a key derived
    /// from the presented refresh token (see `crypto::GraceSeal`): a store reader, who sees
    /// only the token's hash, cannot open it.
    pub sealed_pair: &'a [u8],
    /// Until when (seconds since the epoch) the presented token may be repeated.
    pub grace_until: i64,
    /// The session's new end, when the lifetime slides; `None` keeps it.
    pub expires_at: Option<i64>,
    pub now: i64,
}

/// What [`Sessions::rotate_refresh_graced`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was current; it is replaced.
    Rotated,
    /// The presented token was replaced moments ago (within the grace window): the sealed
    /// pair it was exchanged for.
    Repeated(Vec<u8>),
    /// Not current, and not a repeat within the window.
    Refused,
}

/// How many reads of single users [`Users::get_users`]'s default keeps in flight (the CRUD
/// service: one request each).
pub const GET_USERS_IN_FLIGHT: usize = 16;

/// How many sessions [`Sessions::create_sessions`]'s default stores at once (the CLI's bulk
/// fill makes several such calls at a time).
pub const BULK_IN_FLIGHT: usize = 32;

#[async_trait]
pub trait Users: Send + Sync {
    /// Finds the user by (realm, provider, provider user id) or creates it with
    /// `default_groups`; refreshes name, email and username from the IdP. One atomic step.
    async fn upsert_login(
        &self,
        identity: &Identity,
        default_groups: &[String],
    ) -> Result<User, StoreError>;
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError>;
    /// The active users among `user_ids` (as [`Users::get_user`] finds them), in any order;
    /// the others are left out. An error for any of them is the call's: the caller must not
    /// take a user for gone because the store failed (`session::refresh` revokes the gone).
    /// This default reads them one by one, [`GET_USERS_IN_FLIGHT`] at a time; stores that can
    /// read many at once override it.
    async fn get_users(&self, user_ids: &[String]) -> Result<Vec<User>, StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        // The reads made first (none starts before it is polled): a closure making them
        // inside the stream trips async_trait's lifetimes.
        let reads: Vec<_> = user_ids.iter().map(|id| self.get_user(id)).collect();
        let found: Vec<Option<User>> = futures_util::stream::iter(reads)
            .buffer_unordered(GET_USERS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }
    /// The user an IdP subject belongs to, if it ever logged in (back-channel logout).
    async fn find_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Option<User>, StoreError>;
    /// The ids of every user record holding this identity, whatever its state (trashed,
    /// deleted to the trash, draft): back-channel logout must end their sessions too, while
    /// [`Users::find_by_identity`] sees only active users. At most a few ids.
    async fn find_ids_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<String>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Replaces the user's groups; `false` when there is no such user.
    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<bool, StoreError>;
    async fn ping_users(&self) -> Result<(), StoreError>;
    /// Every record of the collection, in any state, for `idgate users doctor`; `None` when
    /// this store cannot list them.
    async fn scan_records(&self) -> Result<Option<Vec<UserRecord>>, StoreError> {
        Ok(None)
    }
    /// The kept record of a merge of duplicates gets these groups and permissions; `false`
    /// when there is no such active user. Stores that cannot hold duplicates (the embedded
    /// one: a unique constraint) keep this default, which sets the groups only.
    async fn merge_into(
        &self,
        user_id: &str,
        groups: &[String],
        _permissions: &[String],
    ) -> Result<bool, StoreError> {
        self.set_groups(user_id, groups).await
    }
    /// Moves a merged duplicate to `TRASH` (reversible in the console); `false` when it was
    /// not an active record, or when the store has no states (the default).
    async fn retire_user(&self, _user_id: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
}
