//! The security boundary, tried as an attacker on the Internet would: every request goes through
//! the real Nginx with the shipped snippets, as `nginx/example-site.conf` uses them, in front of
//! the idgate binary and the real IdP. Paths that HTTP clients would normalise are written raw
//! on the socket (`common::raw`).
//!
//! Each test sends the attack, asserts the refusal, and then that nothing changed: the victim's
//! session still opens its pages, no revocation was logged, the daemon answers `/-/healthz`.
//! Issue 9 lists what each test stands for; `docs/security.md` maps them to the threat model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::raw::{self, RawResponse};
use common::*;

/// The attack fixture's rules: `/admin/` for admins, `/public/` open for GET, `/bo/` only as
/// backoffice, `/cms/` only for client type `cms`, everything else for any session.
fn attack_setup() -> Setup {
    let line = format!("mia_auth = \"{}\"", fixture("attacks/auth.json").display());
    Setup {
        extra: Box::leak(line.into_boxed_str()),
        ..Setup::default()
    }
}

/// A protected Nginx location, for `Setup::nginx_locations`: `sets` are its `set` lines.
fn protected_location(path: &str, sets: &[(&str, &str)]) -> String {
    let sets: String = sets
        .iter()
        .map(|(var, value)| format!("        set ${var} \"{value}\";\n"))
        .collect();
    format!(
        "    location {path} {{\n{sets}        include {}/idgate-protect.conf;\n        \
         proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n",
        repo().join("nginx").display()
    )
}

/// The `Cookie` header of a browser's session at `site`.
fn session_cookie(browser: &Browser, site: &str) -> String {
    format!("sid={}", browser.cookie(site, "sid").expect("a session"))
}

/// The whole stack with `setup`, and the session cookie of `alice`, a `users` member who
/// logged in through it: the victim whose session every attack must leave alone.
async fn stack_with_alice(setup: Setup) -> (Stack, String) {
    let stack = Stack::start_with(setup);
    let alice = Browser::new();
    assert_eq!(login(&stack, &alice, "/", "alice").await.status(), 200);
    let cookie = session_cookie(&alice, &stack.site());
    (stack, cookie)
}

/// Nothing changed: the session still opens a protected page, idgate logged no revocation and
/// answers its health check.
async fn assert_unharmed(stack: &mut Stack, cookie: &str) {
    let page = raw::send(
        stack.nginx.port,
        "GET",
        "/still-mine",
        &[("cookie", cookie), ("accept", "application/json")],
    );
    assert_eq!(page.status, 200, "the session still opens its pages");
    assert!(!echoed(&page.body)["miauserid"].is_empty());
    let log = stack.idgate.log_caught_up().await;
    for revocation in [
        "sessions revoked by an administrator",
        "presented twice",
        ": logout ",
        "back-channel logout user",
        "no longer in the users store",
    ] {
        assert!(
            !log.contains(revocation),
            "nothing was revoked: {revocation}"
        );
    }
    assert!(stack.idgate.proc.is_running(), "the daemon is alive");
    let health = raw::send(stack.idgate.addr.port(), "GET", "/-/healthz", &[]);
    assert_eq!(health.status, 200);
}

/// A response that came from idgate's decision, admin or operator endpoints.
fn leaked_internal(r: &RawResponse) -> Option<&'static str> {
    if ["mia-allowed", "mia-userid", "mia-groups", "idgate-token"]
        .iter()
        .any(|h| r.header(h).is_some())
    {
        return Some("a decision's headers");
    }
    if r.body.contains("idgate_requests_total") || r.body.contains("# HELP") {
        return Some("the metrics");
    }
    if r.body.contains("\"revoked\"") {
        return Some("an admin action");
    }
    if r.body.contains("\"checks\"") {
        return Some("the check-up");
    }
    if r.body.contains("\"provider\":{") || r.body.contains("\"idToken\"") {
        return Some("the session's IdP tokens (/tokeninfo, /provider/idtoken)");
    }
    if r.status == 204 {
        return Some("an admin action (DELETE /expired-sessions answers 204)");
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_stay_internal_whatever_the_raw_path() {
    // Worst case on purpose: Nginx's own address is an admin peer, so only the path handling
    // stands between a client and `DELETE /sessions/…`.
    let (mut stack, cookie) = stack_with_alice(Setup {
        extra_server: "admin_peers = [\"127.0.0.1/32\"]",
        ..attack_setup()
    })
    .await;
    let uid = stack.idgate.first_user_id();

    let publics = [
        "authorize",
        "web-login",
        "web-login/oauth/callback",
        "web-login/callback",
        "web-login/callback.js",
        "web-login/finish",
        "web-login/static/x.css",
        "oauth/token",
        "refreshtoken",
        // (`logout` is left out: a client's own session cookie on /logout logs it out, as it
        // should.)
        "userinfo",
        "apps/web/providers",
        "backchannel-logout/web/dev",
        ".well-known/jwks.json",
    ];
    let sessions = format!("sessions/{uid}");
    let internals = [
        "auth",
        "auth/true",
        "auth/groups.users",
        sessions.as_str(),
        "-/metrics",
        "-/check-up",
        "-/ready",
        // Mia's: they hand out the session's IdP tokens, and an admin purge.
        "tokeninfo",
        "provider/idtoken",
        "expired-sessions",
    ];
    // Ways up one segment, as Nginx, a servlet container or a second decoding would read them.
    let ups = [
        "../",
        "..%2F",
        "..%2f",
        "%2e%2e/",
        "%2E%2E%2F",
        ".%2e/",
        "%2e./",
        "..;/",
        "..%3B/",
        "..%5C",
        "..%5c",
        "..\\",
        "%252e%252e%252f",
        "..%252F",
        "..%c0%af",
        ".%00./",
    ];
    let mut sent = 0;
    for internal in internals {
        let depth = internal.split('/').count();
        for public in publics {
            for up in ups {
                let target = format!("/{internal}/{}{public}", up.repeat(depth));
                for method in ["GET", "POST", "DELETE"] {
                    let r = raw::send(
                        stack.nginx.port,
                        method,
                        &target,
                        &[("cookie", &cookie), ("accept", "application/json")],
                    );
                    sent += 1;
                    if let Some(what) = leaked_internal(&r) {
                        panic!("{method} {target} reached {what}: {r:?}");
                    }
                }
            }
        }
        // The internal path itself, plainly and in disguise.
        for target in [
            format!("/{internal}"),
            format!("//{internal}"),
            format!("/{internal}/"),
            format!("/./{internal}"),
            format!("/%2F{internal}"),
            format!("/web-login/../{internal}"),
            format!("/_idgate/{internal}"),
            format!("/_idgate/auth/..%2F..%2F{internal}"),
        ] {
            for method in ["GET", "DELETE"] {
                let r = raw::send(
                    stack.nginx.port,
                    method,
                    &target,
                    &[("cookie", &cookie), ("accept", "application/json")],
                );
                sent += 1;
                if let Some(what) = leaked_internal(&r) {
                    panic!("{method} {target} reached {what}: {r:?}");
                }
            }
        }
    }
    assert!(sent > 1000, "{sent} attack requests");
    assert_unharmed(&mut stack, &cookie).await;

    // The second line of defence, idgate itself: a path not in canonical form is refused
    // before dispatch, even from a trusted peer.
    for target in [
        "/web-login/..%2Fauth",
        "/authorize/../auth",
        "/apps/web/..%2F..%2F-/metrics",
        "/sessions/x;/..",
        "//auth",
        "/auth/%2e%2e/sessions/x",
    ] {
        let r = raw::send(stack.idgate.addr.port(), "DELETE", target, &[]);
        assert_eq!(r.status, 400, "{target}: {r:?}");
        assert!(r.body.contains("canonical"), "{r:?}");
    }
    assert_unharmed(&mut stack, &cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_stops_the_daemon() {
    // A location whose own rule nests 3900 deep (about the longest parameter Nginx reads):
    // the operator's mistake must not abort idgate either (the parser refuses it: 403).
    let deep = format!("{}true", "!".repeat(3900));
    let locations = format!(
        "    location /deep/ {{\n        auth_request \"/_idgate/auth/{deep}\";\n        include {}/idgate-protect-rule.conf;\n        \
         proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n",
        repo().join("nginx").display()
    );
    let (mut stack, cookie) = stack_with_alice(Setup {
        nginx_locations: locations,
        ..attack_setup()
    })
    .await;

    let headers = [("cookie", cookie.as_str()), ("accept", "application/json")];
    let r = raw::send(stack.nginx.port, "GET", "/deep/x", &headers);
    assert_eq!(r.status, 403, "{r:?}");
    // An anonymous client tries to hand idgate a deep rule through a public location.
    for opener in ["(", "!"] {
        let rule = opener.repeat(7000);
        for target in [
            format!("/auth/{rule}/..%2F..%2Fauthorize"),
            format!("/auth/{rule}%2F..%2F..%2Fauthorize"),
            format!("/_idgate/auth/{rule}"),
            format!("/auth/{rule}"),
        ] {
            let r = raw::send(stack.nginx.port, "GET", &target, &[]);
            assert!(leaked_internal(&r).is_none(), "{r:?}");
        }
    }
    // Step-up parameters past their limits, from an anonymous client: each refused by name.
    let many = vec!["loa"; 17].join("%20");
    let long = "a".repeat(257);
    for (query, name) in [
        (format!("acr_values={many}"), "acr_values"),
        (format!("acr_values={long}"), "acr_values"),
        ("acr_values=lo%22a".to_owned(), "acr_values"),
        ("max_age=99999999999999999999999".to_owned(), "max_age"),
        ("max_age=-1".to_owned(), "max_age"),
        ("prompt=none".to_owned(), "prompt"),
    ] {
        let target = format!("/authorize?appId=web&providerId=dev&redirect=%2F&{query}");
        let r = raw::send(
            stack.nginx.port,
            "GET",
            &target,
            &[("accept", "application/json")],
        );
        assert_eq!(r.status, 400, "{target}: {r:?}");
        assert!(r.body.contains(name), "{target}: {r:?}");
    }
    // A user's sessions: an oversized id, and a huge Accept-Language on the pages.
    let id = "x".repeat(4_000);
    let r = raw::send(
        stack.nginx.port,
        "DELETE",
        &format!("/me/sessions/{id}"),
        &[
            ("cookie", cookie.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
    );
    assert_eq!(r.status, 404, "{r:?}");
    let languages = vec!["it;q=0.9"; 700].join(",");
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/web-login?appId=web",
        &[
            ("accept", "text/html"),
            ("accept-language", languages.as_str()),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    // A request line far beyond any limit.
    let huge = format!("/{}", "a".repeat(100_000));
    let r = raw::send(stack.nginx.port, "GET", &huge, &[]);
    assert!(r.status >= 400, "{}", r.status);
    assert_unharmed(&mut stack, &cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_never_describes_its_own_request() {
    // The operator states backoffice for /bo/op/ and client type cms for /cms/op/; the rest of
    // /bo/ and /cms/ is served by `location /`, which states nothing.
    let locations = protected_location("/bo/op/", &[("idgate_backoffice", "true")])
        + &protected_location("/cms/op/", &[("idgate_client_type", "cms")]);
    let (mut stack, cookie) = stack_with_alice(Setup {
        nginx_locations: locations,
        ..attack_setup()
    })
    .await;
    let get = |target: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![("cookie", cookie.as_str()), ("accept", "application/json")];
        headers.extend_from_slice(extra);
        raw::send(stack.nginx.port, "GET", target, &headers).status
    };

    // The operator's locations decide.
    assert_eq!(get("/bo/op/x", &[]), 200);
    assert_eq!(get("/cms/op/x", &[]), 200);
    // Everywhere else, whatever the client claims about itself adds nothing.
    let claims: &[&[(&str, &str)]] = &[
        &[],
        &[("isbackoffice", "true")],
        &[("isBackOffice", "1")],
        &[("client-type", "cms")],
        &[("Client-Type", "cms"), ("isbackoffice", "true")],
        &[
            ("idgate-app", "web"),
            ("isbackoffice", "true"),
            ("client-type", "cms"),
        ],
    ];
    for claim in claims {
        for path in ["/bo/x", "/cms/x", "/bo/opx", "/cms/op.x"] {
            assert_eq!(get(path, claim), 403, "{path} with {claim:?}");
        }
    }
    // The request being decided is Nginx's, not the one the client describes.
    for (name, value) in [
        ("original-request-uri", "/public/x"),
        ("x-original-uri", "/public/x"),
        ("original-request-method", "GET"),
        ("x-original-method", "GET"),
    ] {
        let r = raw::send(
            stack.nginx.port,
            "GET",
            "/admin/panel",
            &[
                ("cookie", cookie.as_str()),
                ("accept", "application/json"),
                (name, value),
            ],
        );
        assert_eq!(r.status, 403, "{name}: {r:?}");
        let r = raw::send(
            stack.nginx.port,
            "POST",
            "/public/x",
            &[("accept", "application/json"), (name, value)],
        );
        assert_eq!(r.status, 401, "anonymous POST with {name}: {r:?}");
    }
    // A forged host never makes the login URL point elsewhere.
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/page",
        &[
            ("accept", "text/html"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
        ],
    );
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap();
    assert!(location.starts_with("/authorize?"), "{location}");
    assert_unharmed(&mut stack, &cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opens_only_its_own_apps_locations() {
    // Two apps on one site and one IdP; `web` is the default app, `/partners/` is bound to
    // `partners` by the operator.
    let provider = |app: &str| {
        format!(
            "[apps.{app}.providers.dev]\ntype = \"oidc\"\nissuer_url = \"{{{{ISSUER}}}}\"\nclient_id = \"idgate\"\n\
             client_secret = \"{CLIENT_SECRET}\"\nscope = [\"openid\", \"profile\", \"email\"]\n"
        )
    };
    let app = |id: &str| {
        format!(
            "[apps.{id}]\nrealm = \"{id}\"\nissuer = \"{{{{SITE}}}}/{id}\"\nredirect_url = \"{{{{SITE}}}}/web-login/oauth/callback\"\n\
             website = true\ndefault_groups = [\"users\"]\nallowed_redirects = [\"{{{{SITE}}}}/\"]\n{}\n",
            provider(id)
        )
    };
    let apps = format!("{}{}", app("web"), app("partners"));
    let mut stack = Stack::start_with(Setup {
        extra_server: "default_app = \"web\"",
        apps: Some(apps),
        nginx_locations: protected_location("/partners/", &[("idgate_app", "partners")]),
        ..attack_setup()
    });
    let site = stack.site();

    let web_user = Browser::new();
    assert_eq!(login(&stack, &web_user, "/", "wendy").await.status(), 200);
    let web_cookie = session_cookie(&web_user, &site);
    let partner = Browser::new();
    assert_eq!(
        login(&stack, &partner, "/partners/", "paula")
            .await
            .status(),
        200
    );
    let partner_cookie = session_cookie(&partner, &site);

    let status = |target: &str, cookie: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![("cookie", cookie), ("accept", "application/json")];
        headers.extend_from_slice(extra);
        raw::send(stack.nginx.port, "GET", target, &headers).status
    };
    // Each session opens its own app's locations…
    assert_eq!(status("/docs", &web_cookie, &[]), 200);
    assert_eq!(status("/partners/docs", &partner_cookie, &[]), 200);
    // …and nothing of the other app, whatever it claims.
    for claim in [
        &[][..],
        &[("idgate-app", "partners")][..],
        &[("idgate-app", "web")][..],
    ] {
        assert_eq!(
            status("/partners/docs", &web_cookie, claim),
            401,
            "{claim:?}"
        );
        assert_eq!(status("/docs", &partner_cookie, claim), 401, "{claim:?}");
    }
    // A browser of the wrong app is sent to the location's app's login.
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/partners/docs",
        &[("cookie", &web_cookie), ("accept", "text/html")],
    );
    assert_eq!(r.status, 302);
    assert!(
        r.header("location").unwrap().contains("appId=partners"),
        "{r:?}"
    );
    assert_unharmed(&mut stack, &web_cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_the_fragment_and_dot_segments_do_not_change_the_route() {
    let (mut stack, cookie) = stack_with_alice(attack_setup()).await;
    let headers = [("cookie", cookie.as_str()), ("accept", "application/json")];
    // alice is no admin: every spelling of /admin/panel stays closed to her…
    for target in [
        "/admin/panel",
        "/admin/panel?/public/x",
        "/admin/panel?x=/public/",
        "/admin/panel#/public/x",
        "/admin/panel%23/public/x",
        "/admin/panel%3F/public/x",
        "/public/../admin/panel",
        "/public/./../admin/panel",
        "/public/x/../../admin/panel",
        "/public/%2e%2e/admin/panel",
        "/public/..%2Fadmin/panel",
        "//admin/panel",
        "/./admin/panel",
        "/admin//panel",
        "/admin/./panel",
    ] {
        let r = raw::send(stack.nginx.port, "GET", target, &headers);
        assert!(
            r.status == 403 || r.status == 400 || r.status == 401,
            "{target}: {r:?}"
        );
    }
    // …and an anonymous client does not get the public rule for them.
    for target in ["/admin/panel?/public/", "/public/../admin/panel"] {
        let r = raw::send(
            stack.nginx.port,
            "GET",
            target,
            &[("accept", "application/json")],
        );
        assert_eq!(r.status, 401, "{target}: {r:?}");
    }
    // The control: the public route is public.
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/public/x",
        &[("accept", "application/json")],
    );
    assert_eq!(r.status, 200);
    assert_unharmed(&mut stack, &cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_from_clients_never_reach_the_upstream() {
    let (mut stack, cookie) = stack_with_alice(Setup {
        extra: "[headers]\nprofile = \"oauth2-proxy\"\npass_token = true",
        nginx_locations: format!(
            "    location /o2p/ {{\n        include {0}/idgate-protect.conf;\n        include {0}/idgate-headers-oauth2-proxy.conf;\n        \
             include {0}/idgate-headers-token.conf;\n        proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n",
            repo().join("nginx").display()
        ),
        ..Setup::default()
    }).await;
    let uid = stack.idgate.first_user_id();
    let forged = [
        ("miauserid", "admin"),
        ("MiaUserId", "admin"),
        ("MIAUSERGROUPS", "admin"),
        ("mia_userid", "admin"),
        ("miauserproperties", "{\"name\":\"admin\"}"),
        ("mia-userid", "admin"),
        ("mia-allowed", "1"),
        ("X-Auth-Request-User", "admin"),
        ("x-auth-request_email", "admin@example.test"),
        ("X-Auth-Request-Groups", "admin"),
        ("idgate-token", "forged"),
    ];
    for (name, value) in forged {
        // With a session, the upstream sees the session's identity; anonymous on the public
        // page, it sees none.
        for (target, who) in [("/o2p/x", Some(cookie.as_str())), ("/health", None)] {
            let mut headers = vec![(name, value), ("accept", "application/json")];
            if let Some(c) = who {
                headers.push(("cookie", c));
            }
            let r = raw::send(stack.nginx.port, "GET", target, &headers);
            assert_eq!(r.status, 200, "{target}");
            let echo = echoed(&r.body);
            if who.is_none() {
                for h in [
                    "miauserid",
                    "miausergroups",
                    "miauserproperties",
                    "x-auth-request-user",
                ] {
                    assert_eq!(echo[h], "", "{name} on the public page");
                }
                assert!(!r.body.contains("admin"), "{name} on the public page");
                continue;
            }
            assert_eq!(echo["miauserid"], uid, "{name}");
            assert_eq!(echo["miausergroups"], "users", "{name}");
            assert_eq!(echo["x-auth-request-user"], uid, "{name}");
            assert_ne!(echo["x-auth-request-groups"], "admin", "{name}");
            assert!(echo["authorization"].starts_with("Bearer ey"), "{name}");
            assert!(!r.body.contains("admin@example.test"), "{name}");
        }
    }
    assert_unharmed(&mut stack, &cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_and_user_agents_open_nothing() {
    let (mut stack, cookie) = stack_with_alice(attack_setup()).await;
    for agent in [
        "kube-probe/1.29",
        "GoogleHC/1.0",
        "ELB-HealthChecker/2.0",
        "Consul Health Check",
        "Prometheus/2.51",
        "Googlebot/2.1",
    ] {
        for target in ["/private", "/admin/panel", "/health/../private"] {
            let r = raw::send(
                stack.nginx.port,
                "GET",
                target,
                &[("user-agent", agent), ("accept", "application/json")],
            );
            assert_eq!(r.status, 401, "{agent} {target}");
        }
    }
    // The public health page is exact: nothing below or beside it is public.
    for target in [
        "/health/x",
        "/health/../private",
        "/health%2F..%2Fprivate",
        "/health;/private",
        "/health;x",
        "/health/",
        "/healthz",
        "/-/healthz",
        "/-/ready",
    ] {
        let r = raw::send(
            stack.nginx.port,
            "GET",
            target,
            &[("accept", "application/json")],
        );
        assert_eq!(r.status, 401, "{target}: {r:?}");
    }
    assert_unharmed(&mut stack, &cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idgates_cookies_stay_between_the_browser_and_idgate() {
    let mut stack = Stack::start_with(attack_setup());
    let site = stack.site();
    let alice = Browser::new();
    let token = login(&stack, &alice, "/", "alice").await;
    assert_eq!(token.status(), 200);
    let set: Vec<String> = set_cookies(&token);
    let of = |name: &str| {
        set.iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie: {set:?}"))
            .clone()
    };
    assert!(
        of("refresh_token").contains("Path=/refreshtoken"),
        "{set:?}"
    );
    assert!(of("idgate_renew").contains("HttpOnly"), "{set:?}");
    for c in &set {
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
    }
    let cookie = session_cookie(&alice, &site);
    let renew = alice.cookie(&site, "idgate_renew").unwrap();
    // Whatever else the browser holds reaches the upstream; idgate's cookies do not, in any
    // spelling or number.
    let jar = format!(
        "theme=dark; {cookie}; idgate_renew={renew}; refresh_token=r1; idgate_login=l1; lang=en"
    );
    // However many a protected location's client sends, each goes and the rest stay.
    let crowded = format!("{cookie}; sid=2; sid=3; sid=4; sid=5; keep=1");
    for (sent, upstream) in [
        (jar.as_str(), "theme=dark; lang=en"),
        (crowded.as_str(), "keep=1"),
    ] {
        let r = raw::send(
            stack.nginx.port,
            "GET",
            "/page",
            &[("cookie", sent), ("accept", "application/json")],
        );
        assert_eq!(r.status, 200);
        let got = echoed(&r.body)["cookie"].clone();
        assert_eq!(got.replace(' ', ""), upstream.replace(' ', ""), "{sent}");
    }
    // Cookies in several headers: all are read, all are filtered.
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/page",
        &[
            ("cookie", "theme=dark; idgate_login=l1"),
            ("cookie", cookie.as_str()),
            ("cookie", &format!("lang=en; idgate_renew={renew}")),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        echoed(&r.body)["cookie"].replace(' ', ""),
        "theme=dark;lang=en"
    );
    // A large jar of the site's own beside the session (7 000 bytes: Nginx reads up to 8 KiB a
    // header line) reaches the upstream whole: idgate's answer carries it back, which takes
    // more than Nginx's default 4 KiB for an upstream's headers.
    let big = format!("big={}", "b".repeat(7000));
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/page",
        &[("cookie", &format!("{big}; {cookie}"))],
    );
    assert_eq!(r.status, 200, "{:?}", r.status);
    assert_eq!(echoed(&r.body)["cookie"], big);
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/health",
        &[("cookie", jar.as_str())],
    );
    assert_eq!(
        echoed(&r.body)["cookie"].replace(' ', ""),
        "theme=dark;lang=en",
        "public locations too"
    );
    assert_unharmed(&mut stack, &cookie).await;
}

/// A long Cookie header, idgate's cookie after thousands of empty ones, is still stripped one
/// cookie at a time: the upstream keeps the others, and Nginx logs nothing. With `pcre_jit on;`
/// in nginx.conf the map's expression runs out of JIT stack here, the map falls back to its
/// default, the upstream loses every cookie and Nginx logs the header at `alert`; this test
/// fails then (docs/operations.md, "Leave `pcre_jit` off").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_cookie_header_is_stripped_not_dropped() {
    let mut stack = Stack::start_with(attack_setup());
    let alice = Browser::new();
    assert_eq!(login(&stack, &alice, "/", "alice").await.status(), 200);
    let cookie = session_cookie(&alice, &stack.site());
    let long = format!(
        "theme=dark{} sid=long-header-secret; lang=en",
        ";".repeat(6000)
    );
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/health",
        &[("cookie", long.as_str())],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let got = echoed(&r.body)["cookie"].clone();
    assert!(!got.contains("long-header-secret"), "{got}");
    assert!(
        got.starts_with("theme=dark;") && got.ends_with("lang=en"),
        "the other cookies reach the upstream: {got:.80}"
    );
    let log = std::fs::read_to_string(stack.nginx.prefix.join("logs/error.log")).unwrap();
    let failed = log.lines().find(|l| l.contains("pcre2_match() failed"));
    assert!(
        failed.is_none(),
        "Nginx logged: {:.200}",
        failed.unwrap_or("")
    );
    assert_unharmed(&mut stack, &cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_prefixed_cookies_are_offered() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_toml(
        &Setup {
            extra_session: "cookie_secure = true\nhost_prefix = true",
            ..Setup::default()
        },
        dir.path(),
        "http://127.0.0.1:8080",
        "http://127.0.0.1:1",
    );
    // The dev config's own `cookie_secure = false` goes: the session's lines say true.
    assert!(config.contains("\ncookie_secure = false\n"), "{config}");
    let config = config.replace("\ncookie_secure = false\n", "\n");
    let idgate = Idgate::start(dir.path(), &config);
    let token = mint(&idgate, "u-1", "users");
    let status = |cookie: String| {
        raw::send(idgate.addr.port(), "GET", "/auth", &[("cookie", &cookie)]).status
    };
    assert_eq!(status(format!("__Host-sid={token}")), 200);
    assert_eq!(
        status(format!("sid={token}")),
        401,
        "the plain name is not read"
    );
    let r = raw::send(idgate.addr.port(), "GET", "/logout", &[]);
    let cleared: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    for name in [
        "__Host-sid=",
        "__Host-idgate_renew=",
        "__Secure-refresh_token=",
    ] {
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with(name) && c.contains("Secure")),
            "{name} {cleared:?}"
        );
    }
    // A config that cannot keep the prefix's promises is refused, naming the key.
    let bad = config.replace(
        "host_prefix = true",
        "host_prefix = true\ncookie_domain = \"example.com\"",
    );
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let (code, _, err) = idgate_cmd(&[
        "check-config",
        "--config",
        dir.path().join("bad.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 78);
    assert!(err.contains("session.host_prefix"), "{err}");
}

/// The status `POST /refreshtoken` answers for `token` (in the JSON body).
async fn refresh_status(client: &reqwest::Client, site: &str, token: &str) -> u16 {
    client
        .post(format!("{site}/refreshtoken"))
        .json(&serde_json::json!({ "refreshToken": token }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The renewal secret of session `sid` under the config at `config`: what only the browser
/// that logged in holds. A test that knows it plays an attacker who stole it too.
fn renewal_secret(config: &std::path::Path, sid: &str) -> String {
    let cfg = idgate::config::Config::load(config).unwrap();
    let material = cfg
        .session
        .token_key
        .clone()
        .unwrap_or_else(|| cfg.jwt.signing.secret_bytes().to_vec());
    idgate::crypto::SessionMac::from_key_material(&material).renewal_secret(sid)
}

fn claim(jwt: &str, name: &str) -> String {
    let v = jwt_claims(jwt);
    v[name]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v[name].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_is_never_renewed_whatever_carries_it() {
    let mut stack = Stack::start_with(Setup {
        access_ttl: "2s",
        website: false,
        ..attack_setup()
    });
    let site = stack.site();
    let api = Browser::new();
    let resp = login(&stack, &api, "/", "app").await;
    assert_eq!(resp.status(), 200);
    assert!(
        api.cookie(&site, "sid").is_none(),
        "an API app sets no cookies"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    let jwt = body["accessToken"].as_str().unwrap().to_owned();
    let fresh = format!("sid={jwt}");
    let r = raw::send(stack.nginx.port, "GET", "/x", &[("cookie", &fresh)]);
    assert_eq!(r.status, 200, "the token works while it lives");
    while idgate::now_secs() <= claim(&jwt, "exp").parse::<i64>().unwrap() + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Even with the session's renewal secret (as if stolen too), an API app's token is not
    // renewed: the website check alone refuses it.
    let secret = renewal_secret(&stack.idgate.config, &claim(&jwt, "sid"));
    for cookie in [
        format!("sid={jwt}"),
        format!("sid={jwt}; idgate_renew={secret}"),
    ] {
        let r = raw::send(
            stack.nginx.port,
            "GET",
            "/x",
            &[("cookie", &cookie), ("accept", "application/json")],
        );
        assert_eq!(r.status, 401, "{cookie}");
        assert!(r.header("set-cookie").is_none());
    }
    // The refusal is the website check's (waits for the log line, failing after 10 s).
    stack.idgate.proc.wait_log(&["not a website"]);
    assert!(stack.idgate.proc.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_refresh_token_changes_nothing() {
    // No refresh grace window: the second use below is a reuse at once.
    let mut stack = Stack::start_with(Setup {
        extra_session: "refresh_grace = \"0s\"",
        ..attack_setup()
    });
    let site = stack.site();
    let alice = Browser::new();
    let body: serde_json::Value = login(&stack, &alice, "/", "alice")
        .await
        .json()
        .await
        .unwrap();
    let cookie = session_cookie(&alice, &site);
    let sid = claim(body["accessToken"].as_str().unwrap(), "sid");
    let real = body["refreshToken"].as_str().unwrap().to_owned();
    let (real_body, _) = real.rsplit_once('.').unwrap();
    let client = Browser::new().client;
    // Anyone can read the session id in a JWT; none of these is a refresh token idgate issued.
    let long = format!("{sid}.{}", "x".repeat(5000));
    for forged in [
        format!("{sid}.anything"),
        format!("{sid}.{}", "A".repeat(43)),
        format!("{real_body}.forgedmac"),
        format!("{sid}..."),
        sid.clone(),
        long,
    ] {
        assert_eq!(
            refresh_status(&client, &site, &forged).await,
            401,
            "{forged}"
        );
    }
    assert_unharmed(&mut stack, &cookie).await;
    // The real one still works, once; presenting it again revokes the session.
    assert_eq!(refresh_status(&client, &site, &real).await, 200);
    assert_eq!(refresh_status(&client, &site, &real).await, 401);
    stack.idgate.proc.wait_log(&["presented twice"]);
    let page = raw::send(
        stack.nginx.port,
        "GET",
        "/x",
        &[("cookie", &cookie), ("accept", "application/json")],
    );
    assert_eq!(
        page.status, 401,
        "a replayed refresh token ends the session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_binding_or_session_is_never_adopted() {
    let mut stack = Stack::start_with(attack_setup());
    let site = stack.site();
    // The attacker's own binding value and a session cookie of theirs, planted in the victim's
    // browser (cookie tossing from a sibling subdomain, or a fixation link).
    let attacker = Browser::new();
    assert_eq!(login(&stack, &attacker, "/", "mallory").await.status(), 200);
    let mallory_sid = attacker.cookie(&site, "sid").unwrap();
    let planted = "P".repeat(43);
    let victim = Browser::new();
    let url: reqwest::Url = site.parse().unwrap();
    victim
        .jar
        .add_cookie_str(&format!("idgate_login={planted}; Path=/"), &url);
    victim
        .jar
        .add_cookie_str(&format!("sid={mallory_sid}; Path=/"), &url);

    let start = victim.navigate(&format!("{site}/page")).await;
    assert_eq!(
        start.status(),
        200,
        "the planted session is simply the attacker's"
    );
    let authorize = victim
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&redirect=%2Fpage"
        ))
        .await;
    assert_eq!(authorize.status(), 302);
    let set: Vec<String> = set_cookies(&authorize);
    // Starting a login ends the planted session in this browser…
    assert!(
        set.iter()
            .any(|c| c.starts_with("sid=;") && c.contains("Max-Age=0")),
        "{set:?}"
    );
    // …and binds the new login to a fresh value, not the planted one.
    let binding = set
        .iter()
        .find_map(|c| c.strip_prefix("idgate_login="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    assert!(!binding.starts_with(&planted), "{binding}");
    let callback = victim
        .login_at_idp(
            &location(&authorize),
            "victor",
            &format!("{site}/web-login/"),
        )
        .await;
    // The attacker, who knows the planted value but not the fresh one, cannot redeem the
    // victim's code even holding it (a leaked callback URL).
    let thief = Browser::new();
    thief
        .jar
        .add_cookie_str(&format!("idgate_login={planted}; Path=/"), &url);
    let stolen = thief.exchange(&site, &callback).await;
    assert_eq!(stolen.status(), 400, "{:?}", stolen.text().await);
    // (The state is single use, so the victim starts again and completes a login of their own.)
    let resp = login(&stack, &victim, "/page", "victor").await;
    assert_eq!(resp.status(), 200);
    let new_sid = victim.cookie(&site, "sid").unwrap();
    assert_ne!(new_sid, mallory_sid, "no session fixation");
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/page",
        &[
            ("cookie", &format!("sid={new_sid}")),
            ("accept", "application/json"),
        ],
    );
    assert_eq!(echoed(&r.body)["miauserid"], victim_id(&stack, "victor"));
    assert_unharmed(&mut stack, &format!("sid={mallory_sid}")).await;
}

fn victim_id(stack: &Stack, login: &str) -> String {
    stack
        .idgate
        .users()
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["providerUserId"] == login)
        .unwrap()["userId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_from_the_store_loses_every_session() {
    let stack = Stack::start_with(Setup {
        access_ttl: "2s",
        ..attack_setup()
    });
    let site = stack.site();
    let alice = Browser::new();
    let body: serde_json::Value = login(&stack, &alice, "/", "alice")
        .await
        .json()
        .await
        .unwrap();
    let refresh = body["refreshToken"].as_str().unwrap().to_owned();
    let old = alice.cookie(&site, "sid").unwrap();
    let renew = alice.cookie(&site, "idgate_renew").unwrap();
    let bob = Browser::new();
    let bob_body: serde_json::Value = login(&stack, &bob, "/", "bob").await.json().await.unwrap();
    let bob_refresh = bob_body["refreshToken"].as_str().unwrap().to_owned();

    // An administrator deletes alice and bob from the users store.
    let db = rusqlite::Connection::open(stack.dir.path().join("idgate.db")).unwrap();
    let deleted = db
        .execute(
            "DELETE FROM users WHERE provider_user_id IN ('alice', 'bob')",
            [],
        )
        .unwrap();
    assert_eq!(deleted, 2);
    while idgate::now_secs() <= claim(&old, "exp").parse::<i64>().unwrap() + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Alice's browser: the renewal does not carry her old claims on, it ends the session.
    let cookie = format!("sid={old}; idgate_renew={renew}");
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/page",
        &[("cookie", &cookie), ("accept", "application/json")],
    );
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    // Her refresh token no longer works either: the session is gone.
    let client = Browser::new().client;
    assert_eq!(refresh_status(&client, &site, &refresh).await, 401);
    // Bob's client refreshes: refused, and his session is revoked.
    assert_eq!(refresh_status(&client, &site, &bob_refresh).await, 401);
    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "list",
        "--config",
        stack.idgate.config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let sessions: serde_json::Value = serde_json::from_str(&out).unwrap();
    for s in sessions.as_array().unwrap() {
        assert_eq!(
            s["alive"], false,
            "every session of a removed user ends: {s}"
        );
    }
    stack
        .idgate
        .proc
        .wait_log(&["no longer in the users store"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_logs_carry_no_internals() {
    let (mut stack, cookie) = stack_with_alice(attack_setup()).await;
    let site = stack.site();
    // The IdP goes away: a login fails with a body that names the IdP, not its address.
    let issuer = stack.idp.issuer.clone();
    stack.idp.proc.terminate();
    let client = Browser::new().client;
    let r = client
        .get(format!(
            "{site}/authorize?appId=web&providerId=other&redirect=%2F"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "an unknown provider is the request's fault"
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("providerId"), "{body}");
    // A fresh browser's login needs the IdP's discovery document again only on a new
    // instance; here the metadata is cached, so force an IdP round trip with a code exchange.
    let fake = Browser::new();
    let start = fake
        .navigate(&format!(
            "{site}/authorize?appId=web&providerId=dev&redirect=%2F"
        ))
        .await;
    assert_eq!(start.status(), 302);
    let state = query_param(&location(&start), "state").unwrap();
    let r = fake
        .client
        .post(format!("{site}/oauth/token"))
        .json(&serde_json::json!({ "code": "c0de", "state": state }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    let port = issuer.rsplit(':').next().unwrap();
    for leak in [
        issuer.as_str(),
        "127.0.0.1",
        port,
        "Connection refused",
        "reqwest",
    ] {
        assert!(!body.contains(leak), "{leak} in {body}");
    }
    assert!(body.contains("identity provider"), "{body}");
    // The details go to the log (waits for the line, failing after 10 s).
    stack.idgate.proc.wait_log(&["request failed"]);

    // A client's X-Request-Id never lands in a log line as sent: through Nginx it is replaced
    // by Nginx's own id; sent to idgate directly, anything but a short plain id is replaced.
    let injected = "evil\" user=admin decision=allow";
    let r = raw::send(
        stack.nginx.port,
        "GET",
        "/web-login?appId=web",
        &[("x-request-id", injected)],
    );
    assert_eq!(r.status, 200);
    let r = raw::send(
        stack.idgate.addr.port(),
        "GET",
        "/web-login?appId=web",
        &[("x-request-id", injected)],
    );
    assert_eq!(r.status, 200);
    let r = raw::send(
        stack.idgate.addr.port(),
        "GET",
        "/web-login?appId=web",
        &[("x-request-id", "trace-42.ok_1")],
    );
    assert_eq!(r.status, 200);
    let log = stack.idgate.proc.wait_log(&["trace-42.ok_1"]);
    assert!(!log.contains("user=admin"), "the injected id was logged");
    assert_unharmed(&mut stack, &cookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_slow_inputs_are_refused_without_harm() {
    let (mut stack, cookie) = stack_with_alice(Setup {
        extra_server: "max_connections = 8",
        ..attack_setup()
    })
    .await;
    let site = stack.site();
    let idgate = stack.idgate.addr.port();

    // Credentials larger than idgate reads: /auth refuses them (403) unparsed.
    let big_cookie = format!("{cookie}; junk={}", "j".repeat(20_000));
    let r = raw::send(idgate, "GET", "/auth", &[("cookie", &big_cookie)]);
    assert_eq!(r.status, 403, "{r:?}");
    let big_bearer = format!("Bearer {}", "t".repeat(20_000));
    let r = raw::send(idgate, "GET", "/auth", &[("authorization", &big_bearer)]);
    assert_eq!(r.status, 403, "{r:?}");
    // A request head beyond 64 KiB: 431, and a log line (hyper answers it before any route).
    let r = raw::send(
        idgate,
        "GET",
        "/-/healthz",
        &[("x-junk", &"h".repeat(70_000))],
    );
    assert_eq!(r.status, 431, "{r:?}");
    stack
        .idgate
        .proc
        .wait_log(&["request refused before routing"]);
    // Through Nginx, its own limits answer first (400/413/414/431), never a 500.
    let r = raw::send(stack.nginx.port, "GET", "/page", &[("cookie", &big_cookie)]);
    assert!((400..500).contains(&r.status), "{r:?}");
    // A body over the limit: 413; malformed JSON: 400 naming it; a deep JSON nest: 400.
    let client = Browser::new().client;
    let r = client
        .post(format!("{site}/oauth/token"))
        .header("content-type", "application/json")
        .body(format!("{{\"code\":\"{}\"}}", "c".repeat(20_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for body in [
        nested.as_str(),
        "{\"code\":",
        "{\"code\":1,\"state\":\"s\"}",
    ] {
        let r = client
            .post(format!("http://127.0.0.1:{idgate}/oauth/token"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 400 || r.status() == 413,
            "{}: {}",
            &body[..body.len().min(20)],
            r.status()
        );
        let json: serde_json::Value = r.json().await.unwrap();
        assert!(json["message"].is_string());
    }

    // A body that trickles: 408 after the deadline, the connection freed.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", idgate)).unwrap();
    use std::io::{Read, Write};
    slow.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"co",
    )
    .unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // More connections than `max_connections` wait for a slot instead of exhausting the
    // daemon; once one closes, the waiting one is served.
    let idle: Vec<_> = (0..8)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", idgate)).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut waiting = std::net::TcpStream::connect(("127.0.0.1", idgate)).unwrap();
    waiting
        .write_all(b"GET /-/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(std::time::Duration::from_millis(800)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        waiting.read(&mut buf).is_err(),
        "the ninth connection waits while eight are open"
    );
    stack
        .idgate
        .proc
        .wait_log(&["server.max_connections reached"]);
    drop(idle);
    waiting
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let _ = waiting.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_unharmed(&mut stack, &cookie).await;
}

/// Slowloris: a client that sends a request head a byte at a time, or opens a connection and
/// sends nothing, or keeps an idle connection after its answer, is disconnected once
/// `server.header_timeout` has passed (counted from the accept, then from each answer), so it
/// cannot hold one of the `max_connections` slots. The time a request takes to be answered
/// does not count: a body that trickles still gets its 408 from the body's own deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_completes_loses_its_connection() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let (mut stack, cookie) = stack_with_alice(Setup {
        extra_server: "header_timeout = \"2s\"",
        ..attack_setup()
    })
    .await;
    let idgate = stack.idgate.addr.port();
    let connect = || {
        let c = std::net::TcpStream::connect(("127.0.0.1", idgate)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c
    };
    // What the server does next on `c`: Ok(bytes) it sent until it closed, Err when it kept
    // the connection open without a word for the read timeout.
    let rest = |c: &mut std::net::TcpStream| {
        let mut got = Vec::new();
        c.read_to_end(&mut got).map(|_| got)
    };

    // A head that trickles, a byte every 300 ms (each well within any idle timeout): closed
    // without an answer once the 2 s are up, though bytes kept coming.
    let mut trickle = connect();
    trickle.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /-/healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .cycle()
    {
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        let mut buf = [0u8; 64];
        match trickle.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => panic!("an answer to a head never completed: {:?}", &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if trickle.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(closed, "a trickled head kept its connection for 30 s");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "closed before the header timeout: {:?}",
        started.elapsed()
    );

    // A connection that sends nothing at all: closed, no answer.
    let mut silent = connect();
    assert_eq!(rest(&mut silent).expect("closed, not left open"), b"");

    // An answered request's connection, then idle: closed after the same time, counted from
    // the answer.
    let mut idle = connect();
    idle.write_all(b"GET /-/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = String::from_utf8(rest(&mut idle).expect("closed, not left open")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");

    // A request being answered is not cut off: a body that trickles waits for the body's own
    // deadline (10 s) and gets its 408, well after the 2 s of the head.
    let mut slow_body = connect();
    slow_body
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"co",
        )
        .unwrap();
    let answer = String::from_utf8(rest(&mut slow_body).expect("closed, not left open")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    stack
        .idgate
        .proc
        .wait_log(&["no request head within server.header_timeout"]);
    assert_unharmed(&mut stack, &cookie).await;
}

/// A stand-in for idgate that answers every request with the request line it received, so a
/// test sees exactly which path Nginx forwarded.
fn recorder() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                // Drain the head.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let body = format!("FORWARDED {}", line.trim_end());
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_locations_forward_only_their_own_paths() {
    // The shipped snippets alone, with idgate replaced by a recorder: whatever the raw path, a
    // public location forwards the path it was chosen for, in canonical form. (idgate's own
    // refusal of non-canonical paths is the second line, tested above.)
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let nginx = Nginx::start(&dir.path().join("nginx"), port, recorder());
    let publics = [
        "/authorize",
        "/web-login",
        "/web-login/oauth/callback",
        "/web-login/callback",
        "/web-login/callback.js",
        "/web-login/finish",
        "/web-login/static/",
        "/oauth/token",
        "/refreshtoken",
        "/logout",
        "/userinfo",
        "/apps/",
        "/backchannel-logout/",
        "/.well-known/jwks.json",
    ];
    let ups = [
        "../",
        "..%2F",
        "%2e%2e/",
        "%2E%2E%2F",
        "..;/",
        "..%5C",
        "%252e%252e%252f",
    ];
    let mut forwarded = 0;
    for internal in [
        "auth",
        "auth/true",
        "sessions/u",
        "-/metrics",
        "web-login/x/y",
    ] {
        let depth = internal.split('/').count();
        for public in publics {
            for up in ups {
                for tail in [
                    "",
                    "x",
                    "web/providers",
                    "web/dev",
                    "a%2Fb",
                    "a;b",
                    "%2e%2e",
                ] {
                    let target = format!("/{internal}/{}{}{tail}", up.repeat(depth), &public[1..]);
                    let r = raw::send(port, "GET", &target, &[]);
                    let Some(line) = r.body.strip_prefix("FORWARDED ") else {
                        continue;
                    };
                    forwarded += 1;
                    let path = line
                        .split_whitespace()
                        .nth(1)
                        .unwrap()
                        .split('?')
                        .next()
                        .unwrap();
                    assert!(
                        publics
                            .iter()
                            .any(|p| path == *p || (p.ends_with('/') && path.starts_with(p))),
                        "{target} was forwarded as {path}"
                    );
                    assert!(
                        path != "/auth"
                            && !path.starts_with("/auth/")
                            && !path.starts_with("/sessions")
                            && !path.starts_with("/-/"),
                        "{target} was forwarded as {path}"
                    );
                }
            }
        }
    }
    assert!(
        forwarded > 100,
        "only {forwarded} requests reached a public location"
    );
    drop(nginx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_pages_leak_nothing_and_cannot_be_framed() {
    // RFC 9700 §4.2.4 (the code and state must not leak through Referer) and §4.16
    // (clickjacking): every page of the login carries the headers that prevent both, and no
    // answer that holds a token or a code may be cached.
    let stack = Stack::start_with(attack_setup());
    let site = stack.site();
    let client = Browser::new().client;
    for page in [
        "/web-login?appId=web&redirect=%2F",
        "/web-login/oauth/callback?code=c&state=s",
        "/web-login/callback?code=c&state=s",
    ] {
        let r = client.get(format!("{site}{page}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{page}");
        let h = r.headers();
        assert_eq!(h["referrer-policy"], "no-referrer", "{page}");
        assert_eq!(h["x-frame-options"], "DENY", "{page}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{page}");
        assert_eq!(h["cache-control"], "no-store", "{page}");
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "script-src 'self'",
        ] {
            assert!(csp.contains(directive), "{page}: {csp}");
        }
    }
    let alice = Browser::new();
    let token = login(&stack, &alice, "/", "alice").await;
    assert_eq!(token.headers()["cache-control"], "no-store");
}
