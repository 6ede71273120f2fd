//! Scale-out end to end: several idgate processes behind one Nginx `upstream`, sharing Redis
//! (sessions, revocations, idle activity) and MongoDB (users, the durable session copy). Real
//! Redis, real MongoDB-wire server, real Nginx, real IdP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::mongo::Mongo;
use common::redis::RedisServer;
use common::*;

fn setup(redis: &RedisServer, mongo: &Mongo) -> Setup {
    setup_ttl(redis, mongo, "15m")
}

fn setup_ttl(redis: &RedisServer, mongo: &Mongo, access_ttl: &'static str) -> Setup {
    Setup {
        access_ttl,
        store: Some(format!("[store]\nkind = \"redis\"\nurls = [\"{}\"]\nscope = \"scaleout\"", redis.url())),
        users: Some(format!(
            "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"idgate\"\ncollection = \"users\"",
            mongo.uri()
        )),
        ..Setup::default()
    }
}

fn fleet(redis: &RedisServer, mongo: &Mongo, n: usize) -> Fleet {
    Fleet::start(setup(redis, mongo), n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_one_instance_is_valid_on_all_and_a_logout_reaches_all_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let fleet = fleet(&redis, &mongo, 3);
    let site = fleet.stack.site();
    let browser = Browser::new();
    assert_eq!(
        login(&fleet.stack, &browser, "/", "mallory").await.status(),
        200
    );
    let jwt = browser.cookie(&site, "sid").unwrap();

    let all = fleet.all();
    for (i, instance) in all.iter().enumerate() {
        assert_eq!(
            auth_status(instance, &jwt).await,
            200,
            "instance {i} accepts the session"
        );
        // Cached there: the logout below must reach the cache, not only the store.
        served_from_cache(instance, &jwt).await;
    }
    // Nginx spreads requests over the instances; every one of them passes.
    for _ in 0..9 {
        assert_eq!(browser.navigate(&format!("{site}/x")).await.status(), 200);
    }

    // Logout through the second instance.
    let resp = Browser::new()
        .client
        .post(all[1].url("/logout"))
        .header("cookie", format!("sid={jwt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let logged_out = Instant::now();
    for (i, instance) in all.iter().enumerate() {
        loop {
            if auth_status(instance, &jwt).await == 401 {
                break;
            }
            assert!(
                logged_out.elapsed() < Duration::from_secs(1),
                "instance {i} still accepts the session after 1 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The users collection has the one user, in the CRUD shape.
    let users = mongo
        .client()
        .await
        .database("idgate")
        .collection::<mongodb::bson::Document>("users");
    let doc = users
        .find_one(mongodb::bson::doc! {"providerUserId": "mallory"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.get_str("__STATE__").unwrap(), "PUBLIC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_mid_load_leaves_the_others_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let mut fleet = fleet(&redis, &mongo, 3);
    let site = fleet.stack.site();
    let browser = Browser::new();
    assert_eq!(
        login(&fleet.stack, &browser, "/", "nina").await.status(),
        200
    );
    let jwt = browser.cookie(&site, "sid").unwrap();

    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (site, jwt, done) = (site.clone(), jwt.clone(), done.clone());
        tokio::spawn(async move {
            let client = Browser::new().client;
            let mut statuses = Vec::new();
            for _ in 0..400 {
                let s = client
                    .get(format!("{site}/load"))
                    .header("cookie", format!("sid={jwt}"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses.push(s);
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            statuses
        })
    };
    // Kill one instance once the load is well under way.
    wait_for("the load to start", Duration::from_secs(30), || {
        (done.load(std::sync::atomic::Ordering::Relaxed) >= 50).then_some(())
    });
    fleet.others[0].proc.signal("KILL");
    let killed_at = done.load(std::sync::atomic::Ordering::Relaxed);
    assert!(killed_at < 400, "killed mid-load");
    let statuses = load.await.unwrap();
    let failed: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    assert!(
        !fleet.others[0].proc.is_running(),
        "the instance was killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_session() {
    let tmp = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let fleet = fleet(&redis, &mongo, 2);
    let site = fleet.stack.site();
    let browser = Browser::new();
    assert_eq!(
        login(&fleet.stack, &browser, "/", "oscar").await.status(),
        200
    );
    let jwt = browser.cookie(&site, "sid").unwrap();
    assert_eq!(auth_status(&fleet.stack.idgate, &jwt).await, 200);
    // The session's own key, and what it must hold.
    let claims = jwt_claims(&jwt);
    let sid = claims["sid"].as_str().unwrap().to_owned();
    let user_id = fleet.stack.idgate.first_user_id();
    assert_eq!(claims["sub"], user_id.as_str());
    let key = format!("scaleout:session:{sid}");
    let stored = |redis: &RedisServer| -> Option<serde_json::Value> {
        let record = redis.cli(&["HGET", &key, "record"]);
        serde_json::from_str(record.trim()).ok()
    };
    let before = stored(&redis).expect("the session is in Redis under its key");
    assert_eq!(before["userId"], user_id.as_str(), "{before}");
    assert_eq!(before["appId"], "web", "{before}");
    assert_eq!(before["providerId"], "dev", "{before}");
    assert_eq!(
        before["expiresAt"].as_i64().unwrap() - before["createdAt"].as_i64().unwrap(),
        12 * 3600,
        "the default 12 h lifetime: {before}"
    );

    // Redis restarts empty between two requests.
    redis.stop();
    redis.restart();
    assert_eq!(redis.cli(&["DBSIZE"]).trim(), "0", "Redis came back empty");

    // The instance that knew the session, and one that never saw it, both still accept it:
    // restored from MongoDB on demand.
    let mut ok = false;
    for _ in 0..100 {
        if auth_status(&fleet.stack.idgate, &jwt).await == 200
            && auth_status(&fleet.others[0], &jwt).await == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the session survived the Redis restart");
    let after = stored(&redis).expect("the session is restored into Redis under its key");
    for field in [
        "userId",
        "appId",
        "providerId",
        "createdAt",
        "expiresAt",
        "refreshHash",
    ] {
        assert_eq!(after[field], before[field], "{field}: {after}");
    }
    assert_eq!(
        redis.cli(&["HEXISTS", &key, "revoked"]).trim(),
        "0",
        "restored alive"
    );
    assert_eq!(
        browser.navigate(&format!("{site}/after")).await.status(),
        200
    );
    // A logout after the restart still reaches everyone.
    let resp = browser
        .client
        .post(format!("{site}/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut refused = false;
    for _ in 0..50 {
        if auth_status(&fleet.others[0], &jwt).await == 401
            && auth_status(&fleet.stack.idgate, &jwt).await == 401
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_renew_an_expired_token_to_the_same_token() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let fleet = Fleet::start(setup_ttl(&redis, &mongo, "2s"), 2);
    let site = fleet.stack.site();
    let browser = Browser::new();
    assert_eq!(
        login(&fleet.stack, &browser, "/", "uma").await.status(),
        200
    );
    let old = browser.cookie(&site, "sid").unwrap();
    // The renewal secret is the same on every instance (derived from the shared key material).
    let renew = browser.cookie(&site, "idgate_renew").unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;

    let renew_on = |instance: &Idgate| {
        let req = Browser::new()
            .client
            .get(instance.url("/auth"))
            .header("cookie", format!("sid={old}; idgate_renew={renew}"));
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
            cookie.split(';').next().unwrap().to_owned()
        }
    };
    let (a, b) = tokio::join!(renew_on(&fleet.stack.idgate), renew_on(&fleet.others[0]));
    assert_eq!(a, b, "one renewal, whichever instance does it");
    let new = a.strip_prefix("sid=").unwrap();
    assert_ne!(new, old, "a new token, not the expired one");
    let (old_claims, new_claims) = (jwt_claims(&old), jwt_claims(new));
    assert!(
        new_claims["exp"].as_i64().unwrap() > old_claims["exp"].as_i64().unwrap()
            && new_claims["exp"].as_i64().unwrap() > idgate::now_secs(),
        "a later expiry: {old_claims} then {new_claims}"
    );
    for field in ["sid", "sub", "iss"] {
        assert_eq!(new_claims[field], old_claims[field], "{field}");
    }
    // The new token is accepted as it is, by both instances, with no further renewal.
    for instance in [&fleet.stack.idgate, &fleet.others[0]] {
        let resp = Browser::new()
            .client
            .get(instance.url("/auth"))
            .header("cookie", format!("sid={new}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("set-cookie").is_none());
        assert_eq!(
            resp.headers()["mia-userid"],
            old_claims["sub"].as_str().unwrap()
        );
    }
    // The old one stays expired everywhere without the renewal secret.
    for instance in [&fleet.stack.idgate, &fleet.others[0]] {
        assert_eq!(auth_status(instance, &old).await, 401);
    }
}

fn setup_idle(redis: &RedisServer, mongo: &Mongo) -> Setup {
    Setup {
        extra_session: "idle_timeout = \"4s\"",
        ..setup(redis, mongo)
    }
}

/// `[session] idle_timeout` of `setup_idle`, seconds.
const IDLE: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_on_one_instance_keeps_the_session_alive_on_another_until_idle_on_both() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let fleet = Fleet::start(setup_idle(&redis, &mongo), 2);
    let browser = Browser::new();
    assert_eq!(
        login(&fleet.stack, &browser, "/", "ivy").await.status(),
        200
    );
    let jwt = browser.cookie(&fleet.stack.site(), "sid").unwrap();
    let (a, b) = (&fleet.stack.idgate, &fleet.others[0]);
    assert_eq!(auth_status(b, &jwt).await, 200, "B has seen the session");

    // Activity on A only, for twice the idle timeout.
    let active = Instant::now();
    while active.elapsed() < Duration::from_secs(2 * IDLE) {
        assert_eq!(auth_status(a, &jwt).await, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // B, idle itself for longer than the timeout, learns of A's activity from the store.
    assert_eq!(
        auth_status(b, &jwt).await,
        200,
        "activity on A keeps the session alive on B"
    );
    let last_use = Instant::now();

    // Idle on both for the timeout plus a whole second of clock: ended on both.
    tokio::time::sleep(Duration::from_secs(IDLE + 1)).await;
    let (on_a, on_b) = tokio::join!(auth_status(a, &jwt), auth_status(b, &jwt));
    assert!(last_use.elapsed() < Duration::from_secs(IDLE + 3));
    assert_eq!((on_a, on_b), (401, 401), "idle on both: ended on both");
    assert_eq!(
        redis
            .cli(&[
                "HEXISTS",
                &format!(
                    "scaleout:session:{}",
                    jwt_claims(&jwt)["sid"].as_str().unwrap()
                ),
                "revoked"
            ])
            .trim(),
        "1",
        "ended in the shared store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_used_in_turn_on_two_instances_is_not_idle() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(tmp.path(), &[]);
    let mongo = Mongo::start();
    let fleet = Fleet::start(setup_idle(&redis, &mongo), 2);
    let browser = Browser::new();
    assert_eq!(
        login(&fleet.stack, &browser, "/", "jay").await.status(),
        200
    );
    let jwt = browser.cookie(&fleet.stack.site(), "sid").unwrap();
    let (a, b) = (&fleet.stack.idgate, &fleet.others[0]);
    // One request every 3 s (less than the 4 s idle timeout), on A and B in turn: each
    // instance sees the session only every 6 s, the user every 3 s.
    for (i, instance) in [a, b, a, b].into_iter().enumerate() {
        assert_eq!(
            auth_status(instance, &jwt).await,
            200,
            "request {i}, 3 s after the previous one"
        );
        tokio::time::sleep(Duration::from_secs(IDLE - 1)).await;
    }
}
