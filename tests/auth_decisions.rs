//! `/auth` decisions and the login endpoints' input checks, against the idgate binary (its IdP
//! is never contacted here): forged and expired tokens, untrusted peers, open redirects, bad
//! parameters, restarts, cross-process revocation, key algorithms and `check-config`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

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
    let (_dir, idgate) = start_idgate_alone(Setup::default());
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
    let (_dir, idgate) = start_idgate_alone(Setup::default());
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
    let (_dir, idgate) = start_idgate_alone(Setup {
        trusted_peers: r#"["10.0.0.0/8"]"#,
        ..Setup::default()
    });
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
    let (_dir, idgate) = start_idgate_alone(Setup::default());
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
        "//127.0.0.1:8080@evil.example/",
        "http://127.0.0.1:8080@evil.example/",
        "http://user:pw@127.0.0.1:8080/",
        "http://127.0.0.1:8080.evil.example/",
        "http://127.0.0.1:8081/",
        "https://127.0.0.1:8080/",
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "javascript://%0Aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "ftp://127.0.0.1:8080/",
        "file:///etc/passwd",
        "evil.example",
        "@evil.example",
    ];
    assert!(payloads.len() >= 30);
    for p in payloads {
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
    let resp = client()
        .get(format!(
            "{}?redirect=http%3A%2F%2F127.0.0.1%3A8080%2Fbye",
            idgate.url("/logout")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(location(&resp), "http://127.0.0.1:8080/bye");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_answered_400_naming_the_parameter() {
    let (_dir, idgate) = start_idgate_alone(Setup::default());
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
async fn sessions_survive_a_restart_and_cli_revocation_reaches_the_daemon() {
    let (dir, mut idgate) = start_idgate_alone(Setup::default());
    let token = mint(&idgate, "u-9", "users");
    assert_eq!(auth_status(&idgate, &token).await, 200);
    let status = idgate.proc.terminate().expect("idgate exits on SIGTERM");
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");

    let config = std::fs::read_to_string(dir.path().join("idgate.toml")).unwrap();
    let idgate = Idgate::start(dir.path(), &config);
    assert_eq!(
        auth_status(&idgate, &token).await,
        200,
        "the session outlived the restart"
    );

    // Another process (the CLI) revokes it; the running daemon, which has it cached, follows.
    served_from_cache(&idgate, &token).await;
    let sid = jwt_claims(&token)["sid"].as_str().unwrap().to_owned();
    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "revoke",
        "--config",
        idgate.config.to_str().unwrap(),
        "--sid",
        &sid,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 1"), "{out}");
    let mut refused = false;
    for _ in 0..50 {
        if auth_status(&idgate, &token).await == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(
        refused,
        "a revocation by another process must reach the daemon"
    );

    // A benchmark's bulk fill: sessions stored, live, each its own user, no token printed.
    let config = idgate.config.to_str().unwrap();
    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "mint",
        "--config",
        config,
        "--user",
        "fill",
        "--count",
        "25",
        "--store-only",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "stored 25 session(s)");
    let (code, out, err) = idgate_cmd(&["sessions", "list", "--config", config]);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut filled: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["alive"] == true)
        .map(|s| s["userId"].as_str().unwrap())
        .collect();
    filled.sort_unstable();
    filled.dedup();
    assert_eq!(filled.len(), 25, "{out}");
    assert!(filled.iter().all(|u| u.starts_with("fill-")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_providers_and_health() {
    let (_dir, idgate) = start_idgate_alone(Setup {
        extra_app: "[apps.web.providers.other]\ntype = \"oidc\"\nissuer_url = \"http://127.0.0.1:1\"\nclient_id = \"x\"\nclient_secret = \"y\"\nlabel = \"Other\"\norder = 20\n",
        ..Setup::default()
    });
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
    let html = chooser.text().await.unwrap();
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
        let (_dir, idgate) = start_idgate_alone(Setup {
            algorithm: alg,
            key,
            ..Setup::default()
        });
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
        validation.set_issuer(&["http://127.0.0.1:8080"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        );
        assert!(data.is_ok(), "{alg}: {data:?}");
    }
    // HS256: works, and the shared secret is never published.
    let (_dir, idgate) = start_idgate_alone(Setup {
        algorithm: "HS256",
        key: "hs256.secret",
        ..Setup::default()
    });
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

#[test]
fn check_config_exits_78_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = config_toml(
        &Setup::default(),
        dir.path(),
        "http://127.0.0.1:8080",
        "http://127.0.0.1:1",
    );
    let path = dir.path().join("idgate.toml");
    let check = |text: &str| {
        std::fs::write(&path, text).unwrap();
        idgate_cmd(&["check-config", "--config", path.to_str().unwrap()])
    };
    let (code, out, err) = check(&good);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"));

    let (code, _, err) = check(&good.replace("[session]", "[session]\naccess_tll = \"1m\""));
    assert_eq!(code, 78);
    assert!(err.contains("access_tll"), "{err}");
    let (code, _, err) = check(&good.replace("type = \"oidc\"", "type = \"saml\""));
    assert_eq!(code, 78);
    assert!(err.contains("apps.web.providers.dev.type"), "{err}");
    let (code, _, err) = check(&good.replace(
        "private_key_file = \"rs256.pem\"",
        "private_key_file = \"missing.pem\"",
    ));
    assert_eq!(code, 78);
    assert!(
        err.contains("jwt.private_key_file") && err.contains("missing.pem"),
        "{err}"
    );
    let (code, _, err) = check(&good.replace("algorithm = \"RS256\"", "algorithm = \"ES256\""));
    assert_eq!(code, 78, "an RSA key is not an ES256 key");
    assert!(err.contains("ES256"), "{err}");
    let (code, _, _) = idgate_cmd(&["check-config", "--config", "/nonexistent/idgate.toml"]);
    assert_eq!(code, 78);
}

#[test]
fn the_packaged_example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo().join("packaging/idgate.toml"))
        .unwrap()
        .replace(
            "/var/lib/idgate/idgate.db",
            dir.path().join("idgate.db").to_str().unwrap(),
        );
    std::fs::copy(fixture("rs256.pem"), dir.path().join("signing.pem")).unwrap();
    let path = dir.path().join("idgate.toml");
    std::fs::write(&path, example).unwrap();
    let (code, _, err) = idgate_cmd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_revokes_all_of_a_users_sessions() {
    let (_dir, idgate) = start_idgate_alone(Setup {
        extra_server: ADMIN_TOKEN_LINE,
        ..Setup::default()
    });
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
    let (_dir, idgate) = start_idgate_alone(Setup::default());
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
    let (_dir, idgate) = start_idgate_alone(Setup {
        extra_server: "admin_peers = [\"127.0.0.1/32\"]",
        ..Setup::default()
    });
    let token = mint(&idgate, "u-7", "users");
    let resp = client()
        .delete(idgate.url("/sessions/u-7"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(auth_status(&idgate, &token).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_without_logging_anyone_out() {
    let (dir, mut idgate) = start_idgate_alone(Setup::default());
    let before = mint(&idgate, "u-r", "users");
    assert_eq!(
        jsonwebtoken::decode_header(&before).unwrap().kid.as_deref(),
        Some("k1")
    );
    idgate.proc.terminate();

    // A new signing key (k2); the old one (k1) still verifies.
    std::fs::copy(
        fixture("rs256-other.pem"),
        dir.path().join("rs256-other.pem"),
    )
    .unwrap();
    std::fs::copy(fixture("rs256.pub.pem"), dir.path().join("rs256.pub.pem")).unwrap();
    let config = std::fs::read_to_string(dir.path().join("idgate.toml")).unwrap();
    let rotated = config.replace(
        "private_key_file = \"rs256.pem\"\nkey_id = \"k1\"",
        "private_key_file = \"rs256-other.pem\"\nkey_id = \"k2\"\n\n[[jwt.verification_keys]]\nalgorithm = \"RS256\"\nkey_id = \"k1\"\nkey_file = \"rs256.pub.pem\"",
    );
    assert_ne!(rotated, config);
    let idgate = Idgate::start(dir.path(), &rotated);
    assert_eq!(
        auth_status(&idgate, &before).await,
        200,
        "a token of the previous key still works"
    );
    let jwks: serde_json::Value = client()
        .get(idgate.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        vec!["k2", "k1"],
        "both published, the signing key first"
    );
    let after = mint(&idgate, "u-r", "users");
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        Some("k2")
    );
    assert_eq!(auth_status(&idgate, &after).await, 200);
    let mut idgate = idgate;
    idgate.proc.terminate();

    // Once k1 is retired, its tokens are refused.
    let retired = config.replace(
        "private_key_file = \"rs256.pem\"\nkey_id = \"k1\"",
        "private_key_file = \"rs256-other.pem\"\nkey_id = \"k2\"",
    );
    let idgate = Idgate::start(dir.path(), &retired);
    assert_eq!(auth_status(&idgate, &before).await, 401);
    assert_eq!(auth_status(&idgate, &after).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_or_keeps_the_old_one() {
    let (dir, idgate) = start_idgate_alone(Setup::default());
    let token = mint(&idgate, "u-h", "users");
    let admin_status = || async {
        client()
            .get(idgate.url("/auth"))
            .bearer_auth(&token)
            .header("original-request-uri", "/admin/panel")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        admin_status().await,
        200,
        "no rules yet: any session passes"
    );

    // A new rule in the TOML, applied by SIGHUP without a restart.
    let path = dir.path().join("idgate.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let with_rule = format!(
        "{config}\n[authorization]\nstrict = false\n[[authorization.routes]]\npath = \"/admin/\"\nexpression = \"groups.admin\"\n"
    );
    std::fs::write(&path, &with_rule).unwrap();
    idgate.proc.signal("HUP");
    idgate.proc.wait_log(&["configuration reloaded"]);
    assert_eq!(admin_status().await, 403, "the reloaded rule applies");
    assert_eq!(
        auth_status(&idgate, &token).await,
        200,
        "sessions survive a reload"
    );

    // A config that does not validate is refused; the running one keeps serving.
    std::fs::write(&path, with_rule.replace("groups.admin", "groups.admin &&")).unwrap();
    idgate.proc.signal("HUP");
    idgate.proc.wait_log(&["reload refused"]);
    assert_eq!(admin_status().await, 403);
    assert_eq!(auth_status(&idgate, &token).await, 200);
}
