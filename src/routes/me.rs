//! `/me/sessions`: the sessions a logged-in user can see and end — their own, and only theirs.
//!
//! | method, path | answers |
//! |---|---|
//! | GET `/me/sessions` | 200 `[{id, appId, providerId, createdAt, lastSeenAt, expiresAt, clientAddr, userAgent, current}]`, newest first (a browser navigation gets the same list as a page whose buttons, plain forms, end sessions); 401 |
//! | DELETE `/me/sessions/{id}` | 200 `{"ended": 1}`; 404 when `id` is not one of the caller's live sessions; 403 cross-site; 401 |
//! | DELETE `/me/sessions?others=true` | 200 `{"ended": n}`: every live session of the caller but the current one; 400 without `others=true`; 403 cross-site; 401 |
//! | POST `/me/sessions` (form `end` = an id or `others`) | the page's buttons, without JavaScript: 303 back to the list for a browser, else 200 `{"ended": n}`; 400 without `end`; 404; 403 cross-site; 401 |
//!
//! - **Who**: the session token (`Authorization: Bearer`, else the `sid` cookie), checked as
//!   for `/userinfo` (signature, expiry, the session alive in the store); a browser's expired
//!   token is renewed as `/auth` renews it (the answer then sets the new `sid` cookie). The caller's user id
//!   is the token's subject; every lookup starts from that user's own sessions, so an id of
//!   another user's session is simply not found (404, the same as an id that never existed).
//! - **The id** is a public handle (`crypto::session_handle`), not the session id itself: the
//!   list never shows a store key.
//! - **Last seen**: the session's last activity in the store (reported at most a minute late,
//!   see `session::ACTIVITY_EVERY_SECS`), never earlier than its creation; the current
//!   session's is now.
//! - **Cross-site requests** cannot end sessions (see [`check_same_origin`]); no CORS header is
//!   ever answered, so another site's script cannot read the list either.

use http::header::{HOST, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use super::Peer;
use crate::audit::{Event, RevokedBy};
use crate::cookie::Kind;
use crate::crypto::{is_handle_of, session_handle};
use crate::error::ApiError;
use crate::http::{json_response, query_params, Request, Response};
use crate::jwt::JwtError;
use crate::session::AuthFailure;
use crate::state::AppState;
use crate::store::SessionRecord;

/// The collection; a single session is `{PATH}/{id}`.
const PATH: &str = "/me/sessions";

/// The longest id accepted in a path (handles are 22 characters).
const MAX_ID: usize = 64;

/// The caller, as its session token says.
struct Caller {
    user_id: String,
    sid: String,
    /// The token came in `Authorization` (which no browser sends on its own), not a cookie.
    by_bearer: bool,
    /// The browser's session cookie, renewed: its token had expired (see [`caller`]).
    renewed: Option<HeaderValue>,
}

impl Caller {
    /// `resp` with the renewed session cookie, if there is one.
    fn answer(&self, mut resp: Response) -> Response {
        if let Some(cookie) = &self.renewed {
            resp.headers_mut().append(SET_COOKIE, cookie.clone());
        }
        resp
    }
}

/// Authenticates the request's session token, as `/userinfo` does; a browser's expired token
/// is renewed as `/auth` would (same renewal secret, same session checks), since this
/// location is reached without Nginx's auth subrequest, which renews it elsewhere.
async fn caller(state: &AppState, peer: &Peer, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = super::session_token(headers, &state.cookies)
        .ok_or_else(|| ApiError::Unauthorized("no session token".into()))?;
    let by_bearer = super::bearer_token(headers).is_some();
    match state.auth.claims(token).await {
        Ok(claims) => Ok(Caller {
            user_id: claims.sub,
            sid: claims.sid,
            by_bearer,
            renewed: None,
        }),
        Err(AuthFailure::Token(JwtError::Expired)) if !by_bearer => {
            let secret = state.cookies.read(headers, Kind::Renew);
            let renewed = crate::renewal::renew(state, token, secret, &peer.origin(headers))
                .await
                .map_err(|e| match e {
                    AuthFailure::Store(e) => ApiError::Store(e),
                    e => ApiError::Unauthorized(e.to_string()),
                })?;
            // Renewed: the expired token is idgate's and names this live session.
            let old = state
                .auth
                .keys()
                .verify_ignoring_expiry(token)
                .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
            Ok(Caller {
                user_id: old.sub,
                sid: old.sid,
                by_bearer,
                renewed: Some(renewed.set_cookie.clone()),
            })
        }
        Err(AuthFailure::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Unauthorized(e.to_string())),
    }
}

/// The caller's live sessions, newest first.
async fn live_sessions(state: &AppState, user_id: &str) -> Result<Vec<SessionRecord>, ApiError> {
    let now = crate::now_secs();
    let mut live: Vec<SessionRecord> = state
        .sessions
        .list_sessions(Some(user_id))
        .await?
        .into_iter()
        .filter(|s| s.is_alive(now) && s.user_id == user_id)
        .collect();
    live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.sid.cmp(&a.sid)));
    Ok(live)
}

/// `GET /me/sessions`.
pub async fn list(state: &AppState, peer: &Peer, req: &Request) -> Result<Response, ApiError> {
    let me = caller(state, peer, req.headers()).await?;
    let sessions = live_sessions(state, &me.user_id).await?;
    // One read per session, together; the user's live sessions are at most
    // `session.max_per_user`.
    let activity = futures_util::future::try_join_all(
        sessions
            .iter()
            .map(|s| state.sessions.last_activity(&s.sid)),
    )
    .await?;
    let now = crate::now_secs();
    let rows: Vec<serde_json::Value> = sessions
        .iter()
        .zip(activity)
        .map(|(s, seen)| {
            let current = s.sid == me.sid;
            let last_seen = if current {
                now
            } else {
                seen.unwrap_or(s.created_at).max(s.created_at)
            };
            json!({
                "id": session_handle(&s.sid),
                "appId": s.app_id,
                "providerId": s.provider_id,
                "createdAt": s.created_at,
                "lastSeenAt": last_seen,
                "expiresAt": s.expires_at,
                "clientAddr": s.context.client_addr,
                "userAgent": s.context.user_agent,
                "current": current,
            })
        })
        .collect();
    if super::is_navigation(req.method().as_str(), req.headers()) {
        return Ok(me.answer(super::site::sessions_page(state, req.headers(), rows)));
    }
    Ok(me.answer(json_response(
        StatusCode::OK,
        &serde_json::Value::Array(rows),
    )))
}

/// What a request asks to end.
enum Ending<'a> {
    /// The session with this public handle (the current one included).
    One(&'a str),
    /// Every live session of the caller but the current one.
    Others,
}

impl<'a> Ending<'a> {
    /// A handle as a request gives it, checked for shape (its session is looked up later).
    fn one(id: &'a str) -> Result<Self, ApiError> {
        if id.is_empty() || id.len() > MAX_ID || id.contains('/') {
            return Err(not_found());
        }
        Ok(Self::One(id))
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("you have no live session with this id".into())
}

/// Ends what `what` names among the caller's live sessions; how many ended.
async fn end(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    me: &Caller,
    what: Ending<'_>,
) -> Result<u32, ApiError> {
    let live = live_sessions(state, &me.user_id).await?;
    let mut ended = 0u32;
    match what {
        Ending::One(id) => {
            let target = live
                .iter()
                .find(|s| is_handle_of(id, &s.sid))
                .ok_or_else(not_found)?;
            if state.auth.revoke(&target.sid).await? {
                audit_ended_by_user(state, peer, headers, target);
                ended += 1;
            }
            tracing::info!(user = %me.user_id, current = target.sid == me.sid, "session ended by its user");
        }
        Ending::Others => {
            for s in live.iter().filter(|s| s.sid != me.sid) {
                if state.auth.revoke(&s.sid).await? {
                    audit_ended_by_user(state, peer, headers, s);
                    ended += 1;
                }
            }
            tracing::info!(user = %me.user_id, ended, "other sessions ended by their user");
        }
    }
    Ok(ended)
}

/// `DELETE /me/sessions/{id}`: ends one of the caller's sessions (the current one included).
pub async fn end_one(
    state: &AppState,
    peer: &Peer,
    req: &Request,
    path: &str,
) -> Result<Response, ApiError> {
    let me = caller(state, peer, req.headers()).await?;
    check_same_origin(peer, req.headers(), me.by_bearer)?;
    let id = path
        .strip_prefix(PATH)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(not_found)?;
    let ended = end(state, peer, req.headers(), &me, Ending::one(id)?).await?;
    Ok(me.answer(json_response(StatusCode::OK, &json!({ "ended": ended }))))
}

/// `DELETE /me/sessions?others=true`: ends every live session of the caller but this one.
pub async fn end_others(
    state: &AppState,
    peer: &Peer,
    req: &Request,
) -> Result<Response, ApiError> {
    let me = caller(state, peer, req.headers()).await?;
    check_same_origin(peer, req.headers(), me.by_bearer)?;
    if query_params(req.uri()).get("others").map(String::as_str) != Some("true") {
        return Err(ApiError::InvalidParam {
            name: "others",
            reason: "must be `true`: this ends every session but the current one (end the \
                     current one with /logout)"
                .into(),
        });
    }
    let ended = end(state, peer, req.headers(), &me, Ending::Others).await?;
    Ok(me.answer(json_response(StatusCode::OK, &json!({ "ended": ended }))))
}

/// `POST /me/sessions` with a form field `end`: a session's id, or `others`. The sessions
/// page's buttons, which work without JavaScript: a browser is sent back to the list (303), or
/// shown an error page; a program gets `{"ended": n}` or the JSON error. The same checks as
/// the `DELETE`s, cross-site refusal included (a form is what a forging site would post).
pub async fn end_by_form(state: &AppState, peer: &Peer, req: Request) -> Response {
    let html = super::reads_html(req.headers());
    let page = html.then(|| super::site::PageContext::of(state, &req));
    let answer = async {
        let (parts, params) = crate::http::request_params(req).await?;
        let me = caller(state, peer, &parts.headers).await?;
        check_same_origin(peer, &parts.headers, me.by_bearer)?;
        let what = match params.get("end").map(String::as_str) {
            Some("others") => Ending::Others,
            Some(id) => Ending::one(id)?,
            None => return Err(ApiError::MissingParam("end")),
        };
        let ended = end(state, peer, &parts.headers, &me, what).await?;
        let resp = if html {
            let mut resp = crate::http::redirect(PATH)?;
            *resp.status_mut() = StatusCode::SEE_OTHER;
            resp
        } else {
            json_response(StatusCode::OK, &json!({ "ended": ended }))
        };
        Ok(me.answer(resp))
    };
    match (answer.await, page) {
        (Ok(resp), _) => resp,
        (Err(e), Some(page)) => page.error_page(state, e),
        (Err(e), None) => e.into_response(),
    }
}

/// Records in the audit trail that the user ended `session` themselves.
fn audit_ended_by_user(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    session: &crate::store::SessionRecord,
) {
    state.audit.emit(|| {
        Event::revoke(RevokedBy::User)
            .user(&session.user_id)
            .app(&session.app_id)
            .provider(&session.provider_id)
            .session(&session.sid)
            .from(&peer.origin(headers))
    });
}

/// Refuses a request a browser sent on another site's behalf (cross-site request forgery):
///
/// - with `Sec-Fetch-Site` (every current browser sends it; a page cannot forge it): only
///   `same-origin` and `none` (the user's own action) pass — not `same-site`, a sibling
///   subdomain;
/// - without it, an `Origin` must name the host the request was sent to: the Host the client
///   sent, which the shipped snippets forward as `X-Forwarded-Host` (port included). Scheme
///   aside, as TLS may end before Nginx;
/// - with neither, only a bearer token passes: a browser never attaches one on its own, so
///   such a request is a program's, not a forged one.
fn check_same_origin(peer: &Peer, headers: &HeaderMap, by_bearer: bool) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        tracing::warn!(why, "cross-site request to end sessions refused");
        Err(ApiError::Forbidden(
            "sessions can be ended only from this site's own pages".into(),
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => refuse("Sec-Fetch-Site"),
        };
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return if by_bearer {
            Ok(())
        } else {
            refuse("no Origin")
        };
    };
    let own = own_host(peer, headers);
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| {
            o.strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
        })
        .filter(|h| !h.is_empty() && !h.contains('/'));
    match (origin_host, own) {
        (Some(o), Some(own)) if o.eq_ignore_ascii_case(own) => Ok(()),
        _ => refuse("Origin"),
    }
}

/// The host (and port) the client sent the request to: from a trusted peer (Nginx),
/// `X-Forwarded-Host`; otherwise the request's own `Host`.
fn own_host<'a>(peer: &Peer, headers: &'a HeaderMap) -> Option<&'a str> {
    let forwarded = peer
        .trusted
        .then(|| {
            headers
                .get_all(crate::headers::X_FORWARDED_HOST)
                .iter()
                .next_back()
        })
        .flatten();
    forwarded
        .or_else(|| headers.get(HOST))
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn peer(trusted: bool) -> Peer {
        Peer {
            addr: None,
            trusted,
            admin: false,
        }
    }

    use crate::http::test_headers as headers;

    #[test]
    fn fetch_metadata_decides_when_present() {
        let nginx = peer(true);
        for ok in ["same-origin", "none"] {
            let h = headers(&[("sec-fetch-site", ok), ("origin", "https://evil.test")]);
            assert!(check_same_origin(&nginx, &h, false).is_ok(), "{ok}");
        }
        for bad in ["cross-site", "same-site", "garbage"] {
            let h = headers(&[
                ("sec-fetch-site", bad),
                ("x-forwarded-host", "app.test"),
                ("origin", "https://app.test"),
            ]);
            assert!(check_same_origin(&nginx, &h, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn without_fetch_metadata_the_origin_must_be_the_host_asked() {
        let nginx = peer(true);
        let same = headers(&[
            ("x-forwarded-host", "app.test:8443"),
            ("origin", "https://app.test:8443"),
        ]);
        assert!(check_same_origin(&nginx, &same, false).is_ok());
        for origin in [
            "https://evil.test",
            "https://app.test",
            "https://app.test:8443.evil.test",
            "null",
            "https://app.test:8443/x",
        ] {
            let mut h = headers(&[("x-forwarded-host", "app.test:8443")]);
            h.insert("origin", HeaderValue::from_str(origin).unwrap());
            assert!(check_same_origin(&nginx, &h, false).is_err(), "{origin}");
        }
        // An untrusted peer's X-Forwarded-Host is not read: its Host is.
        let direct = headers(&[
            ("host", "idgate.internal:8080"),
            ("x-forwarded-host", "evil.test"),
            ("origin", "http://evil.test"),
        ]);
        assert!(check_same_origin(&peer(false), &direct, false).is_err());
    }

    #[test]
    fn with_neither_header_only_a_bearer_token_passes() {
        let h = headers(&[("x-forwarded-host", "app.test")]);
        assert!(check_same_origin(&peer(true), &h, false).is_err());
        assert!(check_same_origin(&peer(true), &h, true).is_ok());
    }
}
