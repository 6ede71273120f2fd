//! `/auth`: the decision Nginx's `auth_request` asks for on every protected request.
//!
//! Explicit status mapping, because `auth_request` understands nothing else: **200** with the
//! identity headers for a live session; **401** for no session, a bad or expired token, a
//! logged-out session, or a store that cannot confirm a never-seen session (with the login URL
//! in `Location` for browser navigations); **403** when the peer is not a trusted one. A 200
//! also hands back the request's cookies without idgate's own (`idgate-upstream-cookie`,
//! `cookie::for_upstream`), which the snippets send as the upstream's `Cookie`.
//!
//! A session seen before is answered from memory (see `session`): no store, no network. The
//! route rules (`policy`) then decide; a path under `/auth/` carries a Nginx location's own rule
//! (percent-encoded), which replaces the route table for that request.
//!
//! A bearer token that is not idgate's, on a location of an app with `[apps.X.introspection]`,
//! is an opaque API token of the IdP: `crate::introspect` says whose it is (503 when the IdP
//! cannot say now). A location naming an upstream audience (`idgate-audience`) gets the token
//! minted for it in `idgate-token` (`crate::jwt::scoped`; 403 for an audience the app does not
//! list). Both live in [`api_tokens`]; neither touches the cached-session path.
//!
//! API keys (see `apikeys`) are checked first: a key the request sends must be valid even where
//! none is required (401, `idgate-refusal: api-key`), and a location stating
//! `$idgate_api_key_required` refuses a request without one. The client type the rules see and
//! `mia-client-type` carries is the location's own (`$idgate_client_type`) when the operator
//! states one — a key never widens what the location says it is — else the key's.

mod api_tokens;
mod described;

pub(super) use described::Described;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::Full;

use super::Peer;
use crate::audit::Event;
use crate::cookie::Kind;
use crate::headers::{self, MIA_ALLOWED};
use crate::http::{encode_query_value, Request, Response};
use crate::jwt::JwtError;
use crate::policy::{Context, Decision, StepUp, Verdict};
use crate::session::{AuthFailure, KeyedToken, Miss, VerifiedSession};
use crate::state::AppState;

pub async fn decide(state: &AppState, peer: &Peer, req: &Request) -> Response {
    if !peer.trusted {
        tracing::warn!(peer = ?peer.addr, "/auth asked by an untrusted peer");
        deny(state, peer, req.headers(), "untrusted_peer", None);
        return refuse(StatusCode::FORBIDDEN, "this peer may not ask /auth");
    }
    let mut resp = judge(state, peer, req.headers(), &Described::from_nginx(req)).await;
    if resp.status().is_success() {
        // The cookies the upstream may see, for the snippets' `proxy_set_header Cookie`: only
        // the location (`$idgate_forward_api_key`, never the client) keeps an API key in them.
        let keep_api_key = req
            .headers()
            .get(headers::FORWARD_API_KEY)
            .is_some_and(|v| v == "true");
        if let Some(cookie) = crate::cookie::for_upstream(req.headers(), keep_api_key) {
            resp.headers_mut().insert(headers::UPSTREAM_COOKIE, cookie);
        }
    }
    resp
}

/// The decision on the request `described`, asked by a trusted peer with the client's
/// `headers` (its credentials and `Accept`).
pub(super) async fn judge(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    described: &Described<'_>,
) -> Response {
    if let Some(too_big) = oversized_credentials(headers) {
        tracing::warn!(
            header = too_big,
            "/auth refused: credentials larger than idgate reads"
        );
        deny(state, peer, headers, "oversized_credentials", None);
        return refuse(
            StatusCode::FORBIDDEN,
            "the request's credentials are too large",
        );
    }
    // The API key step, before anything else reads the request: a refused key ends it here.
    let client_type = match client_type(state, headers, described) {
        Ok(client_type) => client_type,
        Err(e) => {
            // The error names where the key was sent, never the key.
            tracing::info!(reason = %e, "/auth refused: API key");
            return refuse_api_key(&e);
        }
    };
    // The app the location belongs to, stated by the operator (see idgate-upstream.conf).
    let bound_app = match described.app {
        Some(id) => match state.config.apps.get_key_value(id) {
            Some((id, _)) => Some(id.as_str()),
            None => {
                tracing::error!(
                    app = id,
                    "the Nginx location is bound to an app that is not configured: refusing"
                );
                deny(state, peer, headers, "location_app", None);
                return refuse(
                    StatusCode::FORBIDDEN,
                    "this location's app is not configured",
                );
            }
        },
        None => state.config.server.default_app.as_deref(),
    };
    let mut set_cookie = None;
    // One clock read for the request: the cache's expiry check and the login's age.
    let now = crate::now_secs();
    // The token with its cache key, computed once: a miss hands both to the cold path, and a
    // location asking for a scoped token (below) finds its minted one under the same key.
    let token = super::session_token(headers, &state.cookies).map(KeyedToken::new);
    let session = match &token {
        None => None,
        Some(token) => match state.auth.cached_keyed(*token, now) {
            Ok(session) => {
                state.metrics.cache_hit();
                Some(session)
            }
            // The slow paths are boxed so that the hot path's future stays small (hyper moves
            // it whole on every request).
            Err(miss) => match Box::pin(checked_in_store(state, miss)).await {
                Ok(session) => Some(session),
                // A browser's expired token is renewed while its session lives.
                Err(AuthFailure::Token(JwtError::Expired))
                    if super::bearer_token(headers).is_none() =>
                {
                    let secret = state.cookies.read(headers, Kind::Renew);
                    let origin = peer.origin(headers);
                    match Box::pin(crate::renewal::renew(state, token.text(), secret, &origin))
                        .await
                    {
                        Ok(renewed) => {
                            set_cookie = Some(renewed.set_cookie.clone());
                            Some(renewed.session.clone())
                        }
                        Err(e) => {
                            tracing::debug!(reason = %e, "expired session not renewed");
                            None
                        }
                    }
                }
                Err(AuthFailure::Store(e)) => {
                    tracing::error!(error = %e, "cannot confirm a session: treating the request as anonymous");
                    None
                }
                // Not a token of idgate's: an opaque API token of the app's IdP, where the
                // location's app accepts them (`[apps.X.introspection]`).
                Err(AuthFailure::Token(e))
                    if !matches!(e, JwtError::Expired)
                        && bound_app.is_some_and(|a| state.introspector.enabled(a))
                        && super::bearer_token(headers) == Some(token.text()) =>
                {
                    let app = bound_app.unwrap_or_default();
                    match Box::pin(api_tokens::introspected(state, app, token.text(), now)).await {
                        Ok(found) => found,
                        Err(why) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &why),
                    }
                }
                Err(e) => {
                    tracing::debug!(reason = %e, "session refused");
                    None
                }
            },
        },
    };
    // A session opens its own app's locations only; elsewhere it counts as no session.
    let session = session.filter(|s| {
        let ok = bound_app == Some(s.app_id());
        if !ok {
            tracing::debug!(session_app = %s.app_id(), location_app = ?bound_app, "a session of another app: treated as anonymous");
        }
        ok
    });

    let method = described.method;
    let uri = described.uri;
    let location_rule = match state.location_rules.get(described.rule_path) {
        Ok(rule) => rule,
        Err(e) => {
            let path = described.rule_path;
            let shown = path.get(..120).unwrap_or(path);
            tracing::error!(rule_path = %shown.escape_debug(), length = path.len(), error = %e, "the Nginx location's rule does not parse: refusing");
            deny(state, peer, headers, "location_rule", session.as_deref());
            return refuse(StatusCode::FORBIDDEN, "this location's rule is invalid");
        }
    };
    let ctx = Context {
        session: session.is_some(),
        groups: session.as_ref().map_or(&[], |s| &s.groups),
        permissions: session.as_ref().map_or(&[], |s| &s.permissions),
        client_type,
        is_backoffice: described.backoffice,
        acr: session.as_ref().and_then(|s| s.authn().acr.as_deref()),
        amr: session.as_ref().map_or(&[], |s| &s.authn().amr),
        auth_age: session
            .as_ref()
            .and_then(|s| s.authn().auth_time)
            .map(|t| (now - t).max(0)),
    };
    let verdict = state
        .config
        .policy
        .judge(method, uri, location_rule.as_deref(), &ctx);
    if tracing::enabled!(tracing::Level::DEBUG) {
        explain(&verdict, method, uri);
    }
    match verdict.decision {
        decision @ (Decision::Allow | Decision::Unchecked) => {
            let mut resp = match &session {
                Some(s) => {
                    let mut resp = allow(state, s);
                    if resp.status() == StatusCode::FORBIDDEN {
                        deny(state, peer, headers, "identity_too_large", Some(s));
                    }
                    // Exactly one Set-Cookie: Nginx passes on only the first.
                    if let (Some(cookie), true) = (set_cookie, resp.status().is_success()) {
                        resp.headers_mut().insert(http::header::SET_COOKIE, cookie);
                    }
                    // A location asking for a token minted for its upstream gets it in
                    // place of the session's own.
                    let scoped = described
                        .audience
                        .filter(|_| resp.status().is_success())
                        .zip(token.as_ref());
                    if let Some((audience, token)) = scoped {
                        match api_tokens::scoped_token(state, s, token, audience, now) {
                            Ok(v) => {
                                resp.headers_mut().insert(headers::IDGATE_TOKEN, v);
                            }
                            Err(why) => {
                                deny(state, peer, headers, "audience", Some(s));
                                return refuse(StatusCode::FORBIDDEN, why);
                            }
                        }
                    }
                    resp
                }
                None => allow_anonymous(),
            };
            if let (true, Some(v)) = (
                resp.status().is_success(),
                client_type.and_then(|c| HeaderValue::from_str(c).ok()),
            ) {
                resp.headers_mut().insert(headers::MIA_CLIENT_TYPE, v);
            }
            if decision == Decision::Unchecked && resp.status().is_success() {
                // Lenient mode, a route no rule covers: the upstream decides (Mia's non-strict).
                resp.headers_mut()
                    .insert(MIA_ALLOWED, HeaderValue::from_static("0"));
            }
            resp
        }
        Decision::Forbidden => {
            // The rule's id goes to the audit trail only, never into the answer.
            let route = verdict.rule.map(|r| r.origin.id());
            deny_route(state, peer, headers, session.as_deref(), route);
            refuse(
                StatusCode::FORBIDDEN,
                "this session may not access this route",
            )
        }
        Decision::StepUp => {
            let step_up = verdict.rule.and_then(|r| r.step_up.as_deref());
            step_up_needed(state, bound_app, described, headers, step_up, ctx.acr)
        }
        // Only an anonymous browser is sent to log in; a session that is not enough for an
        // uncovered route would otherwise loop through the login.
        Decision::Unauthenticated if session.is_some() => {
            refuse(StatusCode::UNAUTHORIZED, "no rule covers this route")
        }
        Decision::Unauthenticated => unauthorized(
            state,
            bound_app,
            described,
            headers,
            verdict.rule.and_then(|r| r.step_up.as_deref()),
        ),
    }
}

/// The debug line that says why `/auth` decided as it did (as `idgate check-policy` prints it).
fn explain(verdict: &Verdict<'_>, method: &str, uri: &str) {
    let path = uri.get(..200).unwrap_or(uri);
    tracing::debug!(
        decision = ?verdict.decision,
        method,
        path = %path.escape_debug(),
        route = verdict.rule.map(|r| r.origin.id()),
        expression = verdict.rule.map_or("", |r| &r.origin.expression),
        reason = verdict.reason.describe(),
        "/auth decision"
    );
}

/// Records a 403 of `/auth` in the audit trail: why, and the session when there is one.
fn deny(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    reason: &'static str,
    session: Option<&VerifiedSession>,
) {
    audit_deny(state, peer, headers, reason, session, None);
}

/// Records a route rule's 403 (`route`: the rule's id) in the audit trail.
fn deny_route(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    session: Option<&VerifiedSession>,
    route: Option<String>,
) {
    audit_deny(state, peer, headers, "policy", session, route);
}

fn audit_deny(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    reason: &'static str,
    session: Option<&VerifiedSession>,
    route: Option<String>,
) {
    state.audit.emit(|| {
        let mut event = Event::deny(reason, route);
        if let Some(s) = session {
            event = event.app(s.app_id()).session(s.sid());
            // The token was verified to make `s`: its `sub` can be read as it is.
            if let Some(sub) =
                super::session_token(headers, &state.cookies).and_then(crate::jwt::verified_subject)
            {
                event.user_id = Some(sub);
            }
        }
        event.from(&peer.origin(headers))
    });
}

/// The request's client type: the location's own when the operator states one, else the one
/// its API key stands for. Fails when a key sent is refused, or when the location requires a key
/// (`idgate-api-key-required`, any value but empty, `false` or `0`: a typo requires one) and
/// none is sent.
fn client_type<'a>(
    state: &'a AppState,
    headers: &'a HeaderMap,
    described: &Described<'a>,
) -> Result<Option<&'a str>, crate::apikeys::ApiKeyError> {
    let from_key = state.config.api_keys.from_request(headers)?;
    if described.api_key_required && from_key.is_none() {
        return Err(crate::apikeys::ApiKeyError::Missing);
    }
    Ok(described.client_type.or(from_key))
}

fn refuse_api_key(e: &crate::apikeys::ApiKeyError) -> Response {
    let mut resp = refuse(StatusCode::UNAUTHORIZED, &e.to_string());
    resp.headers_mut()
        .insert(headers::IDGATE_REFUSAL, HeaderValue::from_static("api-key"));
    resp
}

/// The name of a credential header larger than idgate reads, if any: such a request is refused
/// before any of it is parsed.
fn oversized_credentials(headers: &HeaderMap) -> Option<&'static str> {
    let cookies: usize = headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(|v| v.len())
        .sum();
    if cookies > crate::cookie::MAX_COOKIE_HEADER {
        return Some("cookie");
    }
    headers
        .get(http::header::AUTHORIZATION)
        .filter(|v| v.len() > crate::jwt::MAX_TOKEN_LEN + 16)
        .map(|_| "authorization")
}

/// A token-cache miss (the token with its cache key, and what the probe saw): verify and ask
/// the store, timed for `/-/metrics`.
async fn checked_in_store(
    state: &AppState,
    miss: Miss<'_>,
) -> Result<std::sync::Arc<VerifiedSession>, AuthFailure> {
    state.metrics.cache_miss();
    let start = std::time::Instant::now();
    let checked = state.auth.authenticate_missed(miss).await;
    crate::metrics::Metrics::observe(&state.metrics.store_latency, start.elapsed());
    checked
}

fn allow_anonymous() -> Response {
    let mut resp = http::Response::new(Full::new(Bytes::new()));
    resp.headers_mut()
        .insert(MIA_ALLOWED, HeaderValue::from_static("1"));
    resp
}

fn allow(state: &AppState, session: &VerifiedSession) -> Response {
    let headers = match state.auth.identity_headers(session) {
        Ok(headers) => headers,
        Err(e) => {
            tracing::error!(user = %e.user_id, error = %e, "refusing: the identity does not fit in headers");
            return refuse(
                StatusCode::FORBIDDEN,
                "the identity is too large to pass on",
            );
        }
    };
    let mut resp = http::Response::new(Full::new(Bytes::new()));
    let h = resp.headers_mut();
    // One allocation for the map, not one per growth step.
    h.reserve(8);
    h.insert(MIA_ALLOWED, HeaderValue::from_static("1"));
    for (name, value) in headers {
        h.insert(name, value);
    }
    resp
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut resp = crate::http::json_response(status, &crate::error::error_body(status, message));
    resp.headers_mut()
        .insert(MIA_ALLOWED, HeaderValue::from_static("0"));
    resp
}

fn unauthorized(
    state: &AppState,
    app: Option<&str>,
    described: &Described<'_>,
    headers: &HeaderMap,
    step_up: Option<&StepUp>,
) -> Response {
    let mut resp = refuse(StatusCode::UNAUTHORIZED, "a valid session is required");
    if super::is_navigation(described.method, headers) {
        let login = step_up.map(|s| (s, false));
        if let Some(url) = app.and_then(|app| login_url(state, app, described.uri, login)) {
            if let Ok(v) = HeaderValue::from_str(&url) {
                resp.headers_mut().insert(http::header::LOCATION, v);
            }
        }
    }
    resp
}

/// A session whose login is not strong or recent enough for the route (RFC 9470): a browser
/// is sent to log in again at the IdP, asking for what the route needs (`acr_values`,
/// `max_age`, and `prompt=login` when the `acr` falls short, so that the IdP does not reuse a
/// weaker session of its own), and comes back to the same page; an API client gets
/// `WWW-Authenticate: Bearer error="insufficient_user_authentication"` with the same.
fn step_up_needed(
    state: &AppState,
    app: Option<&str>,
    described: &Described<'_>,
    headers: &HeaderMap,
    step_up: Option<&StepUp>,
    acr: Option<&str>,
) -> Response {
    let mut resp = refuse(
        StatusCode::UNAUTHORIZED,
        "this route needs a stronger or more recent login",
    );
    let Some(step_up) = step_up else {
        return resp;
    };
    let mut challenge = String::from(
        "Bearer error=\"insufficient_user_authentication\", \
         error_description=\"a stronger or more recent authentication is required\"",
    );
    if !step_up.acr_values.is_empty() {
        challenge.push_str(&format!(
            ", acr_values=\"{}\"",
            step_up.acr_values.join(" ")
        ));
    }
    if let Some(max_age) = step_up.max_age {
        challenge.push_str(&format!(", max_age={max_age}"));
    }
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
    }
    if super::is_navigation(described.method, headers) {
        let login = Some((step_up, step_up.acr_short(acr)));
        if let Some(url) = app.and_then(|app| login_url(state, app, described.uri, login)) {
            if let Ok(v) = HeaderValue::from_str(&url) {
                resp.headers_mut().insert(http::header::LOCATION, v);
            }
        }
    }
    resp
}

/// Where an anonymous browser starts its login to `app_id`: `/authorize` for an app with an
/// implicit provider, else the app's chooser page. With `step_up`, the login asks the IdP for
/// the route's `acr_values` and `max_age` (and `prompt=login` when the flag is set).
fn login_url(
    state: &AppState,
    app_id: &str,
    original: &str,
    step_up: Option<(&StepUp, bool)>,
) -> Option<String> {
    let app = state.app(app_id)?;
    // A request path that would not be a safe place to come back to becomes "/".
    let back = crate::redirect::validate(original, &[]).unwrap_or_else(|_| "/".into());
    let app_q = encode_query_value(app_id);
    let back_q = encode_query_value(&back);
    let mut url = match app.implicit_provider() {
        Some(p) => format!(
            "/authorize?appId={app_q}&providerId={}&redirect={back_q}",
            encode_query_value(p)
        ),
        None => format!("/web-login?appId={app_q}&redirect={back_q}"),
    };
    if let Some((step_up, prompt_login)) = step_up {
        url.push_str(&crate::routes::login::step_up_query(step_up, prompt_login));
    }
    Some(url)
}
