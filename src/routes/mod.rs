//! HTTP endpoints, dispatched with a plain `match` on method and path — only a path in canonical
//! form (`http::non_canonical`): any other is answered 400 before it is matched, so a path that
//! Nginx, a client or an upstream would resolve differently never reaches an endpoint.
//!
//! | method, path | handler | answers | notes |
//! |---|---|---|---|
//! | any `/auth`, `/auth/{rule}` | [`auth::decide`] | 200 + `mia-allowed`, `mia-userid`, `mia-groups`, `mia-userproperties` (+ `mia-client-type`); 401 (+ `Location` for browser navigations; `idgate-refusal: api-key` for a refused API key); 403 for untrusted peers, and for a location's unlisted audience; 503 naming the IdP when an opaque API token cannot be checked (`introspect`) | Nginx `auth_request` target; with `idgate-audience` (the location's `$idgate_audience`) `idgate-token` is the token minted for that upstream (`jwt::scoped`); never another status on purpose |
//! | any `/forward-auth?app=…[&headers=ingress-nginx]` | [`forward_auth::decide`] | as `/auth`, but 302 (not 401) to the login for browser navigations, `Location` absolute on an allowed forwarded origin; 400 for a missing/malformed description; 403 for untrusted peers | Caddy `forward_auth`, Traefik `forwardAuth` (`X-Forwarded-*`), ingress-nginx `auth-url` (`X-Original-URL`); the location's settings only from the query (see `docs/gateways.md`) |
//! | GET `/authorize` | [`login::authorize`] | 302 to the IdP; 400 naming a bad `appId`/`providerId`/`redirect`/`acr_values`/`max_age`/`prompt` | sets `idgate_login` (a fresh binding), clears `sid`/`idgate_renew`/`refresh_token` (not for a step-up of the browser's live session) |
//! | GET `/web-login` | [`login::chooser`] | 200 HTML provider chooser; 400 | |
//! | (any error of a browser navigation) | [`site::PageContext::error_page`] | the same status, an HTML page in the browser's language | plain words, what to do, a "start again" link; never the request's input |
//! | GET `/web-login/oauth/callback`, `/web-login/callback` | [`site::callback_page`] | 200 HTML; 400 HTML page for an IdP error or no code | the script POSTs the code in the body / the query |
//! | GET `/web-login/callback.js` | [`login::callback_script`] | 200 JavaScript | the callback script under its old, unhashed name |
//! | POST `/web-login/finish` | [`site::finish`] | 303 to the login's target (+ the cookies `/oauth/token` sets); 400 HTML page | the callback page's form without JavaScript: `code`, `state`, `iss` |
//! | GET `/web-login/static/{name}` | [`site::asset`] | 200 CSS/JS, `Cache-Control: public, max-age=31536000, immutable`; 404 | names carry their content's hash |
//! | POST `/oauth/token` | [`token::exchange`] | 200 `{accessToken, refreshToken, expiresAt}` + `Location` (+ cookies for website apps); 400 bad/used/foreign state; 502 IdP failure | JSON, form or query |
//! | POST `/refreshtoken` | [`refresh::refresh`] | 200 new `{accessToken, refreshToken, expiresAt}` (+ cookies), the same again for a repeat within `[session] refresh_grace`; 401 for a used, unknown or ended refresh token (a reused one revokes its session; cookies cleared with `invalid_refresh_wipes_cookies`) | body, form, query or `refresh_token` cookie |
//! | GET, POST `/logout` | [`session_api::logout`] | 302 to the provider's `logout_url` (with `post_logout_redirect_uri`) or to `redirect`; 400 for a refused `redirect`; 200 JSON | clears cookies, revokes the session (of the session token, or of the `refresh_token` cookie alone) |
//! | POST `/backchannel-logout/{appId}/{providerId}` | [`session_api::backchannel_logout`] | 200 `{"revoked": n}`; 400 `{"error":"invalid_request"}` | OIDC Back-Channel Logout: a valid `logout_token` revokes the user's sessions |
//! | GET `/userinfo` | [`session_api::userinfo`] | 200 the `user` claim; 401 | |
//! | GET `/me/sessions` | [`me::list`] | 200 `[{id, appId, providerId, createdAt, lastSeenAt, expiresAt, clientAddr, userAgent, current}]` (a page for a browser navigation); 401 | the caller's own live sessions |
//! | DELETE `/me/sessions/{id}`, `/me/sessions?others=true` | [`me::end_one`], [`me::end_others`] | 200 `{"ended": n}`; 400 without `others=true`; 401; 403 cross-site; 404 not one of the caller's sessions | |
//! | POST `/me/sessions` | [`me::end_by_form`] | 303 to `/me/sessions` for a browser's form, else 200 `{"ended": n}`; 400 without `end`; 401; 403 cross-site; 404 | the sessions page's buttons, without JavaScript: form `end` = an id or `others` |
//! | GET `/apps/{appId}/providers` | [`meta::providers`] | 200 `[{id,label,type,order}]`; 404 | |
//! | GET `/.well-known/jwks.json` | [`meta::jwks`] | 200 JWKS | |
//! | DELETE `/sessions/{userId}` | [`session_api::revoke_user`] | 200 `{"count": n}`; 403 without the admin token or an admin peer | admin: revokes every session of the user, on every instance |
//! | GET `/tokeninfo` | [`mia_api::tokeninfo`] | 200 the `user` claim + `provider: {accessToken, id, baseUrl, userId}`; 401 | Mia's; the IdP's access token: not routed by the snippets |
//! | GET `/provider/idtoken` | [`mia_api::provider_idtoken`] | 200 `{idToken}`; 401; 404 when the IdP gave none | Mia's; not routed by the snippets |
//! | DELETE `/expired-sessions`, `/expired-sessions/{userId}` | [`mia_api::expired_sessions`] | 204; 403 as `DELETE /sessions/…` | admin: drops what is left of expired sessions |
//! | GET `/-/healthz`, `/-/ready` | [`health::healthz`], [`health::ready`] | 200; 503 naming the store that is down | |
//! | GET `/-/metrics` | [`health::metrics`] | 200 Prometheus text; 403 for untrusted peers | see `metrics` |
//! | GET `/-/check-up` | [`health::check_up`] | 200 / 503 `{status, checks: [{name, ok, error?}]}`; 403 for untrusted peers | store, users, each IdP's discovery |

mod auth;
mod forward_auth;
mod health;
pub(crate) mod login;
mod me;
mod meta;
mod mia_api;
mod refresh;
mod session_api;
mod site;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;

use http::Method;

use crate::cookie::Kind;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::metrics::LoginRoute;
use crate::state::AppState;

/// Who is on the other end of a connection, decided once when it is accepted.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: Option<SocketAddr>,
    /// In `server.trusted_peers`, or on the unix socket: only these may ask `/auth`.
    pub trusted: bool,
    /// In `server.admin_peers`: may use the administrative endpoints without the admin token.
    pub admin: bool,
}

pub async fn handle(state: Arc<AppState>, peer: Arc<Peer>, req: Request) -> Response {
    let path = req.uri().path();
    // Before anything is matched: a path that another component could read differently
    // (`/web-login/..%2Fauth`) never reaches an endpoint.
    if let Some(reason) = crate::http::non_canonical(path) {
        tracing::warn!(reason, "request path refused: not in canonical form");
        return ApiError::BadRequest(format!(
            "the request path is not in canonical form: {reason}"
        ))
        .into_response();
    }
    if path == "/auth" || path.starts_with("/auth/") {
        return auth::decide(&state, &peer, &req).await;
    }
    if path == "/forward-auth" {
        return forward_auth::decide(&state, &peer, &req).await;
    }
    // Boxed: the endpoints' futures together are several KiB, and hyper moves the request's
    // future (a memcpy of its whole size) on every request, `/auth` included. Boxing the
    // login endpoints keeps the hot path's future small.
    // A login step's span (`telemetry`); disabled, and free, for anything else or traces off.
    let span = crate::telemetry::step_span(req.method(), path, req.headers());
    Box::pin(tracing::Instrument::instrument(
        endpoint(state, peer, req),
        span,
    ))
    .await
}

/// Every endpoint but `/auth`.
async fn endpoint(state: Arc<AppState>, peer: Arc<Peer>, req: Request) -> Response {
    let path = req.uri().path();
    let method = req.method().clone();
    let navigation = is_navigation(method.as_str(), req.headers());
    if let Some(endpoint) = limited(&method, path) {
        if let Err(refused) = check_login_limits(&state, &peer, &req, endpoint).await {
            return too_many(&state, &req, refused);
        }
    }
    // Taken before a handler consumes the request: the page an error becomes.
    let page = navigation.then(|| site::PageContext::of(&state, &req));
    let result = match (&method, path) {
        (&Method::GET, "/authorize") => {
            timed_login(
                &state,
                LoginRoute::Authorize,
                login::authorize(&state, &req),
            )
            .await
        }
        (&Method::GET, "/web-login") => login::chooser(&state, &req),
        (&Method::GET, "/web-login/oauth/callback") => {
            Ok(site::callback_page(&state, &req, "body"))
        }
        (&Method::GET, "/web-login/callback") => Ok(site::callback_page(&state, &req, "query")),
        (&Method::GET, "/web-login/callback.js") => Ok(login::callback_script(&state)),
        (&Method::POST, "/web-login/finish") => Ok(site::finish(&state, &peer, req).await),
        (&Method::GET, p) if p.starts_with(crate::pages::assets::PREFIX) => site::asset(&state, p),
        (&Method::POST, "/oauth/token") => {
            timed_login(
                &state,
                LoginRoute::Token,
                token::exchange(&state, &peer, req),
            )
            .await
        }
        (&Method::POST, "/refreshtoken") => refresh::refresh(&state, &peer, req).await,
        (&Method::POST, p) if p.starts_with("/backchannel-logout/") => {
            let p = p.to_owned();
            session_api::backchannel_logout(&state, &peer, req, &p).await
        }
        (&Method::GET | &Method::POST, "/logout") => session_api::logout(&state, &peer, req).await,
        (&Method::GET, "/userinfo") => session_api::userinfo(&state, &req).await,
        (&Method::GET, "/me/sessions") => me::list(&state, &peer, &req).await,
        (&Method::DELETE, "/me/sessions") => me::end_others(&state, &peer, &req).await,
        (&Method::POST, "/me/sessions") => Ok(me::end_by_form(&state, &peer, req).await),
        (&Method::DELETE, p) if p.starts_with("/me/sessions/") => {
            me::end_one(&state, &peer, &req, p).await
        }
        (&Method::GET, "/.well-known/jwks.json") => Ok(meta::jwks(&state)),
        (&Method::GET, p) if p.starts_with("/apps/") => meta::providers(&state, p),
        (&Method::DELETE, p) if p.starts_with("/sessions/") => {
            session_api::revoke_user(&state, &peer, req.headers(), p).await
        }
        (&Method::GET, "/tokeninfo") => mia_api::tokeninfo(&state, &req).await,
        (&Method::GET, "/provider/idtoken") => mia_api::provider_idtoken(&state, &req).await,
        (&Method::DELETE, p) if p == "/expired-sessions" || p.starts_with("/expired-sessions/") => {
            mia_api::expired_sessions(&state, &peer, req.headers(), p).await
        }
        (&Method::GET, "/-/healthz") => Ok(health::healthz()),
        (&Method::GET, "/-/ready") => health::ready(&state).await,
        (&Method::GET, "/-/metrics" | "/-/check-up") if !peer.trusted => Err(ApiError::Forbidden(
            "only trusted peers may read this".into(),
        )),
        (&Method::GET, "/-/metrics") => Ok(health::metrics(&state).await),
        (&Method::GET, "/-/check-up") => Ok(health::check_up(&state).await),
        (_, p) if is_known_path(p) => Err(ApiError::MethodNotAllowed),
        (_, p) => Err(ApiError::NotFound(format!("no endpoint at {p}"))),
    };
    match result {
        Ok(resp) => resp,
        // A person's browser landed here: a page says what went wrong in plain words (never
        // the message, which may quote the request). API and XHR callers keep their JSON.
        Err(e) => match &page {
            Some(page) => page.error_page(&state, e),
            None => e.into_response(),
        },
    }
}

/// The login endpoints `[login_limits]` applies to (see `limits`), by the path they answer.
fn limited(method: &Method, path: &str) -> Option<&'static str> {
    Some(match (method, path) {
        (&Method::GET, "/authorize") => "/authorize",
        (&Method::POST, "/oauth/token") => "/oauth/token",
        (&Method::POST, "/web-login/finish") => "/web-login/finish",
        (&Method::POST, "/refreshtoken") => "/refreshtoken",
        _ => return None,
    })
}

/// Spends one request of the client's address bucket and its browser binding's: the login
/// cookie at `/oauth/token` and `/web-login/finish`, the refresh token cookie at
/// `/refreshtoken`. (`/authorize` is limited by address only: it gives the browser a new
/// binding every time, so no binding there names the same browser twice.) A refusal is
/// counted, and its bucket's first in a minute logged and put in the audit trail.
async fn check_login_limits(
    state: &AppState,
    peer: &Peer,
    req: &Request,
    endpoint: &'static str,
) -> Result<(), crate::limits::Refused> {
    let headers = req.headers();
    let client = crate::http::client::ClientInfo::of(peer.addr, peer.trusted, headers);
    let binding_cookie = match endpoint {
        "/authorize" => None,
        "/refreshtoken" => Some(Kind::Refresh),
        _ => Some(Kind::Login),
    };
    let binding = binding_cookie
        .and_then(|kind| state.cookies.read(headers, kind))
        .filter(|b| !b.is_empty());
    let result = state
        .limits
        .check(state.states.as_ref(), client.addr, binding)
        .await;
    if let Err(refused) = &result {
        state.metrics.login_limited(refused.bucket);
        if refused.report {
            tracing::warn!(
                bucket = refused.bucket,
                endpoint,
                client = ?client.addr,
                "login rate limit reached: answering 429 (logged once a minute per bucket)"
            );
            let bucket = refused.bucket;
            state.audit.emit(|| {
                crate::audit::Event::new(crate::audit::Kind::RateLimited { bucket, endpoint })
                    .client(client)
            });
        }
    }
    result
}

/// The 429 of a refused login request, with `Retry-After`: a page for a browser, else JSON.
fn too_many(state: &AppState, req: &Request, refused: crate::limits::Refused) -> Response {
    let secs = refused.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let what = match refused.bucket {
        "binding" => "from this browser",
        _ => "from this address",
    };
    let e = ApiError::TooManyRequests(what, secs);
    let mut resp = if reads_html(req.headers()) {
        site::PageContext::of(state, req).error_page(state, e)
    } else {
        e.into_response()
    };
    resp.headers_mut()
        .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    resp
}

/// Runs a login endpoint, recording a success's server-side time, split into idgate's own
/// time and the time spent waiting on the identity provider (`idgate_login_duration_seconds`).
async fn timed_login(
    state: &AppState,
    route: LoginRoute,
    handler: impl std::future::Future<Output = Result<Response, ApiError>>,
) -> Result<Response, ApiError> {
    let (result, total, idp) = crate::metrics::measure_idp(handler).await;
    if result.is_ok() {
        state.metrics.login_duration(route, total, idp);
    }
    result
}

fn is_known_path(p: &str) -> bool {
    matches!(
        p,
        "/authorize"
            | "/web-login"
            | "/web-login/oauth/callback"
            | "/web-login/callback"
            | "/web-login/callback.js"
            | "/web-login/finish"
            | "/oauth/token"
            | "/refreshtoken"
            | "/logout"
            | "/userinfo"
            | "/.well-known/jwks.json"
            | "/-/healthz"
            | "/-/ready"
            | "/-/metrics"
            | "/-/check-up"
            | "/tokeninfo"
            | "/provider/idtoken"
            | "/expired-sessions"
            | "/me/sessions"
    ) || p.starts_with("/apps/")
        || p.starts_with("/me/sessions/")
        || p.starts_with("/sessions/")
        || p.starts_with("/backchannel-logout/")
        || p.starts_with("/expired-sessions/")
}

impl Peer {
    /// Where a request over this connection came from, for the audit trail.
    pub(crate) fn origin<'a>(&self, headers: &'a http::HeaderMap) -> crate::audit::Origin<'a> {
        crate::audit::Origin {
            peer: self.addr,
            trusted: self.trusted,
            headers,
        }
    }
}

/// The session token of a request: `Authorization: Bearer …`, else the `sid` cookie.
pub(crate) fn session_token<'a>(
    headers: &'a http::HeaderMap,
    cookies: &crate::cookie::CookieJar,
) -> Option<&'a str> {
    bearer_token(headers).or_else(|| {
        cookies
            .read(headers, crate::cookie::Kind::Sid)
            .filter(|t| !t.is_empty())
    })
}

/// The token of an `Authorization: Bearer …` header, if it carries one.
pub(crate) fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the client is a browser navigating (and so should be sent to a login page rather
/// than given a JSON error): GET/HEAD and an `Accept` that names `text/html`.
pub(crate) fn is_navigation(method: &str, headers: &http::HeaderMap) -> bool {
    matches!(method, "GET" | "HEAD") && reads_html(headers)
}

/// Whether the client reads HTML (a browser's navigation or form), not a script's XHR.
pub(crate) fn reads_html(headers: &http::HeaderMap) -> bool {
    let accept_html = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let xhr = headers
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
    accept_html && !xhr
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn bearer_wins_over_cookie() {
        let jar = crate::cookie::CookieJar::new(&crate::config::SessionConfig::for_tests());
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_static("a=1; sid=fromcookie"));
        assert_eq!(session_token(&h, &jar), Some("fromcookie"));
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer frombearer"),
        );
        assert_eq!(session_token(&h, &jar), Some("frombearer"));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(session_token(&h, &jar), Some("fromcookie"));
    }

    #[test]
    fn navigation_needs_get_and_html() {
        let mut h = HeaderMap::new();
        h.insert(
            "accept",
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(is_navigation("GET", &h));
        assert!(!is_navigation("POST", &h));
        h.insert(
            "x-requested-with",
            HeaderValue::from_static("XMLHttpRequest"),
        );
        assert!(!is_navigation("GET", &h));
        h.remove("x-requested-with");
        h.insert("accept", HeaderValue::from_static("application/json"));
        assert!(!is_navigation("GET", &h));
    }
}
