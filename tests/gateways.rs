//! idgate behind gateways other than Nginx's `auth_request` (`/forward-auth`, see
//! `docs/gateways.md`): Caddy's `forward_auth` end to end with the shipped example and Debian's
//! caddy; Traefik's `forwardAuth` contract by the requests Traefik sends (Traefik is not
//! installed here); ingress-nginx's `auth-url`/`auth-signin` with plain Nginx configured as
//! ingress-nginx generates it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::caddy::Caddy;
use common::*;

/// Route rules for the gateways' tests: `/admin/` for `admin` members, `/public/` for anyone,
/// the rest for any session.
const RULES: &str = "[authorization]\n\
    [[authorization.routes]]\npath = \"/admin/\"\nexpression = \"groups.admin\"\n\
    [[authorization.routes]]\npath = \"/public/\"\npublic = true\n\
    [[authorization.routes]]\npath = \"/\"\nexpression = \"true\"\n";

/// IdP, idgate and Caddy in front of the echo app: the site is Caddy's. Only 127.0.0.1 (Caddy,
/// and the tests' own direct requests) is a trusted peer.
struct CaddyStack {
    _dir: tempfile::TempDir,
    caddy: Caddy,
    idgate: Idgate,
    idp: Idp,
}

fn caddy_stack(access_ttl: &'static str) -> CaddyStack {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(
        &[
            format!("{site}/web-login/oauth/callback"),
            format!("{site}/web-login/callback"),
        ],
        &["--post-logout-redirect-uri", &format!("{site}/")],
    );
    let setup = Setup {
        access_ttl,
        extra: RULES,
        trusted_peers: r#"["127.0.0.1/32"]"#,
        ..Setup::default()
    };
    let config = config_toml(&setup, dir.path(), &site, &idp.issuer);
    let idgate = Idgate::start(dir.path(), &config);
    let caddy = Caddy::start(&dir.path().join("caddy"), port, idgate.addr, "web");
    CaddyStack {
        _dir: dir,
        caddy,
        idgate,
        idp,
    }
}

/// The login through the gateway at `site`, starting at `path`: the protected page's redirect,
/// `/authorize`, the IdP's form, the callback page and `/oauth/token`. Returns the first
/// redirect's `Location` as sent.
async fn login_through(
    site: &str,
    issuer: &str,
    browser: &Browser,
    path: &str,
    who: &str,
) -> String {
    let resp = browser.navigate(&format!("{site}{path}")).await;
    assert_eq!(
        resp.status(),
        302,
        "an anonymous navigation is sent to log in"
    );
    let first = location(&resp);
    let authorize = reqwest::Url::parse(site).unwrap().join(&first).unwrap();
    let resp = browser.navigate(authorize.as_str()).await;
    assert_eq!(resp.status(), 302, "/authorize through the gateway");
    let idp_url = location(&resp);
    assert!(idp_url.starts_with(issuer), "{idp_url}");
    let callback = browser
        .login_at_idp(&idp_url, who, &format!("{site}/web-login/"))
        .await;
    let page = browser.navigate(&callback).await;
    assert_eq!(page.status(), 200, "the callback page through the gateway");
    let resp = browser.exchange(site, &callback).await;
    assert_eq!(resp.status(), 200, "/oauth/token through the gateway");
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_logs_in_passes_the_identity_renews_refuses_and_logs_out() {
    let mut stack = caddy_stack("2s");
    let site = stack.caddy.site();
    let browser = Browser::new();

    // An API call without a session: 401 JSON, passed on by Caddy as idgate answered it.
    let resp = browser
        .client
        .get(format!("{site}/docs/a"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"].is_string() || body["message"].is_string(),
        "{body}"
    );

    // A browser: 302 to the login on the forwarded origin, then the whole login through Caddy.
    let first = login_through(&site, &stack.idp.issuer, &browser, "/docs/a?x=1", "alice").await;
    assert_eq!(
        first,
        format!("{site}/authorize?appId=web&providerId=dev&redirect=%2Fdocs%2Fa%3Fx%3D1"),
        "the login's Location is absolute on the (allowed) forwarded origin"
    );

    // The upstream sees the identity, from idgate; a header the client makes up is replaced.
    let resp = browser
        .client
        .get(format!("{site}/docs/a"))
        .header("miauserid", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = echoed(&resp.text().await.unwrap());
    let user = seen["miauserid"].clone();
    assert!(!user.is_empty() && user != "mallory", "{seen:?}");
    assert!(seen["miausergroups"].contains("users"), "{seen:?}");

    // A route rule refuses: 403 JSON.
    let resp = browser.navigate(&format!("{site}/admin/x")).await;
    assert_eq!(resp.status(), 403);

    // A public route, anonymous: the client's own identity headers never reach the upstream.
    let anonymous = Browser::new();
    let resp = anonymous
        .client
        .get(format!("{site}/public/p"))
        .header("miauserid", "mallory")
        .header("miausergroups", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = echoed(&resp.text().await.unwrap());
    assert_eq!(seen["miauserid"], "", "{seen:?}");
    assert_eq!(seen["miausergroups"], "", "{seen:?}");

    // Renewal: once the token expires, the browser is sent back with a renewed cookie.
    let before = browser.cookie(&site, "sid").unwrap();
    let exp = jwt_claims(&before)["exp"].as_i64().unwrap();
    while idgate::now_secs() <= exp + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let resp = browser.navigate(&format!("{site}/docs/b?y=2")).await;
    assert_eq!(
        resp.status(),
        307,
        "a renewed session goes back with its cookie"
    );
    assert_eq!(location(&resp), format!("{site}/docs/b?y=2"));
    let after = browser.cookie(&site, "sid").unwrap();
    assert_ne!(after, before, "the renewed token reached the browser");
    let resp = browser.navigate(&format!("{site}/docs/b?y=2")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(echoed(&resp.text().await.unwrap())["miauserid"], user);

    // Logout through Caddy: the session ends, the next navigation goes to the login again.
    let resp = browser.navigate(&format!("{site}/logout")).await;
    assert!(
        resp.status().is_redirection() || resp.status() == 200,
        "{}",
        resp.status()
    );
    let resp = browser.navigate(&format!("{site}/docs/a")).await;
    assert_eq!(resp.status(), 302);
    // Even the token kept from before the logout opens nothing now.
    let resp = Browser::new()
        .client
        .get(format!("{site}/docs/a"))
        .header("authorization", format!("Bearer {after}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(stack.idgate.proc.is_running());
}
