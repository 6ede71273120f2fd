//! Step-up per route (issue 15 item 1), end to end through real Nginx with the shipped snippets,
//! the development IdP (two assurance levels: the password `otp` logs in at
//! `urn:idgate:loa:2` with `amr` `pwd`+`otp`, any other at `urn:idgate:loa:1`) and the idgate
//! binary on the embedded store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;

const LOA2: &str = "urn:idgate:loa:2";

/// `/` for any session, `/pay/` for a login at level 2 at most ten minutes old, `/fresh/` for
/// a login at most five seconds old, `/otp/` for an `otp` login in the expression language.
fn setup() -> Setup {
    Setup {
        extra: r#"
[audit]
path = "audit.jsonl"

[[authorization.routes]]
path = "/"
expression = "true"

[[authorization.routes]]
path = "/pay/"
expression = "groups.users"
acr_values = ["urn:idgate:loa:2"]
max_age = "10m"

[[authorization.routes]]
path = "/fresh/"
expression = "true"
max_age = "5s"

[[authorization.routes]]
path = "/otp/"
expression = "'otp' in amr"
"#,
        ..Setup::default()
    }
}

/// The `step_up` events of the audit trail, once there are `n` of them.
fn step_up_events(stack: &Stack, n: usize) -> Vec<serde_json::Value> {
    let path = stack.dir.path().join("audit.jsonl");
    wait_for(
        &format!("{n} step_up events in the audit trail"),
        std::time::Duration::from_secs(10),
        || {
            let events: Vec<serde_json::Value> = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .filter(|e: &serde_json::Value| e["event"] == "step_up")
                .collect();
            (events.len() >= n).then_some(events)
        },
    )
}

/// Follows a 302 from a protected page through `/authorize` to the IdP; returns the IdP's URL.
async fn to_idp(site: &str, browser: &Browser, login_path: &str) -> String {
    let resp = browser.navigate(&format!("{site}{login_path}")).await;
    assert_eq!(resp.status(), 302, "/authorize: {login_path}");
    location(&resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_needing_a_stronger_login_steps_up_and_keeps_the_user_and_groups() {
    let stack = Stack::start_with(setup());
    let site = stack.site();
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/", "alice").await;
    assert_eq!(resp.status(), 200);
    let first = browser.cookie(&site, "sid").expect("a session");
    let claims = jwt_claims(&first);
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]), "{claims}");
    assert!(claims["auth_time"].is_i64(), "{claims}");
    let page = browser.navigate(&format!("{site}/page")).await;
    assert_eq!(page.status(), 200);
    let before = echoed(&page.text().await.unwrap());

    // Level 1 is not enough for /pay/: a browser is sent to log in again, asking for level 2.
    let resp = browser.navigate(&format!("{site}/pay/invoice")).await;
    assert_eq!(resp.status(), 302, "step-up is a login redirect");
    let login_path = location(&resp);
    for part in [
        "appId=web",
        "providerId=dev",
        "redirect=%2Fpay%2Finvoice",
        "acr_values=urn%3Aidgate%3Aloa%3A2",
        "max_age=600",
        "prompt=login",
    ] {
        assert!(login_path.contains(part), "{part} in {login_path}");
    }
    // The browser's session stays while the step-up runs: /authorize keeps its cookies.
    let idp_url = to_idp(&site, &browser, &login_path).await;
    assert_eq!(
        browser.cookie(&site, "sid").as_deref(),
        Some(first.as_str())
    );
    assert_eq!(query_param(&idp_url, "acr_values").as_deref(), Some(LOA2));
    assert_eq!(query_param(&idp_url, "max_age").as_deref(), Some("600"));
    assert_eq!(query_param(&idp_url, "prompt").as_deref(), Some("login"));

    // prompt=login: the IdP asks again although its own session lasts; a second factor.
    let callback = browser
        .login_at_idp_with(&idp_url, "alice", "otp", &format!("{site}/web-login/"))
        .await;
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(location(&resp), "/pay/invoice", "back to the same page");
    assert_eq!(resp.status(), 200);
    let issued: serde_json::Value = resp.json().await.unwrap();
    let second = browser
        .cookie(&site, "sid")
        .expect("the stepped-up session");
    assert_ne!(first, second);
    let claims = jwt_claims(&second);
    assert_eq!(claims["acr"], LOA2, "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]), "{claims}");

    // Same user, same groups; the route now opens, and so does the `amr` rule.
    let page = browser.navigate(&format!("{site}/pay/invoice")).await;
    assert_eq!(page.status(), 200);
    let after = echoed(&page.text().await.unwrap());
    assert_eq!(after["miauserid"], before["miauserid"]);
    assert_eq!(after["miausergroups"], before["miausergroups"]);
    assert!(after["miausergroups"].contains("users"), "{after:?}");
    let otp = browser.navigate(&format!("{site}/otp/x")).await;
    assert_eq!(otp.status(), 200);
    // The stepped-up session replaced the first one.
    assert_eq!(auth_status(&stack.idgate, &first).await, 401);
    let events = step_up_events(&stack, 1);
    println!("step_up event: {}", events[0]);
    assert_eq!(events[0]["outcome"], "success", "{events:?}");
    assert_eq!(events[0]["acr"], LOA2);
    assert_eq!(events[0]["user_id"], claims["sub"]);

    // A refresh keeps the login's authentication: it is not a new login.
    let resp = browser
        .client
        .post(format!("{site}/refreshtoken"))
        .json(&serde_json::json!({ "refreshToken": issued["refreshToken"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let refreshed = jwt_claims(body["accessToken"].as_str().unwrap());
    assert_eq!(refreshed["acr"], LOA2, "{refreshed}");
    assert_eq!(refreshed["auth_time"], claims["auth_time"]);
    assert_eq!(refreshed["amr"], claims["amr"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_answer_below_what_was_asked_or_of_another_user_is_refused() {
    let stack = Stack::start_with(setup());
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "alice").await.status(), 200);
    let first = browser.cookie(&site, "sid").unwrap();

    // The person logs in again without the second factor: the IdP answers level 1.
    let resp = browser.navigate(&format!("{site}/pay/x")).await;
    let idp_url = to_idp(&site, &browser, &location(&resp)).await;
    let callback = browser
        .login_at_idp_with(&idp_url, "alice", "no-otp", &format!("{site}/web-login/"))
        .await;
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    assert!(body.contains("not one of the asked"), "{body}");

    // Someone else's login cannot step up alice's session: alice's browser (her idgate
    // cookies, no IdP session: oidc-provider would first end hers) logs in as mallory.
    let other = Browser::new();
    let url: reqwest::Url = site.parse().unwrap();
    let sid = browser.cookie(&site, "sid").unwrap();
    other.jar.add_cookie_str(&format!("sid={sid}"), &url);
    let resp = other.navigate(&format!("{site}/pay/x")).await;
    let idp_url = to_idp(&site, &other, &location(&resp)).await;
    let callback = other
        .login_at_idp_with(&idp_url, "mallory", "otp", &format!("{site}/web-login/"))
        .await;
    let resp = other.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    assert!(body.contains("another user"), "{body}");

    let events = step_up_events(&stack, 2);
    let reasons: Vec<&str> = events
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["step_up_refused", "step_up_other_user"],
        "{events:?}"
    );
    assert!(events.iter().all(|e| e["outcome"] == "failure"));

    // Neither refusal ended alice's session, and it is still level 1.
    assert_eq!(
        browser.cookie(&site, "sid").as_deref(),
        Some(first.as_str())
    );
    assert_eq!(auth_status(&stack.idgate, &first).await, 200);
    let resp = browser.navigate(&format!("{site}/pay/x")).await;
    assert_eq!(resp.status(), 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_client_gets_an_rfc_9470_challenge() {
    let stack = Stack::start_with(setup());
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "alice").await.status(), 200);
    let token = browser.cookie(&site, "sid").unwrap();
    let api = reqwest::Client::new();
    let resp = api
        .get(format!("{site}/pay/x"))
        .bearer_auth(&token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("location").is_none());
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .expect("a WWW-Authenticate challenge")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("acr_values=\"{LOA2}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("max_age=600"), "{challenge}");
    // A route the session meets answers as before, without a challenge.
    let resp = api
        .get(format!("{site}/page"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The expression language's refusal is a plain 403: a new login would not add `otp`.
    let resp = api
        .get(format!("{site}/otp/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_older_than_max_age_logs_in_again() {
    let stack = Stack::start_with(setup());
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "alice").await.status(), 200);
    let first = jwt_claims(&browser.cookie(&site, "sid").unwrap());
    let first_auth = first["auth_time"].as_i64().unwrap();
    // Older than the route's five seconds (sleeping is the point here, not a timing bound).
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let resp = browser.navigate(&format!("{site}/fresh/x")).await;
    assert_eq!(resp.status(), 302);
    let login_path = location(&resp);
    assert!(login_path.contains("max_age=5"), "{login_path}");
    assert!(!login_path.contains("prompt=login"), "{login_path}");
    let idp_url = to_idp(&site, &browser, &login_path).await;
    // The IdP's own session is older than max_age too: it shows its login form again.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let callback = browser
        .login_at_idp(&idp_url, "alice", &format!("{site}/web-login/"))
        .await;
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let second = jwt_claims(&browser.cookie(&site, "sid").unwrap());
    let second_auth = second["auth_time"].as_i64().unwrap();
    assert!(second_auth > first_auth, "{first_auth} then {second_auth}");
    assert!(
        second_auth >= before - 1,
        "a new login at the IdP: {second_auth} < {before}"
    );
    assert_eq!(second["sub"], first["sub"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_explained_by_the_cli_and_in_the_debug_log_never_to_the_client() {
    let stack = Stack::start_with(setup());
    let site = stack.site();
    let config = stack.idgate.config_file().to_str().unwrap().to_owned();
    let check = |extra: &[&str]| {
        let mut args = vec!["check-policy", "--config", config.as_str()];
        args.extend_from_slice(extra);
        let (code, out, err) = idgate_cmd(&args);
        let json: serde_json::Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out} / {err}"));
        (code, json)
    };
    let (code, allow) = check(&[
        "--method",
        "GET",
        "--path",
        "/pay/x",
        "--groups",
        "users",
        "--acr",
        LOA2,
        "--auth-age",
        "30",
    ]);
    assert_eq!(code, 0, "{allow}");
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["route"], "/pay/");
    assert_eq!(allow["method"], "ALL");
    assert_eq!(allow["expression"], "groups.users");
    let (code, weak) = check(&["--method", "GET", "--path", "/pay/x", "--groups", "users"]);
    assert_eq!(code, 1);
    assert_eq!(weak["decision"], "unauthenticated");
    assert_eq!(weak["step_up"]["met"], false);
    let (code, refused) = check(&["--method", "GET", "--path", "/otp/x", "--amr", "pwd"]);
    assert_eq!(code, 1);
    assert_eq!(refused["decision"], "forbidden");
    assert_eq!(refused["expression"], "'otp' in amr");
    let (code, anonymous) = check(&["--method", "GET", "--path", "/page", "--anonymous"]);
    assert_eq!(code, 1);
    assert_eq!(anonymous["decision"], "unauthenticated");
    assert_eq!(anonymous["route"], "/");
    let (code, _, _) = idgate_cmd(&["check-policy", "--config", &config, "--path", "/x"]);
    assert_eq!(code, 2, "a missing --method is a usage error");

    // The same explanation in /auth's debug log; the client's 403 names no rule.
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "alice").await.status(), 200);
    let resp = browser.navigate(&format!("{site}/otp/secret")).await;
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    assert!(
        !body.contains("otp") && !body.contains("authorization.routes"),
        "{body}"
    );
    stack.idgate.proc.wait_log(&[
        "/auth decision",
        "Forbidden",
        "authorization.routes /otp/ ALL",
        "'otp' in amr",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_renewal_keeps_the_logins_authentication() {
    let stack = Stack::start_with(Setup {
        access_ttl: "2s",
        ..setup()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "alice").await.status(), 200);
    let first = browser.cookie(&site, "sid").unwrap();
    // Past the token's two seconds, the session alive: /auth renews it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        browser.navigate(&format!("{site}/page")).await.status(),
        200
    );
    let renewed = browser.cookie(&site, "sid").unwrap();
    assert_ne!(renewed, first, "renewed");
    let (first, renewed) = (jwt_claims(&first), jwt_claims(&renewed));
    assert!(first["auth_time"].is_i64(), "{first}");
    assert_eq!(renewed["auth_time"], first["auth_time"]);
    assert_eq!(renewed["amr"], first["amr"]);
    assert_eq!(renewed["acr"], first["acr"]);
}
