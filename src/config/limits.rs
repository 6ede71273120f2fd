//! `[login_limits]`: the rate limits on the login endpoints (see `limits`): a token bucket per
//! client address and one per browser binding, each `"N/s"`, `"N/min"` or `"N/h"` (N requests
//! at once, refilled evenly over the period) or `"off"`.

use std::time::Duration;

use super::raw::RawLoginLimits;
use super::ConfigError;

/// The default per client address: generous, for many people behind one NAT.
const DEFAULT_PER_ADDRESS: &str = "120/min";
/// The default per browser binding (one browser's logins in progress, or one refresh token).
const DEFAULT_PER_BINDING: &str = "20/min";
/// The largest N accepted.
const MAX_BURST: u32 = 1_000_000;

/// A bucket: `burst` requests at once, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub period: Duration,
}

impl Rate {
    /// `"N/s"`, `"N/min"`, `"N/h"`; `None` for `"off"`.
    pub fn parse(key: &str, raw: &str) -> Result<Option<Self>, ConfigError> {
        if raw == "off" {
            return Ok(None);
        }
        let bad = || {
            ConfigError::invalid(
                key,
                format!("`{raw}` is not N/s, N/min, N/h (N from 1 to {MAX_BURST}) or off"),
            )
        };
        let (n, unit) = raw.split_once('/').ok_or_else(bad)?;
        let burst: u32 = n.trim().parse().map_err(|_| bad())?;
        if !(1..=MAX_BURST).contains(&burst) {
            return Err(bad());
        }
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Some(Self { burst, period }))
    }
}

/// The validated `[login_limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimitsConfig {
    /// Per client address (an IPv6 address counts by its /64); `None`: off.
    pub per_address: Option<Rate>,
    /// Per browser binding (the login cookie, or the refresh token); `None`: off.
    pub per_binding: Option<Rate>,
}

impl Default for LoginLimitsConfig {
    fn default() -> Self {
        let rate = |raw| Rate::parse("", raw).ok().flatten();
        Self {
            per_address: rate(DEFAULT_PER_ADDRESS),
            per_binding: rate(DEFAULT_PER_BINDING),
        }
    }
}

pub(super) fn validate(raw: Option<RawLoginLimits>) -> Result<LoginLimitsConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    Ok(LoginLimitsConfig {
        per_address: Rate::parse(
            "login_limits.per_address",
            raw.per_address.as_deref().unwrap_or(DEFAULT_PER_ADDRESS),
        )?,
        per_binding: Rate::parse(
            "login_limits.per_binding",
            raw.per_binding.as_deref().unwrap_or(DEFAULT_PER_BINDING),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_n_per_unit_or_off() {
        let r = |s| Rate::parse("k", s);
        assert_eq!(
            r("30/min").unwrap(),
            Some(Rate {
                burst: 30,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(r("off").unwrap(), None);
        for bad in [
            "",
            "30",
            "0/s",
            "-1/s",
            "30/day",
            "x/min",
            "1000001/s",
            "30 per min",
        ] {
            assert!(r(bad).is_err(), "{bad}");
        }
        let d = LoginLimitsConfig::default();
        assert_eq!(d.per_address.unwrap().burst, 120);
        assert_eq!(d.per_binding.unwrap().burst, 20);
        assert_eq!(validate(None).unwrap(), d);
    }
}
