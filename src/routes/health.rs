//! Liveness, readiness and the operator's views. `/-/healthz` answers while the process runs;
//! `/-/ready` only when every configured store answers, naming the one that does not.
//! `/-/metrics` (Prometheus text) and `/-/check-up` (every dependency, one entry each) answer
//! trusted peers only (the dispatcher checks).

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::error::ApiError;
use crate::http::{json_response, Response};
use crate::state::AppState;

pub fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

pub async fn ready(state: &AppState) -> Result<Response, ApiError> {
    state.sessions.ping_sessions().await?;
    state
        .users
        .ping_users()
        .await
        .map_err(crate::store::StoreError::of_users_store)?;
    Ok(json_response(StatusCode::OK, &json!({ "status": "ready" })))
}

/// The Prometheus exposition. The live-session gauge is counted here, at scrape time, but at
/// most every `metrics::LIVE_SESSIONS_EVERY` seconds: counting asks the store about every
/// session, which scrapers in a hurry must not repeat at will.
pub async fn metrics(state: &AppState) -> Response {
    let now = crate::now_secs();
    if state.metrics.live_sessions_due(now) {
        match state.sessions.count_live_sessions(now).await {
            Ok(live) => {
                state.metrics.live_sessions.set(live as i64);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot count sessions"),
        }
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let tasks = rt.metrics().num_alive_tasks();
        state.metrics.runtime_tasks.set(tasks as i64);
    }
    state.metrics.catch_up_log_drops();
    let mut resp = http::Response::new(Full::new(Bytes::from(state.metrics.render())));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Asks every dependency now: the session store, the users store, each provider's discovery
/// document. 200 when all answer, else 503; each entry has its latency.
pub async fn check_up(state: &AppState) -> Response {
    let mut checks = Vec::new();
    let start = Instant::now();
    let r = state.sessions.ping_sessions().await;
    checks.push(entry("store", start, r.map_err(|e| e.to_string())));
    let start = Instant::now();
    let r = state.users.ping_users().await;
    checks.push(entry("users", start, r.map_err(|e| e.to_string())));
    let mut idps: Vec<_> = state.idps.iter().collect();
    idps.sort_by(|a, b| a.0.cmp(b.0));
    for ((app, provider), client) in idps {
        let start = Instant::now();
        let r = client.discover().await;
        checks.push(entry(
            &format!("idp:{app}/{provider}"),
            start,
            r.map(|_| ()).map_err(|e| e.to_string()),
        ));
    }
    let ok = checks.iter().all(|c| c["ok"] == true);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({ "status": if ok { "ok" } else { "failing" }, "checks": checks }),
    )
}

fn entry(name: &str, start: Instant, result: Result<(), String>) -> serde_json::Value {
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(()) => json!({ "name": name, "ok": true, "latency_ms": ms }),
        Err(e) => json!({ "name": name, "ok": false, "latency_ms": ms, "error": e }),
    }
}
