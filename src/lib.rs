//! idgate: the Nginx `auth_request` companion that runs the OAuth2/OIDC login itself.
//!
//! An external identity provider only checks credentials; idgate merges the provider's identity
//! (id, name, email) with the groups and attributes the project keeps in its own users store,
//! issues its own signed session JWT, and answers Nginx's `auth_request` subrequests with
//! 200/401/403 plus identity headers.
//!
//! # Layout
//!
//! The request path, top to bottom:
//!
//! - [`reload`] swaps in a new configuration on SIGHUP, or refuses it.
//! - [`server`] binds the listeners (TCP and unix), serves HTTP/1.1 with hyper and drains on shutdown;
//!   [`signal`] turns SIGTERM/SIGINT into the shutdown future.
//! - [`state`] is the one value every request sees: the configuration, the stores, the keys, the
//!   identity providers and the caches; it also opens sessions (the login's and `sessions mint`'s).
//! - [`routes`] dispatches on the path (the endpoint table is in its module doc); one file per
//!   group of endpoints: `auth` (the hot path), `forward_auth` (the same decision for Caddy,
//!   Traefik and ingress-nginx), `login`, `token`, `session_api`, `me` (the
//!   sessions a user sees and ends), `meta`, `health`.
//! - [`http`] is the wire: request bodies and parameters read with limits, canonical paths, and
//!   the JSON, HTML and redirect responses.
//! - [`error`] is the single place where errors become HTTP statuses and JSON bodies.
//! - [`policy`] decides which routes need which users (Mia's `auth.json` and TOML rules).
//! - [`apikeys`] turns a client's static API key (Mia's gateway keys) into its client type.
//! - [`introspect`] accepts the IdP's opaque API tokens by introspection (RFC 7662), cached.
//! - [`session`] owns the in-memory verified-token cache and the liveness flags that make `/auth`
//!   free of I/O for a session it has already seen.
//! - [`renewal`] renews an expired session JWT from `/auth` while the session lives.
//! - [`jwt`] signs and verifies idgate's session tokens and publishes the JWKS.
//! - [`limits`] rate-limits the login endpoints per client address and per browser binding.
//! - [`idp`] talks to the identity providers: OIDC (discovery, code exchange, id_token, userinfo)
//!   and plain OAuth2 with the vendors' user APIs (GitHub, Bitbucket, generic).
//! - [`users`] merges the provider's identity with the project's user record.
//! - [`store`] holds login states, sessions and users (`embedded`: one SQLite file; `redis`:
//!   states and sessions in Redis, revocations by publish/subscribe; `mongo`: the users
//!   collection and the durable copy of sessions; `crud`: users behind a CRUD HTTP service).
//! - [`redirect`] decides which post-login targets are safe; [`cookie`] and [`headers`] name and
//!   build what goes on the wire; [`crypto`] holds random tokens, hashing and at-rest encryption;
//!   [`pages`] renders the few HTML pages the login needs.
//! - [`audit`] writes the audit trail: one JSON line per security event, off the request path.
//! - [`metrics`] counts requests, decisions, logins and latencies for `/-/metrics`; [`systemd`]
//!   speaks the service manager's notify protocol; [`telemetry`] exports OpenTelemetry traces
//!   of the login steps, IdP and store calls (off by default).
//! - [`config`] reads the TOML in two phases (raw serde → validated, typed values); [`cli`] is the
//!   command line; `main.rs` only wires them together.
//! - [`tls`] is whom the outbound TLS clients (IdPs, CRUD service, Redis) trust: built-in roots,
//!   the system store, private CAs.

#![forbid(unsafe_code)]

pub mod apikeys;
pub mod audit;
pub mod cli;
pub mod config;
pub mod cookie;
pub mod crypto;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod headers;
pub mod http;
pub mod idp;
pub mod introspect;
pub mod jwt;
pub mod limits;
pub mod metrics;
pub mod pages;
pub mod policy;
pub mod redirect;
pub mod reload;
pub mod renewal;
pub mod routes;
pub mod server;
pub mod session;
pub mod signal;
pub mod state;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod tls;
pub mod users;

/// Seconds since the Unix epoch; every timestamp idgate stores or signs uses this unit.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A moment that comes round at most every `secs` seconds, to one caller at a time: warnings and
/// counts that must not repeat at the pace of what sets them off (a full queue, a store that is
/// down, a metrics scraper).
pub struct AtMostEvery {
    secs: i64,
    /// The last `true` (Unix seconds); far in the past at first, so the first call is due.
    last: std::sync::atomic::AtomicI64,
}

impl AtMostEvery {
    pub const fn new(secs: i64) -> Self {
        Self {
            secs,
            last: std::sync::atomic::AtomicI64::new(i64::MIN / 2),
        }
    }

    /// `true`, to one caller only, when the last `true` is at least `secs` old at `now`.
    pub fn due(&self, now: i64) -> bool {
        use std::sync::atomic::Ordering;
        let last = self.last.load(Ordering::Acquire);
        now - last >= self.secs
            && self
                .last
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

#[cfg(test)]
mod at_most_every_tests {
    use super::AtMostEvery;

    #[test]
    fn due_once_then_not_until_the_period_has_passed() {
        let every = AtMostEvery::new(10);
        assert!(every.due(1_000));
        assert!(!every.due(1_000));
        assert!(!every.due(1_009));
        assert!(every.due(1_010));
        assert!(!every.due(1_011));
    }
}
