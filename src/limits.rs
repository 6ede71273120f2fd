//! Login rate limits: a flood of login requests from one address, or with one browser's
//! binding, is answered 429 before it reaches a store or the identity provider.
//!
//! - **Where**: `/authorize`, `POST /oauth/token`, `POST /web-login/finish` and
//!   `POST /refreshtoken` (see `routes::limited`). Never `/auth`: a session already made is not
//!   throttled.
//! - **Which buckets** (`[login_limits]`): one per client address (the trusted proxy's
//!   `X-Forwarded-For` entry, else the peer; an IPv6 address counts by its /64, which one host
//!   usually holds whole), and one per browser binding (a hash of the `idgate_login` cookie
//!   at `/oauth/token` and `/web-login/finish`, of the `refresh_token` cookie at
//!   `/refreshtoken`; `/authorize` makes a new binding each time, so it counts by address
//!   only). A request must pass both.
//! - **The algorithm**: GCRA, a token bucket kept as one timestamp (the bucket's theoretical
//!   arrival time): `burst` requests at once, then one per `period / burst`. [`gcra`] is the
//!   rule; with Redis the same rule runs in a Lua script on the server's clock, so every
//!   instance shares each bucket. Other stores keep the buckets in this process (bounded:
//!   the least recently used go first).
//! - **Failure**: a Redis that cannot answer falls back to this process's buckets (logged):
//!   the limits never switch off, and never refuse a login on their own account.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{LoginLimitsConfig, Rate};
use crate::store::LoginStates;

/// Buckets kept in this process, at most.
const LOCAL_BUCKETS: usize = 100_000;

/// A bucket as the GCRA rule sees it, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Time between two requests once the burst is spent: `period / burst`.
    pub emission_ms: u64,
    /// How far ahead of now the bucket's time may run: `emission * (burst - 1)`.
    pub tolerance_ms: u64,
}

impl From<Rate> for Gcra {
    fn from(r: Rate) -> Self {
        let emission_ms = (r.period.as_millis() as u64 / u64::from(r.burst)).max(1);
        Self {
            emission_ms,
            tolerance_ms: emission_ms * u64::from(r.burst - 1),
        }
    }
}

/// The GCRA rule: with the bucket at `tat` (none: never used, or expired) at `now`, either the
/// request passes and the bucket moves to the returned time, or it is refused and may retry
/// after the returned milliseconds.
pub fn gcra(tat: Option<u64>, now: u64, g: Gcra) -> Result<u64, u64> {
    let tat = tat.unwrap_or(now).max(now);
    if tat - now > g.tolerance_ms {
        Err(tat - now - g.tolerance_ms)
    } else {
        Ok(tat + g.emission_ms)
    }
}

/// How often one bucket's refusals are reported (a log line, an audit event), at most.
const REPORT_EVERY_MS: u64 = 60_000;

/// Why a request was refused, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// `address` or `binding`: the bucket that was empty.
    pub bucket: &'static str,
    pub retry_after: Duration,
    /// The bucket's first refusal in a minute: report it (the others are only counted).
    pub report: bool,
}

/// The configured buckets, and this process's own.
pub struct LoginLimits {
    config: LoginLimitsConfig,
    /// This process's buckets: their theoretical arrival times (ms).
    local: Mutex<quick_cache::unsync::Cache<String, u64>>,
    /// When each bucket's refusal was last reported (ms).
    reported: Mutex<quick_cache::unsync::Cache<String, u64>>,
}

impl LoginLimits {
    pub fn new(config: LoginLimitsConfig) -> Self {
        Self {
            config,
            local: Mutex::new(quick_cache::unsync::Cache::new(LOCAL_BUCKETS)),
            reported: Mutex::new(quick_cache::unsync::Cache::new(LOCAL_BUCKETS)),
        }
    }

    /// Spends one request of `addr`'s bucket and of `binding`'s (a secret the browser holds:
    /// only its hash is kept), in `store` when it shares buckets, else here.
    pub async fn check(
        &self,
        store: &dyn LoginStates,
        addr: Option<IpAddr>,
        binding: Option<&str>,
    ) -> Result<(), Refused> {
        if let (Some(rate), Some(addr)) = (self.config.per_address, addr) {
            self.spend(store, &format!("a:{}", address_key(addr)), rate, "address")
                .await?;
        }
        if let (Some(rate), Some(binding)) = (self.config.per_binding, binding) {
            let key = format!("b:{}", crate::crypto::hash_token(binding));
            self.spend(store, &key, rate, "binding").await?;
        }
        Ok(())
    }

    async fn spend(
        &self,
        store: &dyn LoginStates,
        key: &str,
        rate: Rate,
        bucket: &'static str,
    ) -> Result<(), Refused> {
        let g = Gcra::from(rate);
        let refused = |ms: u64| Refused {
            bucket,
            retry_after: Duration::from_millis(ms),
            report: self.first_refusal(key),
        };
        match store.spend(key, g.emission_ms, g.tolerance_ms).await {
            Ok(Some(Ok(()))) => return Ok(()),
            Ok(Some(Err(ms))) => return Err(refused(ms)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "login limits: the store cannot count; counting here");
            }
        }
        self.spend_here(key, g).map_err(refused)
    }

    /// Whether `key`'s refusal is the first in [`REPORT_EVERY_MS`] (and records it).
    fn first_refusal(&self, key: &str) -> bool {
        let now = now_ms();
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if reported
            .get(key)
            .is_some_and(|at| now.saturating_sub(*at) < REPORT_EVERY_MS)
        {
            return false;
        }
        reported.insert(key.to_owned(), now);
        true
    }

    fn spend_here(&self, key: &str, g: Gcra) -> Result<(), u64> {
        let now = now_ms();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let tat = local.get(key).copied();
        let next = gcra(tat, now, g)?;
        local.insert(key.to_owned(), next);
        Ok(())
    }
}

/// An address as its bucket names it: IPv4 whole, IPv6 by its /64.
fn address_key(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_lets_a_burst_through_then_one_per_interval() {
        // 3 per 3 s: three at once, then one a second.
        let g = Gcra::from(Rate {
            burst: 3,
            period: Duration::from_secs(3),
        });
        assert_eq!(
            g,
            Gcra {
                emission_ms: 1000,
                tolerance_ms: 2000
            }
        );
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(gcra(tat, 10_000, g).expect("within the burst"));
        }
        assert_eq!(gcra(tat, 10_000, g), Err(1000), "the fourth waits a second");
        assert_eq!(gcra(tat, 10_500, g), Err(500));
        let later = gcra(tat, 11_000, g).expect("a second later, one more");
        assert_eq!(gcra(Some(later), 11_000, g), Err(1000));
        // Long unused: a full burst again, never more.
        let rested = gcra(Some(later), 60_000, g).unwrap();
        assert_eq!(rested, 61_000);
    }

    #[test]
    fn an_ipv6_address_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7");
    }

    #[test]
    fn the_local_buckets_refuse_past_the_burst_and_name_the_bucket() {
        let limits = LoginLimits::new(LoginLimitsConfig {
            per_address: Some(Rate {
                burst: 2,
                period: Duration::from_secs(3600),
            }),
            per_binding: Some(Rate {
                burst: 1,
                period: Duration::from_secs(3600),
            }),
        });
        let g = |r| Gcra::from(r);
        let rate = limits.config.per_address.unwrap();
        assert!(limits.spend_here("a:x", g(rate)).is_ok());
        assert!(limits.spend_here("a:x", g(rate)).is_ok());
        let wait = limits.spend_here("a:x", g(rate)).unwrap_err();
        assert!(wait > 1_000_000, "half an hour or so: {wait} ms");
        assert!(limits.spend_here("a:y", g(rate)).is_ok(), "another address");
        assert!(limits.first_refusal("a:x"), "reported once");
        assert!(!limits.first_refusal("a:x"), "not again within the minute");
        assert!(limits.first_refusal("a:y"));
    }
}
