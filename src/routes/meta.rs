//! Public facts about the configuration: the JWKS and each app's providers.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::error::ApiError;
use crate::http::{json_response, Response};
use crate::state::AppState;

pub fn jwks(state: &AppState) -> Response {
    let mut resp = http::Response::new(Full::new(state.jwks_body.clone()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// `GET /apps/{appId}/providers`: `[{id,label,type,order}]`, highest `order` first, then id.
pub fn providers(state: &AppState, path: &str) -> Result<Response, ApiError> {
    let app_id = path
        .strip_prefix("/apps/")
        .and_then(|rest| rest.strip_suffix("/providers"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| ApiError::NotFound(format!("no endpoint at {path}")))?;
    let app = state
        .app(app_id)
        .ok_or_else(|| ApiError::NotFound(format!("no app named `{app_id}`")))?;
    let mut list: Vec<_> = app.providers.values().collect();
    list.sort_by(|a, b| b.order.cmp(&a.order).then_with(|| a.id.cmp(&b.id)));
    let body: Vec<_> = list
        .iter()
        .map(|p| json!({ "id": p.id, "label": p.label, "type": p.kind.as_str(), "order": p.order }))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::Value::Array(body),
    ))
}
