//! `POST /refreshtoken`: a new session JWT and a new refresh token for the old one, which works
//! once. The user is read again, so group changes apply, and a user no longer in the users store
//! (deleted, trashed, not `PUBLIC`) loses the session.
//!
//! A refresh token that idgate issued and that is presented again after it was used is a sign
//! it was stolen (RFC 9700 §4.14.2): the session is revoked. A token idgate never issued (made
//! up from a session id, which every JWT carries) is refused and changes nothing: only the MAC
//! in the token (see `crypto::SessionMac`) tells the two apart, and it is checked before the
//! store is asked anything.
//!
//! **Grace window** (`[session] refresh_grace`, default 5 s): two tabs refreshing at once send
//! the same token; the store (atomically, so across instances) rotates it for the first and
//! hands the second the very same answer, kept sealed under a key derived from the token
//! presented (`crypto::seal_for_token`): a reader of the store, who sees the token's hash only,
//! cannot take the pair. A repeat after the window is a reuse, and revokes the session.
//!
//! **Lifetime**: with `[session] sliding_lifetime` (what Mia's
//! `MIA_REFRESH_TOKEN_VALID_DURATION_SEC` sets) each refresh moves the session's end to
//! `lifetime` from now; otherwise the end set at login stays.
//!
//! **Refusals** answer 401; with `[session] invalid_refresh_wipes_cookies` (Mia's
//! `INVALID_REFRESH_TOKEN_WIPES_COOKIES`) they also clear the session cookies.

use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use crate::audit::{Event, Origin, RevokedBy};
use crate::cookie::Kind;
use crate::crypto::{hash_token, open_for_token, refresh_token_sid, seal_for_token};
use crate::error::ApiError;
use crate::http::{add_cookie, request_params, Request, Response};
use crate::state::AppState;
use crate::store::{RefreshRotation, Rotation, StoreError};
use crate::users;

/// Longest refresh token read; anything longer is not one of ours.
pub(super) const MAX_REFRESH_TOKEN: usize = 512;

/// What a refresh answered, kept (sealed) for a repeat within the grace window.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    access_token: String,
    refresh_token: String,
    expires_at: i64,
    /// When the session ends (the cookies' lifetime).
    session_end: i64,
}

pub async fn refresh(
    state: &AppState,
    peer: &super::Peer,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, params) = request_params(req).await?;
    let presented = params
        .get("refreshToken")
        .or_else(|| params.get("refresh_token"))
        .cloned()
        .or_else(|| {
            state
                .cookies
                .read(&parts.headers, Kind::Refresh)
                .map(str::to_owned)
        })
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::MissingParam("refreshToken"))?;
    let origin = peer.origin(&parts.headers);
    match rotate(state, &presented, &origin).await {
        Err(e @ ApiError::Unauthorized(_))
            if state.config.session.invalid_refresh_wipes_cookies =>
        {
            let mut resp = e.into_response();
            for kind in [Kind::Sid, Kind::Renew, Kind::Refresh] {
                add_cookie(&mut resp, &state.cookies.clear(kind));
            }
            Ok(resp)
        }
        other => other,
    }
}

async fn rotate(
    state: &AppState,
    presented: &str,
    origin: &Origin<'_>,
) -> Result<Response, ApiError> {
    let refused = || ApiError::Unauthorized("the refresh token is not valid; log in again".into());
    if presented.len() > MAX_REFRESH_TOKEN {
        return Err(refused());
    }
    let sid = refresh_token_sid(presented).ok_or_else(refused)?;
    if !state.macs.is_issued_refresh_token(presented) {
        tracing::warn!("a refresh token idgate never issued was presented: refused");
        return Err(refused());
    }
    let now = crate::now_secs();
    let record = state
        .sessions
        .get_session(sid)
        .await?
        .filter(|r| r.is_alive(now))
        .ok_or_else(refused)?;
    let app = state.app(&record.app_id).ok_or_else(refused)?.clone();
    let asserted = state.asserted(&app, &record).ok_or_else(|| {
        tracing::warn!(user = %record.user_id, "the session's sealed IdP part is unreadable: not refreshed");
        refused()
    })?;
    let read = state.auth.user_read();
    let user = match state
        .users
        .get_user(&record.user_id)
        .await
        .map_err(StoreError::of_users_store)?
    {
        Some(u) => {
            let fingerprint = users::fingerprint(&u);
            state.auth.learn_user(&u.user_id, fingerprint, read);
            (
                users::claim_for(&app, &u, &record.provider_id, &asserted),
                fingerprint,
            )
        }
        None => {
            tracing::info!(user = %record.user_id, "the user is no longer in the users store: ending the session");
            state.auth.revoke(sid).await?;
            return Err(refused());
        }
    };

    let session = &state.config.session;
    let session_end = if session.sliding_lifetime {
        now + session.lifetime.as_secs() as i64
    } else {
        record.expires_at
    };
    let new_token = state.macs.refresh_token(sid);
    let (user, fingerprint) = user;
    let mut claims = users::session_claims(
        &app,
        user,
        Some(fingerprint),
        sid,
        now,
        session.access_ttl.as_secs() as i64,
    );
    // The login's authentication, as the session's first token carried it.
    claims.set_authn(asserted.authn.clone());
    let jwt = state
        .auth
        .keys()
        .sign(&claims)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let answer = Answer {
        access_token: jwt,
        refresh_token: new_token,
        expires_at: claims.exp,
        session_end,
    };
    let sealed = seal_for_token(presented, &serde_json::to_vec(&answer).unwrap_or_default());
    let (old_hash, new_hash) = (hash_token(presented), hash_token(&answer.refresh_token));
    let outcome = state
        .sessions
        .rotate_refresh_graced(
            sid,
            &RefreshRotation {
                old_hash: &old_hash,
                new_hash: &new_hash,
                sealed_pair: &sealed,
                grace_until: now + session.refresh_grace.as_secs() as i64,
                expires_at: session.sliding_lifetime.then_some(session_end),
                now,
            },
        )
        .instrument(crate::telemetry::store_span("rotate_refresh"))
        .await?;
    let audited = |event: Event| {
        event
            .user(&record.user_id)
            .app(&record.app_id)
            .provider(&record.provider_id)
            .session(sid)
            .from(origin)
    };
    match outcome {
        Rotation::Rotated => {
            state.audit.emit(|| audited(Event::refresh()));
            tracing::info!(user = %record.user_id, "session refreshed");
            Ok(respond(state, &app, sid, &answer, now))
        }
        Rotation::Repeated(sealed) => {
            let Some(earlier) = open_for_token(presented, &sealed)
                .ok()
                .and_then(|plain| serde_json::from_slice::<Answer>(&plain).ok())
            else {
                tracing::warn!(user = %record.user_id, "the answer kept for a repeated refresh cannot be opened: refused");
                return Err(refused());
            };
            tracing::info!(user = %record.user_id, "a refresh token repeated within the grace window: the same answer again");
            state.audit.emit(|| audited(Event::refresh()));
            Ok(respond(state, &app, sid, &earlier, now))
        }
        Rotation::Refused => {
            tracing::warn!(user = %record.user_id, "a refresh token was presented twice: revoking its session");
            state.auth.revoke(sid).await?;
            state
                .audit
                .emit(|| audited(Event::revoke(RevokedBy::RefreshReuse)));
            Err(refused())
        }
    }
}

/// `{accessToken, refreshToken, expiresAt}`, with the cookies for website apps living until
/// the session's end, as a login answers.
fn respond(
    state: &AppState,
    app: &crate::config::AppConfig,
    sid: &str,
    answer: &Answer,
    now: i64,
) -> Response {
    super::token::respond(
        state,
        app,
        super::token::Signed {
            jwt: &answer.access_token,
            exp: answer.expires_at,
            sid,
            refresh_token: &answer.refresh_token,
        },
        now,
        answer.session_end,
    )
}
