//! Identity header profiles end to end through Nginx: oauth2-proxy's names, custom names with
//! the generated snippet, the JWT handed to the upstream, and API apps without cookies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;

fn location(path: &str, includes: &[String]) -> String {
    let lines: String = includes
        .iter()
        .map(|i| format!("        include {i};\n"))
        .collect();
    format!(
        "    location {path} {{\n        include {}/idgate-protect.conf;\n{lines}        proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n",
        repo().join("nginx").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_proxy_names_and_the_token_reach_the_upstream() {
    let nginx = repo().join("nginx");
    let stack = Stack::start_with(Setup {
        extra: "[headers]\nprofile = \"oauth2-proxy\"\npass_token = true\n",
        nginx_locations: location(
            "/o2p/",
            &[
                format!("{}/idgate-headers-oauth2-proxy.conf", nginx.display()),
                format!("{}/idgate-headers-token.conf", nginx.display()),
            ],
        ),
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "judy").await.status(), 200);
    let jwt = browser.cookie(&site, "sid").unwrap();
    let body = browser
        .client
        .get(format!("{site}/o2p/x"))
        .header("x-auth-request-user", "forged")
        .header("x-auth-request-groups", "admins")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let echo = echoed(&body);
    // judy's id as the users store knows it (the only user).
    let id = stack.idgate.first_user_id();
    assert_eq!(echo["x-auth-request-user"], id);
    assert_eq!(echo["miauserid"], id);
    assert_eq!(echo["x-auth-request-email"], "judy@example.test");
    assert_eq!(echo["x-auth-request-groups"], "users");
    assert_eq!(echo["x-auth-request-preferred-username"], "judy");
    assert_eq!(echo["authorization"], format!("Bearer {jwt}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_names_with_the_generated_snippet() {
    let headers = "[headers]\nprofile = \"custom\"\n[headers.custom]\nuser_id = \"x-user-id\"\nemail = \"x-user-email\"\n";
    // Generate the snippet from the same config the stack will run.
    let gen_dir = tempfile::tempdir().unwrap();
    let cfg = config_toml(
        &Setup {
            extra: headers,
            ..Setup::default()
        },
        gen_dir.path(),
        "http://127.0.0.1:8080",
        "http://127.0.0.1:1",
    );
    std::fs::write(gen_dir.path().join("idgate.toml"), cfg).unwrap();
    let (code, snippet, err) = idgate_cmd(&[
        "nginx-headers",
        "--config",
        gen_dir.path().join("idgate.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        snippet.contains("proxy_set_header x-user-id $idgate_h_x_user_id;"),
        "{snippet}"
    );
    let snippet_path = gen_dir.path().join("custom-headers.conf");
    std::fs::write(&snippet_path, &snippet).unwrap();

    let stack = Stack::start_with(Setup {
        extra: headers,
        nginx_locations: location("/custom/", &[snippet_path.display().to_string()]),
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "kim").await.status(), 200);
    let body = browser
        .client
        .get(format!("{site}/custom/x"))
        .header("x-user-id", "forged")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let echo = echoed(&body);
    // kim's id as the users store knows it (the only user).
    let id = stack.idgate.first_user_id();
    assert_eq!(echo["x-user-id"], id);
    assert_eq!(echo["miauserid"], id);
    assert_eq!(echo["x-user-email"], "kim@example.test");
    assert_eq!(echo["authorization"], "", "no token unless pass_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_apps_get_tokens_in_the_body_only_and_bearer_works() {
    let stack = Stack::start_with(Setup {
        website: false,
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/", "lee").await;
    assert_eq!(resp.status(), 200);
    let cookies: Vec<String> = set_cookies(&resp);
    assert!(
        !cookies
            .iter()
            .any(|c| c.starts_with("sid=") || c.starts_with("refresh_token=")),
        "{cookies:?}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    let token = body["accessToken"].as_str().unwrap();
    // Without a cookie the browser is anonymous; with the bearer token the API call passes.
    assert_eq!(
        browser.navigate(&format!("{site}/data")).await.status(),
        302
    );
    let api = Browser::new().client;
    let resp = api
        .get(format!("{site}/data"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        echoed(&resp.text().await.unwrap())["miausergroups"],
        "users"
    );
    let resp = api
        .post(format!("{site}/data"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_too_large_for_headers_is_refused_with_a_log_line() {
    let stack = Stack::start_with(Setup {
        extra: "[headers]\nmax_value_bytes = 64\n",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(
        login(
            &stack,
            &browser,
            "/",
            "a-rather-long-login-name-for-this-test"
        )
        .await
        .status(),
        200
    );
    let resp = browser
        .client
        .get(format!("{site}/x"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        403,
        "refused rather than a broken upstream answer"
    );
    // The refusal is logged, naming the limit and the header (waited for: the log is read
    // by another thread).
    stack
        .idgate
        .proc
        .wait_log(&["max_value_bytes", "mia-userproperties"]);
}
