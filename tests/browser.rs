//! The login in a real browser: headless Chromium (driven by `tests/js/browser-login.mjs`)
//! runs the real callback page and its script, under its strict CSP, through Nginx and idgate;
//! then the same login with JavaScript off, through the page's form.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;

/// The requests the browser made from the callback page's document to the target's, both
/// excluded: what the callback page added to the login.
fn after_callback(result: &serde_json::Value, target_path: &str) -> Vec<(String, String)> {
    let requests = result["requests"].as_array().unwrap();
    let is_doc = |r: &serde_json::Value, pred: &dyn Fn(&str) -> bool| {
        r["type"] == "document" && pred(r["path"].as_str().unwrap())
    };
    let start = requests
        .iter()
        .position(|r| is_doc(r, &|p| p.starts_with("/web-login/oauth/callback?")))
        .unwrap_or_else(|| panic!("no callback page: {requests:?}"));
    let end = start
        + requests[start..]
            .iter()
            .position(|r| is_doc(r, &|p| p == target_path))
            .unwrap_or_else(|| panic!("no target page after the callback: {requests:?}"));
    requests[start + 1..end]
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_and_lands_on_the_protected_page() {
    let stack = Stack::start();
    let target = stack.nginx.url("/private/page?tab=2&q=a%26b");
    // Assets are held until the code exchange is sent: the callback page must not wait for
    // any of them (its one added round trip is the exchange).
    let result = browser_login(&target, "grace", &["--hold-assets"]).await;

    assert_eq!(
        result["finalUrl"],
        stack.nginx.url("/private/page?tab=2&q=a%26b")
    );
    let echo = echoed(result["body"].as_str().unwrap());
    assert_eq!(echo["uri"], "/private/page?tab=2&q=a%26b");
    assert_eq!(echo["miausergroups"], "users");
    assert!(
        echo["miauserproperties"].contains("\"name\":\"Grace\""),
        "{echo:?}"
    );
    let (_, users, _) = idgate_cmd(&[
        "users",
        "list",
        "--config",
        stack.idgate.config.to_str().unwrap(),
    ]);
    let users: serde_json::Value = serde_json::from_str(&users).unwrap();
    assert_eq!(echo["miauserid"], users[0]["userId"].as_str().unwrap());

    let cookies: Vec<&str> = result["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        cookies.contains(&"sid") && cookies.contains(&"refresh_token"),
        "{cookies:?}"
    );
    assert!(
        !cookies.contains(&"idgate_login"),
        "the login binding is cleared after use"
    );
    // The page's script ran under the CSP without a single violation or error.
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
    assert_eq!(result["pageErrors"], serde_json::json!([]), "{result}");

    // One round trip added to the login: between the callback page and the target, the only
    // request that is not a (cacheable, hashed, not waited for) asset is the code exchange.
    let added: Vec<_> = after_callback(&result, "/private/page?tab=2&q=a%26b")
        .into_iter()
        .filter(|(_, path)| !path.starts_with("/web-login/static/"))
        .collect();
    assert_eq!(
        added,
        [("POST".to_owned(), "/oauth/token".to_owned())],
        "{result}"
    );
}

/// Without JavaScript the callback page's form ends the login: one press of its button, one
/// request (`POST /web-login/finish`, answered with a 303 to the page first asked for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_chromium_finishes_the_login_with_the_callback_form() {
    let stack = Stack::start();
    let target = stack.nginx.url("/private/nojs?x=1");
    let result = browser_login(&target, "heidi", &["--no-javascript"]).await;
    assert_eq!(result["finalUrl"], target);
    let echo = echoed(result["body"].as_str().unwrap());
    assert_eq!(echo["uri"], "/private/nojs?x=1");
    assert_eq!(echo["miausergroups"], "users");
    let added: Vec<_> = after_callback(&result, "/private/nojs?x=1")
        .into_iter()
        .filter(|(_, path)| !path.starts_with("/web-login/static/"))
        .collect();
    assert_eq!(
        added,
        [("POST".to_owned(), "/web-login/finish".to_owned())],
        "{result}"
    );
    // Nothing ran: no fetch to /oauth/token was made.
    assert!(
        !result["requests"].to_string().contains("/oauth/token"),
        "{result}"
    );
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
}

/// Without JavaScript, a login whose page is on another origin the app allows: the form's
/// answer is a 303 there, which browsers check against the callback page's `form-action` too
/// (the page's CSP names the apps' allowed origins, or Chromium blocks the redirect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_a_login_lands_on_another_origin_the_app_allows() {
    let apps = web_app(&["{{SITE_AS_LOCALHOST}}/landed"], &client_secret_line());
    let stack = Stack::start_with(Setup {
        apps: Some(apps),
        nginx_locations:
            "location = /landed { default_type text/plain; return 200 \"landed\\n\"; }".into(),
        ..Setup::default()
    });
    let other = stack.site().replace("127.0.0.1", "localhost");
    let target = format!("{other}/landed");
    let start = stack.nginx.url(&format!(
        "/authorize?appId=web&providerId=dev&redirect={}",
        idgate::http::encode_query_value(&target)
    ));
    let result = browser_login(&start, "ivan", &["--no-javascript", "--expect", &target]).await;
    assert_eq!(result["finalUrl"], target);
    assert_eq!(result["body"].as_str().unwrap().trim(), "landed");
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
}
