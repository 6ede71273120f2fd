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
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["exp"]
        .as_i64()
        .unwrap()
}

async fn wait_until_expired(jwt: &str) {
    while idgate::now_secs() <= exp_of(jwt) + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_renewed_silently_once_for_a_burst() {
    let stack = Stack::start_with(Setup {
        access_ttl: "2s",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "olga").await.status(), 200);
    let old = browser.cookie(&site, "sid").unwrap();
    let renew = browser.cookie(&site, "idgate_renew").unwrap();
    wait_until_expired(&old).await;
    let client = Browser::new().client;

    // The expired JWT alone, or with a renewal secret that is not this session's, renews
    // nothing: a leaked JWT lives until its `exp` only.
    let someone_else = Browser::new();
    assert_eq!(
        login(&stack, &someone_else, "/", "otto").await.status(),
        200
    );
    let other_renew = someone_else.cookie(&site, "idgate_renew").unwrap();
    for cookie in [
        format!("sid={old}"),
        format!("sid={old}; idgate_renew={other_renew}"),
        format!("sid={old}; idgate_renew=x{}", &renew[1..]),
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
    // holds), one of them a POST with a body.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (client, site, old, renew) = (client.clone(), site.clone(), old.clone(), renew.clone());
        tasks.push(tokio::spawn(async move {
            let req = if i == 0 {
                client
                    .post(format!("{site}/form?i={i}"))
                    .body("field=value")
            } else {
                client.get(format!("{site}/page?i={i}"))
            };
            let resp = req
                .header("cookie", format!("sid={old}; idgate_renew={renew}"))
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let cookies: Vec<String> = resp
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            let body = resp.text().await.unwrap();
            (status, cookies, body)
        }));
    }
    let mut renewed = Vec::new();
    for t in tasks {
        let (status, cookies, body) = t.await.unwrap();
        assert_eq!(status, 200, "no 401 and no redirect during renewal: {body}");
        assert_eq!(cookies.len(), 1, "exactly one Set-Cookie: {cookies:?}");
        assert!(cookies[0].starts_with("sid=") && cookies[0].contains("HttpOnly"));
        assert!(!echoed(&body)["miauserid"].is_empty());
        assert_eq!(
            echoed(&body)["cookie"],
            "",
            "idgate's cookies never reach the upstream"
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
    assert!(exp_of(new) > idgate::now_secs());

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
    let stack = Stack::start();
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
    assert!(resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("sid=")));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_an_active_one_does_not() {
    let stack = Stack::start_with(Setup {
        extra_session: "idle_timeout = \"2s\"",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "sam").await.status(), 200);
    // Active: a request every 700 ms for about 4 s, twice the idle timeout.
    for _ in 0..6 {
        assert_eq!(
            browser.navigate(&format!("{site}/busy")).await.status(),
            200
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    // Idle for longer than the timeout: the session has ended.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let resp = browser.navigate(&format!("{site}/back")).await;
    assert_eq!(resp.status(), 302, "sent to log in again");
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
    let stack = Stack::start_with(Setup {
        access_ttl: "1s",
        extra_session: "absolute_timeout = \"4s\"",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "tina").await.status(), 200);
    let started = std::time::Instant::now();
    let mut renewed = false;
    let mut ended = false;
    while started.elapsed() < Duration::from_secs(12) {
        let resp = browser.navigate(&format!("{site}/work")).await;
        match resp.status().as_u16() {
            200 => renewed |= resp.headers().get("set-cookie").is_some(),
            302 => {
                ended = true;
                break;
            }
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        renewed,
        "the short-lived JWT was renewed while the session lived"
    );
    assert!(ended, "the session ended at its absolute timeout");
}
