//! Opaque API tokens (RFC 7662) end to end: the real IdP (`idp.mjs --introspection`) issues
//! opaque access tokens, idgate introspects them at its `introspection_endpoint` through the
//! real Nginx, maps a user's token to the users store's record and a client-credentials token
//! to the configured machine identity, lets the route rules decide, refuses a token revoked at
//! the IdP once the cache bound (1 s here) has passed, refuses garbage, answers 503 naming
//! the IdP when the IdP is down, and sends the IdP no more than `max_in_flight` tokens at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::Duration;

use common::*;

/// `web` accepts opaque tokens of its provider `dev`, trusting an answer for 1 s; the IdP's
/// own client `idgate` is the machine `svc-reports`. `/admin/` needs `admins`, `/machines/`
/// needs `machines`; other routes any identity.
fn stack() -> Stack {
    Stack::start_with_idp(
        Setup {
            extra: "[authorization]\nstrict = false\n\
                    [[authorization.routes]]\npath = \"/admin/\"\nexpression = \"groups.admins\"\n\
                    [[authorization.routes]]\npath = \"/machines/\"\nexpression = \"groups.machines\"\n",
            extra_app: "[apps.web.introspection]\nprovider = \"dev\"\ncache_ttl = \"1s\"\n\
                        [apps.web.introspection.machines.idgate]\nuser_id = \"svc-reports\"\ngroups = [\"machines\"]\n",
            ..Setup::default()
        },
        &["--introspection"],
    )
}

/// GET `path` on the site with `Authorization: Bearer token` (no cookies): status and echo.
async fn get(
    site: &str,
    path: &str,
    token: &str,
) -> (u16, std::collections::HashMap<String, String>) {
    let resp = reqwest::Client::new()
        .get(format!("{site}{path}"))
        .bearer_auth(token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, echoed(&resp.text().await.unwrap()))
}

/// An access token of the IdP's client `idgate` by the client_credentials grant (opaque).
async fn machine_token(issuer: &str) -> String {
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth("idgate", Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// An access token of the IdP for `login`, by a code flow idgate takes no part in (the code
/// exchanged here): a real user's token for someone who never signed in through idgate.
async fn token_behind_idgates_back(stack: &Stack, login: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let issuer = &stack.idp.issuer;
    let callback = format!("{}/web-login/oauth/callback", stack.site());
    let verifier = "a-pkce-verifier-of-enough-length-0123456789abcdef";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let authorize = reqwest::Url::parse_with_params(
        &format!("{issuer}/auth"),
        &[
            ("client_id", "idgate"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", callback.as_str()),
            ("state", "state-0123456789"),
            ("nonce", "nonce-0123456789"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let back = Browser::new()
        .login_at_idp(authorize.as_str(), login, &callback)
        .await;
    let code = query_param(&back, "code").expect("a code");
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth("idgate", Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

async fn revoke(issuer: &str, token: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{issuer}/token/revocation"))
        .basic_auth("idgate", Some(CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the IdP revokes the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_of_the_idp_pass_with_their_identity_and_the_rules_decide() {
    let mut stack = stack();
    let site = stack.site();
    let issuer = stack.idp.issuer.clone();

    // A user's opaque access token, from a real login (Mia's /tokeninfo hands it out).
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "tess").await.status(), 200);
    let sid = browser.cookie(&site, "sid").unwrap();
    let info: serde_json::Value = reqwest::Client::new()
        .get(stack.idgate.url("/tokeninfo"))
        .bearer_auth(&sid)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_token = info["provider"]["accessToken"].as_str().unwrap().to_owned();
    assert!(
        user_token.split('.').count() < 3,
        "the IdP's access token is opaque: {user_token}"
    );
    let id = stack.idgate.first_user_id();

    let (status, echo) = get(&site, "/api/orders", &user_token).await;
    assert_eq!(status, 200, "{echo:?}");
    assert_eq!(echo["miauserid"], id, "the users store's user");
    assert_eq!(echo["miausergroups"], "users");
    assert!(
        echo["authorization"].is_empty() || !echo["authorization"].contains(&sid),
        "no session token upstream"
    );
    // The rules decide, as for a session: tess is not an admin, nor a machine.
    assert_eq!(get(&site, "/admin/x", &user_token).await.0, 403);
    assert_eq!(get(&site, "/machines/x", &user_token).await.0, 403);

    // A real user's token, for someone the users store does not know: refused (an API call
    // creates no user), though the IdP vouches for it.
    let ghost = token_behind_idgates_back(&stack, "ghost").await;
    assert_eq!(get(&site, "/api/orders", &ghost).await.0, 401);
    assert_eq!(
        stack.idgate.users().as_array().unwrap().len(),
        1,
        "no user made"
    );

    // A machine token is the configured identity, on every request answered from the cache
    // for that very token only: the user's token next to it keeps the user's identity.
    let machine = machine_token(&issuer).await;
    for _ in 0..3 {
        let (status, echo) = get(&site, "/machines/report", &machine).await;
        assert_eq!(status, 200, "{echo:?}");
        assert_eq!(echo["miauserid"], "svc-reports");
        assert_eq!(echo["miausergroups"], "machines");
        let (status, echo) = get(&site, "/api/orders", &user_token).await;
        assert_eq!(status, 200);
        assert_eq!(echo["miauserid"], id);
        // Garbage, and a token one character off, are nobody's.
        assert_eq!(get(&site, "/api/orders", "not-a-token").await.0, 401);
        let mut off = machine.clone();
        let last = if off.ends_with('A') { "B" } else { "A" };
        off.replace_range(off.len() - 1.., last);
        assert_eq!(get(&site, "/machines/report", &off).await.0, 401);
    }
    assert_eq!(get(&site, "/admin/x", &machine).await.0, 403);

    // Revoked at the IdP: refused once the 1 s cache bound has passed.
    revoke(&issuer, &machine).await;
    wait_for(
        "the revoked token to be refused",
        Duration::from_secs(20),
        || {
            let site = site.clone();
            let machine = machine.clone();
            let status = std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(async { get(&site, "/machines/report", &machine).await.0 })
            })
            .join()
            .unwrap();
            (status == 401).then_some(())
        },
    );
    // The user's token is still good.
    assert_eq!(get(&site, "/api/orders", &user_token).await.0, 200);

    // idgate lived through it all; the token never reached its log.
    let log = stack.idgate.log_caught_up().await;
    assert!(
        !log.contains(&user_token) && !log.contains(&machine),
        "a token in the log"
    );

    // The IdP down: a token idgate has not seen cannot be checked, and the answer says who.
    stack.idp.proc.terminate();
    let resp = reqwest::Client::new()
        .get(stack.idgate.url("/auth"))
        .bearer_auth("never-seen-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body = resp.text().await.unwrap();
    assert!(body.contains("`dev`"), "{body}");
}

/// A client making up tokens gets at most `max_in_flight` of them to the IdP at once (2 here):
/// while two wait on an IdP that does not answer, a third made-up token is refused at once
/// (503 naming the IdP) without being sent, a token with a cached answer still passes, and
/// once the IdP answers the two held are answered and new tokens are asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_tokens_reach_the_idp_at_most_max_in_flight_at_once() {
    let stack = Stack::start_with_idp(
        Setup {
            extra_app: "[apps.web.introspection]\nprovider = \"dev\"\nmax_in_flight = 2\n\
                        [apps.web.introspection.machines.idgate]\nuser_id = \"svc-reports\"\n",
            extra_provider: "timeout = \"20s\"",
            extra: "[authorization]\nstrict = false\n",
            ..Setup::default()
        },
        &["--introspection"],
    );
    let site = stack.site();
    let machine = machine_token(&stack.idp.issuer).await;
    assert_eq!(get(&site, "/api/orders", &machine).await.0, 200);
    let auth = stack.idgate.url("/auth");
    let ask = |client: reqwest::Client, token: String| {
        let auth = auth.clone();
        async move { client.get(&auth).bearer_auth(token).send().await }
    };

    // Stopped, the IdP accepts connections and never answers. Made-up tokens are sent one
    // after the other, each request kept open, until one is answered: the third, refused at
    // once, while the first two wait at the IdP.
    stack.idp.proc.signal("STOP");
    let mut sent = Vec::new();
    let refused = loop {
        assert!(
            sent.len() < 6,
            "no made-up token refused: no cap on the IdP's requests"
        );
        let mut request = tokio::spawn(ask(
            reqwest::Client::new(),
            format!("made-up-{}", sent.len()),
        ));
        match tokio::time::timeout(Duration::from_millis(300), &mut request).await {
            Ok(answered) => break answered.unwrap().unwrap(),
            Err(_) => sent.push(request),
        }
    };
    assert_eq!(refused.status(), 503);
    let body = refused.text().await.unwrap();
    assert!(body.contains("`dev`") && body.contains("at once"), "{body}");
    // A token answered before is not held up.
    assert_eq!(get(&site, "/api/orders", &machine).await.0, 200);
    // Through Nginx, a made-up token refused for want of a permit is an error, never a pass:
    // Nginx makes idgate's 503 a 500 (as for the IdP down), and the application sees nothing.
    let (status, echoed) = get(&site, "/api/orders", "made-up-through-nginx").await;
    assert_eq!(status, 500, "{echoed:?}");
    assert!(echoed.is_empty(), "the application answered: {echoed:?}");

    // The IdP answers again: exactly two of the tokens sent were at the IdP and get its answer
    // (not active); any other was refused like the third (on a busy machine a refusal may take
    // longer than the wait above). A new made-up token is asked, not refused.
    stack.idp.proc.signal("CONT");
    let mut asked = 0;
    for request in sent {
        match request.await.unwrap().unwrap().status().as_u16() {
            401 => asked += 1,
            503 => {}
            other => panic!("a made-up token answered {other}"),
        }
    }
    assert_eq!(asked, 2, "max_in_flight tokens at the IdP");
    let resp = ask(reqwest::Client::new(), "made-up-after".into())
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Each refusal is counted for the operator.
    let refusals = metric(&stack.idgate, "idgate_introspection_refused_total").await;
    assert!(refusals >= 1, "{refusals} refusals counted");
    let log = stack.idgate.log_caught_up().await;
    assert!(
        log.contains("opaque bearer tokens refused"),
        "the refusals are logged"
    );
}

/// `audience` and `client_ids` are checked against the IdP's answer: a machine token whose
/// answer has no `aud` is refused where an audience is required, and a token of a client not
/// listed is refused; listed, it passes. Each change applied by a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answers_audience_and_client_are_checked_when_configured() {
    let stack = stack();
    let site = stack.site();
    let machine = machine_token(&stack.idp.issuer).await;
    assert_eq!(get(&site, "/machines/x", &machine).await.0, 200);

    let path = stack.dir.path().join("idgate.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let reload = |extra: &str| {
        let changed = config.replace(
            "cache_ttl = \"1s\"\n",
            &format!("cache_ttl = \"1s\"\n{extra}\n"),
        );
        assert_ne!(changed, config);
        std::fs::write(&path, changed).unwrap();
        let before = stack
            .idgate
            .proc
            .log_text()
            .matches("configuration reloaded")
            .count();
        stack.idgate.proc.signal("HUP");
        wait_for("the reload", Duration::from_secs(20), || {
            (stack
                .idgate
                .proc
                .log_text()
                .matches("configuration reloaded")
                .count()
                > before)
                .then_some(())
        });
    };
    reload("audience = \"orders-api\"");
    assert_eq!(get(&site, "/machines/x", &machine).await.0, 401, "no aud");
    reload("client_ids = [\"someone-else\"]");
    assert_eq!(
        get(&site, "/machines/x", &machine).await.0,
        401,
        "another client"
    );
    reload("client_ids = [\"idgate\"]");
    assert_eq!(get(&site, "/machines/x", &machine).await.0, 200);
}
