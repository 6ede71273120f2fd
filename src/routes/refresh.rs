//! `POST /refreshtoken`: a new session JWT and a new refresh token for the old one, which works
//! once. The user is read again, so group changes apply, and a user no longer in the users store
//! (deleted, trashed, not `PUBLIC`) loses the session.
//!
//! A refresh token that idgate issued and that is presented again after it was used is a sign
//! it was stolen (RFC 9700 §4.14.2): the session is revoked. A token idgate never issued (made
//! up from a session id, which every JWT carries) is refused and changes nothing: only the MAC
//! in the token (see `crypto::SessionMac`) tells the two apart.

use crate::cookie::Kind;
use crate::crypto::{hash_token, refresh_token_sid};
use crate::error::ApiError;
use crate::http::{request_params, Request, Response};
use crate::state::AppState;
use crate::users;

/// Longest refresh token read; anything longer is not one of ours.
const MAX_REFRESH_TOKEN: usize = 512;

pub async fn refresh(state: &AppState, req: Request) -> Result<Response, ApiError> {
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
    let refused = || ApiError::Unauthorized("the refresh token is not valid; log in again".into());
    if presented.len() > MAX_REFRESH_TOKEN {
        return Err(refused());
    }
    let sid = refresh_token_sid(&presented).ok_or_else(refused)?;
    let now = crate::now_secs();
    let record = state
        .sessions
        .get_session(sid)
        .await?
        .filter(|r| r.is_alive(now))
        .ok_or_else(refused)?;
    let app = state.app(&record.app_id).ok_or_else(refused)?.clone();

    let new_token = state.macs.refresh_token(sid);
    if !state
        .sessions
        .rotate_refresh(sid, &hash_token(&presented), &hash_token(&new_token))
        .await?
    {
        if state.macs.is_issued_refresh_token(&presented) {
            tracing::warn!(user = %record.user_id, "a refresh token was presented twice: revoking its session");
            state.auth.revoke(sid).await?;
        } else {
            tracing::warn!(user = %record.user_id, "a refresh token idgate never issued was presented: refused");
        }
        return Err(refused());
    }
    let user = match state.users.get_user(&record.user_id).await? {
        Some(u) => users::claim_for(&app, &u, &record.provider_id),
        None => {
            tracing::info!(user = %record.user_id, "the user is no longer in the users store: ending the session");
            state.auth.revoke(sid).await?;
            return Err(refused());
        }
    };
    tracing::info!(user = %record.user_id, "session refreshed");
    super::token::issue(state, &app, user, sid, &new_token, now, record.expires_at)
}
