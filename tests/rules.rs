//! Route rules end to end, through real Nginx with the shipped snippets: a Mia `auth.json`
//! (committed fixture, original format) decides who reaches which route; a location's own rule
//! replaces it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;

fn mia_auth_setup() -> Setup {
    let line = format!("mia_auth = \"{}\"", fixture("mia/auth.json").display());
    // Backoffice locations: the operator states backoffice and client type in Nginx.
    let backoffice = |path: &str, client_type: &str| {
        format!(
            "    location {path} {{\n        set $idgate_backoffice \"true\";\n        \
             set $idgate_client_type \"{client_type}\";\n        include {}/idgate-protect.conf;\n        \
             proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n",
            repo().join("nginx").display()
        )
    };
    Setup {
        extra: Box::leak(line.into_boxed_str()),
        nginx_locations: backoffice("/backoffice/", "cms") + &backoffice("/backoffice/web/", "web"),
        ..Setup::default()
    }
}

async fn get(browser: &Browser, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = browser.client.get(url).header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_rules_public_routes_and_backoffice() {
    let stack = Stack::start_with(mia_auth_setup());
    let site = stack.site();

    // A public route lets anonymous users through, with empty identity headers.
    let anonymous = Browser::new();
    let (status, body) = get(
        &anonymous,
        &format!("{site}/public/page"),
        &[("miauserid", "forged")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body)["miauserid"], "");
    // …for GET only: POST is not public there, and `/` needs a session.
    let resp = anonymous
        .client
        .post(format!("{site}/public/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        get(&anonymous, &format!("{site}/anything"), &[]).await.0,
        401
    );

    // A `users` member: `/` yes, `/admin/` no (403, JSON).
    let alice = Browser::new();
    assert_eq!(login(&stack, &alice, "/", "alice").await.status(), 200);
    assert_eq!(get(&alice, &format!("{site}/anything"), &[]).await.0, 200);
    let (status, body) = get(&alice, &format!("{site}/admin/panel"), &[]).await;
    assert_eq!(status, 403);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["statusCode"], 403);
    // Path tricks do not get around the prefix rule.
    for sneaky in [
        "/public/../admin/panel",
        "/public/%2e%2e/admin/panel",
        "//admin/panel",
    ] {
        let (status, _) = get(&alice, &format!("{site}{sneaky}"), &[]).await;
        assert_ne!(status, 200, "{sneaky}");
    }

    // Backoffice requests use backofficeAuthorization (users && clientType == 'cms'); the Nginx
    // location states both, whatever the client sends.
    assert_eq!(
        get(&alice, &format!("{site}/backoffice/x"), &[]).await.0,
        200
    );
    let denial = [("isbackoffice", "false"), ("client-type", "web")];
    assert_eq!(
        get(&alice, &format!("{site}/backoffice/x"), &denial)
            .await
            .0,
        200
    );
    let claim = [("isbackoffice", "true"), ("client-type", "cms")];
    assert_eq!(
        get(&alice, &format!("{site}/backoffice/web/x"), &claim)
            .await
            .0,
        403,
        "the location's client type is web"
    );

    // Made an admin through the CLI, she gets in after her next login.
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let id = stack.idgate.first_user_id();
    let (code, _, err) = idgate_cmd(&[
        "users",
        "set-groups",
        "--config",
        &config,
        &id,
        "users",
        "admin",
    ]);
    assert_eq!(code, 0, "{err}");
    let again = Browser::new();
    assert_eq!(login(&stack, &again, "/", "alice").await.status(), 200);
    let (status, body) = get(&again, &format!("{site}/admin/panel"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body)["miausergroups"], "users,admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_rule_replaces_the_route_table() {
    // example-site.conf's /reports/ location states `groups.auditors` itself.
    let stack = Stack::start_with(mia_auth_setup());
    let site = stack.site();
    let bob = Browser::new();
    assert_eq!(login(&stack, &bob, "/", "bob").await.status(), 200);
    // The route table would let any session into /reports/ (rule "/": true); the location says no.
    assert_eq!(get(&bob, &format!("{site}/reports/q1"), &[]).await.0, 403);
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let id = stack.idgate.first_user_id();
    idgate_cmd(&["users", "set-groups", "--config", &config, &id, "auditors"]);
    let again = Browser::new();
    assert_eq!(login(&stack, &again, "/", "bob").await.status(), 200);
    assert_eq!(get(&again, &format!("{site}/reports/q1"), &[]).await.0, 200);
    // An anonymous browser is still sent to log in there.
    let resp = Browser::new().navigate(&format!("{site}/reports/q1")).await;
    assert_eq!(resp.status(), 302);
    assert!(location(&resp).starts_with("/authorize?"));
}

#[test]
fn a_rule_that_does_not_parse_stops_startup_naming_the_route() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("auth.json"),
        r#"{"/admin/": {"GET": {"authorization": {"expression": "groups.admin && (", "public": false}}}}"#,
    )
    .unwrap();
    let config = config_toml(
        &Setup {
            extra: "mia_auth = \"auth.json\"",
            ..Setup::default()
        },
        dir.path(),
        "http://127.0.0.1:8080",
        "http://127.0.0.1:1",
    );
    let path = dir.path().join("idgate.toml");
    std::fs::write(&path, config).unwrap();
    let (code, _, err) = idgate_cmd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 78);
    assert!(
        err.contains("/admin/") && err.contains("GET") && err.contains("column 18"),
        "{err}"
    );
    let (code, _, err) = idgate_cmd(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 78, "serve refuses to start too: {err}");
}
