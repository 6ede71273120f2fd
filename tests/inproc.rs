//! The fast tier: idgate served in the test's own runtime (`tests/common/inproc.rs`), reached
//! directly, with the real development IdP where a login is needed. These tests cover the
//! route-level security checks — login state and browser binding, the code exchange, refresh
//! rotation and reuse, renewal and its secret, revocation, forged tokens at `/auth` — in a few
//! seconds, which is what lets `scripts/mutants` run them for every mutant of `src/routes/` and
//! `src/renewal.rs`. What needs Nginx (snippets, raw paths, cookies through the proxy) stays in
//! the process-level tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::inproc::InProc;
use common::*;

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The claims of a JWT, unverified (the test reads what idgate issued).
fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The value the response sets for cookie `name`, if it sets one.
fn cookie_set(resp: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(resp).iter().find_map(|c| {
        let (k, rest) = c.split_once('=')?;
        (k == name).then(|| rest.split(';').next().unwrap_or("").to_owned())
    })
}

async fn wait_until_expired(jwt: &str) {
    let exp = claims(jwt)["exp"].as_i64().unwrap();
    while idgate::now_secs() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_state_is_single_use_and_bound_to_its_browser() {
    let (server, idp) = InProc::start_with_idp(&Setup::default(), &[]).await;
    let site = server.site();
    let browser = Browser::new();
    // A redirect outside the site is refused before any state is recorded.
    for hostile in [
        "%2F%2Fevil.example%2F",
        "https%3A%2F%2Fevil.example%2F",
        "javascript%3Aalert(1)",
    ] {
        let resp = browser
            .navigate(&format!(
                "{site}/authorize?appId=web&providerId=dev&redirect={hostile}"
            ))
            .await;
        assert_eq!(resp.status(), 400, "{hostile}");
        assert!(cookie_set(&resp, "idgate_login").is_none(), "{hostile}");
    }
    let other = Browser::new();
    let other_login = other
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&redirect=%2F"
        ))
        .await;
    let other_binding = cookie_set(&other_login, "idgate_login").unwrap();
    // Another browser — with no binding cookie, or with its own — cannot use the state; the
    // attempt spends it, so the right browser then finds it used.
    for thief_cookie in [None, Some(format!("idgate_login={other_binding}"))] {
        let resp = browser
            .navigate(&format!(
                "{site}/authorize?appId=web&providerId=dev&redirect=%2F"
            ))
            .await;
        assert_eq!(resp.status(), 302);
        let binding = cookie_set(&resp, "idgate_login").expect("a login binding cookie");
        assert!(binding.len() >= 43, "a random binding: {binding}");
        let callback = browser
            .login_at_idp(&location(&resp), "dora", &format!("{site}/web-login/"))
            .await;
        let body = serde_json::json!({
            "code": query_param(&callback, "code").unwrap(),
            "state": query_param(&callback, "state").unwrap(),
        });
        let mut req = reqwest::Client::new()
            .post(format!("{site}/oauth/token"))
            .json(&body);
        if let Some(c) = &thief_cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 400, "{thief_cookie:?}");
        let err: serde_json::Value = resp.json().await.unwrap();
        assert!(
            err["message"].as_str().unwrap().contains("browser"),
            "{err}"
        );
        let resp = browser
            .client
            .post(format!("{site}/oauth/token"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let err: serde_json::Value = resp.json().await.unwrap();
        assert!(
            err["message"].as_str().unwrap().contains("already used"),
            "{err}"
        );
    }

    // A fresh login works once, and its session opens /auth; a second exchange is refused.
    let resp = server.login(&idp, &browser, "dora").await;
    assert_eq!(resp.status(), 200);
    let sid = cookie_set(&resp, "sid").expect("the session cookie");
    assert_eq!(claims(&sid)["user"]["groups"], serde_json::json!(["users"]));
    let ok = server
        .auth("GET", "/x", Some(&format!("sid={sid}")), None, false)
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["mia-userid"],
        claims(&sid)["user"]["userId"].as_str().unwrap()
    );
    // An unknown state: 400, and nothing issued.
    let resp = browser
        .client
        .post(format!("{site}/oauth/token"))
        .form(&[("code", "x"), ("state", "never-issued")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(cookie_set(&resp, "sid").is_none());
    // An anonymous browser at /auth is sent to log in; an API caller is not.
    let anon = server.auth("GET", "/x", None, None, true).await;
    assert_eq!(anon.status(), 401);
    assert!(anon.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/authorize?"));
    let api = server.auth("GET", "/x", None, None, false).await;
    assert_eq!(api.status(), 401);
    assert!(api.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_once_and_a_reuse_revokes_the_session() {
    // Without the grace window, so the reuse right after the rotation revokes (the window
    // itself is tested in tests/mia_lifecycle.rs).
    let setup = Setup {
        extra_session: "refresh_grace = \"0s\"",
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let site = server.site();
    let browser = Browser::new();
    let first: serde_json::Value = server
        .login(&idp, &browser, "rhea")
        .await
        .json()
        .await
        .unwrap();
    let first_refresh = first["refreshToken"].as_str().unwrap().to_owned();
    let api = reqwest::Client::new();
    let refresh = |token: String| {
        let api = api.clone();
        let url = format!("{site}/refreshtoken");
        async move {
            api.post(url)
                .json(&serde_json::json!({ "refreshToken": token }))
                .send()
                .await
                .unwrap()
        }
    };
    // A made-up token and one with a forged MAC: 401, nothing revoked.
    let forged = format!("{}x", &first_refresh[..first_refresh.len() - 1]);
    for bad in ["not-a-token".to_owned(), forged] {
        let resp = refresh(bad).await;
        assert_eq!(resp.status(), 401);
        // Cookies are wiped only when told to (INVALID_REFRESH_TOKEN_WIPES_COOKIES).
        assert!(set_cookies(&resp).is_empty());
    }
    let resp = refresh(first_refresh.clone()).await;
    assert_eq!(resp.status(), 200);
    let second: serde_json::Value = resp.json().await.unwrap();
    let second_refresh = second["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    let second_access = second["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(&second_access)["sid"],
        claims(first["accessToken"].as_str().unwrap())["sid"]
    );
    let bearer = format!("Bearer {second_access}");
    assert_eq!(
        server
            .auth("GET", "/x", None, Some(&bearer), false)
            .await
            .status(),
        200
    );

    // The first token again: refused, and the whole session is revoked.
    assert_eq!(refresh(first_refresh).await.status(), 401);
    assert_eq!(
        server
            .auth("GET", "/x", None, Some(&bearer), false)
            .await
            .status(),
        401
    );
    assert_eq!(refresh(second_refresh).await.status(), 401);
    // No token: 400 naming the parameter.
    let resp = api
        .post(format!("{site}/refreshtoken"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("refreshToken"));
}

/// A first character other than `secret`'s (a fixed `x` was the secret's own 1 time in 64).
fn changed_first(secret: &str) -> char {
    if secret.starts_with('x') {
        'y'
    } else {
        'x'
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cookie_is_renewed_only_with_its_own_secret() {
    let setup = Setup {
        access_ttl: "2s",
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let browser = Browser::new();
    let logged_in_from = idgate::now_secs();
    let resp = server.login(&idp, &browser, "nina").await;
    assert_eq!(resp.status(), 200);
    let old = cookie_set(&resp, "sid").unwrap();
    let renew = cookie_set(&resp, "idgate_renew").unwrap();
    let other = Browser::new();
    let other_resp = server.login(&idp, &other, "omar").await;
    let other_renew = cookie_set(&other_resp, "idgate_renew").unwrap();
    wait_until_expired(&old).await;

    // Without the secret, with another session's, with a changed one, or as a bearer token:
    // 401 and no cookie.
    for cookie in [
        format!("sid={old}"),
        format!("sid={old}; idgate_renew={other_renew}"),
        format!(
            "sid={old}; idgate_renew={}{}",
            changed_first(&renew),
            &renew[1..]
        ),
    ] {
        let resp = server.auth("GET", "/page", Some(&cookie), None, true).await;
        assert_eq!(resp.status(), 401, "{cookie}");
        assert!(resp.headers().get("set-cookie").is_none(), "{cookie}");
    }
    let bearer = format!("Bearer {old}");
    let resp = server.auth("GET", "/api", None, Some(&bearer), false).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    // Not even with the renewal cookie beside it: bearer tokens are never renewed.
    let renewal_cookie = format!("idgate_renew={renew}");
    let resp = server
        .auth_with(
            "/api",
            &[("authorization", &bearer), ("cookie", &renewal_cookie)],
        )
        .await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());

    // With its own secret: 200, a new token with a later expiry for the same session.
    let cookie = format!("sid={old}; idgate_renew={renew}");
    let before = idgate::now_secs();
    let resp = server.auth("GET", "/page", Some(&cookie), None, true).await;
    let after = idgate::now_secs();
    assert_eq!(resp.status(), 200);
    let new = cookie_set(&resp, "sid").expect("a renewed cookie");
    assert_ne!(new, old);
    let (was, now) = (claims(&old), claims(&new));
    assert_eq!(now["sid"], was["sid"]);
    assert!(now["exp"].as_i64() > was["exp"].as_i64(), "{was} -> {now}");
    let exp = now["exp"].as_i64().unwrap();
    assert_eq!(exp - now["iat"].as_i64().unwrap(), 2);
    // The first 2 s step, counted from the old `exp`, that ends more than a second after the
    // moment of renewal (a token about to expire could be refused by the time it is checked).
    assert_eq!(
        (exp - was["exp"].as_i64().unwrap()) % 2,
        0,
        "{was} -> {now}"
    );
    assert!(
        exp > before + 1 && exp - 2 <= after + 1,
        "exp {exp}, asked at {before}..{after}"
    );
    // The renewed cookie lives as long as the session has left (12 h from the login).
    let max_age: i64 = set_cookies(&resp)
        .iter()
        .find(|c| c.starts_with("sid="))
        .and_then(|c| c.split("; ").find_map(|a| a.strip_prefix("Max-Age=")))
        .expect("Max-Age")
        .parse()
        .unwrap();
    let left = 12 * 3600 - (after - logged_in_from);
    assert!(
        (left..=12 * 3600 - 2).contains(&max_age),
        "Max-Age {max_age}, {left} s left at least"
    );
    assert_eq!(
        server
            .auth("GET", "/x", Some(&format!("sid={new}")), None, false)
            .await
            .status(),
        200
    );

    // Once the session is revoked, the same expired cookie and secret renew nothing.
    server
        .state
        .auth
        .revoke(now["sid"].as_str().unwrap())
        .await
        .unwrap();
    let resp = server.auth("GET", "/page", Some(&cookie), None, true).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_by_logout_and_by_the_admin_api_is_immediate() {
    let setup = Setup {
        extra_server: ADMIN_TOKEN_LINE,
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let site = server.site();
    // Logout revokes the session it is called with, and only that one.
    let (a, b) = (Browser::new(), Browser::new());
    let sid_a = cookie_set(&server.login(&idp, &a, "lena").await, "sid").unwrap();
    let sid_b = cookie_set(&server.login(&idp, &b, "milo").await, "sid").unwrap();
    for sid in [&sid_a, &sid_b] {
        let cookie = format!("sid={sid}");
        assert_eq!(
            server
                .auth("GET", "/x", Some(&cookie), None, false)
                .await
                .status(),
            200
        );
    }
    let resp = a
        .client
        .post(format!("{site}/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(set_cookies(&resp).iter().any(|c| c.starts_with("sid=;")));
    let status = |sid: String| {
        let server = &server;
        async move {
            let bearer = format!("Bearer {sid}");
            server
                .auth("GET", "/x", None, Some(&bearer), false)
                .await
                .status()
        }
    };
    assert_eq!(status(sid_a.clone()).await, 401);
    assert_eq!(status(sid_b.clone()).await, 200);

    // The admin API: refused without the token or with another, then revokes every session
    // of the user and counts them.
    let user_b = claims(&sid_b)["user"]["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let sid_b2 = cookie_set(&server.login(&idp, &Browser::new(), "milo").await, "sid").unwrap();
    let url = server.url(&format!("/sessions/{user_b}"));
    let api = reqwest::Client::new();
    assert_eq!(api.delete(&url).send().await.unwrap().status(), 403);
    let wrong = format!("{}x", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    assert_eq!(
        api.delete(&url)
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        status(sid_b.clone()).await,
        200,
        "refused calls revoke nothing"
    );
    let resp = api
        .delete(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(answer["count"], 2, "{answer}");
    assert_eq!(status(sid_b).await, 401);
    assert_eq!(status(sid_b2).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused_at_auth() {
    let server = InProc::start(&Setup::default(), "http://127.0.0.1:1").await;
    let good = idgate::cli::mint(&server.state, "web", "u-1", "users,admin")
        .await
        .unwrap();
    let cookie = |t: &str| format!("sid={t}");
    assert_eq!(
        server
            .auth("GET", "/x", Some(&cookie(&good)), None, false)
            .await
            .status(),
        200
    );
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(good.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let body = claims(&good);
    let sig = good.split('.').nth(2).unwrap();

    // Changed claims under the old signature; `alg: none`; HS256 keyed with the public key;
    // another RSA key under the same kid; an expired token signed with the right key.
    let mut admin_of_other = body.clone();
    admin_of_other["user"]["userId"] = "u-2".into();
    let mut none = header.clone();
    none["alg"] = "none".into();
    let public_pem = std::fs::read(fixture("rs256.pub.pem")).unwrap();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("k1".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &body,
        &jsonwebtoken::EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    let other_key = jsonwebtoken::EncodingKey::from_rsa_pem(
        &std::fs::read(fixture("rs256-other.pem")).unwrap(),
    )
    .unwrap();
    let mut rs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    rs_header.kid = Some("k1".into());
    let foreign = jsonwebtoken::encode(&rs_header, &body, &other_key).unwrap();
    let forgeries = [
        (
            "claims changed",
            format!("{}.{}.{sig}", b64(&header), b64(&admin_of_other)),
        ),
        ("alg none", format!("{}.{}.", b64(&none), b64(&body))),
        ("HS256 with the public key", hs),
        ("foreign key, right kid", foreign),
        ("signature cut", format!("{}.{}.", b64(&header), b64(&body))),
    ];
    for (what, token) in &forgeries {
        for (c, a) in [
            (Some(cookie(token)), None),
            (None, Some(format!("Bearer {token}"))),
        ] {
            let status = server
                .auth("GET", "/x", c.as_deref(), a.as_deref(), false)
                .await
                .status();
            assert_eq!(status, 401, "{what}");
        }
    }
    // The location's app, as the snippet states it: empty means the default app; another
    // app's location treats the session as none; an unknown app is refused outright.
    let cookie_header = cookie(&good);
    for (app, want) in [("", 200), ("web", 200), ("nope", 403)] {
        let resp = server
            .auth_with("/x", &[("cookie", &cookie_header), ("idgate-app", app)])
            .await;
        assert_eq!(resp.status(), want, "idgate-app {app:?}");
    }
    // The store decides too: a validly signed token for a session that does not exist.
    let mut unknown = body.clone();
    unknown["sid"] = "no-such-session".into();
    let signed = server
        .state
        .auth
        .keys()
        .sign(&serde_json::from_value(unknown).unwrap())
        .unwrap();
    assert_eq!(
        server
            .auth("GET", "/x", Some(&cookie(&signed)), None, false)
            .await
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_reads_the_session_record_not_only_the_token() {
    let server = InProc::start(&Setup::default(), "http://127.0.0.1:1").await;
    let state = &server.state;
    // Two users in the store (renewal re-reads the user), one live session of the first.
    let mut ids = Vec::new();
    for login in ["ann", "ben"] {
        let identity = idgate::store::Identity {
            realm: "web".into(),
            provider_id: "dev".into(),
            provider_user_id: login.into(),
            name: None,
            email: None,
            username: Some(login.into()),
        };
        ids.push(
            state
                .users
                .upsert_login(&identity, &["users".into()])
                .await
                .unwrap()
                .user_id,
        );
    }
    let good = idgate::cli::mint(state, "web", &ids[0], "users")
        .await
        .unwrap();
    let mut claims: idgate::jwt::Claims = serde_json::from_value(claims(&good)).unwrap();
    let secret = state.macs.renewal_secret(&claims.sid);
    let server = &server;
    let renew_with = |claims: &idgate::jwt::Claims| {
        let token = state.auth.keys().sign(claims).unwrap();
        let cookie = format!("sid={token}; idgate_renew={secret}");
        async move { server.auth("GET", "/page", Some(&cookie), None, true).await }
    };
    // Expiring a second after the session began (a renewed token may not predate its session).
    claims.exp = idgate::now_secs() + 1;
    claims.iat = claims.exp - 900;
    while idgate::now_secs() <= claims.exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Expired, its own secret: renewed.
    let resp = renew_with(&claims).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_some());
    // The renewal is kept for the requests still carrying the old cookie, then forgotten.
    assert_eq!(state.renewals.len(), 1);
    let reuse = idgate::session::renewals::RENEWAL_REUSE_SECS;
    idgate::session::renewals::purge_renewals(&state.renewals, idgate::now_secs() + reuse - 2);
    assert_eq!(state.renewals.len(), 1);
    idgate::session::renewals::purge_renewals(&state.renewals, idgate::now_secs() + reuse);
    assert_eq!(state.renewals.len(), 0);
    // The same session id under another user's name (a token idgate never issues): refused.
    let mut other = claims.clone();
    other.sub = ids[1].clone();
    other.user.user_id = ids[1].clone();
    other.jti = "another".into();
    let resp = renew_with(&other).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    // Revoked in the store only (as another instance does, before its notice arrives here):
    // a token renewed from now on is refused.
    let mut later = claims.clone();
    later.jti = "later".into();
    assert!(state.sessions.revoke_session(&claims.sid).await.unwrap());
    let resp = renew_with(&later).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_token_starts_in_the_current_access_ttl_step() {
    // Tokens of 1 s; a token renewed 2.5 steps after it expired gets the first window that ends
    // more than a second after "now": `exp` = now + 2, old `exp` + 4 or 5 steps (not 1, which
    // would be expired already; not the window containing "now", which could expire before it
    // is checked; nor more).
    let setup = Setup {
        access_ttl: "1s",
        ..Setup::default()
    };
    let server = InProc::start(&setup, "http://127.0.0.1:1").await;
    let state = &server.state;
    let identity = idgate::store::Identity {
        realm: "web".into(),
        provider_id: "dev".into(),
        provider_user_id: "cleo".into(),
        name: None,
        email: None,
        username: Some("cleo".into()),
    };
    let user = state
        .users
        .upsert_login(&identity, &["users".into()])
        .await
        .unwrap();
    let minted = idgate::cli::mint(state, "web", &user.user_id, "users")
        .await
        .unwrap();
    let mut old: idgate::jwt::Claims = serde_json::from_value(claims(&minted)).unwrap();
    old.exp = idgate::now_secs() + 1;
    old.iat = old.exp - 1;
    let token = state.auth.keys().sign(&old).unwrap();
    let secret = state.macs.renewal_secret(&old.sid);
    // Wait until 2.5 s past the expiry (whole seconds: 2 < now - exp < 3).
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        if now > old.exp as f64 + 2.5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = idgate::now_secs();
    let cookie = format!("sid={token}; idgate_renew={secret}");
    let resp = server.auth("GET", "/page", Some(&cookie), None, true).await;
    let after = idgate::now_secs();
    assert_eq!(resp.status(), 200);
    let renewed = claims(&cookie_set(&resp, "sid").expect("a renewed cookie"));
    let exp = renewed["exp"].as_i64().unwrap();
    assert_eq!(exp - renewed["iat"].as_i64().unwrap(), 1, "{renewed}");
    assert!(
        exp >= before + 2 && exp <= after + 2,
        "exp {exp}, asked at {before}..{after}, old exp {}",
        old.exp
    );
    assert!(
        (4..=5).contains(&(exp - old.exp)),
        "{} steps",
        exp - old.exp
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_decides_on_the_request_the_snippet_describes() {
    // tests/fixtures/mia/auth.json: `/` any session, `/admin/` admins, `/public/` public for
    // GET, `/backoffice/` refused except as backoffice with client type `cms`.
    let line = format!("mia_auth = \"{}\"", fixture("mia/auth.json").display());
    let setup = Setup {
        extra: Box::leak(line.into_boxed_str()),
        ..Setup::default()
    };
    let server = InProc::start(&setup, "http://127.0.0.1:1").await;
    let user = idgate::cli::mint(&server.state, "web", "u-1", "users")
        .await
        .unwrap();
    let admin = idgate::cli::mint(&server.state, "web", "u-2", "users,admin")
        .await
        .unwrap();
    let (user, admin) = (format!("sid={user}"), format!("sid={admin}"));
    let status = |uri: &'static str, headers: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            server.auth_with(uri, &pairs).await
        }
    };
    let with = |cookie: &str| vec![("cookie", cookie.to_owned())];
    // The path comes from Original-Request-Uri (X-Original-URI as a fallback).
    for (uri, anonymous, as_user, as_admin) in [
        ("/admin/panel", 401, 403, 200),
        ("/public/page", 200, 200, 200),
        ("/elsewhere", 401, 200, 200),
        ("/backoffice/x", 401, 403, 403),
    ] {
        assert_eq!(
            status(uri, vec![]).await.status(),
            anonymous,
            "{uri} anonymous"
        );
        assert_eq!(
            status(uri, with(&user)).await.status(),
            as_user,
            "{uri} user"
        );
        assert_eq!(
            status(uri, with(&admin)).await.status(),
            as_admin,
            "{uri} admin"
        );
    }
    let via_x = |uri: &str, cookie: &str| {
        vec![
            ("x-original-uri", uri.to_owned()),
            ("cookie", cookie.to_owned()),
        ]
    };
    assert_eq!(status("", via_x("/admin/panel", &user)).await.status(), 403);
    assert_eq!(status("", via_x("/elsewhere", &user)).await.status(), 200);
    assert_eq!(
        status("", via_x("/admin/panel", &admin)).await.status(),
        200
    );
    assert_eq!(
        status("/admin/panel", via_x("/elsewhere", &user))
            .await
            .status(),
        403,
        "Original-Request-Uri wins"
    );
    // Neither header: the decision is on `/`.
    assert_eq!(status("", with(&user)).await.status(), 200);
    // An anonymous allow says so to the upstream: mia-allowed 1, no identity.
    let resp = status("/public/page", vec![]).await;
    assert_eq!(resp.headers()["mia-allowed"], "1");
    assert!(resp.headers().get("mia-userid").is_none());
    // Backoffice: only when the snippet says so, with the client type the rule wants.
    let bo = |v: &str, ct: &str| {
        let mut h = with(&user);
        h.push(("isbackoffice", v.to_owned()));
        h.push(("client-type", ct.to_owned()));
        h
    };
    assert_eq!(
        status("/backoffice/x", bo("true", "cms")).await.status(),
        200
    );
    assert_eq!(status("/backoffice/x", bo("1", "cms")).await.status(), 200);
    assert_eq!(
        status("/backoffice/x", bo("TRUE", "cms")).await.status(),
        200
    );
    assert_eq!(
        status("/backoffice/x", bo("true", "web")).await.status(),
        403
    );
    assert_eq!(
        status("/backoffice/x", bo("false", "cms")).await.status(),
        403
    );
    assert_eq!(status("/backoffice/x", bo("true", "")).await.status(), 403);
    // Credentials larger than idgate reads are refused before parsing: 16 KiB of cookies and a
    // token of 16 KiB are the most it reads.
    let big_cookie = format!("{user}; pad={}", "a".repeat(16 * 1024 - user.len() - 6));
    assert_eq!(big_cookie.len(), 16 * 1024);
    assert_eq!(status("/elsewhere", with(&big_cookie)).await.status(), 200);
    let over = format!("{big_cookie}a");
    assert_eq!(status("/elsewhere", with(&over)).await.status(), 403);
    let bearer = format!("Bearer {}", "a".repeat(16 * 1024 + 9));
    assert_eq!(bearer.len(), 16 * 1024 + 16);
    assert_eq!(
        status("/elsewhere", vec![("authorization", bearer.clone())])
            .await
            .status(),
        401
    );
    let over = format!("{bearer}a");
    assert_eq!(
        status("/elsewhere", vec![("authorization", over)])
            .await
            .status(),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_no_rule_covers_refuses_a_session_without_a_login_loop() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("auth.json");
    std::fs::write(
        &rules,
        r#"{"/only/": {"ALL": {"authorization": {"expression": "true", "public": false}}}}"#,
    )
    .unwrap();
    let line = format!("mia_auth = \"{}\"", rules.display());
    let setup = Setup {
        extra: Box::leak(line.into_boxed_str()),
        ..Setup::default()
    };
    let server = InProc::start(&setup, "http://127.0.0.1:1").await;
    let user = idgate::cli::mint(&server.state, "web", "u-1", "users")
        .await
        .unwrap();
    let cookie = format!("sid={user}");
    let browser = [("accept", "text/html")];
    assert_eq!(
        server
            .auth_with("/only/x", &[("cookie", &cookie), browser[0]])
            .await
            .status(),
        200
    );
    // Uncovered: an anonymous browser is sent to log in; a logged-in one gets 401 without a
    // login URL (it would come back to the same refusal).
    let anonymous = server.auth_with("/other", &browser).await;
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().get("location").is_some());
    let logged_in = server
        .auth_with("/other", &[("cookie", &cookie), browser[0]])
        .await;
    assert_eq!(logged_in.status(), 401);
    assert!(logged_in.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_decide_the_client_type_at_auth() {
    // tests/fixtures/mia/auth.json (see above); two keys, client types `cms` and `partner`.
    const CMS: &str = "ck-in-process-0b9d8e7f6a5c4b3a2d1e";
    const PARTNER: &str = "pk-in-process-7f3a9c1e5b2d4086a1c3";
    let sha = |k: &str| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(k.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let extra = format!(
        "mia_auth = \"{}\"\n\
         [[api_keys]]\nclient_type = \"cms\"\nkey_sha256 = \"{}\"\n\
         [[api_keys]]\nclient_type = \"partner\"\nkey_sha256 = \"{}\"\n",
        fixture("mia/auth.json").display(),
        sha(CMS),
        sha(PARTNER)
    );
    let setup = Setup {
        extra: Box::leak(extra.into_boxed_str()),
        ..Setup::default()
    };
    let server = InProc::start(&setup, "http://127.0.0.1:1").await;
    let user = idgate::cli::mint(&server.state, "web", "u-1", "users")
        .await
        .unwrap();
    let user = format!("sid={user}");
    let client_type = |resp: &reqwest::Response| {
        resp.headers()
            .get("mia-client-type")
            .map(|v| v.to_str().unwrap().to_owned())
    };

    // A key in any of Mia's three places stands for its client type, told to the upstream.
    let cookie = format!("mia_client_key={CMS}");
    for sent in [
        ("client-key", CMS),
        ("secret", CMS),
        ("cookie", cookie.as_str()),
    ] {
        let resp = server.auth_with("/public/page", &[sent]).await;
        assert_eq!(resp.status(), 200, "{sent:?}");
        assert_eq!(client_type(&resp).as_deref(), Some("cms"), "{sent:?}");
    }
    let resp = server
        .auth_with("/public/page", &[("client-key", PARTNER)])
        .await;
    assert_eq!(client_type(&resp).as_deref(), Some("partner"));
    // No key: no client type.
    let resp = server.auth_with("/public/page", &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(client_type(&resp), None);

    // A wrong key is refused, marked as an API-key refusal, naming where it was sent.
    let resp = server
        .auth_with("/public/page", &[("secret", "not-a-key")])
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["idgate-refusal"], "api-key");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["message"],
        "the API key sent in the `secret` header is not valid"
    );

    // The snippet's requirement: any value but empty, `false` (any case) or `0` requires a key.
    for (required, without_key) in [
        ("true", 401),
        ("yes", 401),
        ("1", 401),
        ("false", 200),
        ("FALSE", 200),
        ("0", 200),
        ("", 200),
    ] {
        let resp = server
            .auth_with("/public/page", &[("idgate-api-key-required", required)])
            .await;
        assert_eq!(resp.status(), without_key, "required={required:?}");
        if without_key == 401 {
            assert_eq!(resp.headers()["idgate-refusal"], "api-key");
        }
        let resp = server
            .auth_with(
                "/public/page",
                &[("idgate-api-key-required", required), ("client-key", CMS)],
            )
            .await;
        assert_eq!(resp.status(), 200, "required={required:?} with a key");
        assert_eq!(client_type(&resp).as_deref(), Some("cms"));
    }

    // The operator's client type (the snippet's `client-type`) wins over the key's; an empty
    // one states nothing.
    let resp = server
        .auth_with(
            "/public/page",
            &[("client-key", CMS), ("client-type", "web")],
        )
        .await;
    assert_eq!(client_type(&resp).as_deref(), Some("web"));
    let resp = server
        .auth_with("/public/page", &[("client-key", CMS), ("client-type", "")])
        .await;
    assert_eq!(client_type(&resp).as_deref(), Some("cms"));

    // The key's client type reaches the rules: backoffice wants `cms`.
    let backoffice = |key: &'static str| {
        let cookie = user.clone();
        let server = &server;
        async move {
            server
                .auth_with(
                    "/backoffice/x",
                    &[
                        ("cookie", cookie.as_str()),
                        ("isbackoffice", "true"),
                        ("client-key", key),
                    ],
                )
                .await
                .status()
        }
    };
    assert_eq!(backoffice(CMS).await, 200);
    assert_eq!(backoffice(PARTNER).await, 403);
}

/// A `client_state` login (Mia's `authorizeStateRequired`) with the client's own PKCE: the
/// exchange needs no binding cookie but the verifier of the challenge `/authorize` was given,
/// and only an RFC 7636 verifier counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_state_login_is_bound_to_its_pkce_verifier() {
    let setup = Setup {
        extra_app: "client_state = true",
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let site = server.site();
    // The exchange a client's own callback makes: no cookie.
    let exchange = |body: serde_json::Value| {
        let url = format!("{site}/oauth/token");
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        }
    };
    // A login started with `challenge`, as far as the client's callback: (code, state).
    let start = |state: String, challenge: String| {
        let (site, issuer) = (site.clone(), idp.issuer.clone());
        let idp = &idp;
        async move {
            let browser = Browser::new();
            let resp = browser
                .navigate(&format!(
                    "{site}/authorize?appId=web&providerId=dev&state={state}\
                     &code_challenge={challenge}&code_challenge_method=S256"
                ))
                .await;
            assert_eq!(resp.status(), 302, "/authorize with {challenge}");
            let idp_url = location(&resp);
            assert!(idp_url.starts_with(&issuer), "{idp_url}");
            let cb = browser
                .login_at_idp(&idp_url, "cleo", &format!("{site}/web-login/"))
                .await;
            let _ = idp;
            let code = url::Url::parse(&cb)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .expect("a code");
            (code, state)
        }
    };
    let verifier = "Vq3T8mNwK2xR7pLsY5cZ0aHbJ4eUfGdIo9QtW1rE6yA";
    let challenge = idgate::crypto::hash_token(verifier);
    // The right verifier: signed in.
    let (code, state) = start("client-state-0001-a".into(), challenge.clone()).await;
    let body = serde_json::json!({ "code": code, "state": state, "code_verifier": verifier });
    assert_eq!(exchange(body).await, 200);
    // Another verifier, or none: refused.
    for sent in [Some("Xq3T8mNwK2xR7pLsY5cZ0aHbJ4eUfGdIo9QtW1rE6yA"), None] {
        let (code, state) = start("client-state-0002-b".into(), challenge.clone()).await;
        let mut body = serde_json::json!({ "code": code, "state": state });
        if let Some(v) = sent {
            body["code_verifier"] = v.into();
        }
        assert_eq!(exchange(body).await, 400, "{sent:?}");
    }
    // A verifier outside RFC 7636's alphabet is refused even when it matches the challenge.
    let odd = "!".repeat(43);
    let (code, state) = start(
        "client-state-0003-c".into(),
        idgate::crypto::hash_token(&odd),
    )
    .await;
    let body = serde_json::json!({ "code": code, "state": state, "code_verifier": odd });
    assert_eq!(exchange(body).await, 400);
    // A challenge that is not one (too short, or outside the alphabet) stops /authorize.
    for bad in ["abc", &"!".repeat(43)] {
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!(
                "{site}/authorize?appId=web&providerId=dev&state=client-state-0004-d\
                 &code_challenge={bad}&code_challenge_method=S256"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
}

/// A browser-bound app keeps a `state` the client sends along (Mia's clients send one) up to
/// 512 characters; a longer one is refused before anything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logins_own_state_is_bounded() {
    let (server, _idp) = InProc::start_with_idp(&Setup::default(), &[]).await;
    let site = server.site();
    let start = |state: String| {
        let url = format!("{site}/authorize?appId=web&providerId=dev&redirect=%2F&state={state}");
        async move { Browser::new().navigate(&url).await }
    };
    let resp = start("s".repeat(512)).await;
    assert_eq!(resp.status(), 302);
    assert!(cookie_set(&resp, "idgate_login").is_some());
    let resp = start("s".repeat(513)).await;
    assert_eq!(resp.status(), 400);
    assert!(cookie_set(&resp, "idgate_login").is_none());
    // A browser sees the page for a bad link (the JSON names `state` for an API caller).
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("This link is not valid"));
    assert_eq!(start("short".into()).await.status(), 302);
}

/// The login cookie of a browser keeps the bindings of its four newest logins and lives as long
/// as a login state; a login state expires after `login_state_ttl` (here 2 s), and its code
/// exchange is then refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_bindings_are_bounded_and_login_states_expire() {
    let setup = Setup {
        extra_session: "login_state_ttl = \"2s\"",
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let site = server.site();
    let browser = Browser::new();
    let authorize = format!("{site}/authorize?appId=web&providerId=dev&redirect=%2F");
    let mut last = None;
    for _ in 0..6 {
        let resp = browser.navigate(&authorize).await;
        assert_eq!(resp.status(), 302);
        let set = set_cookies(&resp);
        let login = set.iter().find(|c| c.starts_with("idgate_login=")).unwrap();
        // Half an hour (the state itself lives 2 s here): the way back to the page wanted
        // outlives a stale state.
        assert!(login.contains("Max-Age=1800"), "{login}");
        last = Some(resp);
    }
    let value = browser.cookie(&site, "idgate_login").unwrap();
    assert_eq!(
        login_bindings(&value).len(),
        4,
        "the four newest logins: {value}"
    );
    assert_eq!(
        value.split('.').filter(|e| e.starts_with('~')).count(),
        1,
        "and the way back of the newest: {value}"
    );

    // The newest login, finished after its state expired: refused.
    let callback = browser
        .login_at_idp(
            &location(&last.unwrap()),
            "erin",
            &format!("{site}/web-login/"),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 400, "an expired login state");
    drop(idp);
}

/// The login pages, and Mia's `/tokeninfo` and `/provider/idtoken`, in the fast tier (for the
/// mutation runs: the process-level tests cover them through Nginx).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_pages_and_the_sessions_idp_tokens_answer() {
    let (server, idp) = InProc::start_with_idp(&Setup::default(), &[]).await;
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut req = client.get(server.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap() }
    };
    // The chooser links each provider with the validated redirect, `/` without one.
    let page = get("/web-login?appId=web&redirect=%2Fdocs", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("providerId=dev") && html.contains("redirect=%2Fdocs"),
        "{html}"
    );
    assert!(html.contains("Development IdP"), "{html}");
    let page = get("/web-login?appId=web&redirect=", None).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("redirect=%2F\""));
    // The callback page and its script.
    let page = get("/web-login/oauth/callback?code=c&state=s", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<script>") && html.contains("/oauth/token"),
        "{html}"
    );
    // Without a code (the IdP refused, or the address was cut): a page that says so.
    assert_eq!(get("/web-login/oauth/callback", None).await.status(), 400);
    let script = get("/web-login/callback.js", None).await;
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("fetch("));

    // A session's IdP tokens, for the session's own token only, never cached.
    let resp = server.login(&idp, &Browser::new(), "tina").await;
    let token = resp.json::<serde_json::Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let info = get("/tokeninfo", Some(&token)).await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.headers()["cache-control"], "no-store");
    let info: serde_json::Value = info.json().await.unwrap();
    assert_eq!(info["userId"], claims(&token)["sub"]);
    assert_eq!(info["provider"]["id"], "dev");
    assert_eq!(info["provider"]["userId"], "tina");
    assert_eq!(info["provider"]["baseUrl"], idp.issuer.as_str());
    assert!(info["provider"]["accessToken"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let id = get("/provider/idtoken", Some(&token)).await;
    assert_eq!(id.status(), 200);
    assert_eq!(id.headers()["cache-control"], "no-store");
    let id: serde_json::Value = id.json().await.unwrap();
    assert_eq!(id["idToken"].as_str().unwrap().split('.').count(), 3);
    assert_eq!(get("/tokeninfo", None).await.status(), 401);
    assert_eq!(get("/provider/idtoken", Some("x.y.z")).await.status(), 401);
}

/// `DELETE /expired-sessions[/{userId}]`: administrators only, one user id segment at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_purged_by_administrators_only() {
    let setup = Setup {
        extra_server: ADMIN_TOKEN_LINE,
        ..Setup::default()
    };
    let (server, _idp) = InProc::start_with_idp(&setup, &[]).await;
    let client = reqwest::Client::new();
    let delete = |path: &str, admin: bool| {
        let mut req = client.delete(server.url(path));
        if admin {
            req = req.bearer_auth(ADMIN_TOKEN);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(delete("/expired-sessions", false).await, 403);
    assert_eq!(delete("/expired-sessions/u1", false).await, 403);
    assert_eq!(delete("/expired-sessions", true).await, 204);
    assert_eq!(delete("/expired-sessions/u1", true).await, 204);
    assert_eq!(
        delete("/expired-sessions/a%2Fb", true).await,
        400,
        "not canonical"
    );
    assert_eq!(delete("/expired-sessions/", true).await, 404);
    assert_eq!(delete("/expired-sessions/a/b", true).await, 404);
    // `DELETE /sessions/{userId}` takes one segment too.
    assert_eq!(delete("/sessions/u1", true).await, 200);
    assert_eq!(delete("/sessions/a/b", true).await, 404);
    assert_eq!(delete("/sessions/", true).await, 404);
}

/// A logout carrying a refresh cookie that is no longer the session's current one (it was
/// rotated) ends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_with_a_rotated_refresh_cookie_ends_nothing() {
    let (server, idp) = InProc::start_with_idp(&Setup::default(), &[]).await;
    let first: serde_json::Value = server
        .login(&idp, &Browser::new(), "ravi")
        .await
        .json()
        .await
        .unwrap();
    let old_refresh = first["refreshToken"].as_str().unwrap();
    let client = reqwest::Client::new();
    let second: serde_json::Value = client
        .post(server.url("/refreshtoken"))
        .json(&serde_json::json!({ "refreshToken": old_refresh }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = second["accessToken"].as_str().unwrap();
    let resp = client
        .get(server.url("/logout"))
        .header("cookie", format!("refresh_token={old_refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["loggedOut"],
        false
    );
    let info = client
        .get(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200, "the session lives on");
}

/// The refresh grace window (two tabs refreshing at once get the same pair; a reuse after it
/// revokes), the sliding lifetime, and the wiping of cookies on an invalid refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_grace_sliding_lifetime_and_wiped_cookies() {
    let setup = Setup {
        extra_session: "refresh_grace = \"4s\"\nsliding_lifetime = true\n\
                        invalid_refresh_wipes_cookies = true\nlifetime = \"1h\"",
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let max_age_of = |cookies: Vec<String>, name: &str| -> i64 {
        cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .and_then(|c| c.split("Max-Age=").nth(1))
            .and_then(|v| v.split(';').next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let login = server.login(&idp, &Browser::new(), "gwen").await;
    // The login's cookies live as long as the session: `lifetime`.
    let cookies = set_cookies(&login);
    for name in ["sid", "refresh_token"] {
        let max_age = max_age_of(cookies.clone(), name);
        assert!((3590..=3600).contains(&max_age), "{name}: {max_age}");
    }
    let first: serde_json::Value = login.json().await.unwrap();
    let first_refresh = first["refreshToken"].as_str().unwrap().to_owned();
    let refresh = |token: &str| {
        let req = reqwest::Client::new()
            .post(server.url("/refreshtoken"))
            .json(&serde_json::json!({ "refreshToken": token }));
        async move { req.send().await.unwrap() }
    };
    let resp = refresh(&first_refresh).await;
    assert_eq!(resp.status(), 200);
    // Sliding: the session now ends a whole lifetime from now.
    let max_age = max_age_of(set_cookies(&resp), "refresh_token");
    assert!((3590..=3600).contains(&max_age), "{max_age}");
    let second: serde_json::Value = resp.json().await.unwrap();
    // The same token again within the grace window: the same new pair.
    let again = refresh(&first_refresh).await;
    assert_eq!(
        again.status(),
        200,
        "a repeat within the grace window (4 s)"
    );
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["refreshToken"], second["refreshToken"]);
    assert_eq!(again["accessToken"], second["accessToken"]);
    // After it: refused, and the session is revoked.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let resp = refresh(&first_refresh).await;
    assert_eq!(resp.status(), 401);
    let cleared = set_cookies(&resp);
    assert!(
        cleared.iter().any(|c| c.starts_with("sid=;"))
            && cleared.iter().any(|c| c.starts_with("refresh_token=;")),
        "an invalid refresh token wipes the cookies: {cleared:?}"
    );
    let second_refresh = second["refreshToken"].as_str().unwrap();
    assert_eq!(
        refresh(second_refresh).await.status(),
        401,
        "the session was revoked"
    );
}

/// Two apps on one idgate: `/logout` finds the session's own app (by the token's issuer, or by
/// the refresh cookie's session) and checks `redirect` against that app's allow-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_checks_the_redirect_against_the_sessions_own_app() {
    let app = |id: &str, issuer: &str, allowed: &str| {
        format!(
            "[apps.{id}]\nrealm = \"{id}\"\nissuer = \"{issuer}\"\n\
             redirect_url = \"{{{{SITE}}}}/web-login/oauth/callback\"\nwebsite = true\n\
             default_provider = \"dev\"\nallowed_redirects = [\"{allowed}\"]\n\
             [apps.{id}.providers.dev]\ntype = \"oidc\"\nissuer_url = \"{{{{ISSUER}}}}\"\n\
             client_id = \"idgate\"\nclient_secret = \"{CLIENT_SECRET}\"\n"
        )
    };
    let setup = Setup {
        apps: Some(
            app("web", "{{SITE}}", "{{SITE}}/")
                + &app("other", "{{SITE}}/other", "https://other.example/"),
        ),
        ..Setup::default()
    };
    let (server, idp) = InProc::start_with_idp(&setup, &[]).await;
    let site = server.site();
    let browser = Browser::new();
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=other&providerId=dev&redirect=https%3A%2F%2Fother.example%2Fx"
        ))
        .await;
    assert_eq!(resp.status(), 302);
    let callback = browser
        .login_at_idp(&location(&resp), "olga", &format!("{site}/web-login/"))
        .await;
    let tokens: serde_json::Value = browser
        .exchange(&site, &callback)
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refreshToken"].as_str().unwrap().to_owned();
    let first_access = tokens["accessToken"].as_str().unwrap().to_owned();
    let userinfo = |token: String| {
        let req = reqwest::Client::new()
            .get(format!("{site}/userinfo"))
            .bearer_auth(token);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(userinfo(first_access.clone()).await, 200);
    let logout = |cookie: String| {
        let req = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!(
                "{site}/logout?redirect=https%3A%2F%2Fother.example%2Fbye"
            ))
            .header("cookie", cookie);
        async move { req.send().await.unwrap() }
    };
    // With only the refresh cookie: the session's app is read from the session record, the
    // session ends, and the browser goes on to the IdP's end-session endpoint.
    let resp = logout(format!("refresh_token={refresh}")).await;
    assert_eq!(resp.status(), 302);
    assert!(
        location(&resp).starts_with(&idp.issuer),
        "{}",
        location(&resp)
    );
    assert_eq!(userinfo(first_access).await, 401, "the session was revoked");
    // A fresh login, logged out with its session token: the app is the token's issuer's.
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=other&providerId=dev&redirect=https%3A%2F%2Fother.example%2Fx"
        ))
        .await;
    let callback = browser
        .login_at_idp(&location(&resp), "olga", &format!("{site}/web-login/"))
        .await;
    let tokens: serde_json::Value = browser
        .exchange(&site, &callback)
        .await
        .json()
        .await
        .unwrap();
    let sid = tokens["accessToken"].as_str().unwrap().to_owned();
    let resp = logout(format!("sid={sid}")).await;
    assert_eq!(resp.status(), 302, "{:?}", resp.text().await);
    // The other app's target is not one of `web`'s.
    let resp = logout(String::new()).await;
    assert_eq!(
        resp.status(),
        400,
        "no session: no app but the default's allow-list"
    );
    drop(idp);
}

/// OIDC Back-Channel Logout at its endpoint, in the fast tier: the token only in a form body,
/// once, not repeated; a valid one revokes the user's sessions and says how many; a replay is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_takes_one_token_once_from_a_form_body() {
    let (server, idp) = InProc::start_with_idp(&Setup::default(), &["--sign-endpoint"]).await;
    let login: serde_json::Value = server
        .login(&idp, &Browser::new(), "bree")
        .await
        .json()
        .await
        .unwrap();
    let access = login["accessToken"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let userinfo = || {
        let req = client.get(server.url("/userinfo")).bearer_auth(&access);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(userinfo().await, 200);
    let token = idp
        .sign(
            serde_json::json!({ "typ": "logout+jwt" }),
            serde_json::json!({
                "iss": idp.issuer, "aud": "idgate", "iat": idgate::now_secs(),
                "jti": uuid::Uuid::new_v4().to_string(), "sub": "bree",
                "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
            }),
        )
        .await;
    let post = |query: &str, content_type: &str, body: String| {
        let req = client
            .post(server.url(&format!("/backchannel-logout/web/dev{query}")))
            .header("content-type", content_type)
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let form = "application/x-www-form-urlencoded";
    let refused = [
        post(&format!("?logout_token={token}"), form, String::new()).await,
        post(
            "",
            "application/json",
            format!("{{\"logout_token\":\"{token}\"}}"),
        )
        .await,
        post(
            "",
            form,
            format!("logout_token={token}&logout_token={token}"),
        )
        .await,
        post("", form, "logout_token=".into()).await,
        post("", form, format!("other={token}")).await,
    ];
    let why = [
        "not in the query string",
        "application/x-www-form-urlencoded",
        "repeated",
        "required",
        "required",
    ];
    for (i, (status, body)) in refused.iter().enumerate() {
        assert_eq!(*status, 400, "case {i}: {body}");
        assert!(body.contains("invalid_request"), "case {i}: {body}");
        assert!(body.contains(why[i]), "case {i} says why: {body}");
    }
    assert_eq!(
        userinfo().await,
        200,
        "nothing revoked by a refused request"
    );
    let (status, body) = post("", form, format!("logout_token={token}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["revoked"],
        1
    );
    assert_eq!(userinfo().await, 401);
    let (status, body) = post("", form, format!("logout_token={token}")).await;
    assert_eq!(status, 400, "a replay: {body}");
    assert!(body.contains("already used"), "{body}");
}

/// An app switched back from `client_state` to browser logins (a reload) does not finish the
/// client-state logins started before: their exchange has no browser binding to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_client_state_off_refuses_the_logins_in_progress() {
    let on = Setup {
        extra_app: "client_state = true",
        ..Setup::default()
    };
    let (server, _idp) = InProc::start_with_idp(&on, &[]).await;
    let site = server.site();
    let browser = Browser::new();
    let state = "client-state-0009-z";
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&state={state}"
        ))
        .await;
    assert_eq!(resp.status(), 302);
    let callback = browser
        .login_at_idp(&location(&resp), "cyd", &format!("{site}/web-login/"))
        .await;
    let code = query_param(&callback, "code").unwrap();
    server.reload(&Setup::default()).await;
    let resp = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .json(&serde_json::json!({ "code": code, "state": state }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("no longer allows"));
}

/// Finishing one of two logins in progress in a browser: the answer points at the login's
/// `redirect`, and the login cookie keeps the other login's binding only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_login_gives_up_its_binding_and_keeps_the_others() {
    let (server, _idp) = InProc::start_with_idp(&Setup::default(), &[]).await;
    let site = server.site();
    let browser = Browser::new();
    let start = |redirect: &str| {
        let url = format!("{site}/authorize?appId=web&providerId=dev&redirect={redirect}");
        let browser = &browser;
        async move { browser.navigate(&url).await }
    };
    let first = start("%2Ffirst").await;
    let first_binding = login_bindings(&browser.cookie(&site, "idgate_login").unwrap());
    let second = start("%2Fsecond").await;
    assert_eq!(
        login_bindings(&browser.cookie(&site, "idgate_login").unwrap()).len(),
        2
    );
    let _ = first;
    let callback = browser
        .login_at_idp(&location(&second), "hugo", &format!("{site}/web-login/"))
        .await;
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(location(&resp), "/second");
    assert_eq!(
        login_bindings(&browser.cookie(&site, "idgate_login").unwrap()),
        first_binding
    );
}

/// The bindings of a login cookie's value (its back element, `~…`, left out).
fn login_bindings(value: &str) -> Vec<String> {
    value
        .split('.')
        .filter(|e| !e.starts_with('~'))
        .map(str::to_owned)
        .collect()
}
