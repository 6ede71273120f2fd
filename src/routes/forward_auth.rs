//! `/forward-auth`: the decision for gateways other than Nginx's `auth_request` — Caddy's
//! `forward_auth`, Traefik's `forwardAuth` and ingress-nginx's `auth-url`.
//!
//! The same decision as `/auth` (`super::auth::judge`: sessions, renewal, route rules, API
//! keys), on a request described by other headers. Those gateways copy the client's own headers
//! into the question, so nothing a client can send is read as the operator's word here: the
//! app, the client type and the other location settings come from this endpoint's query, which
//! only the gateway's configuration writes (`/forward-auth?app=web`); the `idgate-app`,
//! `Original-Request-*` and `X-Original-URI` headers `/auth` believes are ignored.
//!
//! The request is described, from trusted peers only (403 JSON otherwise), by:
//!
//! - by default (`headers=forwarded`), `X-Forwarded-Method`, `-Proto`, `-Host` and `-Uri`, as
//!   Caddy and Traefik set them;
//! - with `headers=ingress-nginx`, `X-Original-URL` (absolute) and `X-Original-Method`, as
//!   ingress-nginx's generated auth location sets them.
//!
//! A missing, repeated or malformed header, or a path not in canonical form
//! (`http::non_canonical`: dot segments, encoded slashes, …), is answered 400: a request the
//! gateway could route differently from how it is judged is refused, never guessed at.
//!
//! Answers: 200 with the identity headers; for a session renewed on the way (an expired session
//! token of a live session), 307 back to the same URL with the renewed `Set-Cookie` (those
//! gateways pass a 200's headers to the upstream, not to the browser; in the ingress-nginx style
//! the 200 carries it, as ingress-nginx passes it on); for a
//! browser navigation without a session, 302 to the login (`Location` absolute on the forwarded
//! origin when that origin is one of the app's `allowed_redirects`, else relative: the gateway's
//! client resolves it against the page it asked for); 401/403 JSON otherwise. In the
//! ingress-nginx style a 401 carries no `Location`: ingress-nginx sends the browser to its
//! `auth-signin` itself.

use http::{HeaderMap, HeaderValue, StatusCode};

use super::auth::{judge, Described};
use super::Peer;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::state::AppState;

/// Longest forwarded request target read; a longer one is refused (400).
const MAX_FORWARDED_URI: usize = crate::http::MAX_PATH;

/// Longest forwarded method or host read.
const MAX_SHORT_HEADER: usize = 255;

/// Which headers describe the request: the gateway's kind, stated in the endpoint's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri` (Caddy, Traefik).
    Forwarded,
    /// `X-Original-URL`, `X-Original-Method` (ingress-nginx's `auth-url`).
    IngressNginx,
}

/// The request as the gateway describes it.
struct Forwarded<'a> {
    /// The request's method.
    method: &'a str,
    /// `http` or `https`.
    proto: &'a str,
    /// The host (and port) the client asked for.
    host: &'a str,
    /// The request target: path and query.
    uri: &'a str,
}

pub async fn decide(state: &AppState, peer: &Peer, req: &Request) -> Response {
    if !peer.trusted {
        tracing::warn!(peer = ?peer.addr, "/forward-auth asked by an untrusted peer");
        return ApiError::Forbidden("this peer may not ask /forward-auth".into()).into_response();
    }
    let query = crate::http::query_params(req.uri());
    let style = match query.get("headers").map(String::as_str) {
        None | Some("forwarded") => Style::Forwarded,
        Some("ingress-nginx") => Style::IngressNginx,
        Some(_) => {
            return ApiError::BadRequest("`headers` must be `forwarded` or `ingress-nginx`".into())
                .into_response()
        }
    };
    let headers = req.headers();
    let forwarded = match style {
        Style::Forwarded => from_forwarded(headers),
        Style::IngressNginx => from_original_url(headers),
    };
    let forwarded = match forwarded {
        Ok(f) => f,
        Err(why) => {
            tracing::info!(reason = why, "/forward-auth: the request is not described");
            return ApiError::BadRequest(why.into()).into_response();
        }
    };
    let stated = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let flag = |name: &str| stated(name).is_some_and(|v| v == "true" || v == "1");
    let described = Described {
        method: forwarded.method,
        uri: forwarded.uri,
        app: stated("app"),
        client_type: stated("client_type"),
        api_key_required: flag("api_key_required"),
        backoffice: flag("backoffice"),
        audience: stated("audience"),
        rule_path: "/auth",
    };
    let mut resp = judge(state, peer, headers, &described).await;
    let app = described.app.or(state.config.server.default_app.as_deref());
    if style == Style::Forwarded
        && resp.status().is_success()
        && resp.headers().contains_key(http::header::SET_COOKIE)
    {
        // A renewed session: the gateway passes a 200's headers to the upstream, not to the
        // browser, so the browser is sent back to the same URL with its new cookie (307 keeps
        // the method and body of a script's request).
        let mut again = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
        *again.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        if let Some(cookie) = resp.headers_mut().remove(http::header::SET_COOKIE) {
            again.headers_mut().insert(http::header::SET_COOKIE, cookie);
        }
        if let Ok(same) = HeaderValue::from_str(forwarded.uri) {
            let location = absolute(state, app, &forwarded, same);
            again.headers_mut().insert(http::header::LOCATION, location);
        }
        again.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        return again;
    }
    if resp.status().is_success() {
        // Every identity header, empty when the request has no session: a gateway copying
        // the answer's headers onto the request then replaces a client's own (Caddy 2.6 would
        // otherwise pass on the client's, or its unexpanded placeholder).
        let client_type = crate::headers::MIA_CLIENT_TYPE;
        let names = state.auth.identity_header_names().chain([&client_type]);
        for name in names {
            if !resp.headers().contains_key(name) {
                resp.headers_mut()
                    .insert(name.clone(), HeaderValue::from_static(""));
            }
        }
    }
    if resp.status() == StatusCode::UNAUTHORIZED {
        if let Some(login) = resp.headers_mut().remove(http::header::LOCATION) {
            if style == Style::Forwarded {
                *resp.status_mut() = StatusCode::FOUND;
                let location = absolute(state, app, &forwarded, login);
                resp.headers_mut().insert(http::header::LOCATION, location);
            }
        }
    }
    resp
}

/// The `X-Forwarded-*` description (Caddy, Traefik).
fn from_forwarded(headers: &HeaderMap) -> Result<Forwarded<'_>, &'static str> {
    let method = single(headers, "x-forwarded-method", MAX_SHORT_HEADER)?;
    let proto = single(headers, "x-forwarded-proto", MAX_SHORT_HEADER)?;
    let host = single(headers, "x-forwarded-host", MAX_SHORT_HEADER)?;
    let uri = single(headers, "x-forwarded-uri", MAX_FORWARDED_URI)?;
    checked(method, proto, host, uri)
}

/// The ingress-nginx description: `X-Original-URL` is `$scheme://$http_host$request_uri`.
fn from_original_url(headers: &HeaderMap) -> Result<Forwarded<'_>, &'static str> {
    let method = single(headers, "x-original-method", MAX_SHORT_HEADER)?;
    let url = single(
        headers,
        "x-original-url",
        MAX_FORWARDED_URI + MAX_SHORT_HEADER + 8,
    )?;
    let (proto, rest) = url
        .split_once("://")
        .ok_or("X-Original-URL must be an absolute URL")?;
    let (host, uri) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => return Err("X-Original-URL must have a path"),
    };
    checked(method, proto, host, uri)
}

/// One value of `name`, at most `max` bytes of visible ASCII.
fn single<'a>(headers: &'a HeaderMap, name: &str, max: usize) -> Result<&'a str, &'static str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or("a forwarded header is missing")?;
    if values.next().is_some() {
        return Err("a forwarded header is repeated");
    }
    if value.len() > max {
        return Err("a forwarded header is too long");
    }
    value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or("a forwarded header is not visible ASCII")
}

/// The description, each part as the gateway could only have meant it.
fn checked<'a>(
    method: &'a str,
    proto: &'a str,
    host: &'a str,
    uri: &'a str,
) -> Result<Forwarded<'a>, &'static str> {
    if !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("the forwarded method is not a method");
    }
    if !matches!(proto, "http" | "https") {
        return Err("the forwarded protocol must be http or https");
    }
    // A host and optional port, nothing else (no user information, no path).
    let authority: http::uri::Authority = host
        .parse()
        .map_err(|_| "the forwarded host is not a host")?;
    if authority.as_str().contains('@') {
        return Err("the forwarded host is not a host");
    }
    let path = uri.split_once('?').map_or(uri, |(p, _)| p);
    if crate::http::non_canonical(path).is_some() || uri.contains('#') {
        return Err("the forwarded path is not in canonical form");
    }
    Ok(Forwarded {
        method,
        proto,
        host,
        uri,
    })
}

/// The login's `Location` on the forwarded origin, when that origin is one the app may send a
/// browser to; else the relative one, which the browser resolves against the page it asked for.
fn absolute(
    state: &AppState,
    app: Option<&str>,
    forwarded: &Forwarded<'_>,
    relative: HeaderValue,
) -> HeaderValue {
    let origin = format!("{}://{}", forwarded.proto, forwarded.host);
    let allowed = app.and_then(|a| state.app(a)).is_some_and(|app| {
        crate::redirect::validate(&format!("{origin}/"), &app.allowed_redirects).is_ok()
    });
    if !allowed {
        return relative;
    }
    let path = relative.to_str().unwrap_or("/");
    HeaderValue::from_str(&format!("{origin}{path}")).unwrap_or(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::test_headers as headers;

    #[test]
    fn ingress_nginx_url_splits_into_origin_and_target() {
        let h = headers(&[
            ("x-original-method", "GET"),
            (
                "x-original-url",
                "https://app.example:8443/docs/a?x=1&y=%20",
            ),
        ]);
        let f = from_original_url(&h).unwrap();
        assert_eq!(
            (f.method, f.proto, f.host, f.uri),
            ("GET", "https", "app.example:8443", "/docs/a?x=1&y=%20")
        );
        for bad in [
            "app.example/docs",
            "https://app.example",
            "https://u@app.example/x",
            "https://app.example/a/../b",
            "javascript://app.example/x",
        ] {
            let mut h = headers(&[("x-original-method", "GET")]);
            h.insert("x-original-url", HeaderValue::from_str(bad).unwrap());
            assert!(from_original_url(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_description_needs_each_header_once() {
        let full = [
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-uri", "/x"),
        ];
        assert!(from_forwarded(&headers(&full)).is_ok());
        for i in 0..full.len() {
            let mut missing = full.to_vec();
            missing.remove(i);
            assert!(from_forwarded(&headers(&missing)).is_err(), "{:?}", full[i]);
            let mut twice = full.to_vec();
            twice.push(full[i]);
            assert!(from_forwarded(&headers(&twice)).is_err(), "{:?}", full[i]);
        }
    }
}
