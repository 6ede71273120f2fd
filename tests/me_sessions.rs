//! The sessions a user sees and ends (`/me/sessions`), through real Nginx with the shipped
//! snippets, the development IdP and the idgate binary — on the embedded store and on Redis —
//! and the administrator's view of the same sessions (`idgate sessions list | revoke`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// What a client puts in `X-Forwarded-For` to pass for another address: never believed.
const SPOOFED: &str = "6.6.6.6";

/// A browser with its own cookie jar and user agent, which also claims to be [`SPOOFED`].
fn browser_as(user_agent: &str) -> Browser {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", SPOOFED.parse().unwrap());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .default_headers(headers)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Browser { client, jar }
}

async fn logged_in(stack: &Stack, login_name: &str, user_agent: &str) -> Browser {
    let browser = browser_as(user_agent);
    let resp = login(stack, &browser, "/", login_name).await;
    assert_eq!(resp.status(), 200, "login of {login_name}");
    browser
}

/// The user id in the browser's session cookie.
fn user_of(stack: &Stack, browser: &Browser) -> String {
    let jwt = browser
        .cookie(&stack.site(), "sid")
        .expect("a session cookie");
    jwt_claims(&jwt)["sub"].as_str().unwrap().to_owned()
}

async fn my_sessions(stack: &Stack, browser: &Browser) -> Vec<Value> {
    let resp = browser
        .client
        .get(format!("{}/me/sessions", stack.site()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let list: Value = resp.json().await.unwrap();
    list.as_array().unwrap().clone()
}

/// The session of `list` opened with `user_agent`.
fn by_agent<'a>(list: &'a [Value], user_agent: &str) -> &'a Value {
    list.iter()
        .find(|s| s["userAgent"] == user_agent)
        .unwrap_or_else(|| panic!("no session of {user_agent}: {list:?}"))
}

/// `DELETE {site}{path}` from `browser` with the given extra headers.
async fn delete(
    stack: &Stack,
    browser: &Browser,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = browser.client.delete(format!("{}{path}", stack.site()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// What a browser sends with a request from the site's own page.
fn same_origin() -> [(&'static str, &'static str); 1] {
    [("sec-fetch-site", "same-origin")]
}

/// Whether the browser's session still opens the protected site (200), or is sent to log in.
async fn still_in(stack: &Stack, browser: &Browser) -> bool {
    match browser
        .navigate(&format!("{}/", stack.site()))
        .await
        .status()
        .as_u16()
    {
        200 => true,
        302 => false,
        other => panic!("the protected page answered {other}"),
    }
}

fn cli_json(args: &[&str]) -> Value {
    let (code, out, err) = idgate_cmd(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_and_ends_their_own_sessions_and_no_one_elses() {
    let stack = Stack::start();
    let site = stack.site();
    let laptop = logged_in(&stack, "erin", "Laptop/1.0").await;
    let phone = logged_in(&stack, "erin", "Phone/2.0").await;
    let other_user = logged_in(&stack, "frank", "Frank/1.0").await;
    let erin = user_of(&stack, &laptop);
    assert_eq!(user_of(&stack, &phone), erin);

    // Anonymous: 401, JSON.
    let resp = reqwest::get(format!("{site}/me/sessions")).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["statusCode"], 401);
    for path in ["/me/sessions?others=true", "/me/sessions/anything"] {
        let resp = reqwest::Client::new()
            .delete(format!("{site}{path}"))
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }

    // Both of erin's sessions, the laptop's the current one; the address Nginx saw, not the
    // spoofed one; the user agent of each login; no session id, a handle instead.
    let list = my_sessions(&stack, &laptop).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let (mine, phones) = (by_agent(&list, "Laptop/1.0"), by_agent(&list, "Phone/2.0"));
    assert_eq!(mine["current"], true);
    assert_eq!(phones["current"], false);
    for s in &list {
        assert_eq!(s["clientAddr"], "127.0.0.1", "{s}");
        assert_eq!(s["appId"], "web");
        let (created, seen) = (
            s["createdAt"].as_i64().unwrap(),
            s["lastSeenAt"].as_i64().unwrap(),
        );
        assert!(
            seen >= created && s["expiresAt"].as_i64().unwrap() > created,
            "{s}"
        );
    }
    assert!(!list.iter().any(|s| s.to_string().contains(SPOOFED)));
    let phone_jwt = phone.cookie(&site, "sid").unwrap();
    let phone_sid = jwt_claims(&phone_jwt)["sid"].as_str().unwrap().to_owned();
    let phone_id = phones["id"].as_str().unwrap().to_owned();
    assert_ne!(phone_id, phone_sid);
    assert!(!list.iter().any(|s| s.to_string().contains(&phone_sid)));
    // From the phone, the same two, the phone's the current one.
    let from_phone = my_sessions(&stack, &phone).await;
    assert_eq!(by_agent(&from_phone, "Phone/2.0")["current"], true);
    assert_eq!(by_agent(&from_phone, "Phone/2.0")["id"], phone_id.as_str());
    // Frank sees only his own.
    let franks = my_sessions(&stack, &other_user).await;
    assert_eq!(franks.len(), 1);
    assert_eq!(franks[0]["userAgent"], "Frank/1.0");

    // The administrator's list shows the same sessions with the same ids and context.
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let admin = cli_json(&["sessions", "list", "--config", &config, "--user", &erin]);
    let admin = admin.as_array().unwrap();
    assert_eq!(admin.len(), 2);
    let row = admin.iter().find(|s| s["id"] == phone_id.as_str()).unwrap();
    assert_eq!(row["sid"], phone_sid.as_str());
    assert_eq!(row["userAgent"], "Phone/2.0");
    assert_eq!(row["clientAddr"], "127.0.0.1");
    assert_eq!(row["alive"], true);

    // Cross-site requests end nothing: another site's Origin, a cross-site fetch, a same-site
    // (sibling) fetch, and a cookie request that says nothing of where it comes from.
    let path = format!("/me/sessions/{phone_id}");
    for headers in [
        &[("origin", "http://evil.test")][..],
        &[("sec-fetch-site", "cross-site"), ("origin", site.as_str())][..],
        &[("sec-fetch-site", "same-site")][..],
        &[][..],
    ] {
        let resp = delete(&stack, &laptop, &path, headers).await;
        assert_eq!(resp.status(), 403, "{headers:?}");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
    }
    let resp = delete(
        &stack,
        &laptop,
        "/me/sessions?others=true",
        &[("origin", "http://evil.test")],
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert!(
        still_in(&stack, &phone).await,
        "a refused request ended a session"
    );

    // Another user's session: not found, as if it did not exist; nothing ended.
    let resp = delete(&stack, &other_user, &path, &same_origin()).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["statusCode"], 404);
    assert!(still_in(&stack, &phone).await);
    // A session id is not a handle.
    let resp = delete(
        &stack,
        &laptop,
        &format!("/me/sessions/{phone_sid}"),
        &same_origin(),
    )
    .await;
    assert_eq!(resp.status(), 404);

    // The user ends their phone's session from the laptop (the browser's own Origin will do
    // where Sec-Fetch-Site is not sent): the phone's cookie is refused at once.
    let resp = delete(&stack, &laptop, &path, &[("origin", site.as_str())]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["ended"], 1);
    assert!(!still_in(&stack, &phone).await);
    let direct = reqwest::Client::new()
        .get(stack.idgate.url("/auth"))
        .header("cookie", format!("sid={phone_jwt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    assert!(still_in(&stack, &laptop).await);
    let list = my_sessions(&stack, &laptop).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["current"], true);
    let resp = delete(&stack, &laptop, &path, &same_origin()).await;
    assert_eq!(resp.status(), 404, "ended already");

    // All others: two more logins of erin end, the laptop's stays; frank's is untouched.
    let tablet = logged_in(&stack, "erin", "Tablet/3.0").await;
    let desktop = logged_in(&stack, "erin", "Desktop/4.0").await;
    assert_eq!(my_sessions(&stack, &laptop).await.len(), 3);
    let resp = delete(&stack, &laptop, "/me/sessions", &same_origin()).await;
    assert_eq!(resp.status(), 400, "others=true is required");
    let resp = delete(&stack, &laptop, "/me/sessions?others=true", &same_origin()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["ended"], 2);
    assert!(!still_in(&stack, &tablet).await);
    assert!(!still_in(&stack, &desktop).await);
    assert!(still_in(&stack, &laptop).await);
    assert!(still_in(&stack, &other_user).await);
    assert_eq!(my_sessions(&stack, &laptop).await.len(), 1);

    // The administrator ends the last one by its id (`--session`).
    let laptop_sid = jwt_claims(&laptop.cookie(&site, "sid").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "revoke",
        "--config",
        &config,
        "--session",
        &laptop_sid,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 1"), "{out}");
    let mut ended = false;
    for _ in 0..50 {
        if !still_in(&stack, &laptop).await {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(ended, "the running daemon follows the CLI's revocation");
    let resp = laptop
        .client
        .get(format!("{site}/me/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// The same on Redis: the login's context is kept in the Redis record, the per-user set lists
/// the user's sessions, and the CLI lists and revokes them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_the_sessions_and_their_context_are_listed_and_ended() {
    let dir = tempfile::tempdir().unwrap();
    let redis = common::redis::RedisServer::start(dir.path(), &[]);
    let stack = Stack::start_with(Setup {
        store: Some(format!(
            "[store]\nkind = \"redis\"\nurls = [\"{}\"]\nscope = \"me\"",
            redis.url()
        )),
        users: Some("[users]\nkind = \"embedded\"\npath = \"users.db\"".into()),
        ..Setup::default()
    });
    let first = logged_in(&stack, "gina", "First/1.0").await;
    let second = logged_in(&stack, "gina", "Second/1.0").await;
    let gina = user_of(&stack, &first);

    let list = my_sessions(&stack, &second).await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(by_agent(&list, "Second/1.0")["current"], true);
    assert_eq!(by_agent(&list, "First/1.0")["clientAddr"], "127.0.0.1");

    // A refresh rewrites the Redis record (its script re-encodes it): the context stays.
    let resp = first
        .client
        .post(format!("{}/refreshtoken", stack.site()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let admin = cli_json(&["sessions", "list", "--config", &config, "--user", &gina]);
    let admin = admin.as_array().unwrap();
    assert_eq!(admin.len(), 2);
    let firsts = admin
        .iter()
        .find(|s| s["userAgent"] == "First/1.0")
        .unwrap();
    assert_eq!(firsts["clientAddr"], "127.0.0.1");
    assert_eq!(firsts["alive"], true);
    let first_id = firsts["id"].as_str().unwrap();
    assert_eq!(by_agent(&list, "First/1.0")["id"], first_id);

    // A program holding the second's token as a bearer token (no browser headers at all)
    // sees the same list and ends the first.
    let bearer = second.cookie(&stack.site(), "sid").unwrap();
    let api = reqwest::Client::new();
    let list: Value = api
        .get(format!("{}/me/sessions", stack.site()))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        by_agent(list.as_array().unwrap(), "Second/1.0")["current"],
        true
    );
    let resp = api
        .delete(format!("{}/me/sessions/{first_id}", stack.site()))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!still_in(&stack, &first).await);
    assert!(still_in(&stack, &second).await);

    // The administrator ends the rest with --user; the list then shows none alive.
    let (code, out, err) =
        idgate_cmd(&["sessions", "revoke", "--config", &config, "--user", &gina]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 1"), "{out}");
    let admin = cli_json(&["sessions", "list", "--config", &config, "--user", &gina]);
    assert!(
        admin
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["alive"] == false),
        "{admin}"
    );
}

/// `/me/sessions` is reached without Nginx's auth subrequest, so it renews a browser's expired
/// session token itself, as `/auth` does: with the session's renewal cookie only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_browser_token_is_renewed_here_too() {
    let stack = Stack::start_with(Setup {
        access_ttl: "2s",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = logged_in(&stack, "hana", "Hana/1.0").await;
    let old = browser.cookie(&site, "sid").unwrap();
    let exp = jwt_claims(&old)["exp"].as_i64().unwrap();
    while idgate::now_secs() <= exp + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The expired token alone (no renewal cookie), as a cookie or a bearer token: 401.
    let bare = reqwest::Client::new();
    let resp = bare
        .get(format!("{site}/me/sessions"))
        .header("cookie", format!("sid={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = bare
        .get(format!("{site}/me/sessions"))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The browser, with its renewal cookie: the list, and a new session cookie.
    let resp = browser
        .client
        .get(format!("{site}/me/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookies = set_cookies(&resp);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("sid=") && !c.starts_with("sid=;")),
        "{cookies:?}"
    );
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list[0]["current"], true);
    let new = browser.cookie(&site, "sid").unwrap();
    assert_ne!(new, old);
    assert_eq!(jwt_claims(&new)["sid"], jwt_claims(&old)["sid"]);
}
