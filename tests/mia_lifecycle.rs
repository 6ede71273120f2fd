//! The session lifecycle as Mia's authentication service documents it (issue 11, item 5), in
//! the fast tier (idgate in the test's runtime, the real development IdP for the logins):
//!
//! - logout honours the provider's `logout_url` (Mia's `logoutUrl`): without one the browser
//!   goes to the validated `redirect` and never to the IdP; with one it goes there, the
//!   `redirect` passed on as `post_logout_redirect_uri` — and an attacker's `redirect` is
//!   refused, never passed on;
//! - a logout carrying only the `refresh_token` cookie ends that session, if idgate issued the
//!   token (MAC) and it is current; a forged or stale one ends nothing;
//! - a refresh token repeated within the grace window gets the same pair (and the store holds
//!   that pair sealed); after the window it revokes the session;
//! - `sliding_lifetime` (what `MIA_REFRESH_TOKEN_VALID_DURATION_SEC` sets) moves the session's
//!   end at each refresh, the default keeps it;
//! - `invalid_refresh_wipes_cookies` (`INVALID_REFRESH_TOKEN_WIPES_COOKIES`) clears the
//!   cookies on a refused refresh, and only when set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::Duration;

use common::inproc::InProc;
use common::*;

/// The harness's `web` app and `dev` provider, with `provider_extra` lines in the provider.
fn apps_with(provider_extra: &str) -> String {
    web_app(&[], &format!("{}\n{provider_extra}", client_secret_line()))
}

/// Logs `who` in; returns the `/oauth/token` answer's `{accessToken, refreshToken}`.
async fn login_tokens(server: &InProc, idp: &Idp, who: &str) -> (String, String) {
    let resp = server.login(idp, &Browser::new(), who).await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    (
        body["accessToken"].as_str().unwrap().to_owned(),
        body["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(server: &InProc, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/refreshtoken"))
        .json(&serde_json::json!({ "refreshToken": token }))
        .send()
        .await
        .unwrap()
}

async fn alive(server: &InProc, access_token: &str) -> bool {
    let bearer = format!("Bearer {access_token}");
    match server
        .auth("GET", "/x", None, Some(&bearer), false)
        .await
        .status()
        .as_u16()
    {
        200 => true,
        401 => false,
        other => panic!("/auth answered {other}"),
    }
}

fn sid_of(refresh_token: &str) -> &str {
    idgate::crypto::refresh_token_sid(refresh_token).unwrap()
}

fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A navigation to `/logout?redirect=…` carrying the session cookie.
async fn navigate_logout(server: &InProc, sid: &str, redirect: &str) -> reqwest::Response {
    no_redirect_client()
        .get(server.url(&format!("/logout?redirect={redirect}")))
        .header("accept", "text/html")
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_without_a_logout_url_goes_to_the_redirect_not_the_idp() {
    let apps = apps_with("logout_url = \"none\"");
    let setup = Setup {
        apps: Some(apps),
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let (access, _) = login_tokens(&server, &idp, "ada").await;

    // An attacker's target is refused before anything happens: the session lives on.
    let resp = navigate_logout(&server, &access, "https%3A%2F%2Fevil.example%2F").await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(alive(&server, &access).await);

    let resp = navigate_logout(&server, &access, "%2Fbye").await;
    assert_eq!(resp.status(), 302);
    assert_eq!(location(&resp), "/bye", "to the redirect, not the IdP");
    assert!(set_cookies(&resp).iter().any(|c| c.starts_with("sid=;")));
    assert!(!alive(&server, &access).await, "the session ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_with_a_logout_url_passes_the_redirect_on_to_the_idp() {
    let apps = apps_with("logout_url = \"https://sso.example/realms/main/logout?ui=1\"");
    let setup = Setup {
        apps: Some(apps),
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let site = server.site();
    let (access, _) = login_tokens(&server, &idp, "bea").await;

    let resp = navigate_logout(&server, &access, "https%3A%2F%2Fevil.example%2F").await;
    assert_eq!(resp.status(), 400, "never passed on to the IdP");
    assert!(resp.headers().get("location").is_none());
    assert!(alive(&server, &access).await);

    let resp = navigate_logout(&server, &access, "%2Fbye").await;
    assert_eq!(resp.status(), 302);
    let to = location(&resp);
    assert!(
        to.starts_with("https://sso.example/realms/main/logout?ui=1&"),
        "{to}"
    );
    assert_eq!(
        query_param(&to, "post_logout_redirect_uri"),
        Some(format!("{site}/bye")),
        "the redirect, made absolute on the app's site"
    );
    let hint = query_param(&to, "id_token_hint").expect("id_token_hint");
    assert_eq!(hint.split('.').count(), 3, "the IdP's id_token");
    assert_eq!(
        query_param(&to, "client_id"),
        None,
        "what Mia appends, no more"
    );
    assert!(!alive(&server, &access).await, "the session ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_with_only_the_refresh_cookie_ends_that_session() {
    let (server, idp) = InProc::start_with_idp(&Setup::default(), &[]).await;
    let (access, token) = login_tokens(&server, &idp, "cyd").await;
    let (other_access, other_token) = login_tokens(&server, &idp, "dov").await;
    let logout = |cookie: String| {
        let server = &server;
        async move {
            let resp = reqwest::Client::new()
                .post(server.url("/logout"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<serde_json::Value>().await.unwrap()["loggedOut"].clone()
        }
    };

    // Made up from the session id (which every JWT carries): the MAC does not match.
    let (body, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{body}.{}", "A".repeat(43));
    assert_eq!(logout(format!("refresh_token={forged}")).await, false);
    let mut parts = token.split('.');
    let made_up = format!(
        "{}.{}.{}",
        parts.next().unwrap(),
        "B".repeat(43),
        "C".repeat(43)
    );
    assert_eq!(logout(format!("refresh_token={made_up}")).await, false);
    assert!(
        alive(&server, &access).await,
        "a forged token revokes nothing"
    );

    // A token idgate issued but no longer current (rotated) ends nothing either.
    let resp = refresh(&server, &other_token).await;
    assert_eq!(resp.status(), 200);
    let other_new: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(logout(format!("refresh_token={other_token}")).await, false);
    let other_access_new = other_new["accessToken"].as_str().unwrap();
    assert!(alive(&server, other_access_new).await);
    let _ = other_access;

    // The current one ends its session, and only that one.
    assert_eq!(logout(format!("refresh_token={token}")).await, true);
    assert!(!alive(&server, &access).await);
    assert_eq!(refresh(&server, &token).await.status(), 401);
    assert!(alive(&server, other_access_new).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_refreshing_at_once_get_the_same_pair() {
    let setup = Setup {
        extra_session: "refresh_grace = \"2s\"",
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let (_, token) = login_tokens(&server, &idp, "eli").await;

    let (a, b) = tokio::join!(refresh(&server, &token), refresh(&server, &token));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let (a, b): (serde_json::Value, serde_json::Value) =
        (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a, b, "the same pair for both tabs");
    let new_token = a["refreshToken"].as_str().unwrap().to_owned();
    let access = a["accessToken"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert!(alive(&server, &access).await, "no revocation");

    // What the store keeps for the window is sealed: neither the new refresh token nor the JWT
    // is readable there.
    let db = rusqlite::Connection::open(server.dir.path().join("idgate.db")).unwrap();
    let pair: Vec<u8> = db
        .query_row(
            "SELECT pair FROM refresh_grace WHERE sid = ?1",
            [sid_of(&token)],
            |r| r.get(0),
        )
        .unwrap();
    for secret in [&new_token, &access] {
        let needle = &secret.as_bytes()[secret.len() - 20..];
        assert!(!pair.windows(needle.len()).any(|w| w == needle));
    }

    // After the window, the old token again is a reuse: the session is revoked.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(refresh(&server, &token).await.status(), 401);
    assert!(
        !alive(&server, &access).await,
        "reuse after the window revokes"
    );
    assert_eq!(refresh(&server, &new_token).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grace_window_a_repeat_revokes_at_once() {
    let setup = Setup {
        extra_session: "refresh_grace = \"0s\"",
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let (_, token) = login_tokens(&server, &idp, "fay").await;
    let first = refresh(&server, &token).await;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(refresh(&server, &token).await.status(), 401);
    assert!(!alive(&server, first["accessToken"].as_str().unwrap()).await);
}

async fn expires_at(server: &InProc, sid: &str) -> i64 {
    server
        .state
        .sessions
        .get_session(sid)
        .await
        .unwrap()
        .unwrap()
        .expires_at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliding_lifetime_moves_the_session_end_at_each_refresh() {
    for sliding in [true, false] {
        let extra_session = if sliding {
            "lifetime = \"1h\"\nsliding_lifetime = true"
        } else {
            "lifetime = \"1h\""
        };
        let setup = Setup {
            extra_session,
            ..Setup::default()
        };
        let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
        let (_, token) = login_tokens(&server, &idp, "gus").await;
        let sid = sid_of(&token).to_owned();
        let before = expires_at(&server, &sid).await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let resp = refresh(&server, &token).await;
        assert_eq!(resp.status(), 200);
        let cookie = set_cookies(&resp)
            .into_iter()
            .find(|c| c.starts_with("refresh_token="))
            .unwrap();
        let after = expires_at(&server, &sid).await;
        if sliding {
            assert!(after >= before + 2, "{before} -> {after}");
            assert!((after - idgate::now_secs() - 3600).abs() <= 1);
        } else {
            assert_eq!(after, before, "an absolute lifetime stays");
        }
        let max_age: i64 = cookie
            .split("Max-Age=")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (max_age - (after - idgate::now_secs())).abs() <= 1,
            "{cookie}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_refresh_token_wipes_the_cookies_only_when_told() {
    for wipe in [true, false] {
        let setup = Setup {
            extra_session: if wipe {
                "invalid_refresh_wipes_cookies = true"
            } else {
                ""
            },
            ..Setup::default()
        };
        let server = InProc::start(&setup, "http://127.0.0.1:1").await;
        let resp = reqwest::Client::new()
            .post(server.url("/refreshtoken"))
            .header("cookie", "refresh_token=nope.nope.nope; sid=x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        let cleared = set_cookies(&resp);
        if wipe {
            for name in ["sid", "idgate_renew", "refresh_token"] {
                assert!(
                    cleared
                        .iter()
                        .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0")),
                    "{name}: {cleared:?}"
                );
            }
        } else {
            assert!(cleared.is_empty(), "{cleared:?}");
        }
        // A missing token is not an invalid one: nothing wiped.
        let resp = reqwest::Client::new()
            .post(server.url("/refreshtoken"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(set_cookies(&resp).is_empty());
    }
}

// --- The grace window in each store, decided atomically across instances -------------------

use std::sync::Arc;

use idgate::store::{RefreshRotation, Rotation, SessionRecord, Sessions};

fn record(sid: &str, expires_at: i64) -> SessionRecord {
    SessionRecord {
        sid: sid.into(),
        user_id: format!("user-of-{sid}"),
        app_id: "web".into(),
        provider_id: "dev".into(),
        created_at: idgate::now_secs(),
        expires_at,
        refresh_hash: "h0".into(),
        idp_tokens: vec![1, 2, 3],
        revoked: false,
        context: Default::default(),
    }
}

fn rotation<'a>(
    old: &'a str,
    new: &'a str,
    pair: &'a [u8],
    slide: Option<i64>,
) -> RefreshRotation<'a> {
    let now = idgate::now_secs();
    RefreshRotation {
        old_hash: old,
        new_hash: new,
        sealed_pair: pair,
        grace_until: now + 2,
        expires_at: slide,
        now,
    }
}

/// `a` and `b` are two instances' handles on one store.
async fn grace_checks(a: Arc<dyn Sessions>, b: Arc<dyn Sessions>, sid: &str) {
    let end = idgate::now_secs() + 600;
    a.create_session(&record(sid, end), 10).await.unwrap();
    // Two instances rotate the same token at once: exactly one rotates, the other gets the
    // pair the first kept — whichever wins.
    let (rot_a, rot_b) = (
        rotation("h0", "h1-a", b"pair-a", Some(end + 100)),
        rotation("h0", "h1-b", b"pair-b", Some(end + 100)),
    );
    let (ra, rb) = tokio::join!(
        a.rotate_refresh_graced(sid, &rot_a),
        b.rotate_refresh_graced(sid, &rot_b),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let (winner_hash, winner_pair) = match (&ra, &rb) {
        (Rotation::Rotated, Rotation::Repeated(p)) => ("h1-a", p.clone()),
        (Rotation::Repeated(p), Rotation::Rotated) => ("h1-b", p.clone()),
        other => panic!("one rotation and one repeat, got {other:?}"),
    };
    let expected_pair: &[u8] = if winner_hash == "h1-a" {
        b"pair-a"
    } else {
        b"pair-b"
    };
    assert_eq!(winner_pair, expected_pair);
    let stored = b.get_session(sid).await.unwrap().unwrap();
    assert_eq!(stored.refresh_hash, winner_hash);
    assert_eq!(stored.expires_at, end + 100, "the session's end slid");
    // A hash that was never current is refused; the current one rotates again.
    assert_eq!(
        a.rotate_refresh_graced(sid, &rotation("h-other", "x", b"p", None))
            .await
            .unwrap(),
        Rotation::Refused
    );
    // After the window the old one is refused (the route then revokes).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        b.rotate_refresh_graced(sid, &rotation("h0", "x", b"p", None))
            .await
            .unwrap(),
        Rotation::Refused
    );
    assert_eq!(
        b.rotate_refresh_graced(sid, &rotation(winner_hash, "h2", b"p2", None))
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert_eq!(
        a.get_session(sid).await.unwrap().unwrap().expires_at,
        end + 100,
        "no slide asked, none made"
    );
    // A revoked session is refused, even a repeat within the window.
    a.revoke_session(sid).await.unwrap();
    assert_eq!(
        b.rotate_refresh_graced(sid, &rotation(winner_hash, "x", b"p", None))
            .await
            .unwrap(),
        Rotation::Refused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_decides_the_grace_window_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = idgate::store::embedded::EmbeddedStore::open(&path).unwrap();
    let b = idgate::store::embedded::EmbeddedStore::open(&path).unwrap();
    grace_checks(Arc::new(a), Arc::new(b), "emb-1").await;
}

fn redis_config(url: String) -> idgate::config::RedisConfig {
    idgate::config::RedisConfig {
        mode: idgate::config::RedisMode::Standalone,
        urls: vec![idgate::crypto::Secret::new(url)],
        master_name: None,
        scope: "grace".into(),
        username: None,
        password: None,
        pool_size: 4,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_decides_the_grace_window_atomically_and_keeps_the_slid_session() {
    let dir = tempfile::tempdir().unwrap();
    let redis = common::redis::RedisServer::start(dir.path(), &[]);
    let (_, a) = idgate::store::redis::open(&redis_config(redis.url()))
        .await
        .unwrap();
    let (_, b) = idgate::store::redis::open(&redis_config(redis.url()))
        .await
        .unwrap();
    grace_checks(a.clone(), b, "red-1").await;
    // The slid session's key and its user's set live until the new end.
    let ttl: i64 = redis
        .cli(&["TTL", "grace:session:red-1"])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 650, "session key TTL {ttl}");
    let (_, c) = idgate::store::redis::open(&redis_config(redis.url()))
        .await
        .unwrap();
    let end = idgate::now_secs() + 60;
    c.create_session(&record("red-2", end), 10).await.unwrap();
    let slid = end + 3000;
    assert_eq!(
        c.rotate_refresh_graced("red-2", &rotation("h0", "h1", b"p", Some(slid)))
            .await
            .unwrap(),
        Rotation::Rotated
    );
    let ttl: i64 = redis
        .cli(&["TTL", "grace:user:user-of-red-2:sessions"])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 3000, "user set TTL {ttl}");
    // The pair is stored as given (sealed by the route): base64 of it, nothing else.
    let kept = redis.cli(&["HGET", "grace:session:red-2", "gracePair"]);
    assert_eq!(kept.trim(), "cA==");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mongodb_mirror_follows_its_primarys_decision() {
    let dir = tempfile::tempdir().unwrap();
    let mongo = common::mongo::Mongo::start();
    let cfg = idgate::config::MongoConfig {
        uri: idgate::crypto::Secret::new(mongo.uri()),
        database: "idgate".into(),
        collection: "users".into(),
        sessions_collection: "sessions".into(),
        create_index: true,
        inactive_users: idgate::config::InactiveUsers::default(),
    };
    let primary =
        Arc::new(idgate::store::embedded::EmbeddedStore::open(&dir.path().join("p.db")).unwrap());
    let a = idgate::store::mongo::mirror_sessions(primary.clone(), &cfg)
        .await
        .unwrap();
    let b = idgate::store::mongo::mirror_sessions(primary, &cfg)
        .await
        .unwrap();
    grace_checks(a, b, "mon-1").await;
    let copy = mongo
        .client()
        .await
        .database("idgate")
        .collection::<mongodb::bson::Document>("sessions")
        .find_one(mongodb::bson::doc! { "_id": "mon-1" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        copy.get_str("refreshHash").unwrap(),
        "h2",
        "the copy follows"
    );
}
