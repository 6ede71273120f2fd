//! Liveness and readiness. `/-/healthz` answers while the process runs; `/-/ready` only when
//! every configured store answers, naming the one that does not.

use http::StatusCode;
use serde_json::json;

use crate::error::ApiError;
use crate::http::{json_response, Response};
use crate::state::AppState;

pub fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

pub async fn ready(state: &AppState) -> Result<Response, ApiError> {
    state.sessions.ping_sessions().await?;
    state.users.ping_users().await?;
    Ok(json_response(StatusCode::OK, &json!({ "status": "ready" })))
}
