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
    let idp = Idp::for_site(&site, &["--post-logout-redirect-uri", &format!("{site}/")]);
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
/// redirect's `Location` as sent, and where `/oauth/token` sends the browser back to.
async fn login_through(
    site: &str,
    issuer: &str,
    browser: &Browser,
    path: &str,
    who: &str,
) -> (String, Option<String>) {
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
    let back = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (first, back)
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
    let (first, back) =
        login_through(&site, &stack.idp.issuer, &browser, "/docs/a?x=1", "alice").await;
    assert_eq!(back.as_deref(), Some("/docs/a?x=1"));
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

    // Paths that Caddy or the application could read as `/admin/…`, sent byte for byte: never
    // let through for a session the rule refuses (idgate refuses what is not canonical).
    let cookie = format!("sid={}", browser.cookie(&site, "sid").unwrap());
    for target in [
        "/public/../admin/x",
        "/public/%2e%2e/admin/x",
        "/public/..%2Fadmin/x",
        "/public%2F..%2Fadmin/x",
        "/public//../admin/x",
    ] {
        let r = raw::send(stack.caddy.port, "GET", target, &[("cookie", &cookie)]);
        assert!(
            r.status == 400 || r.status == 403,
            "{target}: {} {}",
            r.status,
            r.body
        );
    }

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

/// A question as Traefik's `forwardAuth` asks it: GET to the configured address, the
/// client's own headers, and the request described in `X-Forwarded-*` (Traefik itself is not
/// installed here; its documented contract is what these requests follow).
async fn traefik_asks(
    client: &reqwest::Client,
    address: &str,
    (method, proto, host, uri): (&str, &str, &str, &str),
    client_headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client
        .get(address)
        .header("x-forwarded-method", method)
        .header("x-forwarded-proto", proto)
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
        .header("x-forwarded-for", "192.0.2.7");
    for (k, v) in client_headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

const NAVIGATION: (&str, &str) = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forward_auth_contract_and_what_a_client_cannot_change() {
    let (_dir, idgate) = start_idgate_alone(Setup {
        extra: RULES,
        trusted_peers: r#"["127.0.0.1/32"]"#,
        ..Setup::default()
    });
    // The harness's site, the app's allowed redirect origin.
    let host = "127.0.0.1:8080";
    let address = idgate.url("/forward-auth?app=web");
    let client = Browser::new().client;
    let user = mint(&idgate, "u-1", "users");
    let admin = mint(&idgate, "u-2", "users,admin");
    let sid = |t: &str| format!("sid={t}");

    // A navigation without a session: 302 to the login, absolute on the forwarded origin
    // (Traefik would prefix a relative one with idgate's own address).
    let r = traefik_asks(
        &client,
        &address,
        ("GET", "http", host, "/docs/a?x=1"),
        &[NAVIGATION],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        "http://127.0.0.1:8080/authorize?appId=web&providerId=dev&redirect=%2Fdocs%2Fa%3Fx%3D1"
    );
    // A host the client chose that is not one of the app's: never an absolute Location there.
    for evil in ["evil.example", "127.0.0.1:8081", "evil.example:8080"] {
        let r = traefik_asks(
            &client,
            &address,
            ("GET", "https", evil, "/docs/a"),
            &[NAVIGATION],
        )
        .await;
        assert_eq!(r.status(), 302, "{evil}");
        let loc = location(&r);
        assert!(loc.starts_with("/authorize?"), "{evil}: {loc}");
    }
    // A script's call, or a POST: 401 JSON, no Location.
    let r = traefik_asks(
        &client,
        &address,
        ("POST", "http", host, "/docs/a"),
        &[NAVIGATION],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("location").is_none());
    let r = traefik_asks(
        &client,
        &address,
        ("GET", "http", host, "/docs/a"),
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/json");

    // A session: 200 with the identity headers; a route rule's 403 is JSON.
    let r = traefik_asks(
        &client,
        &address,
        ("GET", "http", host, "/docs/a"),
        &[("cookie", &sid(&user))],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["mia-userid"], "u-1");
    let r = traefik_asks(
        &client,
        &address,
        ("DELETE", "http", host, "/admin/x"),
        &[("cookie", &sid(&user))],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = traefik_asks(
        &client,
        &address,
        ("DELETE", "http", host, "/admin/x"),
        &[("authorization", &format!("Bearer {admin}"))],
    )
    .await;
    assert_eq!(r.status(), 200);
    // An anonymous request on a public route: 200, every identity header present and empty
    // (a gateway copying them replaces whatever the client sent).
    let r = traefik_asks(
        &client,
        &address,
        ("GET", "http", host, "/public/p"),
        &[("miauserid", "mallory")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["mia-userid"], "");

    // What a client sends cannot change the decision: `/auth`'s headers, an app, the other
    // gateway style's description are all ignored here.
    let r = traefik_asks(
        &client,
        &address,
        ("GET", "http", host, "/admin/x"),
        &[
            ("cookie", &sid(&user)),
            ("original-request-uri", "/public/p"),
            ("x-original-uri", "/public/p"),
            ("x-original-url", "http://127.0.0.1:8080/public/p"),
            ("idgate-app", "other"),
            ("client-type", "backoffice"),
            ("isbackoffice", "true"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = traefik_asks(
        &client,
        &address,
        ("GET", "http", host, "/docs/a"),
        &[
            ("original-request-uri", "/public/p"),
            ("accept", "application/json"),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    // Nor can `/auth` be told about a request in `X-Forwarded-*`: it decides on `/` here.
    let r = client
        .get(idgate.url("/auth"))
        .header("idgate-app", "web")
        .header("x-forwarded-uri", "/public/p")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A path the gateway could route elsewhere than it is judged is refused, never judged
    // looser: dot segments, encoded slashes, backslashes; and malformed descriptions.
    for (what, described) in [
        ("dot segment", ("GET", "http", host, "/public/../admin/x")),
        (
            "encoded dot segment",
            ("GET", "http", host, "/public/%2e%2e/admin/x"),
        ),
        (
            "encoded slash",
            ("GET", "http", host, "/public%2F..%2Fadmin/x"),
        ),
        ("empty segment", ("GET", "http", host, "/public//admin")),
        ("backslash", ("GET", "http", host, "/public\\..\\admin")),
        ("relative", ("GET", "http", host, "admin/x")),
        (
            "absolute",
            ("GET", "http", host, "http://127.0.0.1:8080/public/p"),
        ),
        ("protocol", ("GET", "ftp", host, "/public/p")),
        ("method", ("get", "http", host, "/public/p")),
        (
            "host with user",
            ("GET", "http", "a@127.0.0.1:8080", "/public/p"),
        ),
        (
            "host with path",
            ("GET", "http", "127.0.0.1:8080/x", "/public/p"),
        ),
    ] {
        let r = traefik_asks(&client, &address, described, &[("cookie", &sid(&admin))]).await;
        assert_eq!(r.status(), 400, "{what}");
    }
    let r = client
        .get(&address)
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no X-Forwarded-Uri");
    let r = client
        .get(&address)
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", "/public/p")
        .header("x-forwarded-uri", "/admin/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "X-Forwarded-Uri twice");

    // Only trusted peers may ask: a client reaching idgate itself gets 403, session or not.
    let outsider = Browser::from_address("127.0.0.2").client;
    let r = traefik_asks(
        &outsider,
        &address,
        ("GET", "http", host, "/public/p"),
        &[("cookie", &sid(&admin))],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/json");
}

/// Nginx configured as ingress-nginx generates it for an Ingress with the annotations
/// `nginx.ingress.kubernetes.io/auth-url: http://IDGATE/forward-auth?app=web&headers=ingress-nginx`,
/// `auth-signin: SITE/authorize?appId=web&providerId=dev` and `auth-response-headers:
/// Mia-Userid, Mia-Groups, Mia-Userproperties`, written after the controller's template
/// (`rootfs/etc/nginx/template/nginx.tmpl`: the `_external-auth` location, the protected
/// location's `auth_request` lines, the `@…` sign-in location), plus a second Ingress without
/// auth routing idgate's login endpoints to idgate.
fn ingress_nginx_conf(
    prefix: &std::path::Path,
    port: u16,
    idgate: std::net::SocketAddr,
    echo_port: u16,
) -> String {
    let p = prefix.display();
    format!(
        r#"daemon off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {p}/tmp/client_body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;

    server {{
        listen 127.0.0.1:{port};

        # ingress-nginx sets $escaped_request_uri with set_escape_uri (the set-misc module,
        # not in Debian's nginx); the paths this test visits need no escaping.
        set $escaped_request_uri $request_uri;

        # The Ingress without auth: idgate's own endpoints.
        location ~ ^/(authorize|web-login|oauth/token|refreshtoken|logout|me/sessions)(/|$) {{
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_pass http://{idgate};
        }}

        # Generated for `auth-url`.
        location = /_external-auth-Lw-Prefix {{
            internal;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Proto "";
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header Host 127.0.0.1;
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Sent-From "nginx-ingress-controller";
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Auth-Request-Redirect $request_uri;
            proxy_buffering off;
            proxy_http_version 1.1;
            proxy_pass_request_headers on;
            client_max_body_size 1m;
            proxy_pass http://{idgate}/forward-auth?app=web&headers=ingress-nginx;
        }}

        # Generated for `auth-signin` (the redirect parameter: `rd`, auth-signin-redirect-param).
        location @64e1e9bd5e0e2e3ab0e7fba7bcb3e3ce4d3fbd2c {{
            internal;
            add_header Set-Cookie $auth_cookie;
            return 302 http://127.0.0.1:{port}/authorize?appId=web&providerId=dev&rd=$scheme://$http_host$escaped_request_uri;
        }}

        location / {{
            auth_request /_external-auth-Lw-Prefix;
            auth_request_set $auth_cookie $upstream_http_set_cookie;
            add_header Set-Cookie $auth_cookie;
            auth_request_set $authHeader0 $upstream_http_mia_userid;
            proxy_set_header 'Mia-Userid' $authHeader0;
            auth_request_set $authHeader1 $upstream_http_mia_groups;
            proxy_set_header 'Mia-Groups' $authHeader1;
            auth_request_set $authHeader2 $upstream_http_mia_userproperties;
            proxy_set_header 'Mia-Userproperties' $authHeader2;
            error_page 401 = @64e1e9bd5e0e2e3ab0e7fba7bcb3e3ce4d3fbd2c;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:{echo_port};
        }}
    }}

    # The application: echoes what it received.
    server {{
        listen 127.0.0.1:{echo_port};
        location / {{
            default_type text/plain;
            return 200 "uri=$request_uri\nmiauserid=$http_mia_userid\nmiausergroups=$http_mia_groups\n";
        }}
    }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_nginx_auth_url_and_auth_signin() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let idp = Idp::for_site(&site, &[]);
    let setup = Setup {
        access_ttl: "2s",
        extra: RULES,
        trusted_peers: r#"["127.0.0.1/32"]"#,
        ..Setup::default()
    };
    let config = config_toml(&setup, dir.path(), &site, &idp.issuer);
    let idgate = Idgate::start(dir.path(), &config);
    let prefix = dir.path().join("nginx");
    for d in ["logs", "tmp"] {
        std::fs::create_dir_all(prefix.join(d)).unwrap();
    }
    let echo_port = free_port();
    std::fs::write(
        prefix.join("nginx.conf"),
        ingress_nginx_conf(&prefix, port, idgate.addr, echo_port),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(which("nginx").expect("nginx"));
    cmd.arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"));
    cmd.arg("-e").arg(prefix.join("logs/error.log"));
    let mut nginx = Proc::spawn_logging_to("nginx", &mut cmd, &prefix.join("logs/error.log"));
    nginx.ready_on_port(port);

    // The sign-in: ingress-nginx's own redirect, with `rd` the absolute URL to come back to;
    // /authorize takes `rd` as its `redirect`.
    let browser = Browser::new();
    let (first, back) = login_through(&site, &idp.issuer, &browser, "/docs/a", "alice").await;
    assert_eq!(back, Some(format!("{site}/docs/a")), "back to `rd`");
    assert_eq!(
        first,
        format!("{site}/authorize?appId=web&providerId=dev&rd={site}/docs/a")
    );
    let resp = browser.navigate(&format!("{site}/docs/a")).await;
    assert_eq!(resp.status(), 200);
    let seen = echoed(&resp.text().await.unwrap());
    let user = seen["miauserid"].clone();
    assert!(!user.is_empty(), "{seen:?}");
    assert!(seen["miausergroups"].contains("users"), "{seen:?}");

    // A route rule refuses with 403; a client's own X-Original-URL is replaced by Nginx's.
    let resp = browser.navigate(&format!("{site}/admin/x")).await;
    assert_eq!(resp.status(), 403);
    let resp = browser
        .client
        .get(format!("{site}/admin/x"))
        .header("x-original-url", format!("{site}/public/p"))
        .header("x-forwarded-uri", "/public/p")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Renewal: the 200 carries the renewed cookie, which ingress-nginx adds to the answer.
    let before = browser.cookie(&site, "sid").unwrap();
    let exp = jwt_claims(&before)["exp"].as_i64().unwrap();
    while idgate::now_secs() <= exp + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let resp = browser.navigate(&format!("{site}/docs/b")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(echoed(&resp.text().await.unwrap())["miauserid"], user);
    assert_ne!(browser.cookie(&site, "sid").unwrap(), before, "renewed");

    // A browser without a session, or with a made-up one, is sent to sign in.
    let resp = Browser::new()
        .client
        .get(format!("{site}/docs/a"))
        .header("cookie", "sid=made.up.token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert!(location(&resp).contains("/authorize?appId=web"));
}
