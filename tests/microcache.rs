//! The decision microcache (`nginx/idgate-microcache.conf`), through real Nginx with the shipped
//! snippets: where a location turns it on, Nginx answers a request it asked idgate about in the
//! same half second without asking again; nothing else changes. Every field of the cache key is
//! attacked: a request that differs from a cached one in anything the decision reads (the
//! session cookie, `Authorization`, an API key, the method, the URI) is asked again, and gets
//! its own answer. A logout is refused within half a second, refusals and renewals are never
//! cached, and a typo in the switch fails closed.
//!
//! Each check warms the cache and attacks it within the same half second (the cache key's
//! tick): `within_one_tick` repeats the attempt when a tick boundary fell in between, so a key
//! that lost a field would be caught rather than missed by timing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::raw::{self, RawResponse};
use common::*;

/// Configured with client type `partner`.
const PARTNER_KEY: &str = "pk-5e1c9a7b3d2f4068b1a3c5e7f9021436";
/// Configured nowhere.
const WRONG_KEY: &str = "wk-0badc0de0badc0de0badc0de0badc0d";

const ALLOWED: &str = r#"idgate_auth_decisions_total{outcome="allow"}"#;

/// A location proxying to the harness's echo app, with `$idgate_microcache` set to `cache`
/// (none when empty) and, if given, its own rule.
fn location(path: &str, cache: &str, rule: Option<&str>) -> String {
    let nginx = repo().join("nginx");
    let set = if cache.is_empty() {
        String::new()
    } else {
        format!("        set $idgate_microcache \"{cache}\";\n")
    };
    let protect = match rule {
        Some(rule) => format!(
            "        auth_request \"/_idgate/auth/{rule}\";\n        include {}/idgate-protect-rule.conf;\n",
            nginx.display()
        ),
        None => format!("        include {}/idgate-protect.conf;\n", nginx.display()),
    };
    format!("    location {path} {{\n{set}{protect}        proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n")
}

struct Site {
    _dir: tempfile::TempDir,
    idgate: Idgate,
    nginx: Nginx,
}

/// idgate (the attacks' auth.json: `/admin/` needs group `admin`, `/public/` is public for GET,
/// the rest needs a session; one API key) behind Nginx with the cache on for `/admin/`,
/// `/public/`, `/cached/` and `/keyed/`, off for the example site's `/`.
fn start() -> Site {
    let sha: String = {
        use sha2::{Digest, Sha256};
        Sha256::digest(PARTNER_KEY.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let extra = format!(
        "mia_auth = \"{}\"\n[[api_keys]]\nclient_type = \"partner\"\nkey_sha256 = \"{sha}\"\n",
        fixture("attacks/auth.json").display()
    );
    let (dir, idgate) = start_idgate_alone(Setup {
        extra: Box::leak(extra.into_boxed_str()),
        ..Setup::default()
    });
    let locations = [
        location("~ ^/(admin|public)/", "on", None),
        location("/cached/", "on", None),
        location("/keyed/", "on", Some("clientType == 'partner'")),
        location("/typo/", "yes", None),
    ]
    .concat();
    let port = free_port();
    let nginx =
        Nginx::start_with_locations(&dir.path().join("nginx"), port, idgate.addr, &locations);
    Site {
        _dir: dir,
        idgate,
        nginx,
    }
}

impl Site {
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> RawResponse {
        let mut all = vec![("Accept", "application/json")];
        all.extend_from_slice(headers);
        raw::send(self.nginx.port, method, path, &all)
    }

    /// How many 200s idgate has answered (a request answered from Nginx's cache adds none).
    async fn allowed(&self) -> u64 {
        metric(&self.idgate, ALLOWED).await
    }

    /// Runs `check` while the answer to `warm` is in the cache: `warm` is sent, then sent
    /// again around `check`, and the attempt counts only when idgate answered neither of the
    /// repeats (so the entry was live from before the check to after it); otherwise (a tick
    /// boundary fell in between) it is repeated. `check`'s own requests must be refused ones:
    /// they are not counted.
    async fn within_one_tick(&self, warm: (&str, &str, &[(&str, &str)]), check: impl Fn(&Site)) {
        for _ in 0..20 {
            // Start early in a tick, so that everything fits in it.
            wait_for_tick_start().await;
            let first = self.send(warm.0, warm.1, warm.2);
            assert_eq!(first.status, 200, "warming {}: {}", warm.1, first.body);
            let before = self.allowed().await;
            assert_eq!(self.send(warm.0, warm.1, warm.2).status, 200);
            check(self);
            assert_eq!(self.send(warm.0, warm.1, warm.2).status, 200);
            if self.allowed().await == before {
                return;
            }
        }
        panic!("the cache never answered {} within one tick", warm.1);
    }
}

/// Half a second: the cache key holds the half second of the wall clock an answer was given in
/// (`$idgate_decision_tick`, from Nginx's `$msec`).
const TICK: Duration = Duration::from_millis(500);

/// Sleeps until just after the start of the next tick.
async fn wait_for_tick_start() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_nanos((now.as_nanos() % TICK.as_nanos()) as u64);
    tokio::time::sleep(TICK - into + Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_reused_within_half_a_second_where_turned_on_only() {
    let site = start();
    let token = mint(&site.idgate, "u-1", "users");
    let cookie = format!("sid={token}");
    let session = [("Cookie", cookie.as_str())];

    // On: ten requests in a burst, each with the identity, but idgate asked at most once per
    // tick they span (a burst of ten local requests spans one tick, rarely two).
    let before = site.allowed().await;
    for _ in 0..10 {
        let page = site.send("GET", "/cached/page", &session);
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(echoed(&page.body)["miauserid"], "u-1");
    }
    let asked = site.allowed().await - before;
    assert!(
        (1..=3).contains(&asked),
        "idgate was asked {asked} times for ten requests"
    );

    // Off (the example site's `/`): every request asks idgate.
    let before = site.allowed().await;
    for _ in 0..10 {
        let page = site.send("GET", "/page", &session);
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(echoed(&page.body)["miauserid"], "u-1");
    }
    assert_eq!(site.allowed().await - before, 10);

    // A typo in the switch fails closed, loudly: no request passes.
    let typo = site.send("GET", "/typo/page", &session);
    assert_eq!(typo.status, 500, "{}", typo.body);
    assert!(!typo.body.contains("u-1"));
    let log = std::fs::read_to_string(site.nginx.prefix.join("logs/error.log")).unwrap();
    assert!(
        log.contains("idgate_microcache_must_be_on_or_off"),
        "Nginx's log names the bad value: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_is_refused_within_half_a_second() {
    let site = start();
    let token = mint(&site.idgate, "u-2", "users");
    let cookie = format!("sid={token}");
    let session = [("Cookie", cookie.as_str())];

    // The answer is cached (asked twice, idgate answered once), then the user logs out.
    site.within_one_tick(("GET", "/cached/page", &session), |_| {})
        .await;
    let logout = site.send("POST", "/logout", &session);
    assert_eq!(logout.status, 200, "{}", logout.body);
    let logged_out = Instant::now();

    // Nginx may answer from its cache until the end of the tick the answer was given in; half
    // a second after the logout, never.
    tokio::time::sleep(TICK.saturating_sub(logged_out.elapsed())).await;
    let after = site.send("GET", "/cached/page", &session);
    assert_eq!(after.status, 401, "{}", after.body);
    assert!(!after.body.contains("u-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_answer_serves_only_the_same_request() {
    let site = start();
    let admin = format!("sid={}", mint(&site.idgate, "boss", "admin"));
    let user_token = mint(&site.idgate, "u-3", "users");
    let user = format!("sid={user_token}");
    let bearer = format!("Bearer {user_token}");

    // The administrator's "yes" to /admin/x is not anyone else's.
    site.within_one_tick(("GET", "/admin/x", &[("Cookie", &admin)]), |site| {
        // No session at all.
        assert_eq!(site.send("GET", "/admin/x", &[]).status, 401);
        // Another user's session.
        assert_eq!(
            site.send("GET", "/admin/x", &[("Cookie", &user)]).status,
            403
        );
        // The administrator's cookie, with another user's bearer token (which idgate reads
        // first).
        let r = site.send(
            "GET",
            "/admin/x",
            &[("Cookie", &admin), ("Authorization", &bearer)],
        );
        assert_eq!(r.status, 403, "{}", r.body);
    })
    .await;

    // A session's "yes" to one URI is not its "yes" to another of the same location.
    site.within_one_tick(("GET", "/public/x", &[("Cookie", &user)]), |site| {
        assert_eq!(
            site.send("GET", "/admin/x", &[("Cookie", &user)]).status,
            403
        );
    })
    .await;

    // Nor to another method: /public/ is public for GET only.
    site.within_one_tick(("GET", "/public/x", &[]), |site| {
        assert_eq!(site.send("POST", "/public/x", &[]).status, 401);
        assert_eq!(site.send("DELETE", "/public/x", &[]).status, 401);
    })
    .await;

    // An API key's "yes" is not another key's, whichever header carries it (the location
    // admits client type `partner` only).
    for header in ["client-key", "secret"] {
        let warm = [("Cookie", user.as_str()), (header, PARTNER_KEY)];
        site.within_one_tick(("GET", "/keyed/x", &warm), |site| {
            let r = site.send("GET", "/keyed/x", &[("Cookie", &user), (header, WRONG_KEY)]);
            assert_eq!(r.status, 401, "{header}: {}", r.body);
            let r = site.send("GET", "/keyed/x", &[("Cookie", &user)]);
            assert_eq!(r.status, 403, "{header}: {}", r.body);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_never_cached() {
    let site = start();
    let user = format!("sid={}", mint(&site.idgate, "u-4", "users"));
    // Each 403 and each 401 is idgate's own, however fast they follow one another.
    for (outcome, status, path, headers) in [
        (
            "forbidden",
            403,
            "/admin/x",
            vec![("Cookie", user.as_str())],
        ),
        ("unauthenticated", 401, "/cached/x", vec![]),
    ] {
        let counter = format!(r#"idgate_auth_decisions_total{{outcome="{outcome}"}}"#);
        let before = metric(&site.idgate, &counter).await;
        for _ in 0..5 {
            assert_eq!(site.send("GET", path, &headers).status, status, "{path}");
        }
        assert_eq!(
            metric(&site.idgate, &counter).await - before,
            5,
            "{outcome}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_are_never_cached() {
    // A browser's session (renewable, unlike a minted one) with two-second tokens, the cache on
    // for /cached/.
    let stack = Stack::start_with(Setup {
        access_ttl: "2s",
        nginx_locations: location("/cached/", "on", None),
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "alice").await.status(), 200);
    let token = browser.cookie(&site, "sid").unwrap();
    let renew = browser.cookie(&site, "idgate_renew").unwrap();
    let cookie = format!("sid={token}; idgate_renew={renew}");
    let exp = jwt_claims(&token)["exp"].as_i64().unwrap();
    while idgate::now_secs() <= exp + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The expired token is renewed: a 200 with the new cookie. Asked again at once, idgate
    // answers again (the same renewal, within its grace), never Nginx's cache.
    let before = metric(&stack.idgate, ALLOWED).await;
    for _ in 0..2 {
        let page = raw::send(
            stack.nginx.port,
            "GET",
            "/cached/page",
            &[("Cookie", &cookie), ("Accept", "application/json")],
        );
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.header("set-cookie")
                .is_some_and(|c| c.contains("sid=")),
            "{:?} {}",
            page.headers,
            page.body
        );
    }
    assert_eq!(metric(&stack.idgate, ALLOWED).await - before, 2);
}
