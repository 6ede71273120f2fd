//! Faults injected under load. Each test runs three idgate instances behind one Nginx, on a
//! shared Redis and a MongoDB users collection (which also keeps the durable copy of every
//! session), logs a few users in through the real IdP, and drives a steady open-loop load of
//! their requests through Nginx (`common::load`: a stall shows up as latency and errors, not as
//! a slower loop) while it breaks one thing: Redis restarts empty, Sentinel fails over, MongoDB
//! goes away, the IdP hangs, the instances restart one by one, the rules change under a SIGHUP.
//! Every test prints its load's figures (sent, failed, 401s, 5xx, p50/p99) and asserts what
//! users may see. docs/operations.md, "Failure modes", has one row per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::load::{Load, Report, Target};
use common::mongo::Mongo;
use common::redis::{RedisServer, SentinelSetup};
use common::*;

/// Requests a second, through Nginx, over all the logged-in users.
const RATE: u32 = 100;
/// Users logged in before each fault.
const USERS: usize = 6;
/// Instances behind Nginx.
const INSTANCES: usize = 3;

/// A Redis store at `redis_url` (`mode` standalone or sentinel) and the MongoDB users
/// collection, plus `extra_*` lines.
fn setup(store: String, mongo: &Mongo) -> Setup {
    Setup {
        store: Some(store),
        users: Some(format!(
            "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"idgate\"\ncollection = \"users\"",
            mongo.uri()
        )),
        ..Setup::default()
    }
}

fn standalone(redis: &RedisServer) -> String {
    format!(
        "[store]\nkind = \"redis\"\nurls = [\"{}\"]\nscope = \"faults\"",
        redis.url()
    )
}

/// The logged-in users: their browsers and session tokens.
struct Users {
    browsers: Vec<Browser>,
    tokens: Vec<String>,
    targets: Vec<Target>,
}

impl Users {
    /// Logs `USERS` users in through Nginx; each one's requests go to `/load/<n>`.
    async fn log_in(fleet: &Fleet) -> Self {
        let site = fleet.site();
        let mut users = Users {
            browsers: Vec::new(),
            tokens: Vec::new(),
            targets: Vec::new(),
        };
        for n in 0..USERS {
            let browser = fleet.login(&format!("user{n}")).await;
            users.tokens.push(browser.cookie(&site, "sid").unwrap());
            users.targets.push(Target {
                url: format!("{site}/load/{n}"),
                cookie: fleet.cookie_header(&browser),
            });
            users.browsers.push(browser);
        }
        users
    }

    /// The first user logs out through Nginx.
    async fn log_out_first(&self, fleet: &Fleet) {
        let resp = self.browsers[0]
            .client
            .post(format!("{}/logout", fleet.site()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// Every user's session is accepted by every instance.
    async fn assert_all_alive(&self, fleet: &Fleet, when: &str) {
        for (i, instance) in fleet.all().into_iter().enumerate() {
            for (n, token) in self.tokens.iter().enumerate() {
                assert_eq!(
                    auth_status(instance, token).await,
                    200,
                    "{when}: instance {i} refuses user{n}'s session"
                );
            }
        }
    }
}

/// Runs a blocking harness step (stopping or starting a process) without stalling the
/// runtime's worker that also drives the load.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn print(report: &Report, label: &str) {
    eprintln!("FAULT {}", report.summary(label));
}

/// Waits until `/auth` answers 401 for `token` on every instance; fails after `within`.
async fn refused_everywhere(fleet: &Fleet, token: &str, within: Duration) -> Duration {
    let start = Instant::now();
    for (i, instance) in fleet.all().into_iter().enumerate() {
        loop {
            let status = auth_status(instance, token).await;
            if status == 401 {
                break;
            }
            assert!(
                start.elapsed() < within,
                "instance {i} still answers {status} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_loses_no_session() {
    let tmp = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let fleet = Fleet::start(setup(standalone(&redis), &mongo), INSTANCES);
    let users = Users::log_in(&fleet).await;
    let sessions_before = redis.cli(&["KEYS", "faults:session:*"]).lines().count();
    assert!(sessions_before >= USERS, "every session is in Redis");

    let load = Load::start(RATE, users.targets.clone());
    load.until(Duration::from_secs(2)).await;
    let fault = load.elapsed();
    blocking(|| {
        redis.stop();
        redis.restart();
    });
    assert_eq!(redis.cli(&["DBSIZE"]).trim(), "0", "Redis came back empty");
    let back = load.elapsed();
    load.until(back + Duration::from_secs(4)).await;
    let report = load.stop().await;
    print(&report, "redis restarted empty");
    print(
        &report.window(fault, back + Duration::from_secs(1)),
        "  during the restart",
    );
    // The sessions were verified before: the instances answer from their caches while Redis
    // is away (well within `outage_grace`, 30 s), and from the store again after.
    report.assert_all_ok("redis restarted empty", &fleet.nginx_errors());

    // Zero sessions lost: with every cache emptied (a reload), each instance must find each
    // session again in Redis — restored from the MongoDB copy, since Redis lost them all.
    blocking(|| fleet.all().iter().for_each(|i| i.reload()));
    users.assert_all_alive(&fleet, "after the restart").await;
    let restored = redis.cli(&["KEYS", "faults:session:*"]).lines().count();
    assert!(
        restored >= USERS,
        "the sessions are back in Redis: {restored}"
    );
    // And the next logout still reaches every instance.
    users.log_out_first(&fleet).await;
    refused_everywhere(&fleet, &users.tokens[0], Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_refuses_no_live_session_and_logout_still_reaches_everyone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sentinel = SentinelSetup::start(tmp.path());
    let mongo = Mongo::start();
    let store = format!(
        "[store]\nkind = \"redis\"\nmode = \"sentinel\"\nmaster_name = \"mymaster\"\nurls = [\"{}\"]\nscope = \"faults\"",
        sentinel.url()
    );
    let fleet = Fleet::start(setup(store, &mongo), INSTANCES);
    let users = Users::log_in(&fleet).await;
    let replica_port = sentinel.replica.port;
    wait_for(
        "the replica to hold the sessions",
        Duration::from_secs(20),
        || {
            (sentinel
                .replica
                .cli(&["KEYS", "faults:session:*"])
                .lines()
                .count()
                >= USERS)
                .then_some(())
        },
    );
    // Every instance has seen every session before the fault: a session an instance has never
    // seen cannot be confirmed while there is no master, and is refused (fail closed); what
    // must hold is that no session already seen is.
    users.assert_all_alive(&fleet, "before the failover").await;

    let load = Load::start(RATE, users.targets.clone());
    load.until(Duration::from_secs(2)).await;
    let fault = load.elapsed();
    blocking(|| sentinel.master.kill());
    blocking(|| {
        wait_for(
            "the sentinel to promote the replica",
            Duration::from_secs(60),
            || (sentinel.current_master_port() == Some(replica_port)).then_some(()),
        )
    });
    let promoted = load.elapsed();
    eprintln!("FAULT sentinel: master killed at {fault:?}, replica promoted at {promoted:?}");
    load.until(promoted + Duration::from_secs(4)).await;
    let report = load.stop().await;
    print(&report, "sentinel failover");
    print(&report.window(fault, promoted), "  until the promotion");
    assert_eq!(
        report.count(401),
        0,
        "{}",
        report.summary("sentinel failover")
    );
    report.assert_all_ok("sentinel failover", &fleet.nginx_errors());

    // Logout after the failover: written to the new master, heard by every instance.
    users.log_out_first(&fleet).await;
    let took = refused_everywhere(&fleet, &users.tokens[0], Duration::from_secs(1)).await;
    eprintln!("FAULT sentinel: logout refused on every instance after {took:?}");
    for token in &users.tokens[1..] {
        assert_eq!(auth_status(&fleet.stack.idgate, token).await, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_down_leaves_auth_alone_refuses_logins_clearly_and_half_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let storage = std::fs::canonicalize(tmp.path()).unwrap().join("mongo");
    let mongo_port = free_port();
    let mut mongo = Some(Mongo::start_in(&storage, mongo_port));
    let fleet = Fleet::start(
        setup(standalone(&redis), mongo.as_ref().unwrap()),
        INSTANCES,
    );
    let users = Users::log_in(&fleet).await;
    let site = fleet.site();
    let sessions_before = redis.cli(&["KEYS", "faults:session:*"]).lines().count();

    let load = Load::start(RATE, users.targets.clone());
    load.until(Duration::from_secs(2)).await;
    let fault = load.elapsed();
    blocking(|| {
        mongo.take().unwrap().proc.terminate();
    });

    // A login while the users collection is down: a clear 503 naming it.
    let newcomer = Browser::new();
    let resp = newcomer.navigate(&format!("{site}/")).await;
    assert_eq!(resp.status(), 302);
    let resp = newcomer
        .navigate(&format!("{site}{}", location(&resp)))
        .await;
    assert_eq!(resp.status(), 302);
    let callback = newcomer
        .login_at_idp(&location(&resp), "newcomer", &format!("{site}/web-login/"))
        .await;
    let asked = Instant::now();
    let resp = newcomer.exchange(&site, &callback).await;
    let answered_in = asked.elapsed();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("users store (mongodb) is unavailable"),
        "names the users store: {body}"
    );
    assert!(!message.contains("mongodb://"), "no URL: {body}");
    eprintln!("FAULT mongodb down: the login answered 503 in {answered_in:?}: {message}");

    // Down for 10 s, then back with its data.
    load.until(fault + Duration::from_secs(10)).await;
    let back = load.elapsed();
    blocking(|| mongo = Some(Mongo::start_in(&storage, mongo_port)));
    load.until(load.elapsed() + Duration::from_secs(2)).await;
    let report = load.stop().await;
    print(&report, "mongodb down 10 s");
    print(&report.window(fault, back), "  while down");
    report.assert_all_ok("mongodb down", &fleet.nginx_errors());

    // Nothing half-written: no user and no session for the refused login.
    let mongo = mongo.unwrap();
    let users_coll = mongo
        .client()
        .await
        .database("idgate")
        .collection::<mongodb::bson::Document>("users");
    let newcomers = users_coll
        .count_documents(mongodb::bson::doc! {"providerUserId": "newcomer"})
        .await
        .unwrap();
    assert_eq!(newcomers, 0, "no user written for the refused login");
    assert_eq!(
        redis.cli(&["KEYS", "faults:session:*"]).lines().count(),
        sessions_before,
        "no session written for the refused login"
    );
    users
        .assert_all_alive(&fleet, "after MongoDB is back")
        .await;
    // And the same person logs in now, once.
    let again = fleet.login("newcomer").await;
    assert!(again.cookie(&site, "sid").is_some());
    assert_eq!(
        users_coll
            .count_documents(mongodb::bson::doc! {"providerUserId": "newcomer"})
            .await
            .unwrap(),
        1
    );
}

/// Threads of a process (`Threads:` of /proc/PID/status).
fn threads(proc: &Proc) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proc.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Each instance's `idgate_runtime_tasks` (tasks alive in its async runtime).
async fn runtime_tasks(fleet: &Fleet) -> Vec<u64> {
    let mut out = Vec::new();
    for instance in fleet.all() {
        out.push(metric(instance, "idgate_runtime_tasks").await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_idp_leaves_auth_alone_and_logins_fail_within_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let fleet = Fleet::start(
        Setup {
            extra_provider: "timeout = \"2s\"",
            ..setup(standalone(&redis), &mongo)
        },
        INSTANCES,
    );
    let users = Users::log_in(&fleet).await;
    let site = fleet.site();
    // A login that has been to the IdP and comes back while the IdP hangs.
    let late = Browser::new();
    let resp = late.navigate(&format!("{site}/")).await;
    let resp = late.navigate(&format!("{site}{}", location(&resp))).await;
    let callback = late
        .login_at_idp(&location(&resp), "late", &format!("{site}/web-login/"))
        .await;
    let fds_before: Vec<usize> = fleet.all().iter().map(|i| i.proc.open_fds()).collect();
    let threads_before: Vec<usize> = fleet.all().iter().map(|i| threads(&i.proc)).collect();
    let tasks_before = runtime_tasks(&fleet).await;

    let load = Load::start(RATE, users.targets.clone());
    load.until(Duration::from_secs(2)).await;
    let fault = load.elapsed();
    // Stopped, the IdP's process still has its listening socket: connections are accepted by
    // the kernel and never answered.
    fleet.stack.idp.proc.signal("STOP");
    let asked = Instant::now();
    let resp = late.exchange(&site, &callback).await;
    let answered_in = asked.elapsed();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    eprintln!("FAULT idp hangs: the login answered {status} in {answered_in:?}: {body}");
    assert_eq!(status, 504, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("identity provider did not answer in time"),
        "says the IdP did not answer in time: {body}"
    );
    // The provider's timeout (2 s) bounds it, not the client's patience (the load's 10 s).
    assert!(
        answered_in < common::load::REQUEST_TIMEOUT,
        "{answered_in:?}"
    );
    // A new login started on each instance answers too (a redirect to the IdP when its
    // discovery is cached, else a page saying the IdP does not answer), never hangs.
    let start = location(&Browser::new().navigate(&format!("{site}/")).await);
    for (i, instance) in fleet.all().into_iter().enumerate() {
        let resp = Browser::new().navigate(&instance.url(&start)).await;
        let status = resp.status().as_u16();
        let html = resp
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        let text = resp.text().await.unwrap();
        assert!(
            status == 302
                || (status == 504 && html && text.contains("The sign-in service is not answering")),
            "instance {i}: {status} {text}"
        );
    }
    load.until(fault + Duration::from_secs(6)).await;
    fleet.stack.idp.proc.signal("CONT");
    let back = load.elapsed();
    load.until(back + Duration::from_secs(2)).await;
    let report = load.stop().await;
    print(&report, "idp hangs");
    print(&report.window(fault, back), "  while it hangs");
    report.assert_all_ok("idp hangs", &fleet.nginx_errors());

    // Logins work again, and nothing was left behind: the connections to the hung IdP and
    // the tasks waiting on them are gone.
    fleet.login("after-the-hang").await;
    let fds_after: Vec<usize> = fleet.all().iter().map(|i| i.proc.open_fds()).collect();
    let threads_after: Vec<usize> = fleet.all().iter().map(|i| threads(&i.proc)).collect();
    let tasks_after = runtime_tasks(&fleet).await;
    eprintln!("FAULT idp hangs: fds {fds_before:?} -> {fds_after:?}, threads {threads_before:?} -> {threads_after:?}, tasks {tasks_before:?} -> {tasks_after:?}");
    let idp_port = reqwest::Url::parse(&fleet.stack.idp.issuer)
        .unwrap()
        .port()
        .unwrap();
    let idp_connections: Vec<usize> = fleet
        .all()
        .iter()
        .map(|i| i.proc.connections_to(idp_port))
        .collect();
    eprintln!("FAULT idp hangs: connections to the IdP after it {idp_connections:?}");
    for i in 0..INSTANCES {
        // The login after the hang may keep one or two pooled connections; the ones opened
        // while the IdP hung must be gone.
        assert!(
            idp_connections[i] <= 2,
            "instance {i} still holds connections to the IdP: {idp_connections:?}"
        );
        // Nginx keeps up to `keepalive 64` idle connections to each instance after a load.
        assert!(
            fds_after[i] <= fds_before[i] + 64 + 2,
            "instance {i} holds more descriptors: {fds_before:?} -> {fds_after:?}"
        );
        assert_eq!(
            threads_after[i], threads_before[i],
            "instance {i}'s threads"
        );
        // Connections Nginx keeps open are tasks too: a few more or fewer is their churn.
        assert!(
            tasks_after[i] <= tasks_before[i] + 8,
            "instance {i} has more tasks alive: {tasks_before:?} -> {tasks_after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_fails_no_request_and_loses_no_session() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let mut fleet = Fleet::start(setup(standalone(&redis), &mongo), INSTANCES);
    let users = Users::log_in(&fleet).await;

    let load = Load::start(RATE, users.targets.clone());
    load.until(Duration::from_secs(1)).await;
    let fault = load.elapsed();
    for i in 0..INSTANCES {
        blocking(|| fleet.instance_mut(i).restart());
        load.until(load.elapsed() + Duration::from_secs(1)).await;
    }
    let done = load.elapsed();
    load.until(done + Duration::from_secs(1)).await;
    let report = load.stop().await;
    print(&report, "rolling restart");
    print(&report.window(fault, done), "  during the restarts");
    // Every request got its page: no error, no redirect to a login (let alone a loop).
    report.assert_all_ok("rolling restart", &fleet.nginx_errors());
    users
        .assert_all_alive(&fleet, "after the rolling restart")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_with_a_changed_rule_file_fails_no_request_and_applies_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    // Mia's auth.json: `/gated/` open to every session, then to admins only.
    let rules = |gated: &str| {
        let rule = |expression: &str| serde_json::json!({"authorization": {"expression": expression, "public": false}});
        serde_json::json!({
            "/": {"ALL": rule("true")},
            "/load/": {"ALL": rule("true")},
            "/gated/": {"GET": rule(gated)},
        })
        .to_string()
    };
    let fleet = Fleet::start_with_files(
        Setup {
            extra: "mia_auth = \"auth.json\"",
            ..setup(standalone(&redis), &mongo)
        },
        INSTANCES,
        &[("auth.json", &rules("true"))],
    );
    let users = Users::log_in(&fleet).await;
    let gated = |n: usize| {
        let client = users.browsers[n].client.clone();
        let url = format!("{}/gated/page", fleet.site());
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    for _ in 0..INSTANCES {
        assert_eq!(gated(0).await, 200, "open before the change");
    }

    let load = Load::start(RATE, users.targets.clone());
    load.until(Duration::from_secs(2)).await;
    let fault = load.elapsed();
    // Each instance's own copy of the rule file changes (as on every VM), then its reload.
    for instance in fleet.all() {
        let file = instance.config.parent().unwrap().join("auth.json");
        std::fs::write(file, rules("groups.admin")).unwrap();
        blocking(|| instance.reload());
    }
    let reloaded = load.elapsed();
    // The next request to each instance, through Nginx (which takes them in turn), is refused.
    for _ in 0..INSTANCES {
        assert_eq!(gated(1).await, 403, "the new rule applies");
    }
    load.until(reloaded + Duration::from_secs(2)).await;
    let report = load.stop().await;
    print(&report, "sighup with a changed rule file");
    print(&report.window(fault, reloaded), "  during the reloads");
    report.assert_all_ok("sighup", &fleet.nginx_errors());
    for instance in fleet.all() {
        assert!(!instance.proc.log_text().contains("reload refused"));
    }
}
