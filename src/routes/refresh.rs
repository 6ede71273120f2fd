//! `POST /refreshtoken`: a new session JWT and a new refresh token for the old one, which works
//! once. The user is read again, so group changes apply. A refresh token presented a second time
//! is a sign it was stolen (RFC 9700 §4.14.2): the session is revoked.

use crate::cookie;
use crate::crypto::hash_token;
use crate::error::ApiError;
use crate::http::{request_params, Request, Response};
use crate::state::AppState;
use crate::users;

pub async fn refresh(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let (parts, params) = request_params(req).await?;
    let presented = params
        .get("refreshToken")
        .or_else(|| params.get("refresh_token"))
        .cloned()
        .or_else(|| super::request_cookie(&parts.headers, cookie::REFRESH_TOKEN).map(str::to_owned))
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::MissingParam("refreshToken"))?;
    let refused = || ApiError::Unauthorized("the refresh token is not valid; log in again".into());
    let (sid, _) = presented.split_once('.').ok_or_else(refused)?;
    let now = crate::now_secs();
    let record = state
        .sessions
        .get_session(sid)
        .await?
        .filter(|r| r.is_alive(now))
        .ok_or_else(refused)?;
    let app = state.app(&record.app_id).ok_or_else(refused)?.clone();

    let new_token = super::token::new_refresh_token(sid);
    if !state
        .sessions
        .rotate_refresh(sid, &hash_token(&presented), &hash_token(&new_token))
        .await?
    {
        tracing::warn!(user = %record.user_id, "a refresh token was presented twice: revoking its session");
        state.auth.revoke(sid).await?;
        return Err(refused());
    }
    let user = match state.users.get_user(&record.user_id).await? {
        Some(u) => users::claim_for(&app, &u, &record.provider_id),
        None => return Err(refused()),
    };
    tracing::info!(user = %record.user_id, "session refreshed");
    super::token::issue(state, &app, user, sid, &new_token, now, record.expires_at)
}
