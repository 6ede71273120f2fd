//! The Redis store against real Redis: standalone, Sentinel (with a failover) and a cluster of
//! three masters, through the library (`idgate::store::redis::open`) and through the idgate
//! binary (two instances sharing Redis; an outage and the recovery from it). What every store
//! does (states, sessions, the cap, revocations, single-use keys) is checked on every mode by
//! the store contract (`tests/store_contract`); here, what only Redis does: keys under their
//! scope with their TTLs, the feed's reconnects, a failover, keys spread over a cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::redis::{Cluster, RedisServer, SentinelSetup};
use common::*;
use idgate::config::{RedisConfig, RedisMode};
use idgate::crypto::Secret;
use idgate::store::{FeedEvent, LoginState, LoginStates, SessionRecord, Sessions};

fn config(mode: RedisMode, urls: &[String], scope: &str) -> RedisConfig {
    RedisConfig {
        mode,
        urls: urls.iter().map(|u| Secret::new(u.clone())).collect(),
        master_name: (mode == RedisMode::Sentinel).then(|| "mymaster".to_owned()),
        scope: scope.to_owned(),
        username: None,
        password: None,
        pool_size: 4,
    }
}

async fn open(cfg: &RedisConfig) -> (Arc<dyn LoginStates>, Arc<dyn Sessions>) {
    idgate::store::redis::open(cfg).await.unwrap()
}

fn session(sid: &str, user: &str, created_at: i64) -> SessionRecord {
    SessionRecord {
        sid: sid.into(),
        user_id: user.into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        created_at,
        expires_at: idgate::now_secs() + 600,
        refresh_hash: format!("hash-of-{sid}"),
        idp_tokens: vec![1, 2, 3, 255],
        revoked: false,
        context: Default::default(),
    }
}

fn state(id: &str, ttl: i64) -> LoginState {
    LoginState {
        step_up: Default::default(),
        state: id.into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        redirect: "/after".into(),
        client_state: Some("cs".into()),
        pkce_verifier: "verifier".into(),
        nonce: "nonce".into(),
        binding_hash: "binding".into(),
        expires_at: idgate::now_secs() + ttl,
    }
}

/// What a store's revocation feed reported, with when.
#[derive(Clone, Default)]
struct Feed(Arc<Mutex<Vec<(Instant, FeedEvent)>>>);

impl Feed {
    /// Starts `sessions.follow_revocations` into a new recorder.
    fn follow(sessions: &Arc<dyn Sessions>) -> Self {
        let feed = Feed::default();
        let events = feed.0.clone();
        let sessions = sessions.clone();
        tokio::spawn(async move {
            sessions
                .follow_revocations(Arc::new(move |e| {
                    events.lock().unwrap().push((Instant::now(), e));
                }))
                .await;
        });
        feed
    }

    fn since(&self, t: Instant) -> Vec<FeedEvent> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|(at, _)| *at >= t)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Waits until an event matching `pred` arrives after `t`; returns when it did.
    async fn wait(
        &self,
        t: Instant,
        within: Duration,
        pred: impl Fn(&FeedEvent) -> bool,
    ) -> Instant {
        let deadline = t + within;
        loop {
            if let Some(at) = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|(at, e)| *at >= t && pred(e))
                .map(|(at, _)| *at)
            {
                return at;
            }
            assert!(
                Instant::now() < deadline,
                "feed event not seen within {within:?}; got {:?}",
                self.since(t)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Retries `f` until it succeeds (the store is reconnecting), up to `within`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, idgate::store::StoreError>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{what}: still failing: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_keeps_states_and_sessions_under_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), &[]);
    let (states, sessions) = open(&config(RedisMode::Standalone, &[redis.url()], "scope-a")).await;
    let now = idgate::now_secs();
    sessions
        .create_session(&session("t-b0", "bob", now), 3)
        .await
        .unwrap();
    assert!(sessions.remember_once("t-jti", now + 60).await.unwrap());

    // States expire: their key carries the TTL.
    states.put_state(&state("ttl", 60)).await.unwrap();
    let ttl: i64 = redis
        .cli(&["ttl", "scope-a:state:ttl"])
        .trim()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&ttl), "ttl {ttl}");
    // Sessions expire when they end.
    let ttl: i64 = redis
        .cli(&["ttl", "scope-a:session:t-b0"])
        .trim()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&ttl), "ttl {ttl}");

    // A single-use key lasts until the expiry it was given, then can be recorded again.
    let at = idgate::now_secs() + 120;
    assert!(sessions.remember_once("expiring", at).await.unwrap());
    let left: i64 = redis
        .cli(&["ttl", "scope-a:once:expiring"])
        .trim()
        .parse()
        .unwrap();
    assert!((115..=120).contains(&left), "ttl {left}");
    let soon = idgate::now_secs() + 1;
    assert!(sessions.remember_once("brief", soon).await.unwrap());
    assert!(!sessions.remember_once("brief", soon).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sessions
        .remember_once("brief", idgate::now_secs() + 60)
        .await
        .unwrap()
    {
        assert!(Instant::now() < deadline, "the brief key never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Activity is kept a day past the last report, raised by a batch, never lowered.
    let touches = [("t-b0".to_owned(), now - 5), ("t-b1".to_owned(), now)];
    sessions.touch_sessions(&touches).await.unwrap();
    sessions.touch_session("t-b0", now - 9).await.unwrap();
    assert_eq!(
        redis.cli(&["get", "scope-a:activity:t-b0"]).trim(),
        (now - 5).to_string()
    );
    for key in ["scope-a:activity:t-b0", "scope-a:activity:t-b1"] {
        let ttl: i64 = redis.cli(&["ttl", key]).trim().parse().unwrap();
        assert!((86_390..=86_400).contains(&ttl), "{key}: ttl {ttl}");
    }
    // A report older than the stored activity still keeps the key a day.
    redis.cli(&["expire", "scope-a:activity:t-b0", "100"]);
    sessions
        .touch_sessions(&[("t-b0".to_owned(), now - 20)])
        .await
        .unwrap();
    assert_eq!(
        redis.cli(&["get", "scope-a:activity:t-b0"]).trim(),
        (now - 5).to_string()
    );
    let ttl: i64 = redis
        .cli(&["ttl", "scope-a:activity:t-b0"])
        .trim()
        .parse()
        .unwrap();
    assert!(
        (86_390..=86_400).contains(&ttl),
        "ttl {ttl} after an older report"
    );

    // Every key is under the scope.
    let keys = redis.cli(&["--scan", "--pattern", "*"]);
    assert!(keys.lines().count() >= 5, "{keys}");
    for key in keys.lines() {
        assert!(key.starts_with("scope-a:"), "{key} is outside the scope");
    }

    // Another scope on the same server sees none of it.
    let (_, other) = open(&config(RedisMode::Standalone, &[redis.url()], "scope-b")).await;
    assert_eq!(other.get_session("t-b0").await.unwrap(), None);
    assert!(other.list_sessions(None).await.unwrap().is_empty());
    assert!(other
        .remember_once("t-jti", idgate::now_secs() + 60)
        .await
        .unwrap());
}

/// A session's IdP tokens live in a field of their own beside its record, so the first request
/// of a session, which reads the record, does not carry kilobytes of tokens it never uses; a
/// refresh (which re-encodes the record in Lua) keeps them, and a record written before the
/// split, the tokens inside it, still reads whole.
#[tokio::test]
async fn a_sessions_idp_tokens_live_beside_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), &[]);
    let (_, sessions) = open(&config(RedisMode::Standalone, &[redis.url()], "split")).await;
    let tokens: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    let s = SessionRecord {
        idp_tokens: tokens.clone(),
        ..session("t-big", "bob", idgate::now_secs())
    };
    sessions.create_session(&s, 3).await.unwrap();
    let len = |field: &str| -> usize {
        let out = redis.cli(&["hstrlen", "split:session:t-big", field]);
        out.trim().parse().unwrap()
    };
    assert!(
        len("record") < 400,
        "the record holds {} bytes",
        len("record")
    );
    assert_eq!(len("idpTokens"), 8000, "6 000 bytes, base64");
    assert_eq!(
        sessions.get_session("t-big").await.unwrap(),
        Some(s.clone())
    );
    let head = sessions.session_head("t-big").await.unwrap().unwrap();
    assert_eq!((head.user_id.as_str(), head.revoked), ("bob", false));

    assert!(sessions
        .rotate_refresh("t-big", "hash-of-t-big", "next")
        .await
        .unwrap());
    let refreshed = sessions.get_session("t-big").await.unwrap().unwrap();
    assert_eq!(refreshed.refresh_hash, "next");
    assert_eq!(
        refreshed.idp_tokens, tokens,
        "the refresh lost the IdP tokens"
    );

    // Without IdP tokens, no field at all.
    let bare = SessionRecord {
        idp_tokens: Vec::new(),
        ..session("t-bare", "bob", idgate::now_secs())
    };
    sessions.create_session(&bare, 3).await.unwrap();
    assert_eq!(
        redis
            .cli(&["hexists", "split:session:t-bare", "idpTokens"])
            .trim(),
        "0"
    );
    assert_eq!(sessions.get_session("t-bare").await.unwrap(), Some(bare));

    // A record written by an idgate of before the split: the tokens inside it.
    let old = format!(
        r#"{{"userId":"carol","appId":"web","providerId":"dev","createdAt":{0},"expiresAt":{1},"refreshHash":"h","idpTokens":"AQID/w=="}}"#,
        idgate::now_secs(),
        idgate::now_secs() + 600
    );
    redis.cli(&["hset", "split:session:t-old", "record", &old]);
    let read = sessions.get_session("t-old").await.unwrap().unwrap();
    assert_eq!(
        (read.user_id.as_str(), read.idp_tokens),
        ("carol", vec![1, 2, 3, 255])
    );
}

/// A login over the per-user cap judges the user's other sessions by their heads (record and
/// revocation flag), as `/auth` does, and never reads their IdP tokens: a member whose tokens
/// field cannot be decoded still counts as the live session it is and is the one evicted, and
/// the login succeeds. (Reading whole sessions, the login failed on that member after its own
/// session was already stored.)
#[tokio::test]
async fn the_cap_reads_the_other_sessions_heads_not_their_idp_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), &[]);
    let (_, sessions) = open(&config(RedisMode::Standalone, &[redis.url()], "cap")).await;
    let now = idgate::now_secs();
    for (sid, at) in [("c-1", now - 20), ("c-2", now - 10)] {
        assert_eq!(
            sessions
                .create_session(&session(sid, "dave", at), 2)
                .await
                .unwrap(),
            Vec::<String>::new()
        );
    }
    redis.cli(&["hset", "cap:session:c-1", "idpTokens", "not base64 at all!"]);
    assert!(
        sessions.get_session("c-1").await.is_err(),
        "the broken tokens field makes the whole session unreadable"
    );

    let evicted = sessions
        .create_session(&session("c-3", "dave", now), 2)
        .await
        .expect("a login over the cap failed on another session's IdP tokens");
    assert_eq!(
        evicted,
        vec!["c-1".to_owned()],
        "the oldest live session goes"
    );
    let head = |sid: &'static str| {
        let sessions = sessions.clone();
        async move { sessions.session_head(sid).await.unwrap().unwrap() }
    };
    assert!(head("c-1").await.revoked);
    assert!(!head("c-2").await.revoked);
    assert!(!head("c-3").await.revoked);
}

/// How many `PING`s the server has answered since its statistics were last reset.
fn pings(redis: &RedisServer) -> u64 {
    let stats = redis.cli(&["info", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
        .map_or(0, |rest| {
            rest.split(',').next().unwrap().trim().parse().unwrap()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_skip_the_ping_of_a_busy_pool_and_survive_its_connections_dying() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), &[]);
    let (_, sessions) = open(&config(RedisMode::Standalone, &[redis.url()], "pool")).await;
    sessions
        .create_session(&session("p1", "u", idgate::now_secs()), 10)
        .await
        .unwrap();
    redis.cli(&["config", "resetstat"]);

    // A connection that just answered goes out again without a check: one round trip per read.
    for _ in 0..200 {
        assert!(sessions.get_session("p1").await.unwrap().is_some());
    }
    let busy = pings(&redis);
    // Not 0: a stall of over a second on a loaded machine makes one check each.
    assert!(busy < 10, "{busy} PINGs for 200 reads in a row");

    // A connection quiet for over a second is checked before it goes out.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(sessions.get_session("p1").await.unwrap().is_some());
    assert_eq!(pings(&redis), busy + 1, "the quiet connection was checked");

    // Writes are confirmed with a PING first: a write is never run twice.
    sessions
        .create_session(&session("p2", "u", idgate::now_secs()), 10)
        .await
        .unwrap();
    assert!(
        pings(&redis) > busy + 1,
        "the write's connection was checked"
    );

    // The server drops the pool's connections while they are trusted (as a restart does):
    // the next read fails on its dead connection and runs again on a checked one, and the
    // next write is checked. Neither fails.
    for _ in 0..3 {
        let killed: u32 = redis
            .cli(&["client", "kill", "type", "normal"])
            .trim()
            .parse()
            .unwrap();
        assert!(killed >= 1, "the pool's connections were killed");
        assert!(sessions.get_session("p1").await.unwrap().is_some());
        // The cold path's reads, pipelined by a task of their own, are retried the same way.
        redis.cli(&["client", "kill", "type", "normal"]);
        assert!(sessions.session_head("p1").await.unwrap().is_some());
        redis.cli(&["client", "kill", "type", "normal"]);
        assert!(sessions.revoke_session("p2").await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_other_stores_and_a_reconnect_reports_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(dir.path(), &[]);
    let cfg = config(RedisMode::Standalone, &[redis.url()], "feed");
    let (_, writer) = open(&cfg).await;
    let (_, reader) = open(&cfg).await;
    let start = Instant::now();
    let feed = Feed::follow(&reader);

    // Subscribed: Lost first (nothing cached may be trusted yet), then heartbeats.
    feed.wait(start, Duration::from_secs(3), |e| *e == FeedEvent::Healthy)
        .await;
    assert_eq!(feed.since(start).first(), Some(&FeedEvent::Lost));
    let t = Instant::now();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let beats = feed
        .since(t)
        .iter()
        .filter(|e| **e == FeedEvent::Healthy)
        .count();
    assert!(beats >= 2, "only {beats} heartbeats in 1.2 s");

    writer
        .create_session(&session("r1", "u", idgate::now_secs()), 10)
        .await
        .unwrap();
    let t = Instant::now();
    assert!(writer.revoke_session("r1").await.unwrap());
    let at = feed
        .wait(t, Duration::from_secs(1), |e| {
            *e == FeedEvent::Revoked("r1".into())
        })
        .await;
    assert!(at - t < Duration::from_secs(1));

    // Redis goes away: no heartbeat until it is back, and Lost before the first one.
    redis.stop();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !feed.since(stopped).contains(&FeedEvent::Healthy),
        "healthy while Redis is down: {:?}",
        feed.since(stopped)
    );
    assert!(matches!(
        reader.get_session("r1").await,
        Err(idgate::store::StoreError::Unavailable { store: "redis", .. })
    ));
    redis.restart();
    let back = feed
        .wait(stopped, Duration::from_secs(5), |e| {
            *e == FeedEvent::Healthy
        })
        .await;
    let after_stop = feed.since(stopped);
    let lost = after_stop.iter().position(|e| *e == FeedEvent::Lost);
    let healthy = after_stop.iter().position(|e| *e == FeedEvent::Healthy);
    assert!(
        lost.is_some() && lost < healthy,
        "Lost must precede the first Healthy after an interruption: {after_stop:?}"
    );
    assert!(back - stopped < Duration::from_secs(5));

    // And revocations flow again.
    writer
        .create_session(&session("r2", "u", idgate::now_secs()), 10)
        .await
        .unwrap();
    let t = Instant::now();
    assert!(writer.revoke_session("r2").await.unwrap());
    feed.wait(t, Duration::from_secs(1), |e| {
        *e == FeedEvent::Revoked("r2".into())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_is_followed_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = SentinelSetup::start(dir.path());
    let cfg = config(RedisMode::Sentinel, &[setup.url()], "sent");
    let (states, sessions) = open(&cfg).await;
    let feed = Feed::follow(&sessions);
    feed.wait(Instant::now(), Duration::from_secs(3), |e| {
        *e == FeedEvent::Healthy
    })
    .await;

    sessions
        .create_session(&session("before", "u", idgate::now_secs()), 10)
        .await
        .unwrap();
    let replica_port = setup.replica.port;
    wait_for(
        "the replica to hold the session",
        Duration::from_secs(10),
        || {
            setup
                .replica
                .cli(&["exists", "sent:session:before"])
                .trim()
                .eq("1")
                .then_some(())
        },
    );

    setup.master.kill();
    let killed = Instant::now();
    wait_for(
        "the sentinel to promote the replica",
        Duration::from_secs(30),
        || (setup.current_master_port() == Some(replica_port)).then_some(()),
    );

    // The same store, not reopened: reads and writes go to the new master.
    let before = eventually(
        "reading after the failover",
        Duration::from_secs(15),
        || sessions.get_session("before"),
    )
    .await;
    assert!(before.unwrap().is_alive(idgate::now_secs()));
    let after = session("after", "u", idgate::now_secs());
    eventually(
        "writing after the failover",
        Duration::from_secs(15),
        || sessions.create_session(&after, 10),
    )
    .await;
    states.put_state(&state("after", 60)).await.unwrap();
    assert!(states.take_state("after").await.unwrap().is_some());
    assert_eq!(
        setup.replica.cli(&["exists", "sent:session:after"]).trim(),
        "1",
        "the write went to the promoted replica"
    );

    // The feed resubscribed to the new master: Lost, then heartbeats and revocations again.
    feed.wait(killed, Duration::from_secs(15), |e| *e == FeedEvent::Lost)
        .await;
    feed.wait(killed, Duration::from_secs(15), |e| {
        *e == FeedEvent::Healthy
    })
    .await;
    let t = Instant::now();
    assert!(sessions.revoke_session("after").await.unwrap());
    feed.wait(t, Duration::from_secs(1), |e| {
        *e == FeedEvent::Revoked("after".into())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_the_masters_and_revocations_reach_every_seed() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path());
    let cfg = config(RedisMode::Cluster, &cluster.urls(), "clu");
    let (_, sessions) = open(&cfg).await;
    let (_, other) = open(&config(RedisMode::Cluster, &cluster.urls()[2..], "clu")).await;
    let feed = Feed::follow(&other);

    // Keys spread over the masters, and the listing finds them on every one.
    for i in 0..12 {
        sessions
            .create_session(&session(&format!("spread{i}"), &format!("user{i}"), 1), 10)
            .await
            .unwrap();
    }
    let holding = cluster
        .nodes
        .iter()
        .filter(|n| n.cli(&["dbsize"]).trim() != "0")
        .count();
    assert!(holding >= 2, "keys should land on several masters");
    let all = sessions.list_sessions(None).await.unwrap();
    for i in 0..12 {
        assert!(all.iter().any(|s| s.sid == format!("spread{i}")));
    }

    // A revocation through one store reaches a store seeded with another node.
    feed.wait(
        Instant::now() - Duration::from_secs(60),
        Duration::from_secs(3),
        |e| *e == FeedEvent::Healthy,
    )
    .await;
    for i in 0..3 {
        let sid = format!("spread{i}");
        let t = Instant::now();
        assert!(sessions.revoke_session(&sid).await.unwrap());
        feed.wait(t, Duration::from_secs(1), |e| {
            *e == FeedEvent::Revoked(sid.clone())
        })
        .await;
    }
}

// ---- through the idgate binary ----

fn redis_setup(url: &str, scope: &str, extra_session: &'static str) -> Setup {
    Setup {
        store: Some(format!(
            "[store]\nkind = \"redis\"\nurls = [\"{url}\"]\nscope = \"{scope}\""
        )),
        users: Some("[users]\nkind = \"embedded\"\npath = \"users.db\"".into()),
        extra_session,
        ..Setup::default()
    }
}

fn sid_of(token: &str) -> String {
    let part = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// Polls `/auth` until it answers `want`; returns how long that took.
async fn auth_becomes(idgate: &Idgate, token: &str, want: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = auth_status(idgate, token).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "/auth still answers {got}, not {want}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances on one Redis: a session minted on `one` is served by both (then from their
/// caches), as is one minted on `two`; the CLI, with `cli`'s config, revokes the first, which
/// both refuse within a second while the other lives on. Returns the other session's token.
async fn shared_sessions_and_revocation(one: &Idgate, two: &Idgate, cli: &Idgate) -> String {
    let token = mint(one, "u-1", "");
    let other = mint(two, "u-2", "");
    for idgate in [one, two] {
        // Seen once, then answered from the cache.
        auth_becomes(idgate, &token, 200, Duration::from_secs(5)).await;
        served_from_cache(idgate, &token).await;
        assert_eq!(auth_status(idgate, &other).await, 200);
    }

    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "revoke",
        "--config",
        cli.config.to_str().unwrap(),
        "--sid",
        &sid_of(&token),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 1 session"), "{out}");
    let revoked = Instant::now();
    for idgate in [one, two] {
        auth_becomes(idgate, &token, 401, Duration::from_secs(1)).await;
    }
    assert!(revoked.elapsed() < Duration::from_secs(1));
    // The other session is untouched.
    assert_eq!(auth_status(one, &other).await, 200);
    assert_eq!(auth_status(two, &other).await, 200);
    other
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_idgate_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), &[]);
    let (_d1, one) = start_idgate_alone(redis_setup(&redis.url(), "pair", ""));
    let (_d2, two) = start_idgate_alone(redis_setup(&redis.url(), "pair", ""));
    shared_sessions_and_revocation(&one, &two, &one).await;
    // No secret or URL in the logs; the endpoint is named.
    let log = one.log_caught_up().await;
    assert!(log.contains(&format!("127.0.0.1:{}", redis.port)), "{log}");
    assert!(!log.contains("redis://"), "{log}");
}

/// A Redis on the same host with no TCP port for idgate: standalone mode on its unix socket
/// (`unix://` and `redis+unix://`). Two instances and the CLI reach it through the socket alone
/// (the URLs name no port), the revocation feed included: a revocation reaches both within a
/// second, and Redis lists every connection but the test's own on the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_on_its_unix_socket_serves_sessions_and_the_revocation_feed() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let socket_arg = socket.to_str().unwrap();
    let mut redis = RedisServer::start(
        dir.path(),
        &["--unixsocket", socket_arg, "--unixsocketperm", "700"],
    );
    let (_d1, one) = start_idgate_alone(redis_setup(&format!("unix://{socket_arg}"), "sock", ""));
    let (_d2, two) = start_idgate_alone(redis_setup(
        &format!("redis+unix://{socket_arg}"),
        "sock",
        "",
    ));
    let other = shared_sessions_and_revocation(&one, &two, &two).await;
    assert!(
        redis
            .cli(&["EXISTS", &format!("sock:session:{}", sid_of(&other))])
            .starts_with('1'),
        "the session is not in the Redis behind the socket"
    );
    // redis-cli's own connection is over TCP; every other one is idgate's, on the socket, and
    // the two feeds' subscriptions are among them.
    let clients = redis.cli(&["CLIENT", "LIST"]);
    let idgates: Vec<&str> = clients
        .lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .collect();
    let on_socket = format!(" addr={socket_arg}:0 ");
    assert!(
        !idgates.is_empty() && idgates.iter().all(|l| l.contains(&on_socket)),
        "{clients}"
    );
    assert!(
        idgates.iter().filter(|l| l.contains(" sub=1 ")).count() >= 2,
        "{clients}"
    );
    // The logs name the socket, never the URL; with the server gone, `/-/ready` names Redis.
    let log = one.log_caught_up().await;
    assert!(log.contains(socket_arg), "{log}");
    assert!(!log.contains("unix://"), "{log}");
    redis.stop();
    assert_ready_names_redis(ready(&one).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_bridged_for_the_grace_then_refused_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(dir.path(), &[]);
    let (_d, idgate) =
        start_idgate_alone(redis_setup(&redis.url(), "outage", "outage_grace = \"2s\""));
    let client = Browser::new().client;
    assert_eq!(
        client
            .get(idgate.url("/-/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let seen = mint(&idgate, "u-seen", "");
    let unseen = mint(&idgate, "u-unseen", "");
    auth_becomes(&idgate, &seen, 200, Duration::from_secs(5)).await;
    // Wait for the feed to be current, so the session is served from the cache.
    served_from_cache(&idgate, &seen).await;

    redis.stop();
    let stopped = Instant::now();
    assert_eq!(
        auth_status(&idgate, &seen).await,
        200,
        "a verified session keeps working right after Redis goes away"
    );
    assert_eq!(
        auth_status(&idgate, &unseen).await,
        401,
        "a session never seen cannot be confirmed without Redis"
    );
    auth_becomes(&idgate, &seen, 401, Duration::from_secs(10)).await;
    assert!(
        stopped.elapsed() >= Duration::from_secs(1),
        "refused before the grace: {:?}",
        stopped.elapsed()
    );

    let resp = client.get(idgate.url("/-/ready")).send().await.unwrap();
    assert_ready_names_redis(resp).await;
    // A login step that needs Redis says so.
    let resp = client
        .post(idgate.url("/oauth/token"))
        .json(&serde_json::json!({ "code": "c", "state": "s" }))
        .send()
        .await
        .unwrap();
    assert_ready_names_redis(resp).await;

    // Redis comes back (empty: no persistence); idgate recovers by itself.
    redis.restart();
    wait_ready(&idgate).await;
    let fresh = mint(&idgate, "u-fresh", "");
    auth_becomes(&idgate, &fresh, 200, Duration::from_secs(5)).await;
    assert_eq!(auth_status(&idgate, &fresh).await, 200);
}

/// `/-/ready`'s answer.
async fn ready(idgate: &Idgate) -> reqwest::Response {
    Browser::new()
        .client
        .get(idgate.url("/-/ready"))
        .send()
        .await
        .unwrap()
}

/// A 503 JSON error whose message names Redis.
async fn assert_ready_names_redis(resp: reqwest::Response) {
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["statusCode"], 503);
    assert!(
        body["message"].as_str().unwrap().contains("redis"),
        "{body}"
    );
}

async fn wait_ready(idgate: &Idgate) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready(idgate).await.status() != 200 {
        assert!(Instant::now() < deadline, "/-/ready did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idgate_starts_while_redis_is_down_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let (_d, idgate) = start_idgate_alone(redis_setup(&url, "late", ""));
    assert_ready_names_redis(ready(&idgate).await).await;

    let _redis = RedisServer::start_on(dir.path(), port, &[]);
    wait_ready(&idgate).await;
    let token = mint(&idgate, "u-late", "");
    auth_becomes(&idgate, &token, 200, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_password_is_used_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path(), &["--requirepass", "pw-5e3f1a"]);
    let mut cfg = config(RedisMode::Standalone, &[redis.url()], "auth");
    let (_, without) = open(&cfg).await;
    let err = without.ping_sessions().await.unwrap_err().to_string();
    assert!(err.contains("redis"), "{err}");
    cfg.password = Some(Secret::new("pw-5e3f1a"));
    let (states, sessions) = open(&cfg).await;
    sessions.ping_sessions().await.unwrap();
    states.put_state(&state("pw", 60)).await.unwrap();
    assert!(states.take_state("pw").await.unwrap().is_some());
    // A wrong password is refused, and the error does not repeat it.
    cfg.password = Some(Secret::new("wrong-pw-77c2"));
    let (_, wrong) = open(&cfg).await;
    let err = wrong.ping_sessions().await.unwrap_err().to_string();
    assert!(!err.contains("wrong-pw-77c2"), "{err}");
}
