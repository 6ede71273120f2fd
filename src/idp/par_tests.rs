//! Unit tests of the push against a canned PAR endpoint: what is sent (the whole request,
//! client-authenticated), what the browser gets, and every bound on the answer.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Serves one connection with `status` and `body`; yields the request it read.
async fn one_answer(status: &str, body: String) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/request", listener.local_addr().unwrap());
    let status = status.to_owned();
    let served = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if rest.len() >= len || n == 0 {
                    break;
                }
            }
        }
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        // The client may hang up first (an answer it refuses to read whole).
        let _ = conn.write_all(answer.as_bytes()).await;
        String::from_utf8_lossy(&req).to_string()
    });
    (url, served)
}

fn authorize_url() -> Url {
    Url::parse(
        "https://idp.example/auth?response_type=code&client_id=idgate&state=s1&nonce=n1\
         &code_challenge=c1&code_challenge_method=S256&scope=openid+email\
         &redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
    )
    .unwrap()
}

async fn push_to(status: &str, body: String) -> (Result<Url, IdpError>, String) {
    let (endpoint, served) = one_answer(status, body).await;
    let auth = ClientAuth::basic_for_tests("idgate", "s3cret");
    let out = push(
        &reqwest::Client::new(),
        "dev",
        &auth,
        &endpoint,
        "https://idp.example/token",
        &authorize_url(),
    )
    .await;
    (out, served.await.unwrap())
}

#[tokio::test]
async fn the_whole_request_is_pushed_and_the_browser_gets_client_id_and_request_uri() {
    let (out, request) = push_to(
        "201 Created",
        r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}"#.into(),
    )
    .await;
    let url = out.unwrap();
    assert_eq!(
        url.as_str(),
        "https://idp.example/auth?client_id=idgate&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aabc"
    );
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /request "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("authorization: basic "),
        "{head}"
    );
    let sent: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let expected: Vec<(String, String)> = authorize_url().query_pairs().into_owned().collect();
    assert_eq!(
        sent, expected,
        "every parameter, once, and no secret in the form"
    );
}

async fn refusal_of(status: &str, body: String) -> String {
    match push_to(status, body).await.0 {
        Ok(url) => panic!("accepted: {url}"),
        Err(e) => {
            let text = e.to_string();
            assert!(matches!(e, IdpError::Protocol(_)), "{text}");
            assert!(
                text.starts_with("provider `dev`: pushed authorization request: "),
                "{text}"
            );
            text
        }
    }
}

#[tokio::test]
async fn an_answer_out_of_bounds_is_refused() {
    let ok_uri = "urn:ietf:params:oauth:request_uri:abc";
    for (expires, why) in [(0, "expires_in 0"), (86_400, "expires_in 86400")] {
        let e = refusal_of(
            "201 Created",
            format!(r#"{{"request_uri":"{ok_uri}","expires_in":{expires}}}"#),
        )
        .await;
        assert!(e.contains(why), "{e}");
    }
    let long = "u".repeat(MAX_REQUEST_URI_BYTES + 1);
    for uri in ["", long.as_str(), "urn:a\\u0007b"] {
        let e = refusal_of(
            "201 Created",
            format!(r#"{{"request_uri":"{uri}","expires_in":60}}"#),
        )
        .await;
        assert!(e.contains("request_uri is empty, longer than"), "{e}");
    }
    let e = refusal_of("201 Created", "x".repeat(MAX_ANSWER_BYTES + 1)).await;
    assert!(e.contains("the answer is over 16384 bytes"), "{e}");
    let e = refusal_of("201 Created", "<html>".into()).await;
    assert!(e.contains("not a request_uri and expires_in"), "{e}");
    let e = refusal_of(
        "400 Bad Request",
        r#"{"error":"invalid_request","error_description":"bad\nthing"}"#.into(),
    )
    .await;
    assert!(
        e.ends_with("the identity provider refused (400 Bad Request): invalid_request: badthing"),
        "{e}"
    );
    let e = refusal_of("500 Internal Server Error", "oops".into()).await;
    assert!(e.contains("answered 500"), "{e}");
}

#[tokio::test]
async fn an_endpoint_that_is_not_http_is_refused_unasked() {
    let auth = ClientAuth::basic_for_tests("idgate", "s3cret");
    let e = push(
        &reqwest::Client::new(),
        "dev",
        &auth,
        "file:///etc/passwd",
        "https://idp.example/token",
        &authorize_url(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not an http(s) URL"), "{e}");
}

#[test]
fn discovery_members_of_the_wrong_type_count_as_absent() {
    let m = ParMetadata::of_discovery(
        br#"{"pushed_authorization_request_endpoint":"https://idp/par",
             "require_pushed_authorization_requests":true}"#,
    );
    assert_eq!(m.endpoint.as_deref(), Some("https://idp/par"));
    assert_eq!(m.required, Some(true));
    let m = ParMetadata::of_discovery(
        br#"{"pushed_authorization_request_endpoint":7,
             "require_pushed_authorization_requests":"yes"}"#,
    );
    assert_eq!((m.endpoint, m.required), (None, None));
    let m = ParMetadata::of_discovery(b"not json");
    assert_eq!((m.endpoint, m.required), (None, None));
}

#[test]
fn auto_pushes_when_the_idp_requires_it_always_always_never_never() {
    let meta = |endpoint: Option<&str>, required: Option<bool>| ParMetadata {
        endpoint: endpoint.map(str::to_owned),
        required,
    };
    let at = Some("https://idp/par");
    for (mode, m, expected) in [
        (ParMode::Auto, meta(at, None), None),
        (ParMode::Auto, meta(at, Some(false)), None),
        (ParMode::Auto, meta(at, Some(true)), at),
        (ParMode::Always, meta(at, None), at),
        (ParMode::Never, meta(at, Some(true)), None),
        (ParMode::Never, meta(None, Some(true)), None),
        (ParMode::Auto, meta(None, None), None),
    ] {
        assert_eq!(
            endpoint(mode, &m, "dev").unwrap(),
            expected,
            "{mode:?} {m:?}"
        );
    }
    let e = endpoint(ParMode::Always, &meta(None, None), "dev").unwrap_err();
    assert_eq!(
        e.to_string(),
        "provider `dev`: par = \"always\", but discovery names no \
         pushed_authorization_request_endpoint"
    );
    let e = endpoint(ParMode::Auto, &meta(None, Some(true)), "dev").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("provider `dev`: its discovery document says require_pushed"),
        "{e}"
    );
}
