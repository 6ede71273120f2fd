//! Unit tests of `http`.

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
