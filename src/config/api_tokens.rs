//! `[apps.X.introspection]` (opaque API tokens of the app's IdP, RFC 7662) and
//! `[apps.X.audiences.NAME]` (tokens idgate mints for one upstream): the raw keys and their
//! validation. What they do is `crate::introspect` and `crate::jwt::scoped`'s.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Protocol, ProviderConfig};

/// The longest a scoped token may live (issue 17: at most five minutes, whatever the session).
pub const MAX_AUDIENCE_LIFETIME: Duration = Duration::from_secs(300);
/// The longest an introspection answer may be trusted without asking the IdP again.
pub const MAX_INTROSPECTION_TTL: Duration = Duration::from_secs(3600);
/// Introspection requests at the IdP at once, by default, and at most (per app).
pub const DEFAULT_INTROSPECTIONS_IN_FLIGHT: usize = 32;
pub const MAX_INTROSPECTIONS_IN_FLIGHT: usize = 1024;
/// The claims a scoped token may carry besides `iss`, `aud`, `iat`, `exp` and `jti`.
pub const AUDIENCE_CLAIMS: &[&str] = &["sub", "email", "name", "username", "groups", "permissions"];

/// `[apps.X.introspection]`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawIntrospection {
    /// The app's OpenID Connect provider whose `introspection_endpoint` (from discovery) is
    /// asked, authenticated as that provider's client.
    pub provider: String,
    /// The longest an answer is reused (default `60s`, at most `1h`); never beyond the token's
    /// own `exp`.
    pub cache_ttl: Option<String>,
    /// How many answers are kept (default 10000).
    pub cache_entries: Option<usize>,
    /// How many tokens may be at the IdP at once (default 32): beyond, a token idgate has no
    /// answer for is refused with a 503 rather than sent (a flood of made-up tokens would
    /// otherwise be a flood of requests to the IdP).
    pub max_in_flight: Option<usize>,
    /// The introspection answer's `aud` must hold this value, when set.
    pub audience: Option<String>,
    /// The answer's `client_id` must be one of these, when set.
    pub client_ids: Option<Vec<String>>,
    /// Machine tokens (client credentials: no `sub`, or `sub` equal to `client_id`), by the
    /// `client_id` the IdP reports: the identity they stand for.
    #[serde(default)]
    pub machines: BTreeMap<String, RawMachine>,
}

/// `[apps.X.introspection.machines.CLIENT_ID]`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawMachine {
    /// The user id the upstream sees (`mia-userid`).
    pub user_id: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `[apps.X.audiences.NAME]`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawAudience {
    /// The claims the upstream gets (of [`AUDIENCE_CLAIMS`]; default `["sub"]`).
    pub claims: Option<Vec<String>>,
    /// How long a minted token lives (default and most `5m`).
    pub lifetime: Option<String>,
}

/// An app's introspection of opaque bearer tokens, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct IntrospectionConfig {
    pub provider: String,
    pub cache_ttl: Duration,
    pub cache_entries: usize,
    /// The most introspection requests at the IdP at once (see [`RawIntrospection`]).
    pub max_in_flight: usize,
    pub audience: Option<String>,
    pub client_ids: Option<Vec<String>>,
    /// Machine identities by `client_id`.
    pub machines: BTreeMap<String, MachineIdentity>,
}

/// The identity a client-credentials token stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineIdentity {
    pub user_id: String,
    pub groups: Vec<String>,
}

/// One upstream audience an app mints tokens for, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceConfig {
    /// Of [`AUDIENCE_CLAIMS`], without repeats.
    pub claims: Vec<String>,
    pub lifetime: Duration,
}

/// `[apps.<app>.introspection]`: the provider must be one of the app's OpenID Connect ones.
pub(super) fn introspection(
    app: &str,
    raw: Option<RawIntrospection>,
    providers: &BTreeMap<String, std::sync::Arc<ProviderConfig>>,
) -> Result<Option<IntrospectionConfig>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let key = |k: &str| format!("apps.{app}.introspection.{k}");
    match providers.get(&raw.provider).map(|p| &p.protocol) {
        Some(Protocol::Oidc { .. }) => {}
        Some(_) => {
            return Err(ConfigError::invalid(
                key("provider"),
                format!(
                    "`{}` is plain OAuth2: it has no introspection endpoint to discover",
                    raw.provider
                ),
            ))
        }
        None => {
            return Err(ConfigError::invalid(
                key("provider"),
                format!("no provider named `{}` in this app", raw.provider),
            ))
        }
    }
    let cache_ttl = super::duration(&key("cache_ttl"), raw.cache_ttl, "60s")?;
    if cache_ttl > MAX_INTROSPECTION_TTL {
        return Err(ConfigError::invalid(
            key("cache_ttl"),
            "at most 1h (a token revoked at the IdP passes for this long)",
        ));
    }
    let cache_entries = raw.cache_entries.unwrap_or(10_000);
    if cache_entries == 0 {
        return Err(ConfigError::invalid(key("cache_entries"), "at least 1"));
    }
    let max_in_flight = raw
        .max_in_flight
        .unwrap_or(DEFAULT_INTROSPECTIONS_IN_FLIGHT);
    if !(1..=MAX_INTROSPECTIONS_IN_FLIGHT).contains(&max_in_flight) {
        return Err(ConfigError::invalid(
            key("max_in_flight"),
            format!("from 1 to {MAX_INTROSPECTIONS_IN_FLIGHT}"),
        ));
    }
    let mut machines = BTreeMap::new();
    for (client_id, m) in raw.machines {
        if m.user_id.is_empty() {
            return Err(ConfigError::invalid(
                key(&format!("machines.{client_id}.user_id")),
                "must not be empty",
            ));
        }
        machines.insert(
            client_id,
            MachineIdentity {
                user_id: m.user_id,
                groups: m.groups,
            },
        );
    }
    Ok(Some(IntrospectionConfig {
        provider: raw.provider,
        cache_ttl,
        cache_entries,
        max_in_flight,
        audience: raw.audience.filter(|a| !a.is_empty()),
        client_ids: raw.client_ids,
        machines,
    }))
}

/// `[apps.<app>.audiences]`: names a header can carry, known claims, lifetimes of 5 minutes at
/// most.
pub(super) fn audiences(
    app: &str,
    raw: BTreeMap<String, RawAudience>,
) -> Result<BTreeMap<String, AudienceConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, a) in raw {
        let key = |k: &str| format!("apps.{app}.audiences.{name}.{k}");
        if name.is_empty()
            || name.len() > 200
            || !name.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'"')
        {
            return Err(ConfigError::invalid(
                format!("apps.{app}.audiences"),
                format!("`{name}`: an audience is 1 to 200 visible ASCII characters"),
            ));
        }
        let lifetime = super::duration(&key("lifetime"), a.lifetime, "5m")?;
        if lifetime > MAX_AUDIENCE_LIFETIME {
            return Err(ConfigError::invalid(key("lifetime"), "at most 5m"));
        }
        let mut claims: Vec<String> = Vec::new();
        for c in a.claims.unwrap_or_else(|| vec!["sub".into()]) {
            if !AUDIENCE_CLAIMS.contains(&c.as_str()) {
                return Err(ConfigError::invalid(
                    key("claims"),
                    format!("`{c}` is not one of {}", AUDIENCE_CLAIMS.join(", ")),
                ));
            }
            if !claims.contains(&c) {
                claims.push(c);
            }
        }
        out.insert(name, AudienceConfig { claims, lifetime });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_bounded() {
        let raw = |lifetime: &str, claims: &[&str]| {
            BTreeMap::from([(
                "orders".to_owned(),
                RawAudience {
                    claims: Some(claims.iter().map(|c| (*c).to_owned()).collect()),
                    lifetime: Some(lifetime.into()),
                },
            )])
        };
        let ok = audiences("web", raw("2m", &["sub", "groups", "sub"])).unwrap();
        assert_eq!(ok["orders"].claims, ["sub", "groups"]);
        assert_eq!(ok["orders"].lifetime, Duration::from_secs(120));
        let long = audiences("web", raw("6m", &["sub"])).unwrap_err();
        assert!(long.to_string().contains("at most 5m"), "{long}");
        let unknown = audiences("web", raw("1m", &["user"])).unwrap_err();
        assert!(unknown.to_string().contains("`user`"), "{unknown}");
        let bad_name = audiences(
            "web",
            BTreeMap::from([("a b".to_owned(), RawAudience::default())]),
        )
        .unwrap_err();
        assert!(bad_name.to_string().contains("visible ASCII"), "{bad_name}");
        let default = audiences(
            "web",
            BTreeMap::from([("x".to_owned(), RawAudience::default())]),
        )
        .unwrap();
        assert_eq!(default["x"].lifetime, MAX_AUDIENCE_LIFETIME);
        assert_eq!(default["x"].claims, ["sub"]);
    }
}
