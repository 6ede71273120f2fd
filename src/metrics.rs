//! Prometheus metrics, served at `GET /-/metrics` (text exposition format, `prometheus-client`).
//!
//! The `/auth` hot path only ever does atomic increments on counters created up front: every
//! (route, status) pair and every decision outcome gets its counter at startup, and a request
//! picks it by index — no lock, no allocation, no label formatting per request. Histograms (a
//! mutex inside) are touched only off the hot path: IdP calls, and store calls on a token-cache
//! miss. Logins are few, so their (app, provider, outcome) family is filled on demand.
//!
//! The login endpoints (`/authorize`, `/oauth/token`) report their server-side time split in
//! two: the time spent waiting on identity providers (every call made through [`idp_call`] while
//! the request is served) and idgate's own time (the rest), in `idgate_login_duration_seconds`.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The least time between two counts of the live sessions (seconds).
pub const LIVE_SESSIONS_EVERY: i64 = 10;

/// The daemon's log writer's count of the lines it dropped (set once, by `idgate serve`).
static LOG_DROPS: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// Has `idgate_log_dropped_total` follow `drops`, the log writer's count.
pub fn follow_log_drops(drops: tracing_appender::non_blocking::ErrorCounter) {
    let _ = LOG_DROPS.set(drops);
}

/// Bucket bounds of `idgate_login_duration_seconds`: fine around the 2 ms goal of idgate's own
/// time, coarse up to the IdP timeouts.
const LOGIN_BUCKETS: [f64; 18] = [
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The login endpoints whose time is split into own and IdP time.
#[derive(Clone, Copy, Debug)]
pub enum LoginRoute {
    Authorize = 0,
    Token = 1,
}

const LOGIN_ROUTES: [LoginRoute; 2] = [LoginRoute::Authorize, LoginRoute::Token];

impl LoginRoute {
    fn label(self) -> &'static str {
        match self {
            LoginRoute::Authorize => "authorize",
            LoginRoute::Token => "token",
        }
    }
}

tokio::task_local! {
    /// The IdP time of the request being served, where its route measures it ([`measure_idp`]).
    static IDP_TIME: Cell<Duration>;
}

/// Awaits `call`, a request to an identity provider, adding its duration to the IdP time of the
/// request being served when its route measures it ([`measure_idp`]).
pub async fn idp_call<F: Future>(call: F) -> F::Output {
    let started = Instant::now();
    let out = call.await;
    let _ = IDP_TIME.try_with(|t| t.set(t.get() + started.elapsed()));
    out
}

/// Awaits `handler`, returning its output, its duration and the IdP time within it (the
/// [`idp_call`]s it made).
pub async fn measure_idp<F: Future>(handler: F) -> (F::Output, Duration, Duration) {
    let started = Instant::now();
    IDP_TIME
        .scope(Cell::new(Duration::ZERO), async move {
            let out = handler.await;
            let idp = IDP_TIME.with(Cell::get);
            (out, started.elapsed(), idp)
        })
        .await
}

/// Routes as labelled in `idgate_http_requests_total`; index = position.
const ROUTES: [&str; 10] = [
    "auth",
    "authorize",
    "web_login",
    "token",
    "logout",
    "userinfo",
    "meta",
    "health",
    "admin",
    "other",
];
/// Statuses with their own label; anything else counts as "other".
const STATUSES: [u16; 12] = [200, 204, 302, 400, 401, 403, 404, 405, 500, 502, 503, 0];
/// `/auth` outcomes, by status: 200, 401, 403, anything else.
const OUTCOMES: [&str; 4] = ["allow", "unauthenticated", "forbidden", "error"];

pub struct Metrics {
    registry: Registry,
    /// `[route][status]`, pre-created.
    requests: Vec<Vec<Counter>>,
    decisions: Vec<Counter>,
    cache_hits: Counter,
    cache_misses: Counter,
    logins: Family<Labels, Counter>,
    pub idp_latency: Histogram,
    pub store_latency: Histogram,
    /// `[route][part]`: [`LOGIN_ROUTES`] × (own, idp), pre-created.
    login_duration: [[Histogram; 2]; 2],
    pub live_sessions: Gauge,
    /// When `live_sessions` was last counted (Unix seconds).
    live_sessions_at: crate::AtMostEvery,
    /// Tasks alive in the async runtime (set at scrape time): connections, requests in flight,
    /// background loops. One that only grows is a leak.
    pub runtime_tasks: Gauge,
    /// Audit events lost: refused by a full queue, or in a write that failed (see `audit`).
    pub audit_dropped: Counter,
    /// Log lines dropped because stderr did not keep up (caught up at scrape time from the
    /// daemon's log writer, [`follow_log_drops`]), and the count already added to it.
    log_dropped: Counter,
    log_dropped_seen: AtomicU64,
    /// Opaque bearer tokens refused without asking the IdP: `max_in_flight` of the app's
    /// tokens were at the IdP already (see `introspect`).
    pub introspection_refused: Counter,

    /// The users-store refresher (`session::refresh`): users whose record changed, users whose
    /// sessions it ended, rounds the store failed.
    user_refresh: [Counter; 3],
    /// Login requests refused by `[login_limits]`: by the address bucket, by the binding's.
    login_limited: [Counter; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("idgate");
        let requests_family = Family::<Labels, Counter>::default();
        let requests = ROUTES
            .iter()
            .map(|route| {
                STATUSES
                    .iter()
                    .map(|status| {
                        let status = match status {
                            0 => "other".to_owned(),
                            s => s.to_string(),
                        };
                        requests_family.get_or_create_owned(&vec![
                            ("route".to_owned(), (*route).to_owned()),
                            ("status".to_owned(), status),
                        ])
                    })
                    .collect()
            })
            .collect();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests_family,
        );
        let decisions_family = Family::<Labels, Counter>::default();
        let decisions = OUTCOMES
            .iter()
            .map(|o| {
                decisions_family.get_or_create_owned(&vec![("outcome".to_owned(), (*o).to_owned())])
            })
            .collect();
        registry.register(
            "auth_decisions",
            "/auth answers by outcome",
            decisions_family,
        );
        let cache_family = Family::<Labels, Counter>::default();
        let cache_hits =
            cache_family.get_or_create_owned(&vec![("result".to_owned(), "hit".to_owned())]);
        let cache_misses =
            cache_family.get_or_create_owned(&vec![("result".to_owned(), "miss".to_owned())]);
        registry.register(
            "token_cache",
            "/auth token cache lookups by result (hit ratio = hit / (hit + miss))",
            cache_family,
        );
        let logins = Family::<Labels, Counter>::default();
        registry.register(
            "logins",
            "Finished logins by app, provider and outcome",
            logins.clone(),
        );
        let seconds = || Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let idp_latency = seconds();
        registry.register(
            "idp_request_duration_seconds",
            "Identity provider calls (code exchange, userinfo, discovery)",
            idp_latency.clone(),
        );
        let store_latency = seconds();
        registry.register(
            "store_request_duration_seconds",
            "Session checks against the store on a token-cache miss",
            store_latency.clone(),
        );
        let login_family =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(LOGIN_BUCKETS)
            });
        let login_duration = LOGIN_ROUTES.map(|route| {
            ["own", "idp"].map(|part| {
                login_family
                    .get_or_create(&vec![
                        ("route".to_owned(), route.label().to_owned()),
                        ("part".to_owned(), part.to_owned()),
                    ])
                    .clone()
            })
        });
        registry.register(
            "login_duration_seconds",
            "Server-side time of successful /authorize and /oauth/token answers: part=idp is the \
             time spent waiting on the identity provider, part=own everything else",
            login_family,
        );
        let live_sessions = Gauge::default();
        registry.register(
            "live_sessions",
            "Sessions alive in the store (counted at scrape time)",
            live_sessions.clone(),
        );
        let runtime_tasks = Gauge::default();
        registry.register(
            "runtime_tasks",
            "Tasks alive in the async runtime (counted at scrape time)",
            runtime_tasks.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_dropped",
            "Audit events lost: refused because the audit writer was behind, or in a failed write",
            audit_dropped.clone(),
        );
        let log_dropped = Counter::default();
        registry.register(
            "log_dropped",
            "Log lines dropped because stderr (journald) did not take them as fast as they came",
            log_dropped.clone(),
        );
        let introspection_refused = Counter::default();
        registry.register(
            "introspection_refused",
            "Opaque bearer tokens refused without asking the IdP, because max_in_flight of their app's tokens were at the IdP already",
            introspection_refused.clone(),
        );

        let user_refresh = [Counter::default(), Counter::default(), Counter::default()];
        for (counter, (name, help)) in user_refresh.iter().zip([
            (
                "user_refresh_changed",
                "Users whose groups, permissions or metadata changed in the users store while they had a cached session here",
            ),
            (
                "user_refresh_revoked",
                "Users no longer active in the users store whose sessions the refresher ended",
            ),
            (
                "user_refresh_failures",
                "Refresh rounds skipped because the users store did not answer",
            ),
        ]) {
            registry.register(name, help, counter.clone());
        }
        let family = Family::<Labels, Counter>::default();
        let login_limited = ["address", "binding"]
            .map(|b| family.get_or_create_owned(&vec![("bucket".to_owned(), b.to_owned())]));
        registry.register(
            "login_limited",
            "Login requests answered 429 by [login_limits], by the bucket that was empty",
            family,
        );
        Self {
            registry,
            user_refresh,
            login_limited,
            requests,
            decisions,
            cache_hits,
            cache_misses,
            logins,
            idp_latency,
            store_latency,
            login_duration,
            live_sessions,
            live_sessions_at: crate::AtMostEvery::new(LIVE_SESSIONS_EVERY),
            runtime_tasks,
            audit_dropped,
            log_dropped,
            log_dropped_seen: AtomicU64::new(0),
            introspection_refused,
        }
    }

    /// Whether the live-session gauge is due a count (the last is [`LIVE_SESSIONS_EVERY`] old);
    /// `true` to one caller only, which then counts.
    pub fn live_sessions_due(&self, now: i64) -> bool {
        self.live_sessions_at.due(now)
    }

    /// Brings `idgate_log_dropped_total` up to the log writer's own count (at scrape time).
    pub fn catch_up_log_drops(&self) {
        let Some(drops) = LOG_DROPS.get() else {
            return;
        };
        let total = drops.dropped_lines() as u64;
        // Concurrent scrapes each add only what no other added before them.
        let seen = self.log_dropped_seen.fetch_max(total, Ordering::Relaxed);
        if total > seen {
            self.log_dropped.inc_by(total - seen);
        }
    }

    /// Counts one answered request; for `/auth` also its decision.
    pub fn request(&self, path: &str, status: u16) {
        let route = route_index(path);
        let s = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len() - 1);
        if let Some(c) = self.requests.get(route).and_then(|r| r.get(s)) {
            c.inc();
        }
        if route == 0 {
            if let Some(c) = self.decisions.get(outcome_index(status)) {
                c.inc();
            }
        }
    }

    /// One refresh round's outcome (`session::refresh`).
    pub fn user_refresh(&self, changed: u64, revoked: u64) {
        self.user_refresh[0].inc_by(changed);
        self.user_refresh[1].inc_by(revoked);
    }

    /// A login request `[login_limits]` refused (`bucket`: `address` or `binding`).
    pub fn login_limited(&self, bucket: &str) {
        self.login_limited[usize::from(bucket == "binding")].inc();
    }

    /// A refresh round the users store failed.
    pub fn user_refresh_failed(&self) {
        self.user_refresh[2].inc();
    }

    pub fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    pub fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    pub fn login(&self, app: &str, provider: &str, ok: bool) {
        self.logins
            .get_or_create(&vec![
                ("app".to_owned(), app.to_owned()),
                ("provider".to_owned(), provider.to_owned()),
                (
                    "outcome".to_owned(),
                    if ok { "ok" } else { "failed" }.to_owned(),
                ),
            ])
            .inc();
    }

    pub fn observe(histogram: &Histogram, elapsed: Duration) {
        histogram.observe(elapsed.as_secs_f64());
    }

    /// One successful answer of a login endpoint: `total` server-side, `idp` of it waiting on
    /// identity providers.
    pub fn login_duration(&self, route: LoginRoute, total: Duration, idp: Duration) {
        let [own_h, idp_h] = &self.login_duration[route as usize];
        Self::observe(own_h, total.saturating_sub(idp));
        Self::observe(idp_h, idp);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The `/auth` outcome label for a status (also the `decision` field of its log line).
pub fn decision(status: u16) -> &'static str {
    OUTCOMES[outcome_index(status)]
}

fn outcome_index(status: u16) -> usize {
    match status {
        200..=299 => 0,
        401 => 1,
        403 => 2,
        _ => 3,
    }
}

fn route_index(path: &str) -> usize {
    match path {
        p if p == "/auth" || p.starts_with("/auth/") => 0,
        "/authorize" => 1,
        p if p.starts_with("/web-login") => 2,
        "/oauth/token" => 3,
        "/logout" => 4,
        "/userinfo" => 5,
        p if p == "/.well-known/jwks.json" || p.starts_with("/apps/") => 6,
        "/-/healthz" | "/-/ready" => 7,
        "/-/metrics" | "/-/check-up" => 8,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_decisions_and_cache() {
        let m = Metrics::new();
        m.request("/auth", 200);
        m.request("/auth/groups.admin", 401);
        m.request("/authorize", 302);
        m.request("/nope", 418);
        m.cache_hit();
        m.cache_miss();
        m.login("web", "dev", true);
        let text = m.render();
        for line in [
            r#"idgate_http_requests_total{route="auth",status="200"} 1"#,
            r#"idgate_http_requests_total{route="auth",status="401"} 1"#,
            r#"idgate_http_requests_total{route="authorize",status="302"} 1"#,
            r#"idgate_http_requests_total{route="other",status="other"} 1"#,
            r#"idgate_auth_decisions_total{outcome="allow"} 1"#,
            r#"idgate_auth_decisions_total{outcome="unauthenticated"} 1"#,
            r#"idgate_token_cache_total{result="hit"} 1"#,
            r#"idgate_logins_total{app="web",provider="dev",outcome="ok"} 1"#,
            "# TYPE idgate_idp_request_duration_seconds histogram",
            "idgate_live_sessions 0",
            "# TYPE idgate_runtime_tasks gauge",
            "idgate_audit_dropped_total 0",
            "idgate_introspection_refused_total 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    /// The IdP time of a measured handler is the time of its `idp_call`s, and only theirs; a
    /// call outside any measured handler counts nowhere (and does not panic).
    #[tokio::test]
    async fn splits_a_handlers_time_into_own_and_idp() {
        let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
        idp_call(pause(1)).await;
        let ((), total, idp) = measure_idp(async {
            pause(30).await;
            idp_call(pause(40)).await;
            idp_call(pause(20)).await;
        })
        .await;
        assert!(idp >= Duration::from_millis(60), "{idp:?}");
        assert!(
            total.saturating_sub(idp) >= Duration::from_millis(30),
            "{total:?} {idp:?}"
        );

        let m = Metrics::new();
        m.login_duration(LoginRoute::Token, total, idp);
        m.login_duration(
            LoginRoute::Authorize,
            Duration::from_millis(3),
            Duration::ZERO,
        );
        let text = m.render();
        for line in [
            r#"idgate_login_duration_seconds_count{route="token",part="own"} 1"#,
            r#"idgate_login_duration_seconds_count{route="token",part="idp"} 1"#,
            r#"idgate_login_duration_seconds_sum{route="authorize",part="own"} 0.003"#,
            r#"idgate_login_duration_seconds_sum{route="authorize",part="idp"} 0.0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
