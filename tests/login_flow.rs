//! The login flow end to end, through real Nginx (with the shipped snippets), the real
//! `oidc-provider` IdP and the idgate binary on the embedded store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_flow_reaches_the_upstream_with_the_merged_identity() {
    let stack = Stack::start();
    let site = stack.site();
    let browser = Browser::new();

    // 1. Anonymous navigation: 302 to /authorize with the original URI percent-encoded.
    let path = "/docs/q?x=1&y=a%20b";
    let resp = browser.navigate(&format!("{site}{path}")).await;
    assert_eq!(resp.status(), 302);
    let loc = location(&resp);
    assert_eq!(
        loc,
        "/authorize?appId=web&providerId=dev&redirect=%2Fdocs%2Fq%3Fx%3D1%26y%3Da%2520b"
    );

    // 2. /authorize: state, nonce and PKCE S256 sent to the IdP; the browser binding cookie set.
    let resp = browser.navigate(&format!("{site}{loc}")).await;
    assert_eq!(resp.status(), 302);
    let cookies = set_cookies(&resp);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("idgate_login=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("sid=;") && c.contains("Max-Age=0")),
        "login clears the old session: {cookies:?}"
    );
    let idp_url = location(&resp);
    assert!(idp_url.starts_with(&stack.idp.issuer));
    assert_eq!(
        query_param(&idp_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&idp_url, "code_challenge").is_some_and(|c| c.len() >= 43));
    assert!(query_param(&idp_url, "nonce").is_some_and(|n| n.len() >= 32));
    assert!(query_param(&idp_url, "state").is_some_and(|s| s.len() >= 32));
    assert_eq!(
        query_param(&idp_url, "redirect_uri"),
        Some(format!("{site}/web-login/oauth/callback"))
    );

    // 3. The IdP login form, then back to the callback page.
    let callback = browser
        .login_at_idp(&idp_url, "alice", &format!("{site}/web-login/"))
        .await;
    assert!(callback.starts_with(&format!("{site}/web-login/oauth/callback?")));
    let page = browser.navigate(&callback).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap().replace("&#x2f;", "/");
    assert!(
        html.contains("<script>") && html.contains("/oauth/token"),
        "inline: {html}"
    );
    // The script's old, unhashed name still answers (pages rendered before an upgrade).
    let js = browser
        .navigate(&format!("{site}/web-login/callback.js"))
        .await;
    assert_eq!(js.status(), 200);
    assert!(js.text().await.unwrap().contains("/oauth/token"));

    // 4. POST /oauth/token: tokens, Location and cookies.
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(location(&resp), path);
    let cookies: Vec<_> = set_cookies(&resp);
    let sid_cookie = cookies
        .iter()
        .find(|c| c.starts_with("sid="))
        .expect("sid cookie");
    for attr in ["HttpOnly", "Path=/", "SameSite=Lax"] {
        assert!(sid_cookie.contains(attr), "{sid_cookie} lacks {attr}");
    }
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("refresh_token=") && c.contains("HttpOnly")));
    let body: serde_json::Value = resp.json().await.unwrap();
    let jwt = body["accessToken"].as_str().unwrap().to_owned();
    assert!(body["refreshToken"].as_str().is_some_and(|t| t.len() >= 32));
    assert!(body["expiresAt"].as_i64().unwrap() > idgate::now_secs());
    assert_eq!(browser.cookie(&site, "sid").as_deref(), Some(jwt.as_str()));

    // 5. The protected page now reaches the upstream, with the identity headers set by Nginx
    //    from idgate's answer — the forged one from the client is overwritten.
    let resp = browser
        .client
        .get(format!("{site}{path}"))
        .header("accept", "text/html")
        .header("miauserid", "forged-admin")
        .header("miausergroups", "admins")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo = echoed(&resp.text().await.unwrap());
    assert_eq!(echo["uri"], path);
    let (code, out, _) = idgate_cmd(&[
        "users",
        "list",
        "--config",
        stack.idgate.config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let users: serde_json::Value = serde_json::from_str(&out).unwrap();
    let alice = &users.as_array().unwrap()[0];
    assert_eq!(alice["providerUserId"], "alice");
    assert_eq!(alice["realm"], "web");
    assert_eq!(alice["providerId"], "dev");
    assert_eq!(echo["miauserid"], alice["userId"].as_str().unwrap());
    assert_eq!(echo["miausergroups"], "users");
    let props: serde_json::Value = serde_json::from_str(&echo["miauserproperties"]).unwrap();
    assert_eq!(
        props,
        serde_json::json!({"name": "Alice", "email": "alice@example.test"})
    );

    // 6. The JWT: SPEC §3 claims, verifiable with the published JWKS by a standard library.
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{site}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[&site]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    for c in ["iss", "sub", "iat", "exp", "jti", "sid", "user"] {
        assert!(claims.get(c).is_some(), "claim {c} missing: {claims}");
    }
    assert_eq!(claims["sub"], alice["userId"]);
    assert_eq!(claims["user"]["userId"], alice["userId"]);
    assert_eq!(claims["user"]["groups"], serde_json::json!(["users"]));
    assert_eq!(claims["user"]["name"], "Alice");
    assert_eq!(claims["user"]["email"], "alice@example.test");

    // 7. /userinfo answers the user claim.
    let info: serde_json::Value = browser
        .client
        .get(format!("{site}/userinfo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["userId"], alice["userId"]);

    // 8. Nothing secret reached idgate's log, read up to a marker request made after all of
    // the above.
    stack.idgate.proc.wait_log(&["login user="]);
    let log = stack.idgate.log_caught_up().await;
    for secret in [
        jwt.as_str(),
        CLIENT_SECRET,
        &query_param(&callback, "code").unwrap(),
        body["refreshToken"].as_str().unwrap(),
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }

    // 9. The login's server-side time, split into own and IdP time: one /authorize and one
    // /oauth/token answered; the exchange waited on the IdP (the token request, the JWKS, the
    // userinfo).
    let metrics = reqwest::get(stack.idgate.url("/-/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = |route: &str, part: &str, what: &str| -> f64 {
        let name =
            format!(r#"idgate_login_duration_seconds_{what}{{route="{route}",part="{part}"}} "#);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name.as_str()))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    for part in ["own", "idp"] {
        assert_eq!(sample("authorize", part, "count"), 1.0, "{metrics}");
        assert_eq!(sample("token", part, "count"), 1.0, "{metrics}");
    }
    assert!(sample("token", "idp", "sum") > 0.0, "{metrics}");
    assert!(sample("token", "own", "sum") > 0.0, "{metrics}");
    assert!(sample("authorize", "own", "sum") > 0.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_set_with_the_cli_appear_at_the_next_login() {
    let stack = Stack::start();
    let site = stack.site();
    let first = Browser::new();
    assert_eq!(login(&stack, &first, "/", "bob").await.status(), 200);
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let users = stack.idgate.users();
    let id = users[0]["userId"].as_str().unwrap().to_owned();
    assert_eq!(users[0]["groups"], serde_json::json!(["users"]));

    // The CLI works on the store while the daemon runs.
    let (code, _, err) = idgate_cmd(&[
        "users",
        "set-groups",
        "--config",
        &config,
        &id,
        "admins",
        "auditors",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = idgate_cmd(&[
        "users",
        "set-groups",
        "--config",
        &config,
        "no-such-user",
        "x",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no-such-user"), "{err}");

    let second = Browser::new();
    assert_eq!(login(&stack, &second, "/", "bob").await.status(), 200);
    let echo = echoed(
        &second
            .navigate(&format!("{site}/"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        echo["miauserid"], id,
        "same user, found by (realm, provider, subject)"
    );
    assert_eq!(echo["miausergroups"], "admins,auditors");
    assert_eq!(stack.idgate.users().as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_refuses_the_old_cookie_at_once() {
    let stack = Stack::start();
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "carol").await.status(), 200);
    let jwt = browser.cookie(&site, "sid").unwrap();
    assert_eq!(browser.navigate(&format!("{site}/")).await.status(), 200);

    let resp = browser
        .client
        .post(format!("{site}/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(set_cookies(&resp).iter().any(|c| c.starts_with("sid=;")));

    // The old token, replayed as a bearer token and as a cookie, is refused right away.
    let api = Browser::new().client;
    let resp = api
        .get(format!("{site}/"))
        .bearer_auth(&jwt)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers().get("location").is_none(),
        "API callers get no redirect"
    );
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["statusCode"], 401);
    let resp = api
        .get(format!("{site}/"))
        .header("cookie", format!("sid={jwt}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        302,
        "a browser with the old cookie is sent to log in again"
    );
    assert!(location(&resp).starts_with("/authorize?"));
    let direct = api
        .get(stack.idgate.url("/auth"))
        .header("cookie", format!("sid={jwt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    let info = api
        .get(format!("{site}/userinfo"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 401);

    // Revoked in the store too: a restarted daemon still refuses it.
    let (_, out, _) = idgate_cmd(&[
        "sessions",
        "list",
        "--config",
        stack.idgate.config.to_str().unwrap(),
    ]);
    let sessions: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sessions[0]["alive"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_state_is_single_use_and_bound_to_the_browser() {
    let stack = Stack::start();
    let site = stack.site();
    let browser = Browser::new();
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&redirect=%2F"
        ))
        .await;
    let callback = browser
        .login_at_idp(&location(&resp), "dave", &format!("{site}/web-login/"))
        .await;
    let body = serde_json::json!({
        "code": query_param(&callback, "code").unwrap(),
        "state": query_param(&callback, "state").unwrap(),
    });

    // Another browser (no binding cookie) cannot use the state — and the state is spent.
    let thief = Browser::new();
    let resp = thief
        .client
        .post(format!("{site}/oauth/token"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["statusCode"], 400);
    assert!(err["message"].as_str().unwrap().contains("state"), "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("browser"),
        "{err}"
    );

    // Reuse: the legitimate browser now finds it used.
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

    // A fresh login works, once.
    let resp = login(&stack, &browser, "/", "dave").await;
    assert_eq!(resp.status(), 200);

    // An unknown state is refused the same way.
    let resp = browser
        .client
        .post(format!("{site}/oauth/token"))
        .form(&[("code", "x"), ("state", "never-issued")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_login_state_is_refused() {
    let stack = Stack::start_with(Setup {
        extra_session: "login_state_ttl = \"1s\"",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&redirect=%2F"
        ))
        .await;
    let callback = browser
        .login_at_idp(&location(&resp), "erin", &format!("{site}/web-login/"))
        .await;
    // The state lives one second; wait it out.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 400);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert!(
        err["message"].as_str().unwrap().contains("expired"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_variant_of_the_callback_works() {
    let stack = Stack::start();
    let site = stack.site();
    let browser = Browser::new();
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&redirect=%2Fq"
        ))
        .await;
    let callback = browser
        .login_at_idp(&location(&resp), "frank", &format!("{site}/web-login/"))
        .await;
    let query = callback.split_once('?').unwrap().1;
    let page = browser
        .navigate(&format!("{site}/web-login/callback?{query}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-mode=\"query\""));
    let resp = browser
        .client
        .post(format!(
            "{site}/oauth/token?code={}&state={}",
            query_param(&callback, "code").unwrap(),
            query_param(&callback, "state").unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(location(&resp), "/q");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_key_rotation_is_followed_by_refetching_the_jwks() {
    let stack = Stack::start();
    let site = stack.site();
    let browser = Browser::new();
    // A first /authorize makes idgate discover the IdP and cache its JWKS (key A).
    let authorize = format!("{site}/authorize?appId=web&providerId=dev&redirect=%2F");
    assert_eq!(browser.navigate(&authorize).await.status(), 302);

    // The IdP rotates to key B and publishes only B.
    let jwks_url = format!("{}/jwks", stack.idp.issuer);
    let kid = |v: serde_json::Value| v["keys"][0]["kid"].as_str().unwrap().to_owned();
    let before = kid(reqwest::get(&jwks_url).await.unwrap().json().await.unwrap());
    stack.idp.proc.signal("USR2");
    let mut rotated = false;
    for _ in 0..100 {
        let now = kid(reqwest::get(&jwks_url).await.unwrap().json().await.unwrap());
        if now != before {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rotated, "the IdP rotated its key");

    // The next login's id_token carries a kid idgate never saw: it must fetch the JWKS again.
    let resp = browser.navigate(&authorize).await;
    let callback = browser
        .login_at_idp(&location(&resp), "heidi", &format!("{site}/web-login/"))
        .await;
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(
        resp.status(),
        200,
        "idgate fetched the new JWKS: {}",
        resp.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_logout_goes_on_to_the_idp_end_session_and_back() {
    let stack = Stack::start_with(Setup {
        extra_app: "post_logout_redirect_url = \"{{SITE}}/\"",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    let token = login(&stack, &browser, "/", "ivan").await;
    assert_eq!(token.status(), 200);
    let resp = browser
        .navigate(&format!("{site}/logout?redirect=%2F"))
        .await;
    assert_eq!(resp.status(), 302);
    let end = location(&resp);
    assert!(
        end.starts_with(&format!("{}/session/end?", stack.idp.issuer)),
        "{end}"
    );
    assert_eq!(query_param(&end, "client_id").as_deref(), Some("idgate"));
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri"),
        Some(format!("{site}/"))
    );
    // RP-Initiated Logout names the session with the IdP's own id_token.
    let hint = query_param(&end, "id_token_hint").expect("id_token_hint");
    assert_eq!(hint.split('.').count(), 3, "an id_token");
    assert_eq!(
        browser.navigate(&format!("{site}/")).await.status(),
        302,
        "logged out here"
    );

    // At the IdP: its logout form (auto-submitted by script in a browser), then back to the site.
    let resp = browser.confirm_idp_logout(&end).await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let (back, _) = browser.follow(location(&resp), &format!("{site}/")).await;
    assert!(
        back.starts_with(&format!("{site}/")),
        "back on the site: {back}"
    );
    // Logged out at the IdP too: a new login shows its login form again.
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&redirect=%2F"
        ))
        .await;
    let (form_url, form) = browser
        .follow(location(&resp), &format!("{site}/web-login/"))
        .await;
    assert!(
        !form_url.starts_with(&format!("{site}/web-login/")),
        "the IdP asks for credentials again"
    );
    assert!(form.text().await.unwrap().contains("name=\"login\""));
}

/// An app's own cookie attributes (Mia's `sidCookieCustomAttributes` and
/// `refreshCookieCustomAttributes`, here in TOML): the login sets its cookies with them, and
/// logout clears them with the same ones (a browser forgets a cookie only for its own path and
/// domain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_own_cookie_attributes_are_set_and_cleared_with_them() {
    let stack = Stack::start_with(Setup {
        extra_app: "[apps.web.cookie]\nsame_site = \"strict\"\n\
                    [apps.web.refresh_cookie]\npath = \"/\"",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/", "carol").await;
    assert_eq!(resp.status(), 200);
    let set = set_cookies(&resp);
    let cookie = |name: &str| {
        set.iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {set:?}"))
            .clone()
    };
    for name in ["sid", "idgate_renew"] {
        let c = cookie(name);
        assert!(
            c.contains("SameSite=Strict") && c.contains("Path=/;"),
            "{c}"
        );
    }
    // The refresh cookie: the app's path, [session]'s SameSite.
    let r = cookie("refresh_token");
    assert!(r.contains("Path=/;") && r.contains("SameSite=Lax"), "{r}");
    // The browser now sends the refresh token to every path; /logout ends the session with it
    // and clears each cookie with the attributes it was set with.
    let resp = browser
        .client
        .post(format!("{site}/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cleared = set_cookies(&resp);
    for (name, attrs) in [
        ("sid", "SameSite=Strict"),
        ("idgate_renew", "SameSite=Strict"),
        ("refresh_token", "Path=/;"),
    ] {
        let c = cleared
            .iter()
            .find(|c| c.starts_with(&format!("{name}=;")))
            .unwrap_or_else(|| panic!("{name} not cleared: {cleared:?}"));
        assert!(c.contains(attrs) && c.contains("Max-Age=0"), "{c}");
    }
}

/// `use_provider_groups` and `claims_to_token` (Mia's `useProviderGroups`,
/// `providerToTokenClaims`): the groups and the claim the IdP asserts at login reach the upstream
/// beside the users collection's, and a renewed and a refreshed token carry the same, without
/// asking the IdP again. (`whole_flow_reaches_the_upstream_with_the_merged_identity` is the
/// other half: without the settings the same IdP's groups and claim are left out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_claims_the_idp_asserts_reach_the_upstream_and_outlive_renewal_and_refresh() {
    let stack = Stack::start_with(Setup {
        access_ttl: "2s",
        extra_app: "use_provider_groups = true",
        extra_provider: "claims_to_token = { department = \"dept\" }",
        extra: "[headers]\nuser_properties = [\"name\", \"dept\"]",
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/docs/", "dana+idp-admins").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let first = body["accessToken"].as_str().unwrap().to_owned();
    let refresh_token = body["refreshToken"].as_str().unwrap().to_owned();
    let user = &jwt_claims(&first)["user"];
    assert_eq!(
        user["groups"],
        serde_json::json!(["users", "idp-staff", "idp-admins"])
    );
    assert_eq!(user["dept"], "engineering");

    let upstream = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 200);
        echoed(&resp.text().await.unwrap())
    };
    let echo = upstream(browser.navigate(&format!("{site}/docs/")).await).await;
    assert_eq!(echo["miausergroups"], "users,idp-staff,idp-admins");
    let props: serde_json::Value = serde_json::from_str(&echo["miauserproperties"]).unwrap();
    assert_eq!(
        props,
        serde_json::json!({"name": "Dana+idp-Admins", "dept": "engineering"})
    );

    // The token expires; /auth renews it from the session record: the same groups and claim.
    let exp = jwt_claims(&first)["exp"].as_i64().unwrap();
    while idgate::now_secs() <= exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let echo = upstream(browser.navigate(&format!("{site}/docs/")).await).await;
    let renewed = browser.cookie(&site, "sid").unwrap();
    assert_ne!(renewed, first, "the expired token was renewed");
    assert_eq!(echo["miausergroups"], "users,idp-staff,idp-admins");
    assert_eq!(jwt_claims(&renewed)["user"]["dept"], "engineering");

    // A refresh issues the same too.
    let resp = browser
        .client
        .post(format!("{site}/refreshtoken"))
        .json(&serde_json::json!({ "refreshToken": refresh_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let user = &jwt_claims(body["accessToken"].as_str().unwrap())["user"];
    assert_eq!(
        user["groups"],
        serde_json::json!(["users", "idp-staff", "idp-admins"])
    );
    assert_eq!(user["dept"], "engineering");
}
