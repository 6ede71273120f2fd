//! Request and response plumbing shared by the routes: body types, query and body parsing with
//! size limits, and JSON / HTML / redirect response builders.

pub mod client;

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};

/// A header map of `pairs`, in order (a name may repeat): the requests of unit tests.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            *k,
            HeaderValue::from_str(v).expect("a valid test header value"),
        );
    }
    h
}

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
mod tests;
