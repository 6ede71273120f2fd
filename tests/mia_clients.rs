//! Clients written against Mia's authentication service log in through idgate, end to end
//! (real Nginx, the oidc-provider IdP): a client with its own callback (here a CLI on a
//! loopback port) round-trips its own `state` and exchanges the code without idgate's
//! browser-binding cookie, for an app configured for it (`client_state`, Mia's
//! `authorizeStateRequired`), while the default browser flow keeps its binding; `/authorize`
//! without `redirect` uses the app's default; the password grant is refused by name; Mia's
//! `/tokeninfo`, `/provider/idtoken`, `DELETE /expired-sessions` and the `{count}` answer of
//! `DELETE /sessions/{userId}`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use sha2::Digest;

/// A client's state as Mia's documentation suggests making it (a UUID v4's shape).
const CLIENT_STATE: &str = "6f1c2a0e-93b4-4d2f-b8a7-0c5e1d9f3a21";

/// The gateway with two apps on one IdP: `web`, the default browser flow (with a default
/// redirect), and `cli`, a client-state app whose callback is a CLI's loopback port.
struct Clients {
    stack: Stack,
    /// The CLI's callback, registered at the IdP; nothing listens there (the test reads the
    /// URL the IdP sends the browser to, as the CLI's little server would).
    cli_callback: String,
}

fn app_block(id: &str, body: &str) -> String {
    format!(
        "[apps.{id}]\n{body}\n\n[apps.{id}.providers.dev]\ntype = \"oidc\"\nissuer_url = \"{{{{ISSUER}}}}\"\n\
         client_id = \"idgate\"\nclient_secret = \"{CLIENT_SECRET}\"\nscope = [\"openid\", \"profile\", \"email\"]\n\n"
    )
}

fn start(extra_session: &'static str, access_ttl: &'static str) -> Clients {
    start_with_stores(extra_session, access_ttl, None, None)
}

fn start_with_stores(
    extra_session: &'static str,
    access_ttl: &'static str,
    store: Option<String>,
    users: Option<String>,
) -> Clients {
    let cli_callback = format!("http://127.0.0.1:{}/callback", free_port());
    let web = app_block(
        "web",
        "realm = \"web\"\nissuer = \"{{SITE}}\"\nredirect_url = \"{{SITE}}/web-login/oauth/callback\"\n\
         website = true\ndefault_groups = [\"users\"]\nallowed_redirects = [\"{{SITE}}/\"]\n\
         default_redirect = \"{{SITE}}/welcome\"",
    );
    let cli = app_block(
        "cli",
        &format!(
            "realm = \"web\"\nissuer = \"{{{{SITE}}}}/cli\"\nredirect_url = \"{cli_callback}\"\n\
             default_groups = [\"users\"]\nallowed_redirects = [\"{{{{SITE}}}}/\"]\nclient_state = true"
        ),
    );
    // Mia's endpoints that hand out the IdP's tokens are routed only where the operator adds
    // them, as here.
    let proxy = repo().join("nginx/idgate-proxy.conf");
    let locations = ["/tokeninfo", "/provider/idtoken"]
        .iter()
        .map(|p| {
            format!(
                "    location = {p} {{\n        proxy_pass http://idgate{p};\n        include {};\n    }}\n",
                proxy.display()
            )
        })
        .collect::<String>();
    let stack = Stack::start_with_idp(
        Setup {
            extra_server: "default_app = \"web\"\nadmin_token_file = \"admin.token\"",
            apps: Some(web + &cli),
            nginx_locations: locations,
            extra_session,
            access_ttl,
            store,
            users,
            ..Setup::default()
        },
        &["--redirect-uri", &cli_callback],
    );
    Clients {
        stack,
        cli_callback,
    }
}

/// A client with no cookies at all (a mobile app's or a CLI's HTTP client).
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The S256 challenge of `verifier`.
fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Starts a `cli` login with `query` (appended to appId and providerId), lets `who` log in at
/// the IdP in `browser`, and returns the callback URL the IdP sent the browser to.
async fn cli_login_at_idp(c: &Clients, browser: &Browser, query: &str, who: &str) -> String {
    let site = c.stack.site();
    let resp = browser
        .navigate(&format!("{site}/authorize?appId=cli&providerId=dev{query}"))
        .await;
    assert_eq!(
        resp.status(),
        302,
        "/authorize: {}",
        resp.text().await.unwrap_or_default()
    );
    let cookies = set_cookies(&resp);
    assert!(
        !cookies.iter().any(|c| c.starts_with("idgate_login=")),
        "a client-state login sets no binding cookie: {cookies:?}"
    );
    let idp_url = location(&resp);
    assert!(idp_url.starts_with(&c.stack.idp.issuer), "{idp_url}");
    browser.login_at_idp(&idp_url, who, &c.cli_callback).await
}

async fn post_token(site: &str, body: Value) -> (u16, Value, Option<String>) {
    let resp = bare_client()
        .post(format!("{site}/oauth/token"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let loc = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), loc)
}

async fn get_json(url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = bare_client().get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_its_own_callback_logs_in_without_the_binding_cookie() {
    let c = start("", "15m");
    let site = c.stack.site();
    let browser = Browser::new();

    // Mia's authorizeStateRequired: the state is the client's, and required.
    let resp = bare_client()
        .get(format!("{site}/authorize?appId=cli&providerId=dev"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("`state`"));
    // Too short to be hard to guess: the login is stored under it.
    let resp = bare_client()
        .get(format!(
            "{site}/authorize?appId=cli&providerId=dev&state=abc"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let callback = cli_login_at_idp(&c, &browser, &format!("&state={CLIENT_STATE}"), "carla").await;
    assert!(callback.starts_with(&c.cli_callback), "{callback}");
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(CLIENT_STATE),
        "the client's state comes back unchanged"
    );
    let code = query_param(&callback, "code").expect("code");

    // Posted by the CLI itself: no cookie of any kind.
    let (status, body, loc) =
        post_token(&site, json!({ "code": code, "state": CLIENT_STATE })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        loc, None,
        "no redirect asked for and no default: no Location"
    );
    let access = body["accessToken"].as_str().unwrap().to_owned();
    let (status, user) = get_json(&format!("{site}/userinfo"), Some(&access)).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["groups"], json!(["users"]));

    // Single use, whoever posts it again.
    let (status, body, _) = post_token(&site, json!({ "code": code, "state": CLIENT_STATE })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("already used"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pkce_challenge_ties_the_exchange_to_its_verifier() {
    let c = start("", "15m");
    let site = c.stack.site();
    let browser = Browser::new();
    let verifier = "Vq3T8mNwK2xR7pLsY5cZ0aHbJ4eUfGdIo9QtW1rE6yA";
    let challenge = s256(verifier);
    let pkce = format!("&code_challenge={challenge}&code_challenge_method=S256");

    // `plain` would put the verifier in the authorization URL: refused.
    let resp = bare_client()
        .get(format!(
            "{site}/authorize?appId=cli&providerId=dev&state={CLIENT_STATE}\
             &code_challenge={challenge}&code_challenge_method=plain"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Whoever holds the code and state but not the verifier (an intercepted callback) gets
    // nothing, and the login is spent.
    let state1 = format!("{CLIENT_STATE}-1");
    let cb = cli_login_at_idp(&c, &browser, &format!("&state={state1}{pkce}"), "pia").await;
    let code = query_param(&cb, "code").unwrap();
    let (status, body, _) = post_token(&site, json!({ "code": code, "state": state1 })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("code_verifier"));
    let (status, _, _) = post_token(
        &site,
        json!({ "code": code, "state": state1, "code_verifier": verifier }),
    )
    .await;
    assert_eq!(status, 400, "the failed attempt spent the login");

    let state2 = format!("{CLIENT_STATE}-2");
    let cb = cli_login_at_idp(&c, &browser, &format!("&state={state2}{pkce}"), "pia").await;
    let wrong = "Xq3T8mNwK2xR7pLsY5cZ0aHbJ4eUfGdIo9QtW1rE6yA";
    let (status, body, _) = post_token(
        &site,
        json!({ "code": query_param(&cb, "code").unwrap(), "state": state2, "code_verifier": wrong }),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let state3 = format!("{CLIENT_STATE}-3");
    let cb = cli_login_at_idp(&c, &browser, &format!("&state={state3}{pkce}"), "pia").await;
    assert_eq!(query_param(&cb, "state").as_deref(), Some(state3.as_str()));
    let (status, body, _) = post_token(
        &site,
        json!({ "code": query_param(&cb, "code").unwrap(), "state": state3, "code_verifier": verifier }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_flow_keeps_its_binding_and_uses_the_default_redirect() {
    let c = start("", "15m");
    let site = c.stack.site();

    // A browser login of the default app, started without `redirect`.
    let browser = Browser::new();
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&state={CLIENT_STATE}"
        ))
        .await;
    assert_eq!(resp.status(), 302);
    let callback = browser
        .login_at_idp(&location(&resp), "bruno", &format!("{site}/web-login/"))
        .await;
    assert_ne!(
        query_param(&callback, "state").as_deref(),
        Some(CLIENT_STATE),
        "the browser flow's state is idgate's own"
    );
    // The code and state without the browser's binding cookie: refused (and spent).
    let (status, body, _) = post_token(
        &site,
        json!({
            "code": query_param(&callback, "code").unwrap(),
            "state": query_param(&callback, "state").unwrap(),
        }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("not issued to this browser"));

    // The same browser, a new login: it finishes, and goes to the app's default redirect.
    let resp = browser
        .navigate(&format!("{site}/authorize?appId=web&providerId=dev"))
        .await;
    let callback = browser
        .login_at_idp(&location(&resp), "bruno", &format!("{site}/web-login/"))
        .await;
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(location(&resp), format!("{site}/welcome"));
    // An explicit redirect still wins, and is still checked.
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&redirect=https://evil.example/"
        ))
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_grant_is_refused_by_name() {
    let c = start("", "15m");
    let site = c.stack.site();
    let resp = bare_client()
        .post(format!("{site}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "secret"),
            ("appId", "web"),
            ("providerId", "dev"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("`password`") && message.contains("not supported"),
        "{message}"
    );
    // Any other grant but the authorization code is refused too.
    let (status, _, _) = post_token(
        &site,
        json!({ "grant_type": "client_credentials", "code": "x", "state": "y" }),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokeninfo_and_provider_idtoken_hand_out_the_sessions_idp_tokens() {
    let c = start("", "15m");
    let site = c.stack.site();
    let browser = Browser::new();
    assert_eq!(login(&c.stack, &browser, "/", "tess").await.status(), 200);

    // With the session cookie, as /userinfo.
    let resp = browser
        .client
        .get(format!("{site}/tokeninfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let info: Value = resp.json().await.unwrap();
    let (_, userinfo) = {
        let r = browser
            .client
            .get(format!("{site}/userinfo"))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    for key in ["userId", "groups", "email", "name"] {
        assert_eq!(info[key], userinfo[key], "{key}: {info}");
    }
    let provider = &info["provider"];
    assert_eq!(provider["id"], "dev", "{info}");
    assert_eq!(provider["baseUrl"], c.stack.idp.issuer.as_str(), "{info}");
    assert_eq!(provider["userId"], "tess", "{info}");
    // The access token is the IdP's own: its userinfo endpoint accepts it.
    let idp_access = provider["accessToken"].as_str().unwrap();
    let discovery: Value = bare_client()
        .get(format!(
            "{}/.well-known/openid-configuration",
            c.stack.idp.issuer
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, at_idp) = get_json(
        discovery["userinfo_endpoint"].as_str().unwrap(),
        Some(idp_access),
    )
    .await;
    assert_eq!((status, &at_idp["sub"]), (200, &json!("tess")), "{at_idp}");

    // The IdP's id_token of the session.
    let resp = browser
        .client
        .get(format!("{site}/provider/idtoken"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let id_token = body["idToken"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["iss"], c.stack.idp.issuer.as_str());
    assert_eq!(payload["sub"], "tess");
    assert_eq!(payload["aud"], "idgate");

    // No session, a forged token, an ended session: 401 from both.
    for path in ["/tokeninfo", "/provider/idtoken"] {
        assert_eq!(get_json(&format!("{site}{path}"), None).await.0, 401);
        assert_eq!(
            get_json(&format!("{site}{path}"), Some("not.a.token"))
                .await
                .0,
            401
        );
    }
    let uid = userinfo["userId"].as_str().unwrap().to_owned();
    let resp = bare_client()
        .delete(c.stack.idgate.url(&format!("/sessions/{uid}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for path in ["/tokeninfo", "/provider/idtoken"] {
        let r = browser
            .client
            .get(format!("{site}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} after the session was revoked");
    }
}

fn session_count(c: &Clients) -> usize {
    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "list",
        "--config",
        c.stack.idgate.config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Vec<Value>>(&out).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_admin_endpoints_answer_as_mia_does() {
    // Sessions that end 3 s after they start.
    let c = start("lifetime = \"3s\"", "2s");
    let site = c.stack.site();
    let first = Browser::new();
    assert_eq!(login(&c.stack, &first, "/", "eve").await.status(), 200);
    let uid = c.stack.idgate.first_user_id();

    // DELETE /sessions/{userId}: {count}, Mia's shape.
    let admin = |method: reqwest::Method, path: &str| {
        bare_client()
            .request(method, c.stack.idgate.url(path))
            .bearer_auth(ADMIN_TOKEN)
    };
    let resp = admin(reqwest::Method::DELETE, &format!("/sessions/{uid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "count": 1 }));

    // DELETE /expired-sessions: administrators only, as DELETE /sessions.
    for path in ["/expired-sessions", &format!("/expired-sessions/{uid}")] {
        let resp = bare_client()
            .delete(c.stack.idgate.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path} without the admin token");
        let resp = bare_client()
            .delete(c.stack.idgate.url(path))
            .bearer_auth("not-the-admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path} with a wrong token");
        // Not routed by the snippets: through Nginx it does not exist.
        let resp = bare_client()
            .delete(format!("{site}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), 204, "{path} through Nginx");
    }

    // A second user logs in; both sessions expire; a third logs in and stays live.
    let second = Browser::new();
    assert_eq!(login(&c.stack, &second, "/", "finn").await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let third = Browser::new();
    assert_eq!(login(&c.stack, &third, "/", "gil").await.status(), 200);
    assert_eq!(session_count(&c), 3);

    // One user's: only eve's expired session goes.
    let resp = admin(reqwest::Method::DELETE, &format!("/expired-sessions/{uid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(session_count(&c), 2);
    // Everyone's: finn's expired one goes, gil's live one stays and still works.
    let resp = admin(reqwest::Method::DELETE, "/expired-sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(session_count(&c), 1);
    assert_eq!(third.navigate(&format!("{site}/x")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_leave_redis_user_sets_and_mongo_copies() {
    // Redis holds the sessions, MongoDB the users and the durable copies of the sessions.
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = common::redis::RedisServer::start(redis_dir.path(), &[]);
    let mongo = common::mongo::Mongo::start();
    let c = start_with_stores(
        "lifetime = \"6s\"",
        "2s",
        Some(format!(
            "[store]\nkind = \"redis\"\nurls = [\"{}\"]\nscope = \"mc\"",
            redis.url()
        )),
        Some(format!(
            "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"app\"",
            mongo.uri()
        )),
    );
    let copies = mongo
        .client()
        .await
        .database("app")
        .collection::<mongodb::bson::Document>("idgate_sessions");
    let copies_of = |uid: String| {
        let copies = copies.clone();
        async move {
            copies
                .count_documents(mongodb::bson::doc! { "userId": uid })
                .await
                .unwrap()
        }
    };

    // eve: one session that will have expired and one still live; finn: one expired.
    assert_eq!(
        login(&c.stack, &Browser::new(), "/", "eve").await.status(),
        200
    );
    let eve = c.stack.idgate.first_user_id();
    assert_eq!(
        login(&c.stack, &Browser::new(), "/", "finn").await.status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let eve_again = Browser::new();
    assert_eq!(login(&c.stack, &eve_again, "/", "eve").await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    let users = c.stack.idgate.users();
    let finn = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["providerUserId"] == "finn")
        .expect("finn")["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let members = |uid: &str| {
        redis
            .cli(&["ZCARD", &format!("mc:user:{uid}:sessions")])
            .trim()
            .to_owned()
    };
    assert_eq!(
        members(&eve),
        "2",
        "eve's set still names her expired session"
    );

    let purge = |path: String| {
        bare_client()
            .delete(c.stack.idgate.url(&path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let resp = purge(format!("/expired-sessions/{eve}")).await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(members(&eve), "1", "only eve's live session is left");
    assert_eq!(copies_of(eve.clone()).await, 1, "and only its copy");
    let resp = purge("/expired-sessions".into()).await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(copies_of(finn).await, 0, "finn's expired copy went");
    assert_eq!(members(&eve), "1");
    assert_eq!(copies_of(eve).await, 1);
    // eve's live session still works.
    let site = c.stack.site();
    assert_eq!(eve_again.navigate(&format!("{site}/x")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_client_state_off_ends_the_cookieless_logins_in_progress() {
    let c = start("", "15m");
    let site = c.stack.site();
    let browser = Browser::new();
    let cb = cli_login_at_idp(&c, &browser, &format!("&state={CLIENT_STATE}"), "otto").await;

    // The operator turns the setting off and reloads while the login is in progress.
    let config = std::fs::read_to_string(&c.stack.idgate.config).unwrap();
    assert!(config.contains("client_state = true"));
    std::fs::write(
        &c.stack.idgate.config,
        config.replace("client_state = true", "client_state = false"),
    )
    .unwrap();
    c.stack.idgate.proc.signal("HUP");
    c.stack.idgate.proc.wait_log(&["configuration reloaded"]);

    let (status, body, _) = post_token(
        &site,
        json!({ "code": query_param(&cb, "code").unwrap(), "state": CLIENT_STATE }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no longer allows"),
        "{body}"
    );
}
