//! The session lifecycle through real Nginx: silent renewal of an expired JWT by `/auth`
//! (one `Set-Cookie`, no redirect, no lost POST body, the same token for a burst of parallel
//! requests), and no renewal for a session that has ended or for API bearer tokens; the end of
//! a session by the IdP's back-channel logout, and the checks on its logout tokens (form body
//! only, `typ`, the `iat` window, single use).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::Duration;

use common::*;

fn exp_of(jwt: &str) -> i64 {
    jwt_claims(jwt)["exp"].as_i64().unwrap()
}

/// `len` bytes of every value, CR and LF included, so a body mangled in transit shows.
fn test_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn wait_until_expired(jwt: &str) {
    while idgate::now_secs() <= exp_of(jwt) + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_renewed_silently_once_for_a_burst() {
    const TTL: i64 = 3;
    let stack = Stack::start_with(Setup {
        access_ttl: "3s",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "olga").await.status(), 200);
    let old = browser.cookie(&site, "sid").unwrap();
    let renew = browser.cookie(&site, "idgate_renew").unwrap();
    // olga's id, from her login's token (the only user so far).
    let user_id = stack.idgate.first_user_id();
    assert_eq!(jwt_claims(&old)["sub"], user_id.as_str());
    let someone_else = Browser::new();
    assert_eq!(
        login(&stack, &someone_else, "/", "otto").await.status(),
        200
    );
    let other_renew = someone_else.cookie(&site, "idgate_renew").unwrap();
    // Renewed tokens are aligned on whole `access_ttl` steps after the old `exp`: start the
    // burst right at the start of a step, so the renewed token has most of its 3 s to live.
    wait_until_expired(&old).await;
    while (idgate::now_secs() - exp_of(&old)) % TTL != 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = Browser::new().client;

    // The expired JWT alone, or with a renewal secret that is not this session's, renews
    // nothing: a leaked JWT lives until its `exp` only. The third is this session's secret
    // with its first character changed (to one it is not: one secret in 64 starts with `x`).
    let first = if renew.starts_with('x') { 'y' } else { 'x' };
    for cookie in [
        format!("sid={old}"),
        format!("sid={old}; idgate_renew={other_renew}"),
        format!("sid={old}; idgate_renew={first}{}", &renew[1..]),
    ] {
        let resp = client
            .get(format!("{site}/page"))
            .header("cookie", cookie.clone())
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{cookie}");
        assert!(resp.headers().get("set-cookie").is_none(), "{cookie}");
    }

    // A burst of parallel requests with the expired cookie (and the renewal secret the browser
    // holds), three of them POSTs whose bodies must reach the upstream intact: a small form,
    // 4 KiB, and 64 KiB (above Nginx's 16 KiB `client_body_buffer_size`: spooled to a file).
    let bodies: Vec<Vec<u8>> = vec![
        b"field=value".to_vec(),
        test_body(4 * 1024),
        test_body(64 * 1024),
    ];
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (client, site, old, renew) = (client.clone(), site.clone(), old.clone(), renew.clone());
        let body = bodies.get(i).cloned();
        tasks.push(tokio::spawn(async move {
            let req = match body {
                Some(body) => client.post(format!("{site}/form?i={i}")).body(body),
                None => client.get(format!("{site}/page?i={i}")),
            };
            let resp = req
                .header("cookie", format!("sid={old}; idgate_renew={renew}"))
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let cookies: Vec<String> = set_cookies(&resp);
            let body = resp.text().await.unwrap();
            (status, cookies, body)
        }));
    }
    let mut renewed = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let (status, cookies, body) = t.await.unwrap();
        assert_eq!(status, 200, "no 401 and no redirect during renewal: {body}");
        assert_eq!(cookies.len(), 1, "exactly one Set-Cookie: {cookies:?}");
        assert!(cookies[0].starts_with("sid=") && cookies[0].contains("HttpOnly"));
        let echo = echoed(&body);
        assert_eq!(echo["miauserid"], user_id, "{body}");
        assert_eq!(
            echo["uri"],
            format!("/{}?i={i}", ["form", "page"][usize::from(i >= 3)])
        );
        assert_eq!(
            echo["cookie"], "",
            "idgate's cookies never reach the upstream"
        );
        // The body the upstream read, byte for byte (none for the GETs).
        let sent = bodies.get(i).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            (echo["body-length"].as_str(), echo["body-sha256"].as_str()),
            (sent.len().to_string().as_str(), sha256_hex(sent).as_str()),
            "request {i}: the POST body arrives intact despite the renewal"
        );
        renewed.push(
            cookies[0]
                .split(';')
                .next()
                .unwrap()
                .trim_start_matches("sid=")
                .to_owned(),
        );
    }
    renewed.dedup();
    assert_eq!(renewed.len(), 1, "one renewal for the whole burst");
    let new = &renewed[0];
    assert_ne!(new, &old);
    let claims = jwt_claims(new);
    assert!(exp_of(new) > exp_of(&old) + TTL, "{claims}");
    assert_eq!(
        exp_of(new) - claims["iat"].as_i64().unwrap(),
        TTL,
        "{claims}"
    );
    assert_eq!(claims["sid"], jwt_claims(&old)["sid"]);

    // The new token works without further renewal.
    let resp = client
        .get(format!("{site}/next"))
        .header("cookie", format!("sid={new}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_sessions_and_bearer_tokens_are_not_renewed() {
    let stack = Stack::start_with(Setup {
        access_ttl: "2s",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "pete").await.status(), 200);
    let old = browser.cookie(&site, "sid").unwrap();
    wait_until_expired(&old).await;
    let client = Browser::new().client;

    // An API caller with an expired bearer token: 401, no cookie.
    let resp = client
        .get(format!("{site}/api"))
        .bearer_auth(&old)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());

    // A revoked session: the expired cookie is not renewed.
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let id = stack.idgate.first_user_id();
    let (code, _, err) = idgate_cmd(&["sessions", "revoke", "--config", &config, "--user", &id]);
    assert_eq!(code, 0, "{err}");
    let resp = client
        .get(format!("{site}/page"))
        .header("cookie", format!("sid={old}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_work_once_and_apply_group_changes() {
    // No refresh grace window: the second use below is a reuse at once (the window is tested
    // in tests/mia_lifecycle.rs).
    let stack = Stack::start_with(Setup {
        extra_session: "refresh_grace = \"0s\"",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    let login_resp = login(&stack, &browser, "/", "quinn").await;
    let first: serde_json::Value = login_resp.json().await.unwrap();
    let old_refresh = first["refreshToken"].as_str().unwrap().to_owned();

    // Groups change; the refresh (from the cookie) carries them.
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let id = stack.idgate.first_user_id();
    idgate_cmd(&[
        "users",
        "set-groups",
        "--config",
        &config,
        &id,
        "users",
        "editors",
    ]);
    let resp = browser
        .client
        .post(format!("{site}/refreshtoken"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(set_cookies(&resp).iter().any(|c| c.starts_with("sid=")));
    let second: serde_json::Value = resp.json().await.unwrap();
    let new_refresh = second["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, old_refresh, "rotated");
    assert_ne!(second["accessToken"], first["accessToken"]);
    let echo = echoed(
        &browser
            .navigate(&format!("{site}/x"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(echo["miausergroups"], "users,editors");

    // The body variant, with the new token: works once.
    let api = Browser::new().client;
    let body = serde_json::json!({ "refreshToken": new_refresh });
    let resp = api
        .post(format!("{site}/refreshtoken"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let third: serde_json::Value = resp.json().await.unwrap();

    // A refresh token used twice: refused, and the session it belonged to is revoked.
    let resp = api
        .post(format!("{site}/refreshtoken"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = api
        .get(format!("{site}/x"))
        .bearer_auth(third["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "the session of a replayed refresh token is revoked"
    );
    let resp = api
        .post(format!("{site}/refreshtoken"))
        .json(&serde_json::json!({ "refreshToken": third["refreshToken"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // No token at all (a client without cookies): 400 naming the parameter.
    let resp = Browser::new()
        .client
        .post(format!("{site}/refreshtoken"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("refreshToken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_at_the_idp_reaches_idgate_by_back_channel() {
    let stack = Stack::start_with_idp(Setup::default(), &["--log-logout-tokens"]);
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "rita").await.status(), 200);
    assert_eq!(browser.navigate(&format!("{site}/x")).await.status(), 200);

    // The user signs out at the IdP itself, not through idgate.
    let resp = browser
        .confirm_idp_logout(&format!("{}/session/end", stack.idp.issuer))
        .await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let mut refused = false;
    for _ in 0..100 {
        if browser.navigate(&format!("{site}/x")).await.status() == 302 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "the IdP's back-channel logout ended the idgate session"
    );
    stack.idgate.proc.wait_log(&["back-channel logout"]);

    // Forged or malformed logout tokens are refused with the spec's error body.
    let api = Browser::new().client;
    for token in ["", "not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyaXRhIn0."] {
        let resp = api
            .post(format!("{site}/backchannel-logout/web/dev"))
            .form(&[("logout_token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{token:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }

    // The user signs in again; the IdP's logout token, captured and replayed, ends nothing.
    stack.idp.proc.wait_log(&["idp.mjs: logout_token "]);
    let sent = stack.idp.logout_tokens();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let again = Browser::new();
    assert_eq!(login(&stack, &again, "/", "rita").await.status(), 200);
    assert_eq!(again.navigate(&format!("{site}/x")).await.status(), 200);
    let resp = api
        .post(format!("{site}/backchannel-logout/web/dev"))
        .form(&[("logout_token", sent[0].as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "a replayed logout token is refused");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    assert_eq!(
        again.navigate(&format!("{site}/x")).await.status(),
        200,
        "the new session survives the replay"
    );
    stack
        .idgate
        .proc
        .wait_log(&["logout token (jti) was already used"]);
}

/// Posts `logout_token` as a form, as an IdP does; returns the status and the JSON body.
async fn post_logout_token(site: &str, token: &str) -> (u16, serde_json::Value) {
    let resp = Browser::new()
        .client
        .post(format!("{site}/backchannel-logout/web/dev"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_channel_logout_tokens_are_checked_and_used_once() {
    let stack = Stack::start_with_idp(Setup::default(), &["--sign-endpoint"]);
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "uma").await.status(), 200);
    let alive = || async { browser.navigate(&format!("{site}/x")).await.status() == 200 };
    assert!(alive().await);
    let idp = &stack.idp;
    let now = idgate::now_secs();
    let logout_typ = serde_json::json!({ "typ": "logout+jwt" });
    let with = |changes: serde_json::Value| {
        let mut claims = idp.logout_claims("uma");
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };

    // A valid token, but in the query string: refused, whatever the body holds.
    let valid = idp
        .sign(logout_typ.clone(), with(serde_json::json!({})))
        .await;
    let client = Browser::new().client;
    for body in [String::new(), format!("logout_token={valid}")] {
        let resp = client
            .post(format!(
                "{site}/backchannel-logout/web/dev?logout_token={valid}"
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(alive().await, "a token in the query string revoked nothing");
    }
    // As JSON rather than a form: refused.
    let resp = client
        .post(format!("{site}/backchannel-logout/web/dev"))
        .json(&serde_json::json!({ "logout_token": valid }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(alive().await, "a JSON body revoked nothing");

    // Signed by the IdP's key, each wrong in one way: refused, nothing revoked.
    let cases: Vec<(&str, serde_json::Value, serde_json::Value)> = vec![
        (
            "typ at+jwt",
            serde_json::json!({ "typ": "at+jwt" }),
            serde_json::json!({}),
        ),
        (
            "iat too old",
            logout_typ.clone(),
            serde_json::json!({ "iat": now - 600, "exp": now + 60 }),
        ),
        (
            "iat in the future",
            logout_typ.clone(),
            serde_json::json!({ "iat": now + 600 }),
        ),
        (
            "iat missing",
            logout_typ.clone(),
            serde_json::json!({ "iat": null }),
        ),
        (
            "exp past",
            logout_typ.clone(),
            serde_json::json!({ "iat": now - 200, "exp": now - 100 }),
        ),
        (
            "no event",
            logout_typ.clone(),
            serde_json::json!({ "events": {} }),
        ),
        (
            "no jti",
            logout_typ.clone(),
            serde_json::json!({ "jti": null }),
        ),
        (
            "another audience",
            logout_typ.clone(),
            serde_json::json!({ "aud": "someone-else" }),
        ),
        (
            "another issuer",
            logout_typ.clone(),
            serde_json::json!({ "iss": "http://127.0.0.1:1/other" }),
        ),
        (
            "a nonce",
            logout_typ.clone(),
            serde_json::json!({ "nonce": "n" }),
        ),
    ];
    for (what, header, changes) in cases {
        let token = idp.sign(header, with(changes)).await;
        let (status, body) = post_logout_token(&site, &token).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], "invalid_request", "{what}");
        assert!(alive().await, "{what}: nothing revoked");
    }

    // The valid token, from the body: the session ends. No `typ` at all is fine too.
    let (status, body) = post_logout_token(&site, &valid).await;
    assert_eq!(
        (status, &body["revoked"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    assert!(!alive().await, "the valid logout token ended the session");

    // Signed in again: the same token replayed is refused and the new session lives.
    let again = Browser::new();
    assert_eq!(login(&stack, &again, "/", "uma").await.status(), 200);
    let (status, body) = post_logout_token(&site, &valid).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(again.navigate(&format!("{site}/x")).await.status(), 200);
    let untyped = idp
        .sign(serde_json::json!({}), with(serde_json::json!({})))
        .await;
    let (status, body) = post_logout_token(&site, &untyped).await;
    assert_eq!(
        (status, &body["revoked"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    assert_eq!(again.navigate(&format!("{site}/x")).await.status(), 302);
}

/// The wall clock in seconds, as idgate reads it (same machine): a request decided by idgate
/// was decided between the moments it was sent and answered, which brackets idgate's clock
/// without guessing how busy the machine is.
fn wall() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn sleep_until(at: f64) {
    let left = at - wall();
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
}

/// The `Max-Age` of cookie `name` among `set_cookies`.
fn max_age(set_cookies: &[String], name: &str) -> i64 {
    let cookie = set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"));
    cookie
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .unwrap_or_else(|| panic!("no Max-Age: {cookie}"))
        .parse()
        .unwrap()
}

/// `[session] idle_timeout` of the idle test, in seconds.
const IDLE: f64 = 6.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_an_active_one_does_not() {
    let stack = Stack::start_with(Setup {
        access_ttl: "2s",
        extra_session: "idle_timeout = \"6s\"",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "sam").await.status(), 200);
    // Active: a request every 700 ms for 9 s, one and a half idle timeouts, across several
    // renewals of the 2 s token.
    let active = std::time::Instant::now();
    let mut renewals = 0;
    let mut last_answer = wall();
    while active.elapsed() < Duration::from_secs(9) {
        let resp = browser.navigate(&format!("{site}/busy")).await;
        assert_eq!(resp.status(), 200, "an active session lives");
        renewals += usize::from(resp.headers().get("set-cookie").is_some());
        last_answer = wall();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(renewals >= 2, "renewed {renewals} times while active");

    // Idle for the timeout less 2 s: still alive (ending at half the idle timeout would not be).
    // idgate counts whole seconds: alive while (now - last use) <= 6 in whole seconds.
    sleep_until(last_answer + IDLE - 2.0).await;
    let resp = browser.navigate(&format!("{site}/still")).await;
    assert_eq!(resp.status(), 200, "alive 4 s after its last use");
    let last_answer = wall();

    // Idle for the timeout plus the clock's whole second: ended, whatever the machine's load
    // (idgate read its clock before `last_answer`, and will read it after this point).
    sleep_until(last_answer + IDLE + 1.0).await;
    let resp = browser.navigate(&format!("{site}/back")).await;
    assert_eq!(resp.status(), 302, "sent to log in again after 7 s idle");
    let (_, out, _) = idgate_cmd(&[
        "sessions",
        "list",
        "--config",
        stack.idgate.config.to_str().unwrap(),
    ]);
    let sessions: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        sessions[0]["alive"], false,
        "ended in the store too, for every instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_absolute_timeout_despite_renewals() {
    /// `[session] absolute_timeout`, seconds.
    const LIFETIME: i64 = 8;
    let stack = Stack::start_with(Setup {
        access_ttl: "1s",
        extra_session: "absolute_timeout = \"8s\"",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/", "tina").await;
    assert_eq!(resp.status(), 200);
    // Every cookie of the session lives exactly the configured lifetime.
    let cookies = set_cookies(&resp);
    for name in ["sid", "idgate_renew", "refresh_token"] {
        assert_eq!(max_age(&cookies, name), LIFETIME, "{name}: {cookies:?}");
    }
    let mut sid = browser.cookie(&site, "sid").unwrap();
    let renew = browser.cookie(&site, "idgate_renew").unwrap();
    // The session was created with its first token: it ends at that token's iat + 8 s.
    let end = jwt_claims(&sid)["iat"].as_i64().unwrap() + LIFETIME;

    // Requests every 250 ms with the cookies the browser would hold (set by hand, so the
    // cookies' own expiry cannot end the session in idgate's place).
    let client = Browser::new().client;
    let mut renewals = 0;
    let mut last_ok = 0.0;
    loop {
        let sent = wall();
        assert!(sent < end as f64 + 5.0, "the session never ended");
        let resp = client
            .get(format!("{site}/work"))
            .header("cookie", format!("sid={sid}; idgate_renew={renew}"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let answered = wall();
        match resp.status().as_u16() {
            200 => {
                assert!(
                    sent < end as f64,
                    "still accepted {:.2} s after the end",
                    sent - end as f64
                );
                last_ok = answered;
                let cookies = set_cookies(&resp);
                if !cookies.is_empty() {
                    renewals += 1;
                    // The renewed cookie lives until the session's end, not a lifetime more.
                    let age = max_age(&cookies, "sid");
                    let (earliest, latest) = (end - answered as i64, end - sent as i64);
                    assert!(
                        (earliest.max(1)..=latest.max(1)).contains(&age),
                        "Max-Age {age}, expected {earliest}..={latest}"
                    );
                    sid = cookies[0]["sid=".len()..]
                        .split(';')
                        .next()
                        .unwrap()
                        .to_owned();
                    assert!(exp_of(&sid) <= end, "a renewed token outlives its session");
                }
            }
            401 => {
                assert!(
                    answered >= end as f64,
                    "ended {:.2} s before the absolute timeout",
                    end as f64 - answered
                );
                assert!(resp.headers().get("set-cookie").is_none());
                break;
            }
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        renewals >= 2,
        "the 1 s token was renewed {renewals} times while the session lived"
    );
    assert!(
        last_ok > end as f64 - 3.0,
        "the session was seen alive {:.2} s before its end",
        end as f64 - last_ok
    );
}
