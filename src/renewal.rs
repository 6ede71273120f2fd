//! Silent renewal: a browser whose session JWT has expired while its session is still alive gets
//! a new JWT from `/auth` itself — 200, exactly one `Set-Cookie`, no redirect, no lost POST body.
//!
//! Only a browser session is renewed (an app with `website = true`), and only for the browser
//! that holds the session's renewal secret (its `idgate_renew` cookie, see
//! `crypto::SessionMac`) besides the expired JWT: a JWT that leaked on its own dies with its
//! `exp`. The user is read again from the users store; a user no longer there ends the session.
//!
//! The new token is a pure function of the old one and of the time window it is renewed in
//! (claims re-read from the users store, `iat`/`exp` aligned on the old `exp` plus whole
//! `access_ttl` steps — the first step ending more than a second from now —, `jti` derived from
//! the old one), and RS256/ES256 (RFC 6979)/EdDSA
//! signatures are deterministic: concurrent renewals — in one process or on several instances
//! sharing the store — produce the same token, so there is effectively one renewal and nobody
//! is logged out by a race. A small in-memory cache spares the work for a burst of requests
//! carrying the same expired cookie.
//!
//! A token whose user record has changed in the users store since it was made counts as
//! expired too (`session::refresh`), before its `exp`: its renewal keeps its `iat` and `exp`,
//! with the claims read again.

use std::sync::Arc;

use http::HeaderValue;

use crate::audit::{Event, Origin};
use crate::crypto::hash_token;
use crate::session::renewals::Renewed;
use crate::session::{token_digest, AuthFailure};
use crate::state::AppState;

/// Renews the expired session token `token`, if its session is still alive and
/// `renewal_secret` (the browser's renewal cookie) is the session's. The request that does the
/// renewal (`origin`) is the one the audit trail names.
pub async fn renew(
    state: &AppState,
    token: &str,
    renewal_secret: Option<&str>,
    origin: &Origin<'_>,
) -> Result<Arc<Renewed>, AuthFailure> {
    let secret = renewal_secret.ok_or(AuthFailure::NotRenewable("no renewal secret"))?;
    let fresh = |done: &Arc<Renewed>| done.session.is_valid(crate::now_secs());
    let key = token_digest(token);
    let renewed = match state.renewals.get(&key) {
        Some(done) if fresh(&done) => done,
        // One renewal of a token at a time in this process: the requests of a burst carrying
        // the same expired cookie wait for the first one's result instead of each reading the
        // stores and signing (under load, a herd of identical renewals starves everything).
        _ => match state.renewals.get_value_or_guard_async(&key).await {
            Ok(done) if fresh(&done) => done,
            Ok(_stale) => {
                let renewed = renew_now(state, token, secret, origin).await?;
                state.renewals.insert(key, renewed.clone());
                renewed
            }
            Err(guard) => {
                let renewed = renew_now(state, token, secret, origin).await?;
                let _ = guard.insert(renewed.clone());
                renewed
            }
        },
    };
    // Whoever did the renewal, this request gets it only with the session's renewal secret.
    if state.macs.is_renewal_secret(renewed.session.sid(), secret) {
        Ok(renewed)
    } else {
        Err(AuthFailure::NotRenewable("wrong renewal secret"))
    }
}

/// Does the renewal of `token` (the caller holds its cache slot, or found it stale). A trace
/// span of its own (`telemetry`): renewals are off the cached-session hot path.
#[tracing::instrument(target = "idgate::trace", name = "renewal", skip_all)]
async fn renew_now(
    state: &AppState,
    token: &str,
    secret: &str,
    origin: &Origin<'_>,
) -> Result<Arc<Renewed>, AuthFailure> {
    let old = state.auth.keys().verify_ignoring_expiry(token)?;
    if !state.macs.is_renewal_secret(&old.sid, secret) {
        return Err(AuthFailure::NotRenewable("wrong renewal secret"));
    }
    let now = crate::now_secs();
    let record = state
        .sessions
        .get_session(&old.sid)
        .await?
        .filter(|r| r.is_alive(now) && r.user_id == old.sub)
        .ok_or(AuthFailure::SessionEnded)?;
    let app = state
        .app(&record.app_id)
        .filter(|a| a.issuer == old.iss)
        .ok_or(AuthFailure::SessionEnded)?;
    if !app.website {
        return Err(AuthFailure::NotRenewable("the app is not a website"));
    }
    let asserted = state.asserted(app, &record).ok_or_else(|| {
        tracing::warn!(user = %old.sub, "the session's sealed IdP part is unreadable: not renewed");
        AuthFailure::SessionEnded
    })?;
    let read = state.auth.user_read();
    let (user, fingerprint) = match state.users.get_user(&old.sub).await? {
        Some(u) => {
            let fingerprint = crate::users::fingerprint(&u);
            state.auth.learn_user(&u.user_id, fingerprint, read);
            (
                crate::users::claim_for(app, &u, &record.provider_id, &asserted),
                fingerprint,
            )
        }
        None => {
            tracing::info!(user = %old.sub, "the user is no longer in the users store: ending the session");
            state.auth.revoke(&old.sid).await?;
            return Err(AuthFailure::SessionEnded);
        }
    };
    // The step is chosen on the clock as it is now, after the store reads (which can take a
    // while under load): on the clock read before them, the new token could already be
    // expired when it is checked below, and this request refused.
    let now = crate::now_secs();
    if now >= record.expires_at {
        // The session ended while it was being renewed.
        return Err(AuthFailure::SessionEnded);
    }
    let ttl = state.config.session.access_ttl.as_secs().max(1) as i64;
    let (iat, exp) = if now + 1 < old.exp {
        // Not expired: renewed because the user's record changed (`session::refresh`). The
        // new token keeps the old one's window, so it too is the same on every instance.
        (old.iat, old.exp)
    } else {
        // The first step that ends more than a second from now: a token that would expire
        // within the second could be expired by the time it is checked, and the request
        // refused.
        let steps = ((now + 1 - old.exp) / ttl + 1).max(1);
        let exp = (old.exp + steps * ttl).min(record.expires_at);
        (exp - ttl, exp)
    };
    let mut claims =
        crate::users::session_claims(app, user, Some(fingerprint), &old.sid, iat, exp - iat);
    claims.jti = hash_token(&format!("{}:{exp}", old.jti));
    // The login's authentication is the old token's: a renewal is not a new login.
    claims.set_authn(old.authn());
    let jwt = state
        .auth
        .keys()
        .sign(&claims)
        .map_err(AuthFailure::Token)?;
    let session = state.auth.authenticate(&jwt).await?;
    let cookie = state.cookies_for(&app.id).set(
        crate::cookie::Kind::Sid,
        &jwt,
        (record.expires_at - now).max(1),
    );
    let set_cookie = HeaderValue::from_str(&cookie).map_err(|_| AuthFailure::SessionEnded)?;
    let renewed = Arc::new(Renewed::new(session, set_cookie, now));
    // The old token is expired: its cache entry could only take the place of a live one.
    state.auth.forget_token(token);
    tracing::info!(user = %old.sub, "session token renewed");
    state.audit.emit(|| {
        Event::renewal()
            .user(&old.sub)
            .app(&app.id)
            .provider(&record.provider_id)
            .session(&old.sid)
            .from(origin)
    });
    Ok(renewed)
}
