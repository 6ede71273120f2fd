//! Group changes within `[users] refresh_interval`: a change of a logged-in user's groups in the
//! users store — with the CLI on the embedded store, with pymongo straight into MongoDB, through
//! the CRUD service — reaches what the upstream sees without a new login, and the old groups are
//! refused; a user set to a non-`PUBLIC` state loses the session on every instance. Real Nginx, real IdP, real Redis, the
//! real MongoDB-wire server; each delay is printed (`GROUP_REFRESH` lines), and only checked
//! against the configured bound plus slack for a loaded test machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::mongo::Mongo;
use common::redis::RedisServer;
use common::*;

/// The `refresh_interval` these tests configure.
const INTERVAL: Duration = Duration::from_secs(1);

/// What a loaded 2-core machine running debug builds may add to the bound (a round's reads,
/// the scheduler): a change must show within `INTERVAL + SLACK`.
const SLACK: Duration = Duration::from_secs(5);

/// Two routes, one for each group; the rest open to any session.
const RULES: &str = "[authorization]\nstrict = false\n\
    [[authorization.routes]]\npath = \"/team-a/\"\nexpression = \"groups.users\"\n\
    [[authorization.routes]]\npath = \"/team-b/\"\nexpression = \"groups.beta\"\n";

/// Polls `probe` until it answers `true`; returns how long that took after `since`, or fails
/// once `INTERVAL + SLACK` have passed.
async fn within_bound<F, Fut>(what: &str, since: Instant, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if probe().await {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < INTERVAL + SLACK,
            "{what}: not within refresh_interval ({INTERVAL:?}) + {SLACK:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` through Nginx: its status, and what the upstream saw.
async fn through_nginx(
    browser: &Browser,
    site: &str,
    path: &str,
) -> (u16, std::collections::HashMap<String, String>) {
    let resp = browser.navigate(&format!("{site}{path}")).await;
    let status = resp.status().as_u16();
    (status, echoed(&resp.text().await.unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_set_with_the_cli_reach_the_upstream_within_the_interval_without_a_login() {
    let stack = Stack::start_with(Setup {
        extra: RULES,
        users: Some("[users]\nkind = \"embedded\"\nrefresh_interval = \"1s\"".into()),
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "dora").await.status(), 200);
    let id = stack.idgate.first_user_id();
    let (status, echo) = through_nginx(&browser, &site, "/team-a/").await;
    assert_eq!(status, 200);
    assert_eq!(echo["miausergroups"], "users");
    assert_eq!(through_nginx(&browser, &site, "/team-b/").await.0, 403);
    let token_before = browser.cookie(&site, "sid").unwrap();

    // The CLI (the real binary) changes the groups in the store while the daemon runs.
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let (code, _, err) = idgate_cmd(&["users", "set-groups", "--config", &config, &id, "beta"]);
    assert_eq!(code, 0, "{err}");
    let changed = Instant::now();

    let delay = within_bound("the upstream sees the new groups", changed, || async {
        let (status, echo) = through_nginx(&browser, &site, "/team-b/").await;
        status == 200 && echo.get("miausergroups").map(String::as_str) == Some("beta")
    })
    .await;
    println!(
        "GROUP_REFRESH embedded store, CLI: the upstream saw the new groups after {} ms (refresh_interval 1s)",
        delay.as_millis()
    );
    let (status, echo) = through_nginx(&browser, &site, "/team-b/").await;
    assert_eq!((status, echo["miauserid"].as_str()), (200, id.as_str()));
    // The old group is refused now.
    assert_eq!(through_nginx(&browser, &site, "/team-a/").await.0, 403);
    // No new login: the same session, its token renewed in place by `/auth`.
    let token_after = browser.cookie(&site, "sid").unwrap();
    assert_ne!(token_after, token_before, "the browser got a renewed token");
    let (before, after) = (jwt_claims(&token_before), jwt_claims(&token_after));
    assert_eq!(before["sid"], after["sid"], "same session");
    // Renewed before its expiry, for the change: the same window, so every instance makes the
    // same token.
    assert_eq!(
        (&before["iat"], &before["exp"]),
        (&after["iat"], &after["exp"])
    );
    assert_ne!(before["ufp"], after["ufp"], "made from the changed record");
    assert_eq!(after["user"]["groups"], serde_json::json!(["beta"]));
    // The old token alone (without the browser's renewal secret, as an API client holds it) is
    // refused as expired: the client refreshes.
    assert_eq!(auth_status(&stack.idgate, &token_before).await, 401);
    assert_eq!(auth_status(&stack.idgate, &token_after).await, 200);
    assert!(
        metric(&stack.idgate, "idgate_user_refresh_changed_total").await >= 1,
        "the change is counted"
    );
}

/// Runs `code` with the project's venv Python and pymongo against `mongo` (the users are in the
/// `idgate` database's `users` collection); `args` follow the URI in `sys.argv`. Returns when
/// the write was acknowledged, as an `Instant` of this process (Python's clock read right after
/// it, carried over), so that a delay counts from the write, not from the interpreter's exit.
fn pymongo(mongo: &Mongo, code: &str, args: &[&str]) -> Instant {
    let python = repo().join("tests/py/.venv/bin/python");
    let script = format!(
        "import sys, time, pymongo\nfrom bson import ObjectId\n\
         users = pymongo.MongoClient(sys.argv[1]).idgate.users\n{code}\nprint(time.time())\n"
    );
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(mongo.uri())
        .args(args)
        .output()
        .expect("the venv's python: run scripts/install-deps");
    assert!(
        out.status.success(),
        "pymongo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    Instant::now() - Duration::from_secs_f64((now - written).max(0.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_written_into_mongodb_reaches_every_instance_and_a_trashed_user_loses_the_session()
{
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let setup = Setup {
        extra: RULES,
        store: Some(format!(
            "[store]\nkind = \"redis\"\nurls = [\"{}\"]\nscope = \"groups\"",
            redis.url()
        )),
        users: Some(format!(
            "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"idgate\"\ncollection = \"users\"\nrefresh_interval = \"1s\"",
            mongo.uri()
        )),
        ..Setup::default()
    };
    let fleet = Fleet::start(setup, 3);
    let site = fleet.site();
    let browser = fleet.login("erin").await;
    let cookies = fleet.cookie_header(&browser);
    let jwt = browser.cookie(&site, "sid").unwrap();
    let id = jwt_claims(&jwt)["sub"].as_str().unwrap().to_owned();

    // `/auth` of one instance, asked directly with the browser's cookies (its session token
    // and renewal secret): the status and the groups it answers with.
    let client = Browser::new().client;
    let ask = |instance: &Idgate| {
        let request = client
            .get(instance.url("/auth"))
            .header("cookie", cookies.clone());
        async move {
            let resp = request.send().await.unwrap();
            let groups = resp
                .headers()
                .get("mia-groups")
                .map(|v| v.to_str().unwrap().to_owned());
            (resp.status().as_u16(), groups)
        }
    };
    for (i, instance) in fleet.all().into_iter().enumerate() {
        assert_eq!(
            ask(instance).await,
            (200, Some("users".to_owned())),
            "instance {i}"
        );
        // Cached there, so only the refresher can tell it of the change.
        served_from_cache(instance, &jwt).await;
    }

    // pymongo, as any other writer of the collection would; three changes, the last back to
    // the first's groups (the same fingerprint again), each made a different time into the
    // instances' rounds (not a wait for anything: the printed delays then sample the interval).
    for (k, groups) in ["beta", "beta,gamma", "beta"].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(350 * k as u64)).await;
        let changed = pymongo(
            &mongo,
            "r = users.update_one({'_id': ObjectId(sys.argv[2])}, {'$set': {'groups': sys.argv[3].split(',')}})\n\
             assert r.modified_count == 1, r.raw_result",
            &[&id, groups],
        );
        let delays = futures_util::future::join_all(fleet.all().into_iter().enumerate().map(
            |(i, instance)| {
                let ask = &ask;
                async move {
                    within_bound(
                        &format!("instance {i} serves the groups {groups}"),
                        changed,
                        || async { ask(instance).await == (200, Some(groups.to_owned())) },
                    )
                    .await
                }
            },
        ))
        .await;
        for (i, delay) in delays.iter().enumerate() {
            println!(
                "GROUP_REFRESH MongoDB written with pymongo, 3 instances: groups {groups}: instance {i} served them after {} ms (refresh_interval 1s)",
                delay.as_millis()
            );
        }
    }
    // Through Nginx, whichever instance answers: the new group passes, the old is refused.
    let (status, echo) = through_nginx(&browser, &site, "/team-b/").await;
    assert_eq!((status, echo["miausergroups"].as_str()), (200, "beta"));
    for _ in 0..3 {
        assert_eq!(through_nginx(&browser, &site, "/team-a/").await.0, 403);
    }

    // The user moved to the trash: every instance refuses the session within the bound.
    let trashed = pymongo(
        &mongo,
        "r = users.update_one({'_id': ObjectId(sys.argv[2])}, {'$set': {'__STATE__': 'TRASH'}})\n\
         assert r.modified_count == 1, r.raw_result",
        &[&id],
    );
    let delays =
        futures_util::future::join_all(fleet.all().into_iter().enumerate().map(|(i, instance)| {
            let ask = &ask;
            async move {
                within_bound(
                    &format!("instance {i} refuses the session"),
                    trashed,
                    || async { ask(instance).await.0 == 401 },
                )
                .await
            }
        }))
        .await;
    for (i, delay) in delays.iter().enumerate() {
        println!(
            "GROUP_REFRESH user set to TRASH: instance {i} refused the session after {} ms",
            delay.as_millis()
        );
    }
    let resp = browser.navigate(&format!("{site}/team-b/")).await;
    assert_eq!(resp.status(), 302, "back to the login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_through_the_crud_service_reaches_the_upstream_and_a_trashed_user_is_refused()
{
    let mongo = Mongo::start();
    let crud = common::mongo::CrudFake::start(&mongo, "crud", "secret:group-key");
    let stack = Stack::start_with(Setup {
        extra: Box::leak(format!("[audit]\npath = \"audit.jsonl\"\n\n{RULES}").into_boxed_str()),
        users: Some(format!(
            "[users]\nkind = \"crud\"\nbase_url = \"{}\"\nheaders = {{ secret = \"group-key\" }}\nrefresh_interval = \"1s\"",
            crud.url
        )),
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "gwen").await.status(), 200);
    let id = jwt_claims(&browser.cookie(&site, "sid").unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(through_nginx(&browser, &site, "/team-a/").await.0, 200);

    // The CRUD service, as the project's console uses it.
    let service = Browser::new().client;
    let resp = service
        .patch(format!("{}/{id}", crud.url))
        .header("secret", "group-key")
        .json(&serde_json::json!({ "$set": { "groups": ["beta"] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let changed = Instant::now();
    let delay = within_bound("the upstream sees the new groups", changed, || async {
        let (status, echo) = through_nginx(&browser, &site, "/team-b/").await;
        status == 200 && echo.get("miausergroups").map(String::as_str) == Some("beta")
    })
    .await;
    println!(
        "GROUP_REFRESH CRUD service: the upstream saw the new groups after {} ms (refresh_interval 1s)",
        delay.as_millis()
    );
    assert_eq!(through_nginx(&browser, &site, "/team-a/").await.0, 403);

    // Moved to the trash through the service: the session ends.
    let resp = service
        .post(format!("{}/{id}/state", crud.url))
        .header("secret", "group-key")
        .json(&serde_json::json!({ "stateTo": "TRASH" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let trashed = Instant::now();
    let delay = within_bound("the session ends", trashed, || async {
        browser.navigate(&format!("{site}/team-b/")).await.status() == 302
    })
    .await;
    println!(
        "GROUP_REFRESH CRUD service, user set to TRASH: the session ended after {} ms",
        delay.as_millis()
    );
    // The audit trail says why it ended: the users store no longer holds the user.
    let audit = stack.dir.path().join("audit.jsonl");
    let revoke = wait_for(
        "the users-store revocation in the audit trail",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&audit)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|e| e["event"] == "revoke")
        },
    );
    assert_eq!(revoke["by"], "users_store", "{revoke}");
    assert_eq!(revoke["user_id"], id.as_str());
}
