//! The endpoints of Mia's authentication service that idgate's own login does not need, kept so
//! that clients and jobs written against Mia's API keep working:
//!
//! - `GET /tokeninfo`: `/userinfo`'s answer plus `provider: {accessToken, id, baseUrl, userId}`
//!   — the IdP's access token of the caller's session. Mia warns that this hands out
//!   confidential data; idgate's Nginx snippets do not route it, so it is reachable only where
//!   the operator adds a location for it (README, "Mia's extra endpoints").
//! - `GET /provider/idtoken`: `{idToken}`, the IdP's id_token of the caller's session (kept
//!   sealed with the session, see `crypto::TokenCipher`); 404 when the IdP gave none (plain
//!   OAuth2 providers). Mia's pages do not describe its answer: the shape is inferred.
//! - `DELETE /expired-sessions[/{userId}]`: drops what is left of expired sessions (of one user,
//!   or of all), 204. Administrative: the same protection as `DELETE /sessions/{userId}`.
//!
//! Both `GET`s take the session token as `/userinfo` does (`Authorization: Bearer`, else the
//! `sid` cookie), and answer 401 unless it names a live session.

use http::StatusCode;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::{json_response, Request, Response};
use crate::idp::IdpTokens;
use crate::session::AuthFailure;
use crate::state::AppState;
use crate::store::SessionRecord;

/// The caller's live session: its verified claims and its stored record.
async fn live_session(
    state: &AppState,
    req: &Request,
) -> Result<(crate::jwt::Claims, SessionRecord), ApiError> {
    let token = super::session_token(req.headers(), &state.cookies)
        .ok_or_else(|| ApiError::Unauthorized("no session token".into()))?;
    let claims = match state.auth.claims(token).await {
        Ok(c) => c,
        Err(AuthFailure::Store(e)) => return Err(e.into()),
        Err(e) => return Err(ApiError::Unauthorized(e.to_string())),
    };
    let record = state
        .sessions
        .get_session(&claims.sid)
        .await?
        .filter(|r| r.is_alive(crate::now_secs()))
        .ok_or_else(|| ApiError::Unauthorized("the session has ended".into()))?;
    Ok((claims, record))
}

/// The IdP's tokens kept with the session.
fn idp_tokens(state: &AppState, record: &SessionRecord) -> Result<IdpTokens, ApiError> {
    let plain = state
        .cipher
        .open(&record.idp_tokens)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    serde_json::from_slice(&plain)
        .map_err(|e| ApiError::Internal(format!("stored IdP tokens are unreadable: {e}")))
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// `GET /tokeninfo`.
pub async fn tokeninfo(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let (claims, record) = live_session(state, req).await?;
    let tokens = idp_tokens(state, &record)?;
    let idp = state.idps.get(&record.app_id, &record.provider_id);
    let base_url = idp.map(|idp| match &idp.provider().protocol {
        crate::config::Protocol::Oidc { issuer } => issuer.clone(),
        crate::config::Protocol::OAuth2(e) => e.auth_url.origin().ascii_serialization(),
    });
    let provider_user_id = state
        .users
        .get_user(&claims.sub)
        .await?
        .filter(|u| u.provider_id == record.provider_id)
        .map(|u| u.provider_user_id);
    let mut body = serde_json::to_value(&claims.user).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut body {
        map.insert(
            "provider".into(),
            json!({
                "accessToken": tokens.access_token,
                "id": record.provider_id,
                "baseUrl": base_url,
                "userId": provider_user_id,
            }),
        );
    }
    Ok(no_store(json_response(StatusCode::OK, &body)))
}

/// `GET /provider/idtoken`.
pub async fn provider_idtoken(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let (_, record) = live_session(state, req).await?;
    let id_token = idp_tokens(state, &record)?.id_token.ok_or_else(|| {
        ApiError::NotFound("the identity provider of this session gave no id_token".into())
    })?;
    Ok(no_store(json_response(
        StatusCode::OK,
        &json!({ "idToken": id_token }),
    )))
}

/// `DELETE /expired-sessions[/{userId}]` (administrators only).
pub async fn expired_sessions(
    state: &AppState,
    peer: &super::Peer,
    headers: &http::HeaderMap,
    path: &str,
) -> Result<Response, ApiError> {
    if !super::session_api::is_admin(state, peer, headers) {
        tracing::warn!(peer = ?peer.addr, "administrative request refused");
        return Err(ApiError::Forbidden(
            "administrative endpoints need the admin token (Authorization: Bearer) or an admin peer"
                .into(),
        ));
    }
    let user_id = match path.strip_prefix("/expired-sessions") {
        Some("") => None,
        Some(rest) => Some(
            rest.strip_prefix('/')
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .map(|id| percent_encoding::percent_decode_str(id).decode_utf8_lossy())
                .ok_or_else(|| ApiError::NotFound(format!("no endpoint at {path}")))?,
        ),
        None => return Err(ApiError::NotFound(format!("no endpoint at {path}"))),
    };
    let purged = state
        .sessions
        .purge_expired_sessions(user_id.as_deref())
        .await?;
    tracing::info!(user = ?user_id, purged, "expired sessions purged by an administrator");
    let mut resp = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
