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
//! failures as a [`StoreError`] naming it. The rules behind the traits are checked the same way
//! on every backend by the store contract (`tests/store_contract`).
//!
//! None of these is on the `/auth` hot path for a session already seen: see `session`.

pub mod crud;
mod duplicates;
pub mod embedded;
mod first_login;
pub mod mongo;
pub mod redis;
mod user_doc;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

pub use duplicates::{DuplicateNotes, DUPLICATE_RULE};

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

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or answered with an error; `store` names it.
    #[error("{store} is unavailable: {message}")]
    Unavailable {
        store: &'static str,
        message: String,
    },
    #[error("{store} holds a record it cannot read: {message}")]
    Corrupt {
        store: &'static str,
        message: String,
    },
    /// The store holds the user, but not as an active one (e.g. MongoDB `__STATE__` other than
    /// `PUBLIC`): the login is refused, not answered with a second user.
    #[error("{store} refused the login: {message}")]
    Refused {
        store: &'static str,
        message: String,
    },
}

impl StoreError {
    /// `store` could not be reached, or answered with an error: how every store says so.
    pub(crate) fn unavailable(store: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            store,
            message: message.to_string(),
        }
    }

    /// `store` holds a record that does not read as what it should be.
    pub(crate) fn corrupt(store: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            store,
            message: message.to_string(),
        }
    }

    /// Which store failed, for messages that must not carry more (response bodies).
    pub fn store(&self) -> &'static str {
        match self {
            Self::Unavailable { store, .. }
            | Self::Corrupt { store, .. }
            | Self::Refused { store, .. } => store,
        }
    }

    /// The same error, its store named by its role as well (`users store (mongodb)`): what a
    /// person refused at login, or an operator reading `/-/ready`, needs to know is down.
    pub fn of_users_store(self) -> Self {
        fn role(store: &'static str) -> &'static str {
            match store {
                "mongodb" => "users store (mongodb)",
                "crud service" => "users store (crud service)",
                "embedded store" => "users store (embedded)",
                other => other,
            }
        }
        match self {
            Self::Unavailable { store, message } => Self::Unavailable {
                store: role(store),
                message,
            },
            Self::Corrupt { store, message } => Self::Corrupt {
                store: role(store),
                message,
            },
            Self::Refused { store, message } => Self::Refused {
                store: role(store),
                message,
            },
        }
    }
}

/// A login in progress, from `/authorize` to `/oauth/token`: single use, short-lived.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginState {
    pub state: String,
    pub app_id: String,
    pub provider_id: String,
    pub redirect: String,
    /// The `state` the client passed to `/authorize`, handed back untouched.
    pub client_state: Option<String>,
    pub pkce_verifier: String,
    pub nonce: String,
    /// Hash of the `idgate_login` cookie of the browser that started the login.
    pub binding_hash: String,
    pub expires_at: i64,
    /// What the login asked the IdP for beyond a plain login (step-up), to check its answer.
    pub step_up: StepUpRequest,
}

/// What a login asks the identity provider for beyond a plain login, for a route that needs a
/// stronger or more recent authentication (step-up, RFC 9470; OIDC Core §3.1.2.1): the
/// `acr_values` (any of), a `max_age` in seconds, and `prompt=login`. The IdP's id_token must
/// then show an `acr` among the values and an `auth_time` within the age.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StepUpRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prompt_login: bool,
    /// The session this login steps up (the browser's, live when the login started): the
    /// login must be of the same user, and its new session replaces this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl StepUpRequest {
    pub fn is_empty(&self) -> bool {
        self.acr_values.is_empty()
            && self.max_age.is_none()
            && !self.prompt_login
            && self.replaces.is_none()
    }

    /// As a store keeps it: JSON, or nothing when nothing more was asked.
    pub fn to_json(&self) -> Result<Option<String>, serde_json::Error> {
        if self.is_empty() {
            return Ok(None);
        }
        serde_json::to_string(self).map(Some)
    }

    /// Read back from [`StepUpRequest::to_json`]'s form. Unreadable is an error, never
    /// "nothing asked": the login's answer would then be checked against less than was asked.
    pub fn from_json(stored: Option<&str>) -> Result<Self, serde_json::Error> {
        stored.map_or(Ok(Self::default()), serde_json::from_str)
    }
}

/// A session as stored: what `/auth` needs to know it is alive, and the IdP's tokens (sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub sid: String,
    pub user_id: String,
    pub app_id: String,
    pub provider_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub refresh_hash: String,
    pub idp_tokens: Vec<u8>,
    pub revoked: bool,
    /// Who opened the session and how the IdP authenticated them: what the user sees of their
    /// sessions (`/me/sessions`) and what step-up rules read. Empty for a record written
    /// before it existed.
    pub context: SessionContext,
}

/// What is known of a session's login beside the user: the client that logged in (shown back
/// to the user among their sessions) and the IdP's statement about the authentication
/// (`acr`, `amr`, `auth_time`). Every store keeps it with the session; a record stored before
/// this existed reads as the default (all empty), so a missing field is never an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SessionContext {
    /// The client's address at login, as the trusted proxy forwarded it (see
    /// `http::client::ClientInfo`).
    pub client_addr: Option<String>,
    /// The client's `User-Agent` at login, cut and cleaned (see `http::client`).
    pub user_agent: Option<String>,
    /// The authentication context class the IdP asserted (`acr` of the id_token).
    pub acr: Option<String>,
    /// The authentication methods the IdP asserted (`amr` of the id_token).
    pub amr: Vec<String>,
    /// When the user authenticated at the IdP (`auth_time`, seconds since the epoch).
    pub auth_time: Option<i64>,
}

impl SessionRecord {
    pub fn is_alive(&self, now: i64) -> bool {
        !self.revoked && now < self.expires_at
    }
}

/// The part of a [`SessionRecord`] that decides whether a token of the session is accepted:
/// what `/auth` reads on a token's first use (`session::Authenticator::authenticate`), without
/// the IdP's tokens, the refresh hash or the context, which it never looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHead {
    pub user_id: String,
    pub app_id: String,
    pub provider_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

impl SessionHead {
    pub fn is_alive(&self, now: i64) -> bool {
        !self.revoked && now < self.expires_at
    }
}

impl From<SessionRecord> for SessionHead {
    fn from(r: SessionRecord) -> Self {
        Self {
            user_id: r.user_id,
            app_id: r.app_id,
            provider_id: r.provider_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked: r.revoked,
        }
    }
}

/// The order of [`Sessions::list_sessions`] for stores that gather sessions from several
/// places: oldest first, then by id.
pub(crate) fn sort_oldest_first(sessions: &mut [SessionRecord]) {
    sessions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.sid.cmp(&b.sid)));
}

/// How many of `sessions` are alive at `now`.
pub(crate) fn count_alive(sessions: &[SessionRecord], now: i64) -> u64 {
    sessions.iter().filter(|s| s.is_alive(now)).count() as u64
}

/// A user of the project: identity from the IdP, everything else owned by the project.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: String,
    pub realm: String,
    pub provider_id: String,
    pub provider_user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub groups: Vec<String>,
    pub permissions: Vec<String>,
    pub metadata: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One record of the users collection as `idgate users doctor` sees it: any state, with
/// whatever identity fields it has (a record without them cannot log in).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub user_id: String,
    /// `__STATE__` (`PUBLIC` in stores without states).
    pub state: String,
    pub realm: Option<String>,
    pub provider_id: Option<String>,
    pub provider_user_id: Option<String>,
    pub groups: Vec<String>,
    pub permissions: Vec<String>,
    /// Why the record cannot be read as a user, if it cannot.
    pub problem: Option<String>,
}

/// What the IdP says about the user at login.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub realm: String,
    pub provider_id: String,
    pub provider_user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
}

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
