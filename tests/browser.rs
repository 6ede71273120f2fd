//! The login in a real browser: headless Chromium (driven by `tests/js/browser-login.mjs`)
//! runs the real callback page and its script, under its strict CSP, through Nginx and idgate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_and_lands_on_the_protected_page() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is not installed: run scripts/install-deps"
    );
    let stack = Stack::start();
    let target = stack.nginx.url("/private/page?tab=2&q=a%26b");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(repo().join("tests/js/browser-login.mjs"))
            .args(["--url", &target, "--login", "grace"])
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser login failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

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
}
