//! The cold path: a token the cache cannot serve is verified, its session read from the store
//! (with the idle timeout and the user's record checked), and the result cached.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{refresh, AuthFailure, Authenticator, KeyedToken, SessionLive, VerifiedSession};
use crate::jwt::{Authn, Claims, JwtError};
use crate::store::StoreError;

/// A token the cache could not serve ([`Authenticator::cached_keyed`]), with what the probe saw,
/// for [`Authenticator::authenticate_missed`] to go on from. It holds the token it was made for,
/// so what it saw cannot be applied to another.
pub struct Miss<'a> {
    pub(super) token: KeyedToken<'a>,
    /// The probe's clock, kept for the rest of the request.
    pub(super) now: i64,
    /// The token's entry, when there is one: revoked, expired, made from an older user record,
    /// idle here, or held while the revocation feed is not trusted.
    pub(super) entry: Option<Arc<VerifiedSession>>,
}

impl Authenticator {
    /// The idle check of the slow path: the latest activity known here or in the store.
    pub(super) async fn idle_expired(
        &self,
        live: &SessionLive,
        sid: &str,
        created_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(idle) = self.idle_secs else {
            return Ok(false);
        };
        let local = live.last_seen.load(Ordering::Relaxed);
        // No activity is older than the session itself: one created within the timeout (the
        // first request after a login) or seen here within it is not idle, whatever the store
        // holds, and the store is not asked.
        if now - local.max(created_at) <= idle {
            return Ok(false);
        }
        let stored = self
            .sessions
            .last_activity(sid)
            .await?
            .unwrap_or(created_at);
        let last = local.max(stored).max(created_at);
        if now - last > idle {
            return Ok(true);
        }
        live.last_seen.fetch_max(last, Ordering::Relaxed);
        Ok(false)
    }

    /// Verifies `token` and checks its session in the store; caches the result.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<VerifiedSession>, AuthFailure> {
        match self.cached_keyed(KeyedToken::new(token), crate::now_secs()) {
            Ok(hit) => Ok(hit),
            Err(miss) => self.authenticate_missed(miss).await,
        }
    }

    /// [`Self::authenticate`] after [`Self::cached_keyed`] missed (`/auth`): what the cache
    /// holds for the token is in `miss`, so it is not looked up again.
    pub async fn authenticate_missed(
        &self,
        miss: Miss<'_>,
    ) -> Result<Arc<VerifiedSession>, AuthFailure> {
        let Miss { token, now, entry } = miss;
        let (digest, token) = (*token.digest(), token.text());
        if let Some(entry) = entry {
            if !entry.live.alive.load(Ordering::Acquire) {
                // Revoked: final, no need to ask the store.
                return Err(AuthFailure::SessionEnded);
            }
            if now >= entry.exp || !entry.is_current() {
                // Expired, or made from a user record that has changed since: the caller may
                // renew it while the session lives.
                return Err(AuthFailure::Token(JwtError::Expired));
            }
        }
        let claims = self.keys.verify(token)?;
        if now >= claims.exp {
            // Within the verifier's clock-skew leeway, but expired for us.
            return Err(AuthFailure::Token(JwtError::Expired));
        }
        // Take the flag before reading the store, so a revocation that lands in between
        // still reaches this entry.
        let live = self.flag(&claims.sid);
        let record = self
            .sessions
            .session_head(&claims.sid)
            .await?
            .filter(|r| r.is_alive(now) && r.user_id == claims.sub);
        let Some(record) = record else {
            live.alive.store(false, Ordering::Release);
            return Err(AuthFailure::SessionEnded);
        };
        if self
            .idle_expired(&live, &claims.sid, record.created_at, now)
            .await?
        {
            tracing::info!(user = %claims.sub, "session ended after the idle timeout");
            self.revoke(&claims.sid).await?;
            return Err(AuthFailure::SessionEnded);
        }
        let fingerprint = crate::users::claimed_fingerprint(claims.ufp.as_deref());
        match self
            .check_record(&live, &claims.sub, &record.provider_id, fingerprint)
            .await
        {
            refresh::Check::Latest => {}
            // Made from a user record that has changed since (see `refresh`).
            refresh::Check::Stale => return Err(AuthFailure::Token(JwtError::Expired)),
            refresh::Check::Gone => {
                self.end_user_gone(&claims.sub).await?;
                return Err(AuthFailure::SessionEnded);
            }
        }
        live.last_seen.fetch_max(now, Ordering::Relaxed);
        // A use seen on the slow path is activity too: another instance, where the session
        // is next used, must learn of it (else a session used in turn on two instances,
        // each seeing it less often than the idle timeout, would end while in use). The
        // session's creation is activity every reader already counts (the idle check, "last
        // seen"), so a session younger than the reporting interval needs no report yet: the
        // first request after a login costs no store write.
        live.last_touch
            .fetch_max(record.created_at, Ordering::Relaxed);
        self.report_activity(&live, now);
        let identity = self.identity.render(&claims.user, token).map_err(Box::new);
        let app_id = match self.app_ids.iter().find(|id| ***id == *record.app_id) {
            Some(id) => id.clone(),
            None => Arc::from(record.app_id),
        };
        let authn = authn_of(&claims);
        let mut groups = claims.user.groups;
        groups.shrink_to_fit();
        let mut permissions = claims.user.permissions.unwrap_or_default();
        permissions.shrink_to_fit();
        let verified = Arc::new(VerifiedSession {
            exp: claims.exp,
            groups,
            permissions,
            app_id,
            live,
            fingerprint,
            identity,
            authn,
        });
        if verified.is_valid(now) {
            self.tokens.insert(digest, verified.clone());
            Ok(verified)
        } else {
            Err(AuthFailure::SessionEnded)
        }
    }
}

/// The boxed [`Authn`] a cached entry keeps of `claims`: none when the IdP said nothing.
fn authn_of(claims: &Claims) -> Option<Box<Authn>> {
    let authn = claims.authn();
    (!authn.is_empty()).then(|| Box::new(authn))
}
