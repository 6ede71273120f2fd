//! Login rate limits (`[login_limits]`, see `limits`) through the real Nginx: a flood of logins
//! from one address gets 429s with `Retry-After` once its bucket is spent — no further login
//! reaches the IdP — while a person at another address logs in as usual; one browser's binding
//! is limited from whatever address it comes; the buckets of idgate instances on one Redis are
//! one; and Nginx's own `limit_req` zone, when turned on, stops a flood before idgate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::collections::HashMap;

use common::fleet::Fleet;
use common::redis::RedisServer;
use common::*;

fn limits(per_address: &str, per_binding: &str) -> Option<String> {
    Some(format!(
        "[login_limits]\nper_address = \"{per_address}\"\nper_binding = \"{per_binding}\""
    ))
}

/// The statuses of `n` logins started at `site` by `browser` (as an API client, no cookies
/// kept between them), counted.
async fn start_logins(browser: &Browser, site: &str, n: usize) -> HashMap<u16, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let resp = browser
            .client
            .get(format!(
                "{site}/authorize?appId=web&providerId=dev&redirect=%2F"
            ))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        *seen.entry(resp.status().as_u16()).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_gets_429s_and_a_person_elsewhere_logs_in() {
    let stack = Stack::start_with(Setup {
        login_limits: limits("5/min", "3/min"),
        extra: "[audit]\npath = \"audit.jsonl\"",
        ..Setup::default()
    });
    let site = stack.site();
    let flood = Browser::from_address("127.0.0.1");

    // Five logins start (each a redirect to the IdP); the 25 others never get one.
    let seen = start_logins(&flood, &site, 30).await;
    assert_eq!(seen, HashMap::from([(302, 5), (429, 25)]), "{seen:?}");
    let resp = flood
        .client
        .get(format!("{site}/authorize?appId=web&providerId=dev"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry), "5/min: one every 12 s ({retry})");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("too many login attempts from this address"),
        "{body}"
    );
    // A browser gets a page that says so, in plain words, with the same header.
    let resp = flood
        .navigate(&format!("{site}/authorize?appId=web&providerId=dev"))
        .await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Too many sign-in attempts"), "{html}");

    // Meanwhile a person at another address logs in as usual.
    let person = Browser::from_address("127.0.0.2");
    assert_eq!(
        login(&stack, &person, "/docs/", "alice").await.status(),
        200
    );

    // The flood is told once a minute, not 27 times: one log line, one audit event.
    let log = stack.idgate.log_caught_up().await;
    assert_eq!(log.matches("login rate limit reached").count(), 1, "{log}");
    assert!(metric_text(&stack)
        .await
        .contains("idgate_login_limited_total{bucket=\"address\"} 27"));
    let audit = stack.dir.path().join("audit.jsonl");
    let lines = wait_for("the audit line", std::time::Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        text.contains("rate_limited").then_some(text)
    });
    let limited: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["event"] == "rate_limited")
        .collect();
    assert_eq!(limited.len(), 1, "{lines}");
    assert_eq!(limited[0]["bucket"], "address");
    assert_eq!(limited[0]["endpoint"], "/authorize");
    assert_eq!(limited[0]["client_addr"], "127.0.0.1");
}

async fn metric_text(stack: &Stack) -> String {
    Browser::new()
        .client
        .get(stack.idgate.url("/-/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A token exchange with one browser's login cookie, from `ip`: its status and message.
async fn exchange_from(site: &str, ip: &str, binding: &str) -> (u16, String) {
    let resp = Browser::from_address(ip)
        .client
        .post(format!("{site}/oauth/token"))
        .header("cookie", format!("idgate_login={binding}"))
        .json(&serde_json::json!({"code": "c", "state": "not-a-state"}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_browser_is_limited_from_any_address() {
    let stack = Stack::start_with(Setup {
        login_limits: limits("100/min", "3/min"),
        ..Setup::default()
    });
    let site = stack.site();
    let binding = "b".repeat(43);
    let mut statuses = Vec::new();
    for i in 10..18 {
        let (status, body) = exchange_from(&site, &format!("127.0.0.{i}"), &binding).await;
        if status == 429 {
            assert!(body.contains("from this browser"), "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [400, 400, 400, 429, 429, 429, 429, 429]);
    // Another browser at one of those addresses is not held back by it.
    let (status, _) = exchange_from(&site, "127.0.0.10", &"c".repeat(43)).await;
    assert_eq!(status, 400, "refused for its bad state only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idgate_instances_on_one_redis_share_the_buckets() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let fleet = Fleet::start(
        Setup {
            store: Some(format!(
                "[store]\nkind = \"redis\"\nurls = [\"{}\"]\nscope = \"limits\"",
                redis.url()
            )),
            users: Some("[users]\nkind = \"embedded\"\npath = \"users.db\"".into()),
            login_limits: limits("6/min", "3/min"),
            ..Setup::default()
        },
        2,
    );
    // Straight to each instance in turn (no Nginx: the peer is the client).
    let mut seen: HashMap<u16, usize> = HashMap::new();
    for round in 0..10 {
        let idgate = fleet.all()[round % 2];
        let site = idgate.url("");
        for (status, n) in start_logins(&Browser::new(), &site, 1).await {
            *seen.entry(status).or_insert(0) += n;
        }
    }
    assert_eq!(
        seen,
        HashMap::from([(302, 6), (429, 4)]),
        "six in all, not six each: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_s_zone_stops_a_flood_before_idgate_when_turned_on() {
    let stack = Stack::start_with(Setup {
        nginx_locations: "set $idgate_login_limit \"on\";".into(),
        ..Setup::default()
    });
    let site = stack.site();
    let before = stack
        .idgate
        .log_caught_up()
        .await
        .matches("path=/authorize")
        .count();
    let seen = start_logins(&Browser::new(), &site, 120).await;
    let refused = seen.get(&429).copied().unwrap_or(0);
    assert!(refused > 0, "Nginx refused none: {seen:?}");
    assert_eq!(refused + seen[&302], 120, "{seen:?}");
    // What Nginx refused never reached idgate.
    let reached = stack
        .idgate
        .log_caught_up()
        .await
        .matches("path=/authorize")
        .count()
        - before;
    assert_eq!(reached, seen[&302], "{seen:?}");
    // Off (the default), the same flood reaches idgate whole (its own limits aside).
    let plain = Stack::start();
    let seen = start_logins(&Browser::new(), &plain.site(), 120).await;
    assert_eq!(seen, HashMap::from([(302, 120)]));
}
