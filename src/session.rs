//! Deciding whether a session token is good, fast.
//!
//! A token seen for the first time is verified (signature, issuer, expiry) and its session is
//! looked up in the store; the result — with the identity headers already rendered — is cached
//! in memory, bounded. Later requests with the same token cost one hash lookup, one clock read
//! and one atomic load: no store, no network, no signature check.
//!
//! Logout must still win at once. Every cached entry shares a liveness flag with all other
//! entries of its session; revoking the session flips the flag, so every cached token of it dies
//! in the same instant. Revocations made by other processes arrive through the store's
//! revocation feed ([`spawn_revocation_follower`]) within a second. If the feed goes quiet (Redis
//! unreachable), cached sessions are trusted for `session.outage_grace` more, then no longer:
//! every request goes back to the store, and is refused if the store cannot answer.
//!
//! A change of a user's groups in the users store reaches the cache too, with no read of the
//! users store on a cache hit: every token carries the fingerprint of the record it was made
//! from, the sessions of a user share one record of the latest fingerprint, and [`refresh`]
//! learns it in the background; a cached token whose fingerprint is no longer the latest counts
//! as expired (a browser's is renewed at once, with the new groups).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tracing::Instrument as _;

use http::{HeaderName, HeaderValue};

use crate::headers::{IdentityHeaders, OversizedHeader, RenderedIdentity};

use crate::jwt::{Authn, Claims, JwtError, JwtKeys};
use crate::store::{FeedEvent, Sessions, StoreError};

pub mod activity;
mod cold;
pub mod refresh;
pub mod renewals;
mod token_key;
pub use cold::Miss;
pub use refresh::{spawn_user_refresher, UserLive};
pub use token_key::{token_digest, KeyedToken, TokenDigest};

/// How often expired and revoked tokens leave the cache, and stale liveness flags with them.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// The longest a session's activity goes unreported to the store while it is used (seconds):
/// how stale "last seen" may be.
pub const ACTIVITY_EVERY_SECS: i64 = 60;

/// What every cached token of one session shares: its id, whether it is alive, (for the
/// idle timeout) when it was last used here and last reported to the store, and its user's
/// record (for group changes).
#[derive(Debug)]
struct SessionLive {
    sid: Arc<str>,
    alive: AtomicBool,
    last_seen: AtomicI64,
    last_touch: AtomicI64,
    /// The user's shared record ([`refresh`]), set when the session is first read from the
    /// store; never set for a session `idgate sessions mint` opened (its groups are the
    /// administrator's, not the users store's).
    user: OnceLock<Arc<UserLive>>,
}

/// A verified session token: what `/auth` decides on and sends upstream, and nothing more.
/// The token cache holds one per token, so it is kept small (README "Memory"): the full claims
/// are read again from the token by the few endpoints that need them ([`Authenticator::claims`]).
pub struct VerifiedSession {
    exp: i64,
    /// The token's groups and permissions, which route rules read.
    pub groups: Vec<String>,
    pub permissions: Vec<String>,
    /// The app the session was opened for (from the store): it opens that app's locations only.
    app_id: Arc<str>,
    live: Arc<SessionLive>,
    /// The token's `ufp` claim (`users::fingerprint`; 0 when it has none).
    fingerprint: u64,
    /// The identity headers `/auth` answers with, or why they cannot be sent.
    identity: Result<RenderedIdentity, Box<OversizedHeader>>,
    /// How the IdP authenticated the login (`acr`, `amr`, `auth_time`), for step-up rules;
    /// boxed, and absent when the IdP said nothing, so a cached entry stays small.
    authn: Option<Box<Authn>>,
}

impl VerifiedSession {
    /// Not expired, not revoked, and made from the user's record as the store last showed it.
    pub fn is_valid(&self, now: i64) -> bool {
        now < self.exp && self.live.alive.load(Ordering::Acquire) && self.is_current()
    }

    /// Made from the user's latest record, as far as this process knows (one atomic load).
    fn is_current(&self) -> bool {
        self.live
            .user
            .get()
            .is_none_or(|u| u.accepts(self.fingerprint))
    }

    /// When the token expires (Unix seconds).
    pub fn exp(&self) -> i64 {
        self.exp
    }

    pub fn sid(&self) -> &str {
        &self.live.sid
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// How the IdP authenticated the session's login.
    pub fn authn(&self) -> &Authn {
        static NONE: Authn = Authn {
            acr: None,
            amr: Vec::new(),
            auth_time: None,
        };
        self.authn.as_deref().unwrap_or(&NONE)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("no session token")]
    NoToken,
    #[error(transparent)]
    Token(#[from] JwtError),
    #[error("session has ended")]
    SessionEnded,
    #[error("not renewed: {0}")]
    NotRenewable(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Authenticator {
    keys: JwtKeys,
    sessions: Arc<dyn Sessions>,
    /// Session activity on its way to the store, in batches.
    activity: Arc<activity::Activity>,
    identity: IdentityHeaders,
    /// Verified tokens by the token's 128-bit keyed hash ([`token_digest`]): 16 bytes a key
    /// where the token itself is 300 to 800 (and a collision is out of reach: see `token_key`).
    tokens: quick_cache::sync::Cache<TokenDigest, Arc<VerifiedSession>>,
    /// One liveness flag per session id. Weak, so the map forgets sessions whose tokens have
    /// all left the cache; a std mutex because it is touched only on cache misses and
    /// revocations, never held across an `.await`.
    flags: Mutex<HashMap<Arc<str>, Weak<SessionLive>>>,
    /// One record per user with a cached session (see [`refresh`]), weak and locked like
    /// `flags`: the refresher reads its keys once a round.
    users: Mutex<HashMap<Arc<str>, Weak<UserLive>>>,
    /// Numbers the reads of the users store, so that of two reads of one user the later wins
    /// (see [`UserLive::learn`]).
    user_reads: std::sync::atomic::AtomicU64,
    /// The configured app ids, shared by every entry of their app instead of copied.
    app_ids: Vec<Arc<str>>,
    /// `[session] idle_timeout` in seconds: a session unused this long ends.
    idle_secs: Option<i64>,
    /// The users store, read on a cache miss for a user whose record this process does not
    /// know yet (see [`refresh`]); `None`: not read (tests of the cache alone).
    users_store: Option<Arc<dyn crate::store::Users>>,
    /// The audit trail, for the sessions this process ends because their user left the users
    /// store (the other revocations are audited where they are asked for).
    audit: Option<Arc<crate::audit::Audit>>,
    /// Until when (Unix seconds) cached verifications may be trusted: the last moment the
    /// revocation feed was known current, plus the outage grace.
    feed_trusted_until: AtomicI64,
    outage_grace_secs: i64,
}

impl Authenticator {
    pub fn new(
        keys: JwtKeys,
        sessions: Arc<dyn Sessions>,
        identity: IdentityHeaders,
        capacity: usize,
        outage_grace: Duration,
    ) -> Self {
        token_key::draw_hash_key();
        Self {
            keys,
            activity: activity::Activity::new(sessions.clone()),
            sessions,
            identity,
            tokens: quick_cache::sync::Cache::new(capacity),
            flags: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            users_store: None,
            audit: None,
            user_reads: std::sync::atomic::AtomicU64::new(1),
            app_ids: Vec::new(),
            feed_trusted_until: AtomicI64::new(0),
            outage_grace_secs: outage_grace.as_secs().max(1) as i64,
            idle_secs: None,
        }
    }

    /// Ends sessions unused for `idle` (checked by `/auth`; activity is shared through the
    /// store, reported at most every quarter of `idle`).
    pub fn with_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle_secs = idle.map(|d| d.as_secs().max(1) as i64);
        self
    }

    /// Reads `users` on a cache miss for a user whose record is not known here yet.
    pub fn with_users(mut self, users: Arc<dyn crate::store::Users>) -> Self {
        self.users_store = Some(users);
        self
    }

    /// Audits the sessions ended because their user left the users store.
    pub fn with_audit(mut self, audit: Arc<crate::audit::Audit>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Revokes every session of a user the users store no longer holds as active (read on a
    /// cache miss, or by the refresher), and audits it (`revoke` by `users_store`).
    pub async fn end_user_gone(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let sids = self.revoke_user(user_id).await?;
        if let Some(audit) = &self.audit {
            for sid in &sids {
                audit.emit(|| {
                    crate::audit::Event::revoke(crate::audit::RevokedBy::UsersStore)
                        .user(user_id)
                        .session(sid)
                });
            }
        }
        Ok(sids)
    }

    /// The configured app ids (entries share them; others are copied).
    pub fn with_apps<'a>(mut self, ids: impl IntoIterator<Item = &'a String>) -> Self {
        self.app_ids = ids.into_iter().map(|id| Arc::from(id.as_str())).collect();
        self
    }

    /// Applies what the store's revocation feed reports.
    pub fn on_feed_event(&self, event: FeedEvent) {
        match event {
            FeedEvent::Revoked(sid) => self.forget_session(&sid),
            FeedEvent::Lost => self.tokens.clear(),
            FeedEvent::Healthy => {
                let until = crate::now_secs() + self.outage_grace_secs;
                self.feed_trusted_until.fetch_max(until, Ordering::AcqRel);
            }
        }
    }

    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    /// The hot path: a cached, still-valid verification of `token`, or `None`. Cached entries
    /// count only while the revocation feed is trusted.
    pub fn cached(&self, token: &str, now: i64) -> Option<Arc<VerifiedSession>> {
        self.cached_digest(&token_digest(token), now).ok()
    }

    /// [`Self::cached`] of a token whose cache key is already computed: `/auth` probes with it
    /// and hands the [`Miss`] to [`Self::authenticate_missed`], so its cold path hashes the
    /// token once and looks it up once.
    pub fn cached_keyed<'a>(
        &self,
        token: KeyedToken<'a>,
        now: i64,
    ) -> Result<Arc<VerifiedSession>, Miss<'a>> {
        self.cached_digest(token.digest(), now)
            .map_err(|entry| Miss { token, now, entry })
    }

    /// [`Self::cached`] of the token whose [`token_digest`] is `digest`: the session to serve,
    /// or, when it cannot be served as it is, its entry if there is one.
    fn cached_digest(
        &self,
        digest: &TokenDigest,
        now: i64,
    ) -> Result<Arc<VerifiedSession>, Option<Arc<VerifiedSession>>> {
        let Some(entry) = self.tokens.get(digest) else {
            return Err(None);
        };
        let servable =
            now <= self.feed_trusted_until.load(Ordering::Acquire) && entry.is_valid(now);
        let last = entry.live.last_seen.load(Ordering::Relaxed);
        // Idle here, maybe active on another instance: the slow path asks the store.
        let idle = self.idle_secs.is_some_and(|idle| now - last > idle);
        if !servable || idle {
            return Err(Some(entry));
        }
        if last != now {
            entry.live.last_seen.store(now, Ordering::Relaxed);
            self.report_activity(&entry.live, now);
        }
        Ok(entry)
    }

    /// Tells the store about this session's activity in the background (the request does not
    /// wait for it; see [`activity`]): at most every quarter of the idle timeout, and at least as often as
    /// [`ACTIVITY_EVERY_SECS`] — also without an idle timeout, so "last seen" in the user's
    /// list of sessions (`/me/sessions`) is never older than that.
    fn report_activity(&self, live: &SessionLive, now: i64) {
        let every = self.idle_secs.map_or(ACTIVITY_EVERY_SECS, |idle| {
            (idle / 4).clamp(1, ACTIVITY_EVERY_SECS)
        });
        let last_touch = live.last_touch.load(Ordering::Relaxed);
        if now - last_touch < every {
            return;
        }
        live.last_touch.store(now, Ordering::Relaxed);
        self.activity.report(&live.sid, now);
    }

    /// The full claims of a live session's token, for the endpoints that answer with them
    /// (`/userinfo`, Mia's API): the session checked as for `/auth`, then the token read again.
    pub async fn claims(&self, token: &str) -> Result<Claims, AuthFailure> {
        self.authenticate(token).await?;
        Ok(self.keys.verify(token)?)
    }

    /// A [`VerifiedSession`] for an identity with no session of idgate's behind it (an opaque
    /// API token its IdP vouched for, see `crate::introspect`): `user` rendered as a session's
    /// would be (without a token to pass on), for `app_id`, valid until `until`. Its session id
    /// is `sid` (named in audit events), its liveness flag its own: no logout reaches it, the
    /// IdP's revocation does when the entry expires.
    pub fn api_identity(
        &self,
        app_id: &str,
        sid: &str,
        user: &crate::jwt::UserClaim,
        until: i64,
    ) -> Arc<VerifiedSession> {
        let app_id = match self.app_ids.iter().find(|id| ***id == *app_id) {
            Some(id) => id.clone(),
            None => Arc::from(app_id),
        };
        Arc::new(VerifiedSession {
            exp: until,
            groups: user.groups.clone(),
            permissions: user.permissions.clone().unwrap_or_default(),
            app_id,
            live: Arc::new(SessionLive {
                sid: Arc::from(sid),
                alive: AtomicBool::new(true),
                last_seen: AtomicI64::new(0),
                last_touch: AtomicI64::new(0),
                user: OnceLock::new(),
            }),
            fingerprint: 0,
            identity: self.identity.render(user, "").map_err(Box::new),
            authn: None,
        })
    }

    /// The identity headers of `session` for `/auth`'s answer, or why they cannot be sent.
    pub fn identity_headers<'a>(
        &'a self,
        session: &'a VerifiedSession,
    ) -> Result<impl Iterator<Item = (HeaderName, HeaderValue)> + 'a, &'a OversizedHeader> {
        match &session.identity {
            Ok(rendered) => Ok(self.identity.headers(rendered)),
            Err(e) => Err(e),
        }
    }

    /// The names of the identity headers a session's answer carries (`/forward-auth` sends
    /// them empty for an anonymous request, so that no gateway keeps a client's own).
    pub fn identity_header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.identity.names()
    }

    /// Drops a token from the cache (a renewed token, whose successor replaces it).
    pub fn forget_token(&self, token: &str) {
        self.tokens.remove(&token_digest(token));
    }

    /// Drops the cached tokens that can no longer be used (expired or revoked), then the flags
    /// no cached token refers to: the cache holds what is live, not what it once saw.
    pub fn purge(&self, now: i64) {
        self.tokens.retain(|_, s| s.is_valid(now));
        self.prune_flags();
    }

    fn flag(&self, sid: &str) -> Arc<SessionLive> {
        let fresh = |alive: bool| {
            Arc::new(SessionLive {
                sid: Arc::from(sid),
                alive: AtomicBool::new(alive),
                last_seen: AtomicI64::new(0),
                // Never reported here yet: the first use is reported at once.
                last_touch: AtomicI64::new(0),
                user: OnceLock::new(),
            })
        };
        let Ok(mut flags) = self.flags.lock() else {
            return fresh(false);
        };
        if let Some(f) = flags.get(sid).and_then(Weak::upgrade) {
            return f;
        }
        let f = fresh(true);
        flags.insert(f.sid.clone(), Arc::downgrade(&f));
        f
    }

    /// Makes every cached token of `sid` invalid in this process, now.
    pub fn forget_session(&self, sid: &str) {
        if let Ok(flags) = self.flags.lock() {
            if let Some(f) = flags.get(sid).and_then(Weak::upgrade) {
                f.alive.store(false, Ordering::Release);
            }
        }
    }

    /// Revokes the session in the store (which tells other processes) and here.
    pub async fn revoke(&self, sid: &str) -> Result<bool, StoreError> {
        self.forget_session(sid);
        self.sessions
            .revoke_session(sid)
            .instrument(crate::telemetry::store_span("revoke_session"))
            .await
    }

    /// Revokes every session of a user in the store (which tells other processes) and here;
    /// returns their ids.
    pub async fn revoke_user(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let revoked = self.sessions.revoke_user_sessions(user_id).await?;
        for sid in &revoked {
            self.forget_session(sid);
        }
        Ok(revoked)
    }

    /// Drops flags (and user records) no cached token refers to any more.
    fn prune_flags(&self) {
        if let Ok(mut flags) = self.flags.lock() {
            flags.retain(|_, f| f.strong_count() > 0);
        }
        if let Ok(mut users) = self.users.lock() {
            users.retain(|_, u| u.strong_count() > 0);
        }
    }
}

/// Follows the store's revocation feed so logouts made elsewhere (another instance, the CLI)
/// invalidate this process's cache; also purges the cache of dead tokens.
/// Returns the tasks' handles, so a reload can stop them when their state is retired.
pub fn spawn_revocation_follower(
    auth: Arc<Authenticator>,
    sessions: Arc<dyn Sessions>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let sink_auth = auth.clone();
    let follower = tokio::spawn(async move {
        sessions
            .follow_revocations(Arc::new(move |event| sink_auth.on_feed_event(event)))
            .await;
    });
    let pruner = tokio::spawn(async move {
        loop {
            tokio::time::sleep(PRUNE_INTERVAL).await;
            auth.purge(crate::now_secs());
        }
    });
    vec![follower, pruner]
}

#[cfg(test)]
mod tests;
