//! Group changes that reach live sessions within `[users] refresh_interval`, with no I/O when
//! `/auth` answers from its token cache.
//!
//! # Design
//!
//! A session token is a snapshot of the user's record: its groups, permissions and metadata.
//! Each token carries the fingerprint of that record (the `ufp` claim, `users::fingerprint`),
//! set wherever a token is made from the store (login, silent renewal, `/refreshtoken`).
//!
//! Each process keeps one [`UserLive`] per user with a cached session, shared by all of that
//! user's sessions (and dropped with the last of them). It holds the fingerprint the users
//! store last showed for the user, or 0 before the first read. `/auth` compares it with the
//! token's, one atomic load, in `VerifiedSession::is_valid`: a token made from an older record
//! counts as **expired**. A browser's expired token is renewed by `/auth` at once (`renewal`),
//! re-reading the record: the same request already carries the new groups. An API client gets
//! 401 and calls `/refreshtoken`, which re-reads the record too.
//!
//! A background task per process ([`spawn_user_refresher`]) learns the fingerprints: every
//! `refresh_interval` it reads the records of the users with a cached session here, in
//! batches where the store can (`Users::get_users`: MongoDB 500 a query; the CRUD service one
//! request a user, 16 in flight), oldest-checked first and at most [`MAX_USERS_PER_ROUND`] per
//! round. So a change made by any writer (the CLI, MongoDB written directly, the CRUD service)
//! reaches every instance within one interval plus the time of a round, as long as an instance
//! holds fewer active users than the cap (beyond it, each user is checked every
//! `ceil(users / cap)` rounds, and the log says so once).
//!
//! - A user not known here yet — first seen, or forgotten since its last token left the cache
//!   — is read from the users store on its cache miss (which reads the session store anyway),
//!   for at most [`MISS_READ_TIMEOUT`]: a token made before a change this process never saw
//!   does not pass for another interval. If the store cannot say in time, the token passes and
//!   the next round decides (the users store being down does not take `/auth` down with it).
//! - A user the store no longer returns (deleted, or no longer `PUBLIC`) has every session
//!   revoked (`Authenticator::revoke_user`), on every instance through the revocation feed.
//! - A store that fails leaves everything as it was for that round, logged once until it
//!   answers again: an error never revokes anything.
//! - Tokens without a fingerprint (made before it existed) count as changed once the user's
//!   record is read, and are renewed once.
//! - Sessions `idgate sessions mint` opened are not followed: their groups were given by an
//!   administrator, not read from the store.
//!
//! Reads race: a renewal or login that read the store after a refresher round began must not
//! be undone by that round. Every read takes a number first ([`Authenticator::user_read`]); a
//! fingerprint learnt from an older read than the one already held is ignored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Authenticator, SessionLive};
use crate::metrics::Metrics;
use crate::store::{StoreError, User, Users};

/// The most user records one round reads. At the default interval (60 s) that is about 170
/// records a second at most, in batches (`Users::get_users`).
pub const MAX_USERS_PER_ROUND: usize = 10_000;

/// How long a cache miss waits for the users store to read a user not known here yet (see
/// `Authenticator::check_record`).
pub const MISS_READ_TIMEOUT: Duration = Duration::from_millis(500);

/// What a cache miss learns of a token from its user's record.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Made from the latest record (or the store could not say yet).
    Latest,
    /// Made from an older record: the token counts as expired (renewed for a browser).
    Stale,
    /// The user is no longer active in the users store: every session ends.
    Gone,
}

/// One user with a cached session in this process: what the users store last showed.
#[derive(Debug)]
pub struct UserLive {
    id: Arc<str>,
    /// The store's latest fingerprint for the user, 0 until the first read (every token passes).
    fingerprint: AtomicU64,
    /// The number of the read `fingerprint` came from ([`Authenticator::user_read`]); a std
    /// mutex, taken only when a fingerprint is learnt, never on `/auth`.
    read: Mutex<u64>,
    /// The fingerprint of the last token seen for the user on a cache miss (what the cached
    /// tokens were made from), for telling a change from a first read.
    seen: AtomicU64,
    /// When the refresher last read the user (Unix seconds; 0 = never): the oldest go first.
    checked_at: AtomicI64,
}

impl UserLive {
    fn new(id: &str) -> Self {
        Self {
            id: Arc::from(id),
            fingerprint: AtomicU64::new(0),
            read: Mutex::new(0),
            seen: AtomicU64::new(0),
            checked_at: AtomicI64::new(0),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a token with `fingerprint` was made from the latest record known here.
    pub fn accepts(&self, fingerprint: u64) -> bool {
        let latest = self.fingerprint.load(Ordering::Acquire);
        latest == 0 || latest == fingerprint
    }

    /// Notes the fingerprint of a token seen on a cache miss.
    fn saw(&self, fingerprint: u64) {
        self.seen.store(fingerprint, Ordering::Relaxed);
    }

    /// Learns `fingerprint`, read from the store by read number `read`, unless a later read
    /// was learnt already. Returns what was known before (0: nothing) when it was learnt.
    pub fn learn(&self, fingerprint: u64, read: u64) -> Option<u64> {
        let mut latest_read = self.read.lock().ok()?;
        if read < *latest_read {
            return None;
        }
        *latest_read = read;
        Some(self.fingerprint.swap(fingerprint, Ordering::AcqRel))
    }
}

impl Authenticator {
    /// The shared record of user `id` (made on first use).
    pub(super) fn user_live(&self, id: &str) -> Arc<UserLive> {
        let Ok(mut users) = self.users.lock() else {
            // A poisoned map: a record of its own, which the refresher cannot see; the token
            // cache still answers, as before group refreshes existed.
            return Arc::new(UserLive::new(id));
        };
        if let Some(u) = users.get(id).and_then(std::sync::Weak::upgrade) {
            return u;
        }
        let u = Arc::new(UserLive::new(id));
        users.insert(u.id.clone(), Arc::downgrade(&u));
        u
    }

    /// The cache-miss check of a token of session `live`, of user `user_id`, opened through
    /// `provider_id`, with `fingerprint`: links the session to its user's shared record and
    /// says whether the token was made from the latest record. A user not known here yet
    /// (first seen, or forgotten since its last token left the cache) is read from the users
    /// store first, for at most [`MISS_READ_TIMEOUT`]; if the store cannot say, the token
    /// passes and the next round decides. Sessions without a provider (`idgate sessions
    /// mint`) are not followed.
    pub(super) async fn check_record(
        &self,
        live: &SessionLive,
        user_id: &str,
        provider_id: &str,
        fingerprint: u64,
    ) -> Check {
        if provider_id.is_empty() {
            return Check::Latest;
        }
        let user = live.user.get_or_init(|| self.user_live(user_id)).clone();
        user.saw(fingerprint);
        if user.fingerprint.load(Ordering::Acquire) == 0 {
            if let Some(store) = &self.users_store {
                let read = self.user_read();
                match tokio::time::timeout(MISS_READ_TIMEOUT, store.get_user(user_id)).await {
                    Ok(Ok(Some(record))) => {
                        user.learn(crate::users::fingerprint(&record), read);
                    }
                    Ok(Ok(None)) => {
                        tracing::info!(user = %user_id, "the user is no longer active in the users store: their sessions end");
                        return Check::Gone;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "the users store cannot say whether the user changed: the next round will");
                    }
                    Err(_) => {
                        tracing::debug!("the users store is slow to say whether the user changed: the next round will");
                    }
                }
            }
        }
        if user.accepts(fingerprint) {
            Check::Latest
        } else {
            Check::Stale
        }
    }

    /// A number for a read of the users store about to start: of two reads of one user, the
    /// one numbered later is the one kept.
    pub fn user_read(&self) -> u64 {
        self.user_reads.fetch_add(1, Ordering::AcqRel)
    }

    /// Tells this process that user `user_id`'s record, read by read number `read`, has
    /// `fingerprint` (a login, a renewal or `/refreshtoken` just made a token from it), so
    /// that the token it made is accepted here at once.
    pub fn learn_user(&self, user_id: &str, fingerprint: u64, read: u64) {
        let known = self
            .users
            .lock()
            .ok()
            .and_then(|users| users.get(user_id).and_then(std::sync::Weak::upgrade));
        if let Some(user) = known {
            user.learn(fingerprint, read);
        }
    }

    /// The users with a cached session here, the least recently checked first, at most `max`;
    /// and how many there were in all.
    fn users_due(&self, max: usize) -> (Vec<Arc<UserLive>>, usize) {
        let mut all: Vec<Arc<UserLive>> = match self.users.lock() {
            Ok(users) => users
                .values()
                .filter_map(std::sync::Weak::upgrade)
                .collect(),
            Err(_) => Vec::new(),
        };
        let total = all.len();
        all.sort_by_key(|u| u.checked_at.load(Ordering::Relaxed));
        all.truncate(max);
        (all, total)
    }
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Users whose record was read.
    pub checked: usize,
    /// Users whose record changed since their cached tokens were made.
    pub changed: usize,
    /// Users no longer in the store (or not `PUBLIC`), whose sessions were revoked.
    pub revoked: usize,
    /// Users with a cached session here, checked or not.
    pub active: usize,
}

/// One round: reads the records of (at most `max`) users with a cached session here, learns
/// their fingerprints, and revokes the sessions of those the store no longer returns. An error
/// of the store ends the round before anything changed.
pub async fn refresh_round(
    auth: &Authenticator,
    users: &dyn Users,
    max: usize,
    now: i64,
) -> Result<Round, StoreError> {
    let (due, active) = auth.users_due(max);
    let mut round = Round {
        active,
        ..Round::default()
    };
    if due.is_empty() {
        return Ok(round);
    }
    let read = auth.user_read();
    let ids: Vec<String> = due.iter().map(|u| u.id.to_string()).collect();
    let found: HashMap<String, User> = users
        .get_users(&ids)
        .await?
        .into_iter()
        .map(|u| (u.user_id.clone(), u))
        .collect();
    for user in &due {
        user.checked_at.store(now, Ordering::Relaxed);
        round.checked += 1;
        match found.get(user.id()) {
            Some(record) => {
                let fingerprint = crate::users::fingerprint(record);
                let Some(before) = user.learn(fingerprint, read) else {
                    continue;
                };
                let minted_from = match before {
                    0 => user.seen.load(Ordering::Relaxed),
                    known => known,
                };
                if minted_from != fingerprint {
                    round.changed += 1;
                    tracing::info!(user = %user.id, "the user's record changed in the users store: their tokens are renewed");
                }
            }
            None => match auth.end_user_gone(user.id()).await {
                Ok(sids) => {
                    round.revoked += 1;
                    tracing::info!(user = %user.id, sessions = sids.len(), "the user is no longer active in the users store: their sessions end");
                }
                Err(e) => {
                    tracing::warn!(user = %user.id, error = %e, "cannot revoke the sessions of a user no longer in the users store; next round tries again");
                    // Checked again first next round.
                    user.checked_at.store(0, Ordering::Relaxed);
                }
            },
        }
    }
    Ok(round)
}

/// Runs [`refresh_round`] every `interval` until the task is stopped (a reload stops it with
/// its state). A failing store is logged once until it answers again; the cap, once.
pub fn spawn_user_refresher(
    auth: Arc<Authenticator>,
    users: Arc<dyn Users>,
    interval: Duration,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: nothing is cached yet.
        ticks.tick().await;
        let (mut failing, mut capped) = (false, false);
        loop {
            ticks.tick().await;
            match refresh_round(
                &auth,
                users.as_ref(),
                MAX_USERS_PER_ROUND,
                crate::now_secs(),
            )
            .await
            {
                Ok(round) => {
                    if failing {
                        tracing::info!("the users store answers again: group refreshes resume");
                        failing = false;
                    }
                    if round.active > MAX_USERS_PER_ROUND && !capped {
                        capped = true;
                        tracing::warn!(
                            active = round.active,
                            per_round = MAX_USERS_PER_ROUND,
                            "more active users than one refresh round reads: each is checked every few rounds"
                        );
                    }
                    metrics.user_refresh(round.changed as u64, round.revoked as u64);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot read the users store: group changes wait for the next round, nothing is revoked");
                        failing = true;
                    }
                    metrics.user_refresh_failed();
                }
            }
        }
    })
}

#[cfg(test)]
mod tests;
