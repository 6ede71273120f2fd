//! Route rules end to end, through real Nginx with the shipped snippets: a Mia `auth.json`
//! (committed fixture, original format) decides who reaches which route; a location's own rule
//! replaces it. Path tricks are sent as raw request lines (HTTP clients normalise paths before
//! sending, which would hide what is tested), and hostile rules must leave the daemon running.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::io::{Read, Write};
use std::time::Duration;

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
    // Path tricks do not get around the prefix rule. Sent as raw request lines: an HTTP client
    // would resolve `..` itself and send `/admin/panel`, hiding what is tested.
    let sid = alice.cookie(&site, "sid").expect("alice's session cookie");
    let port = stack.nginx.port;
    for (sneaky, anonymous, as_alice) in [
        (&b"/public/../admin/panel"[..], 401, 403),
        (b"/public/./../admin/panel", 401, 403),
        (b"/public/x/../../admin/panel", 401, 403),
        (b"/public/%2e%2e/admin/panel", 401, 403),
        (b"//admin/panel", 401, 403),
        (b"/public//../admin/panel", 401, 403),
    ] {
        for (who, cookie, want) in [
            ("anonymous", None, anonymous),
            ("alice", Some(sid.as_str()), as_alice),
        ] {
            let (status, _) = raw_request(port, "GET", sneaky, cookie);
            assert_eq!(
                status,
                want,
                "GET {} as {who}",
                String::from_utf8_lossy(sneaky)
            );
        }
    }
    // The same resolution lets through what it should: `/admin/../public/page` is public.
    for cookie in [None, Some(sid.as_str())] {
        assert_eq!(
            raw_request(port, "GET", b"/admin/../public/page", cookie).0,
            200
        );
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
    // Reached by a raw path that only resolves to it, the location still decides.
    let sid = bob.cookie(&site, "sid").expect("bob's session cookie");
    for sneaky in [
        &b"/public/../reports/q1"[..],
        b"//reports/q1",
        b"/x/./../reports/q1",
    ] {
        let shown = String::from_utf8_lossy(sneaky);
        assert_eq!(
            raw_request(stack.nginx.port, "GET", sneaky, None).0,
            401,
            "{shown}"
        );
        assert_eq!(
            raw_request(stack.nginx.port, "GET", sneaky, Some(&sid)).0,
            403,
            "{shown}"
        );
    }
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

/// Sends `method target HTTP/1.1` to `port` byte for byte, with the session cookie `sid` when
/// given; returns the status and the body (lossily decoded).
fn raw_request(port: u16, method: &str, target: &[u8], sid: Option<&str>) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(
        b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n",
    );
    if let Some(sid) = sid {
        write!(req, "Cookie: sid={sid}\r\n").unwrap();
    }
    if method == "POST" {
        req.extend_from_slice(b"Content-Length: 0\r\n");
    }
    req.extend_from_slice(b"\r\n");
    stream.write_all(&req).unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn rules_setup(fixture_name: &str, nginx_locations: String) -> Setup {
    let line = format!("mia_auth = \"{}\"", fixture(fixture_name).display());
    Setup {
        extra: Box::leak(line.into_boxed_str()),
        nginx_locations,
        ..Setup::default()
    }
}

#[test]
fn rules_match_what_the_upstream_serves_byte_for_byte_through_nginx() {
    // tests/fixtures/rules/auth.json: `/` any session, `/admin/` admins, `/public/` public for
    // GET, `/api/reports/` GET for `reports` under a permissive `/api/`, `/caf%C3%A9/` admins.
    let stack = Stack::start_with(rules_setup("rules/auth.json", String::new()));
    let port = stack.nginx.port;
    let user = mint(&stack.idgate, "ursula", "users");
    let admin = mint(&stack.idgate, "ada", "users,admin,reports");
    // (method, raw target, anonymous, user, admin)
    let table: &[(&str, &[u8], u16, u16, u16)] = &[
        // What should pass does.
        ("GET", b"/anything", 401, 200, 200),
        ("GET", b"/public/page", 200, 200, 200),
        ("GET", b"/admin/panel", 401, 403, 200),
        ("POST", b"/api/other", 401, 200, 200),
        ("GET", b"/api/reports/q1", 401, 403, 200),
        // `/admin/` covers `/admin`.
        ("GET", b"/admin", 401, 403, 200),
        ("GET", b"/admin?x=1", 401, 403, 200),
        // Percent-encoded characters compare decoded, in the request and in the rule.
        ("GET", b"/%61dmin/panel", 401, 403, 200),
        ("GET", b"/caf%C3%A9/menu", 401, 403, 200),
        ("GET", b"/caf%c3%a9", 401, 403, 200),
        // `;` path parameters, raw or encoded: refused for everyone.
        ("GET", b"/admin;x/panel", 401, 403, 403),
        ("GET", b"/admin%3Bx/panel", 401, 403, 403),
        ("GET", b"/public/..;/admin/panel", 401, 403, 403),
        ("GET", b"/public/page;jsessionid=1", 401, 403, 403),
        // Dot segments that are dots only once decoded: refused.
        ("GET", b"/public/%2e%2e/admin/panel", 401, 403, 403),
        ("GET", b"/public/.%2E/admin/panel", 401, 403, 403),
        // A fragment in the request line (the upstream receives it verbatim): refused.
        ("GET", b"/public/page#/../../admin/panel", 401, 403, 403),
        // Plain dot segments are resolved, as Nginx and the upstream resolve them.
        ("GET", b"/public/../admin/panel", 401, 403, 200),
        // A method the deciding path has no rule for does not fall back to `/api/`'s rule…
        ("POST", b"/api/reports/q1", 401, 403, 403),
        // …nor to `/`'s.
        ("POST", b"/public/page", 401, 403, 403),
    ];
    let mut failures = Vec::new();
    for (method, target, anonymous, as_user, as_admin) in table {
        for (who, sid, want) in [
            ("anonymous", None, anonymous),
            ("user", Some(user.as_str()), as_user),
            ("admin", Some(admin.as_str()), as_admin),
        ] {
            let (status, _) = raw_request(port, method, target, sid);
            if status != *want {
                failures.push(format!(
                    "{method} {} as {who}: {status}, want {want}",
                    String::from_utf8_lossy(target)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The refusals are logged, the path escaped.
    stack
        .idgate
        .proc
        .wait_log(&["request path refused", "/admin;x/panel"]);
}

// Nginx passes raw bytes above 0x7F on in `$request_uri`; idgate's `/auth` reads the
// `Original-Request-Uri` header with `HeaderValue::to_str`, which refuses them, and then decides
// on `/` instead (src/routes/auth.rs, `original_uri`): any session opens `/admin/é`. The fix
// belongs there (read the header's bytes as UTF-8; refuse the request when they are not), and
// `policy::decide` already matches the decoded `/admin/é` against `/admin/`.
#[test]
fn raw_non_ascii_bytes_in_the_path_are_matched_not_replaced_by_root() {
    let stack = Stack::start_with(rules_setup("rules/auth.json", String::new()));
    let port = stack.nginx.port;
    let user = mint(&stack.idgate, "ursula", "users");
    let admin = mint(&stack.idgate, "ada", "users,admin");
    for (target, as_user, as_admin) in [
        (&b"/admin/\xc3\xa9"[..], 403, 200),
        (b"/caf\xc3\xa9/menu", 403, 200),
        (b"/admin/\xff", 403, 403),
    ] {
        let shown = String::from_utf8_lossy(target);
        assert_eq!(
            raw_request(port, "GET", target, Some(&user)).0,
            as_user,
            "{shown}"
        );
        assert_eq!(
            raw_request(port, "GET", target, Some(&admin)).0,
            as_admin,
            "{shown}"
        );
    }
}

#[test]
fn a_location_rule_written_in_quotes_works_and_a_hostile_one_is_refused() {
    let snippet = repo().join("nginx/idgate-protect-rule.conf");
    let location = |prefix: &str, rule: &str| {
        format!(
            "    location {prefix} {{\n        auth_request \"/_idgate/auth/{rule}\";\n        \
             include {};\n        proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n",
            snippet.display()
        )
    };
    let locations = [
        location(
            "/quoted/",
            "groups.auditors || ('x' in groups && !groups[\\\"y\\\"])",
        ),
        // Within Nginx's limit on a directive's parameter, past idgate's nesting limit.
        location("/deep/", &format!("{}true", "(".repeat(2000))),
        location("/nots/", &format!("{}true", "!".repeat(2000))),
    ]
    .concat();
    let stack = Stack::start_with(rules_setup("mia/auth.json", locations));
    let port = stack.nginx.port;
    let auditor = mint(&stack.idgate, "audrey", "users,auditors");
    let x = mint(&stack.idgate, "xavier", "users,x");
    let xy = mint(&stack.idgate, "yann", "users,x,y");
    let plain = mint(&stack.idgate, "paul", "users");
    for (sid, want) in [
        (Some(auditor.as_str()), 200),
        (Some(x.as_str()), 200),
        (Some(xy.as_str()), 403),
        (Some(plain.as_str()), 403),
        (None, 401),
    ] {
        assert_eq!(
            raw_request(port, "GET", b"/quoted/page", sid).0,
            want,
            "{sid:?}"
        );
    }
    // The route table would let any session in (`/`: true); the hostile rules refuse.
    for target in [&b"/deep/x"[..], b"/nots/x"] {
        assert_eq!(raw_request(port, "GET", target, Some(&auditor)).0, 403);
    }
    stack
        .idgate
        .proc
        .wait_log(&["does not parse", "nested deeper than 32"]);
    assert_eq!(raw_request(port, "GET", b"/anything", Some(&plain)).0, 200);
}

#[test]
fn a_hundred_thousand_parentheses_do_not_stop_the_daemon() {
    let (_dir, mut idgate) = start_idgate_alone(Setup::default());
    let port = idgate.addr.port();
    // Past the request-head limit (64 KiB) and hyper's URI limit: refused before any parsing.
    for rule in ["(".repeat(100_000), "!".repeat(100_000)] {
        let target = format!("/auth/{rule}");
        let status = raw_request(port, "GET", target.as_bytes(), None).0;
        assert!(status == 414 || status == 431, "{status}");
    }
    // Past idgate's path limit (8 KiB): refused before dispatch (400).
    for rule in ["(".repeat(60_000), "!".repeat(60_000), "%28".repeat(20_000)] {
        let target = format!("/auth/{rule}");
        let (status, _) = raw_request(port, "GET", target.as_bytes(), None);
        assert_eq!(status, 400, "{}…", &rule[..12]);
    }
    // Within it: the rule reaches the expression parser, which refuses it.
    for rule in [
        "(".repeat(8_000),
        "!".repeat(8_000),
        "%21".repeat(2_000),
        format!("{}true", "true%20&&%20".repeat(600)),
    ] {
        let target = format!("/auth/{rule}");
        let (status, _) = raw_request(port, "GET", target.as_bytes(), None);
        assert_eq!(status, 403, "{}…", &rule[..12]);
    }
    assert_eq!(raw_request(port, "GET", b"/-/healthz", None).0, 200);
    assert!(idgate.proc.is_running());
    idgate.proc.wait_log(&["longer than 4096 bytes"]);
}

#[test]
fn route_paths_that_cannot_be_matched_safely_stop_startup_naming_them() {
    let check = |extra: &'static str| {
        let dir = tempfile::tempdir().unwrap();
        let config = config_toml(
            &Setup {
                extra,
                ..Setup::default()
            },
            dir.path(),
            "http://127.0.0.1:8080",
            "http://127.0.0.1:1",
        );
        let path = dir.path().join("idgate.toml");
        std::fs::write(&path, config).unwrap();
        idgate_cmd(&["check-config", "--config", path.to_str().unwrap()])
    };
    let (code, _, err) =
        check("[[authorization.routes]]\npath = \"/admin;v=1/\"\nexpression = \"groups.admin\"\n");
    assert_eq!(code, 78);
    assert!(err.contains("`/admin;v=1/`"), "{err}");
    // `case_insensitive` reaches the table: two spellings become one route.
    let twice = "[authorization]\ncase_insensitive = true\n\
                 [[authorization.routes]]\npath = \"/Admin/\"\nexpression = \"true\"\n\
                 [[authorization.routes]]\npath = \"/admin/\"\nexpression = \"groups.admin\"\n";
    let (code, _, err) = check(twice);
    assert_eq!(code, 78);
    assert!(
        err.contains("`/Admin/`") && err.contains("case_insensitive"),
        "{err}"
    );
    let (code, _, err) = check(Box::leak(
        twice
            .replace("case_insensitive = true", "case_insensitive = false")
            .into_boxed_str(),
    ));
    assert_eq!(code, 0, "{err}");
    // An expression past the limits, in the TOML: refused at startup, the limit named.
    let (code, _, err) = check(Box::leak(
        format!(
            "[[authorization.routes]]\npath = \"/x/\"\nexpression = \"{}true\"\n",
            "!".repeat(40)
        )
        .into_boxed_str(),
    ));
    assert_eq!(code, 78);
    assert!(
        err.contains("column 33") && err.contains("32 levels"),
        "{err}"
    );
}

/// Mia's documented semantics of `auth.json`, through Nginx: a public route still evaluates its
/// expression (anonymous requests with no groups, the client type of a valid API key); a method
/// entry with only a backoffice block refuses frontend requests; lenient mode passes a session's
/// request on a route no rule covers to the upstream marked `mia-allowed: 0`, which the snippet
/// forwards in place of whatever the client sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_rules_evaluate_their_expression_and_lenient_mode_passes_unchecked() {
    const BAR_KEY: &str = "bar-key-5d1c0e7a9b3f42e6";
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    std::fs::write(
        &auth,
        r#"{
  "/app/": {"ALL": {"authorization": {"expression": "groups.users", "public": false}}},
  "/open/": {"GET": {"authorization": {"expression": "true", "public": true}}},
  "/closed/": {"GET": {"authorization": {"expression": "false", "public": true}}},
  "/partners/": {"GET": {"authorization": {"expression": "groups.foo || clientType == 'bar'", "public": true}}},
  "/cms-only/": {"ALL": {"backofficeAuthorization": {"expression": "true", "public": false}}}
}"#,
    )
    .unwrap();
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(BAR_KEY.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let extra = format!(
        "mia_auth = \"{}\"\n[authorization]\nstrict = false\n\
         [[api_keys]]\nclient_type = \"bar\"\nkey_sha256 = \"{sha}\"\n",
        auth.display()
    );
    let stack = Stack::start_with(Setup {
        extra: Box::leak(extra.into_boxed_str()),
        ..Setup::default()
    });
    let site = stack.site();
    let url = |p: &str| format!("{site}{p}");
    let anonymous = Browser::new();
    let alice = Browser::new();
    // alice logs in through a route the rules open to her (`users`, the default group).
    assert_eq!(login(&stack, &alice, "/app/", "alice").await.status(), 200);

    // Public and `true`: everyone, and the upstream is told the rules allowed it.
    let (status, body) = get(&anonymous, &url("/open/x"), &[("mia-allowed", "0")]).await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body)["mia-allowed"], "1");
    // Public but `false`: refused, anonymous (401) and with a session (403).
    assert_eq!(get(&anonymous, &url("/closed/x"), &[]).await.0, 401);
    assert_eq!(get(&alice, &url("/closed/x"), &[]).await.0, 403);
    // Public, `groups.foo || clientType == 'bar'`: the `bar` key opens it, a session without
    // `foo` does not.
    assert_eq!(get(&anonymous, &url("/partners/x"), &[]).await.0, 401);
    assert_eq!(
        get(&anonymous, &url("/partners/x"), &[("client-key", BAR_KEY)])
            .await
            .0,
        200
    );
    assert_eq!(get(&alice, &url("/partners/x"), &[]).await.0, 403);
    assert_eq!(
        get(&alice, &url("/partners/x"), &[("secret", BAR_KEY)])
            .await
            .0,
        200
    );
    // A client's own client type counts for nothing.
    assert_eq!(
        get(&anonymous, &url("/partners/x"), &[("client-type", "bar")])
            .await
            .0,
        401
    );
    // Only a backoffice block, asked from a frontend location: refused.
    assert_eq!(get(&alice, &url("/cms-only/x"), &[]).await.0, 403);
    assert_eq!(get(&anonymous, &url("/cms-only/x"), &[]).await.0, 401);

    // Lenient mode, a route no rule covers: a session passes, marked unchecked, with its
    // identity; the client's `mia-allowed: 1` is replaced. Anonymous still has to log in.
    let (status, body) = get(&alice, &url("/elsewhere"), &[("mia-allowed", "1")]).await;
    assert_eq!(status, 200);
    let seen = echoed(&body);
    assert_eq!(seen["mia-allowed"], "0");
    assert!(!seen["miauserid"].is_empty(), "{seen:?}");
    assert_eq!(get(&anonymous, &url("/elsewhere"), &[]).await.0, 401);
    // A covered route the session may use: allowed, `mia-allowed: 1`.
    let (status, body) = get(&alice, &url("/app/x"), &[("mia-allowed", "0")]).await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body)["mia-allowed"], "1");
}
