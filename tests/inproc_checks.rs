//! The fast tier's checks that need neither Nginx nor the IdP (which is never contacted here):
//! `/auth` against forged and expired tokens, a login URL for browsers and JSON for API callers,
//! untrusted peers, open-redirect payloads at `/authorize` and `/logout`, parameter errors, the
//! JWKS, the providers list and the health endpoints, every signing algorithm, and the
//! administrator's revocation. idgate is served in the test's own runtime
//! (`tests/common/inproc.rs`); what needs a process (restarts, signals, the admin commands'
//! effect on a running daemon, `check-config`) is in `tests/auth_decisions.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::inproc::InProc;
use common::*;

/// The IdP's address in these tests: nothing listens there, and nothing here needs it.
const NO_IDP: &str = "http://127.0.0.1:1";

fn client() -> reqwest::Client {
    Browser::new().client
}

fn sign_with(key_file: &str, alg: jsonwebtoken::Algorithm, claims: &serde_json::Value) -> String {
    let pem = std::fs::read(fixture(key_file)).unwrap();
    let key = match alg {
        jsonwebtoken::Algorithm::HS256 => jsonwebtoken::EncodingKey::from_secret(&pem),
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    };
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_passes_and_forged_ones_get_401() {
    let idgate = InProc::start(&Setup::default(), NO_IDP).await;
    let token = mint(&idgate, "u-1", "users,admins");

    let resp = client()
        .get(idgate.url("/auth"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["mia-allowed"], "1");
    assert_eq!(resp.headers()["mia-userid"], "u-1");
    assert_eq!(resp.headers()["mia-groups"], "users,admins");
    // A second time comes from the cache and answers the same.
    let hits = cache_hits(&idgate).await;
    assert_eq!(auth_status(&idgate, &token).await, 200);
    assert_eq!(cache_hits(&idgate).await, hits + 1, "answered by the cache");

    let claims = jwt_claims(&token);
    let mut forged = Vec::new();

    // Payload changed, signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut elevated = claims.clone();
    elevated["user"]["groups"] = serde_json::json!(["superadmins"]);
    forged.push(format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(elevated.to_string()),
        parts[2]
    ));
    // Signature bit-flipped.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 0x01;
    forged.push(format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(sig)
    ));
    // alg: none.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    forged.push(format!("{none_header}.{}.", parts[1]));
    // Signed by another RSA key under the same kid.
    forged.push(sign_with(
        "rs256-other.pem",
        jsonwebtoken::Algorithm::RS256,
        &claims,
    ));
    // HS256 keyed with the public key material (algorithm confusion).
    forged.push(sign_with(
        "rs256-other.pub.pem",
        jsonwebtoken::Algorithm::HS256,
        &claims,
    ));
    // The right key, but expired.
    let mut expired = claims.clone();
    expired["exp"] = serde_json::json!(idgate::now_secs() - 120);
    forged.push(sign_with(
        "rs256.pem",
        jsonwebtoken::Algorithm::RS256,
        &expired,
    ));
    // The right key, a foreign issuer.
    let mut foreign = claims.clone();
    foreign["iss"] = serde_json::json!("http://elsewhere.example");
    forged.push(sign_with(
        "rs256.pem",
        jsonwebtoken::Algorithm::RS256,
        &foreign,
    ));
    // The right key, a session that was never created.
    let mut ghost = claims.clone();
    ghost["sid"] = serde_json::json!("never-created");
    forged.push(sign_with(
        "rs256.pem",
        jsonwebtoken::Algorithm::RS256,
        &ghost,
    ));
    // Garbage.
    forged.push("not-a-jwt".into());
    forged.push(String::new());

    // As bearer tokens (an API caller's expired token is never renewed; a browser's is, while
    // its session lives: see tests/lifecycle.rs).
    for (i, bad) in forged.iter().enumerate() {
        let resp = client()
            .get(idgate.url("/auth"))
            .header("authorization", format!("Bearer {bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "forged token #{i} must be refused");
        assert_eq!(resp.headers()["mia-allowed"], "0");
        assert!(resp.headers().get("mia-userid").is_none());
    }
    // The control: the right key with untouched claims passes.
    assert_eq!(
        auth_status(
            &idgate,
            &sign_with("rs256.pem", jsonwebtoken::Algorithm::RS256, &claims)
        )
        .await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_a_login_url_and_api_callers_json() {
    let idgate = InProc::start(&Setup::default(), NO_IDP).await;
    let nav = |uri: &str| {
        client()
            .get(idgate.url("/auth"))
            .header("accept", "text/html,application/xhtml+xml")
            .header("original-request-uri", uri.to_owned())
            .header("original-request-method", "GET")
            .send()
    };
    let resp = nav("/a/b?c=1&d=%2F").await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        location(&resp),
        "/authorize?appId=web&providerId=dev&redirect=%2Fa%2Fb%3Fc%3D1%26d%3D%252F"
    );
    // A request path that would be an open redirect comes back as "/".
    for evil in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
    ] {
        let resp = nav(evil).await.unwrap();
        assert_eq!(
            location(&resp),
            "/authorize?appId=web&providerId=dev&redirect=%2F",
            "{evil}"
        );
    }
    // Not a navigation: no Location, a JSON body.
    for (method, accept) in [
        ("GET", "application/json"),
        ("POST", "text/html"),
        ("GET", "*/*"),
    ] {
        let resp = client()
            .get(idgate.url("/auth"))
            .header("accept", accept)
            .header("original-request-method", method)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(
            resp.headers().get("location").is_none(),
            "{method} {accept}"
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["statusCode"], 401);
        assert_eq!(body["error"], "Unauthorized");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_peers_get_403_even_with_a_valid_token() {
    let idgate = InProc::start(
        &Setup {
            trusted_peers: r#"["10.0.0.0/8"]"#,
            ..Setup::default()
        },
        NO_IDP,
    )
    .await;
    let token = mint(&idgate, "u-1", "users");
    let resp = client()
        .get(idgate.url("/auth"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["mia-allowed"], "0");
    assert!(resp.headers().get("mia-userid").is_none());
    // The public endpoints still answer.
    assert_eq!(
        client()
            .get(idgate.url("/-/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_redirect_payloads_are_refused() {
    let idgate = InProc::start(&Setup::default(), NO_IDP).await;
    // The site's own host and port, in the payloads that try to pass for it.
    let host = idgate.addr.to_string();
    let (ip, port) = (idgate.addr.ip(), idgate.addr.port());
    let near = format!("{ip}:{}", port.wrapping_add(1));
    let lookalikes = [
        format!("//{host}@evil.example/"),
        format!("http://{host}@evil.example/"),
        format!("http://user:pw@{host}/"),
        format!("http://{host}.evil.example/"),
        format!("http://{near}/"),
        format!("https://{host}/"),
        format!("ftp://{host}/"),
    ];
    let payloads = [
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/%2Fevil.example",
        "/%2fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%252F%252Fevil.example",
        "/%09/evil.example",
        "/\t/evil.example",
        "/\r\n/evil.example",
        " //evil.example",
        "%20//evil.example",
        "https://evil.example/",
        "http://evil.example",
        "https:evil.example",
        "http:/evil.example",
        "HTTP://EVIL.EXAMPLE/",
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "javascript://%0Aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "evil.example",
        "@evil.example",
    ];
    let payloads: Vec<String> = payloads
        .iter()
        .map(|p| p.to_string())
        .chain(lookalikes)
        .collect();
    assert!(payloads.len() >= 30);
    for p in &payloads {
        let url = format!(
            "{}?appId=web&providerId=dev&redirect={}",
            idgate.url("/authorize"),
            idgate::http::encode_query_value(p)
        );
        let resp = client().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{p:?} must be refused");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("redirect"),
            "{p:?}: {body}"
        );
    }
    // Logout's redirect follows the same rules.
    let resp = client()
        .get(format!(
            "{}?redirect=%2F%2Fevil.example",
            idgate.url("/logout")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // And an allowed absolute target is accepted there.
    let bye = idgate.url("/bye");
    let resp = client()
        .get(format!(
            "{}?redirect={}",
            idgate.url("/logout"),
            idgate::http::encode_query_value(&bye)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(location(&resp), bye);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_answered_400_naming_the_parameter() {
    let idgate = InProc::start(&Setup::default(), NO_IDP).await;
    let cases = [
        ("/authorize?providerId=dev&redirect=%2F", "appId"),
        ("/authorize?appId=&providerId=dev&redirect=%2F", "appId"),
        ("/authorize?appId=nope&providerId=dev&redirect=%2F", "appId"),
        ("/authorize?appId=web&redirect=%2F", "providerId"),
        (
            "/authorize?appId=web&providerId=nope&redirect=%2F",
            "providerId",
        ),
        // (Without `redirect`, the app's default applies, as in Mia: `mia_clients`.)
        (
            "/authorize?appId=web&providerId=dev&redirect=%2F%2Fevil",
            "redirect",
        ),
        ("/web-login", "appId"),
        ("/web-login?appId=web&redirect=%2F%2Fevil", "redirect"),
    ];
    for (path, param) in cases {
        let resp = client().get(idgate.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["statusCode"], 400);
        assert_eq!(body["error"], "Bad Request");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{param}`")),
            "{path}: {body}"
        );
    }
    let token = |body: &'static str, ct: &'static str| {
        client()
            .post(idgate.url("/oauth/token"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let resp = token(r#"{"state":"s"}"#, "application/json").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("`code`"));
    let resp = token(r#"{"code":"c"}"#, "application/json").await.unwrap();
    assert!(resp.text().await.unwrap().contains("`state`"));
    let resp = token("{not json", "application/json").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("JSON"));
    let resp = token(r#"{"code":1,"state":"s"}"#, "application/json")
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = token("code=c&state=s", "text/plain").await.unwrap();
    assert_eq!(resp.status(), 415);
    let big = "x".repeat(64 * 1024);
    let resp = client()
        .post(idgate.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let resp = client()
        .get(idgate.url("/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let resp = client().get(idgate.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["statusCode"], 404);
    // The daemon is still up after all that.
    assert_eq!(
        client()
            .get(idgate.url("/-/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_providers_and_health() {
    let idgate = InProc::start(&Setup {
        extra_app: "[apps.web.providers.other]\ntype = \"oidc\"\nissuer_url = \"http://127.0.0.1:1\"\nclient_id = \"x\"\nclient_secret = \"y\"\nlabel = \"Other\"\norder = 20\n",
        ..Setup::default()
    }, NO_IDP).await;
    let jwks: serde_json::Value = client()
        .get(idgate.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["kid"], "k1");
    assert_eq!(key["alg"], "RS256");
    assert!(key.get("d").is_none(), "no private part is published");
    let providers: serde_json::Value = client()
        .get(idgate.url("/apps/web/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        providers,
        serde_json::json!([
            {"id": "other", "label": "Other", "type": "oidc", "order": 20},
            {"id": "dev", "label": "Development IdP", "type": "oidc", "order": 0},
        ])
    );
    assert_eq!(
        client()
            .get(idgate.url("/apps/nope/providers"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let chooser = client()
        .get(idgate.url("/web-login?appId=web&redirect=%2Fx"))
        .send()
        .await
        .unwrap();
    assert_eq!(chooser.status(), 200);
    // Attribute escaping writes `/` as `&#x2f;`.
    let html = chooser.text().await.unwrap().replace("&#x2f;", "/");
    let other = html.find("Other").unwrap();
    let dev = html.find("Development IdP").unwrap();
    assert!(other < dev, "higher order first");
    assert!(html.contains("/authorize?appId=web&amp;providerId=other&amp;redirect=%2Fx"));
    assert_eq!(
        client()
            .get(idgate.url("/-/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: serde_json::Value = client()
        .get(idgate.url("/-/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signing_algorithm_verifies_against_the_jwks() {
    for (alg, key, jwt_alg) in [
        ("ES256", "es256.pem", jsonwebtoken::Algorithm::ES256),
        ("EdDSA", "ed25519.pem", jsonwebtoken::Algorithm::EdDSA),
    ] {
        let idgate = InProc::start(
            &Setup {
                algorithm: alg,
                key,
                ..Setup::default()
            },
            NO_IDP,
        )
        .await;
        let token = mint(&idgate, "u-2", "users");
        assert_eq!(auth_status(&idgate, &token).await, 200, "{alg}");
        let jwks: jsonwebtoken::jwk::JwkSet = client()
            .get(idgate.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwk = jwks.find("k1").expect("k1");
        let mut validation = jsonwebtoken::Validation::new(jwt_alg);
        validation.set_issuer(&[idgate.site()]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        );
        assert!(data.is_ok(), "{alg}: {data:?}");
    }
    // HS256: works, and the shared secret is never published.
    let idgate = InProc::start(
        &Setup {
            algorithm: "HS256",
            key: "hs256.secret",
            ..Setup::default()
        },
        NO_IDP,
    )
    .await;
    let token = mint(&idgate, "u-3", "users");
    assert_eq!(auth_status(&idgate, &token).await, 200);
    let jwks: serde_json::Value = client()
        .get(idgate.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_revokes_all_of_a_users_sessions() {
    let idgate = InProc::start(
        &Setup {
            extra_server: ADMIN_TOKEN_LINE,
            ..Setup::default()
        },
        NO_IDP,
    )
    .await;
    let first = mint(&idgate, "u-7", "users");
    let second = mint(&idgate, "u-7", "users");
    let other = mint(&idgate, "u-8", "users");
    for t in [&first, &second, &other] {
        assert_eq!(auth_status(&idgate, t).await, 200);
    }
    // A trusted peer (the one Nginx asks /auth from) without the token, or with another one, is
    // not an administrator: nothing is revoked.
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Basic YWRtaW46YWRtaW4="),
    ] {
        let mut req = client().delete(idgate.url("/sessions/u-7"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{auth:?}");
        assert_eq!(auth_status(&idgate, &first).await, 200, "{auth:?}");
    }
    let resp = client()
        .delete(idgate.url("/sessions/u-7"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["count"], 2);
    assert_eq!(auth_status(&idgate, &first).await, 401);
    assert_eq!(auth_status(&idgate, &second).await, 401);
    assert_eq!(
        auth_status(&idgate, &other).await,
        200,
        "other users keep theirs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_needs_the_admin_token_or_an_admin_peer() {
    // No admin token configured: even a trusted peer cannot revoke.
    let idgate = InProc::start(&Setup::default(), NO_IDP).await;
    let token = mint(&idgate, "u-7", "users");
    let resp = client()
        .delete(idgate.url("/sessions/u-7"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(auth_status(&idgate, &token).await, 200);
    drop(idgate);

    // An admin peer needs no token.
    let idgate = InProc::start(
        &Setup {
            extra_server: "admin_peers = [\"127.0.0.1/32\"]",
            ..Setup::default()
        },
        NO_IDP,
    )
    .await;
    let token = mint(&idgate, "u-7", "users");
    let resp = client()
        .delete(idgate.url("/sessions/u-7"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(auth_status(&idgate, &token).await, 401);
}
