//! Request and response plumbing shared by the routes: body types, query and body parsing with
//! size limits, and JSON / HTML / redirect response builders.

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};

/// What is wrong with a request's body, or with a response about to be sent. The routes'
/// errors take these in (`error::ApiError`'s `From`), with their statuses.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// The body is not what its content type says, or not the shape the endpoints take.
    #[error("{0}")]
    BadBody(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A redirect target that cannot be a header value (targets are validated before: a bug).
    #[error("redirect target is not a valid header")]
    BadLocation,
}

pub type Body = Full<Bytes>;
pub type Response = http::Response<Body>;
pub type Request = http::Request<hyper::body::Incoming>;

/// Largest request body idgate reads (token requests are a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024;

pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut resp = http::Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut resp = http::Response::new(Full::new(Bytes::from(html)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(crate::headers::PAGE_CSP),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

/// A 302 to `location`, which the caller has already validated.
pub fn redirect(location: &str) -> Result<Response, WireError> {
    let mut resp = http::Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::FOUND;
    let value = HeaderValue::from_str(location).map_err(|_| WireError::BadLocation)?;
    resp.headers_mut().insert(LOCATION, value);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub fn add_cookie(resp: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

/// The query string's parameters; a repeated name keeps its first value.
pub fn query_params(uri: &http::Uri) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(q) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    out
}

/// How long a request body may take to arrive, whole; a slower client gets 408 and its
/// connection back, so a trickle of bytes cannot hold a connection (and a task) forever.
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest request head (request line and headers) idgate reads; a larger one gets 431.
/// Nginx's own default limits (`large_client_header_buffers 4 8k`) stay below it.
pub const MAX_HEAD: usize = 64 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY`] bytes or a body slower than
/// [`BODY_DEADLINE`].
pub async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, WireError> {
    match tokio::time::timeout(BODY_DEADLINE, Limited::new(body, MAX_BODY).collect()).await {
        Err(_) => Err(WireError::RequestTimeout),
        Ok(collected) => collected
            .map(|c| c.to_bytes())
            .map_err(|_| WireError::PayloadTooLarge(MAX_BODY)),
    }
}

/// Parameters from a JSON object or a form-encoded body, by content type; an empty body gives
/// none. String values only: anything else in JSON is an error naming the field.
pub fn body_params(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HashMap<String, String>, WireError> {
    if body.is_empty() {
        return Ok(HashMap::new());
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| WireError::BadBody(format!("body is not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| WireError::BadBody("body must be a JSON object".into()))?;
        let mut out = HashMap::new();
        for (k, v) in obj {
            match v {
                serde_json::Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                serde_json::Value::Null => {}
                _ => return Err(WireError::BadBody(format!("`{k}` must be a string"))),
            }
        }
        Ok(out)
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        Ok(url::form_urlencoded::parse(body).into_owned().collect())
    } else {
        Err(WireError::UnsupportedMediaType(
            "send application/json or application/x-www-form-urlencoded".into(),
        ))
    }
}

/// The request's parameters: the query string, overridden by a JSON or form body. Returns the
/// head too, for the cookies.
pub async fn request_params(
    req: Request,
) -> Result<(http::request::Parts, HashMap<String, String>), WireError> {
    let (parts, body) = req.into_parts();
    let mut params = query_params(&parts.uri);
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    params.extend(body_params(content_type, &read_body(body).await?)?);
    Ok((parts, params))
}

/// Longest request path idgate dispatches on (an `/auth/<rule>` path carries a whole rule).
pub const MAX_PATH: usize = 8 * 1024;

/// Why `path` is not in the one canonical form idgate dispatches on, or `None` when it is.
///
/// idgate answers a path only as it stands: it never resolves dot segments or decodes escapes
/// before dispatching, so a path that some other component would resolve differently (Nginx,
/// the client, an upstream) is refused instead of guessed at. Refused: no leading `/`; empty
/// segments (`//`, except one trailing `/`); `.` and `..` segments; `\` and `;` anywhere;
/// control or non-ASCII bytes; malformed escapes; and escapes of characters that never need
/// one (letters, digits, `-._~`) or that would change the path's structure when decoded (`/`,
/// `\`, `;`, `%` itself, control characters).
pub fn non_canonical(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("the path must start with `/`");
    }
    if path.len() > MAX_PATH {
        return Some("the path is too long");
    }
    let inner = path[1..].strip_suffix('/').unwrap_or(&path[1..]);
    if !inner.is_empty() {
        for segment in inner.split('/') {
            match segment {
                "" => return Some("the path has an empty segment (`//`)"),
                "." | ".." => return Some("the path has a dot segment"),
                _ => {}
            }
        }
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' | b';' => return Some("the path contains `\\` or `;`"),
            b if !(0x21..=0x7e).contains(&b) => {
                return Some("the path contains a control or non-ASCII byte")
            }
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
                    return Some("the path has a malformed percent-escape");
                };
                let decoded = (hi * 16 + lo) as u8;
                if decoded.is_ascii_alphanumeric()
                    || matches!(
                        decoded,
                        b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | b';' | b'%'
                    )
                    || decoded < 0x20
                    || decoded == 0x7f
                {
                    return Some("the path percent-encodes a character that must appear as itself or not at all");
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Percent-encodes a query value.
pub fn encode_query_value(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_and_form_bodies() {
        let j = body_params(Some("application/json"), br#"{"code":"c","state":"s"}"#).unwrap();
        assert_eq!(j["code"], "c");
        let f = body_params(
            Some("application/x-www-form-urlencoded"),
            b"code=c%2F&state=s",
        )
        .unwrap();
        assert_eq!(f["code"], "c/");
        assert!(body_params(Some("application/json"), b"{").is_err());
        assert!(body_params(Some("application/json"), br#"{"code":1}"#).is_err());
        assert!(matches!(
            body_params(Some("text/plain"), b"x"),
            Err(WireError::UnsupportedMediaType(_))
        ));
        assert!(body_params(None, b"").unwrap().is_empty());
    }

    #[test]
    fn only_canonical_paths_are_dispatched() {
        for ok in [
            "/",
            "/auth",
            "/auth/",
            "/auth/groups.a%20||%20groups.b",
            "/apps/web/providers",
            "/sessions/u%40x",
            "/web-login/oauth/callback",
            "/caf%C3%A9",
        ] {
            assert_eq!(non_canonical(ok), None, "{ok}");
        }
        for bad in [
            "",
            "*",
            "auth",
            "//auth",
            "/web-login//x",
            "/auth/..",
            "/web-login/../auth",
            "/web-login/./x",
            "/auth/..%2Fweb-login",
            "/web-login/%2e%2e/auth",
            "/web-login/%2E%2E/auth",
            "/a%2fb",
            "/a%5Cb",
            "/a%5cb",
            "/a\\b",
            "/a;b",
            "/a%3Bb",
            "/a%3bb",
            "/a%252Fb",
            "/a%00b",
            "/a%0d%0ab",
            "/a%41",
            "/a%7e",
            "/a%",
            "/a%4",
            "/a%zz",
            "/a b",
            "/a\tb",
            "/caf\u{e9}",
        ] {
            assert!(non_canonical(bad).is_some(), "{bad:?} must be refused");
        }
        assert!(non_canonical(&format!("/auth/{}", "(".repeat(MAX_PATH))).is_some());
    }

    #[test]
    fn path_length_limit_is_8_kib() {
        let at_limit = format!("/{}", "a".repeat(8 * 1024 - 1));
        assert_eq!(non_canonical(&at_limit), None);
        let over = format!("/{}", "a".repeat(8 * 1024));
        assert_eq!(non_canonical(&over), Some("the path is too long"));
    }

    #[test]
    fn escapes_of_delete_and_of_structure_are_refused_but_plain_ones_pass() {
        for bad in [
            "/a%7F", "/a%7f", "/a%1F", "/a%2F", "/a%25", "/a%2D", "/a%5F",
        ] {
            assert!(non_canonical(bad).is_some(), "{bad:?} must be refused");
        }
        // The scan goes on after an escape, whatever its position.
        for bad in [
            "/a%20;b",
            "/ab%20x\\y",
            "/abc%20x%00",
            "/%20%20%2F",
            "/a%20b%20c;",
        ] {
            assert!(non_canonical(bad).is_some(), "{bad:?} must be refused");
        }
        for ok in ["/a%20b", "/a%21", "/a%7B", "/a%80", "/%3F", "/x%40y%2B"] {
            assert_eq!(non_canonical(ok), None, "{ok}");
        }
        // Each refusal names its own reason (the log line tells an operator what was wrong).
        assert_eq!(non_canonical("x"), Some("the path must start with `/`"));
        assert_eq!(
            non_canonical("/a//b"),
            Some("the path has an empty segment (`//`)")
        );
        assert_eq!(non_canonical("/a/./b"), Some("the path has a dot segment"));
        assert_eq!(non_canonical("/a;b"), Some("the path contains `\\` or `;`"));
        assert_eq!(
            non_canonical("/a\u{7f}"),
            Some("the path contains a control or non-ASCII byte")
        );
        assert_eq!(
            non_canonical("/a%4"),
            Some("the path has a malformed percent-escape")
        );
    }

    #[test]
    fn size_limits_are_the_documented_ones() {
        assert_eq!(MAX_BODY, 16384);
        assert_eq!(MAX_HEAD, 65536);
        assert_eq!(MAX_PATH, 8192);
    }

    #[test]
    fn json_and_html_responses_carry_their_type_and_are_never_cached() {
        let r = json_response(StatusCode::FORBIDDEN, &serde_json::json!({"a": 1}));
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        let h = html_response(StatusCode::BAD_REQUEST, "<p>x</p>".into());
        assert_eq!(h.status(), StatusCode::BAD_REQUEST);
        assert_eq!(h.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(h.headers()["x-frame-options"], "DENY");
        assert_eq!(h.headers()["x-content-type-options"], "nosniff");
        assert_eq!(h.headers()["referrer-policy"], "no-referrer");
        assert_eq!(
            h.headers()["content-security-policy"],
            crate::headers::PAGE_CSP
        );
    }

    #[test]
    fn redirects_are_302_uncached_and_refuse_header_breaking_targets() {
        let r = redirect("/after?x=1").unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()[LOCATION], "/after?x=1");
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        assert!(redirect("/a\r\nSet-Cookie: x=1").is_err());
    }

    #[test]
    fn cookies_are_appended_and_header_breaking_ones_dropped() {
        let mut r = redirect("/").unwrap();
        add_cookie(&mut r, "a=1; Path=/");
        add_cookie(&mut r, "b=2\r\nX-Evil: 1");
        add_cookie(&mut r, "c=3");
        let cookies: Vec<_> = r.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; Path=/", "c=3"]);
    }

    #[test]
    fn query_parameters_are_decoded_and_the_first_of_a_name_wins() {
        let uri: http::Uri = "/x?state=s1&code=a%2Fb+c&state=s2".parse().unwrap();
        let q = query_params(&uri);
        assert_eq!(q.len(), 2);
        assert_eq!(q["state"], "s1");
        assert_eq!(q["code"], "a/b c");
        assert!(query_params(&"/x".parse().unwrap()).is_empty());
    }

    #[test]
    fn json_nulls_are_absent_parameters() {
        let j = body_params(Some("application/json"), br#"{"code":"c","state":null}"#).unwrap();
        assert_eq!(j.len(), 1);
        assert_eq!(j["code"], "c");
        assert!(body_params(Some("Application/JSON; charset=utf-8"), br#"{"a":"b"}"#).is_ok());
    }

    /// Serves one request through hyper (a real `Incoming` body) and returns what
    /// `request_params` made of it.
    async fn params_of(
        raw: Vec<u8>,
    ) -> Result<(http::request::Parts, HashMap<String, String>), WireError> {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(&raw).await.unwrap();
            // Hold the connection until the server is done with it.
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut sink).await;
        });
        let (stream, _) = listener.accept().await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let service = hyper::service::service_fn(move |req: Request| {
            let tx = tx.lock().unwrap().take();
            async move {
                let out = request_params(req).await;
                if let Some(tx) = tx {
                    let _ = tx.send(out);
                }
                Ok::<_, std::convert::Infallible>(http::Response::new(Body::default()))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        client.abort();
        rx.await.unwrap()
    }

    #[tokio::test]
    async fn request_parameters_are_the_query_overridden_by_the_body() {
        let body = "code=from-body&extra=e";
        let raw = format!(
            "POST /cb?code=from-query&state=s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (parts, params) = params_of(raw.into_bytes()).await.unwrap();
        assert_eq!(parts.uri.path(), "/cb");
        assert_eq!(parts.headers["host"], "x");
        assert_eq!(params.len(), 3);
        assert_eq!(params["code"], "from-body");
        assert_eq!(params["state"], "s");
        assert_eq!(params["extra"], "e");
    }

    #[tokio::test]
    async fn a_body_over_16_kib_is_refused() {
        let body = format!("a={}", "b".repeat(16 * 1024));
        let raw = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert!(matches!(
            params_of(raw.into_bytes()).await,
            Err(WireError::PayloadTooLarge(16384))
        ));
        // Exactly at the limit is read whole.
        let body = format!("a={}", "b".repeat(16 * 1024 - 2));
        let raw = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (_, params) = params_of(raw.into_bytes()).await.unwrap();
        assert_eq!(params["a"].len(), 16 * 1024 - 2);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query_value("/a?b=1&c=d e"), "%2Fa%3Fb%3D1%26c%3Dd+e");
    }
}
