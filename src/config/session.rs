//! `[session]`: how long sessions and their tokens live, the cookies that carry them (the
//! defaults every app starts from), the verified-token cache, and the key the IdP tokens are
//! kept under at rest. The checks that tie two of these keys together (`__Host-` names, a
//! lifetime no shorter than the token's) are made here too, since both keys are this section's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::RawSession;
use super::{duration, ConfigError};

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Lifetime of the session JWT.
    pub access_ttl: Duration,
    /// Lifetime of the session behind it (and of the cookies).
    pub lifetime: Duration,
    pub idle_timeout: Option<Duration>,
    pub login_state_ttl: Duration,
    pub cookie_secure: bool,
    pub cookie_domain: Option<String>,
    pub cookie_path: String,
    pub cookie_same_site: cookie::SameSite,
    /// `__Host-` / `__Secure-` cookie names (see `cookie`).
    pub host_prefix: bool,
    pub token_cache_entries: usize,
    /// Key for the IdP tokens kept at rest; `None` derives one from the signing key.
    pub token_key: Option<Vec<u8>>,
    pub max_per_user: usize,
    pub outage_grace: Duration,
    /// `lifetime` counts from the last refresh (Mia's refresh-token lifetime), not the login.
    pub sliding_lifetime: bool,
    /// How long a refresh token just used still gets the pair it was exchanged for; zero: never.
    pub refresh_grace: Duration,
    /// `/refreshtoken` clears the cookies when it refuses a refresh token.
    pub invalid_refresh_wipes_cookies: bool,
}

#[cfg(test)]
impl SessionConfig {
    /// The defaults, for unit tests that need a `SessionConfig`.
    pub fn for_tests() -> Self {
        Self {
            access_ttl: Duration::from_secs(900),
            lifetime: Duration::from_secs(43_200),
            idle_timeout: None,
            login_state_ttl: Duration::from_secs(120),
            cookie_secure: true,
            cookie_domain: None,
            cookie_path: "/".into(),
            cookie_same_site: cookie::SameSite::Lax,
            host_prefix: false,
            token_cache_entries: 16,
            token_key: None,
            max_per_user: 10,
            outage_grace: Duration::from_secs(30),
            sliding_lifetime: false,
            refresh_grace: Duration::from_secs(5),
            invalid_refresh_wipes_cookies: false,
        }
    }
}

/// Longest `session.refresh_grace` accepted.
pub const MAX_REFRESH_GRACE: Duration = Duration::from_secs(60);

/// The `[session]` section, with its defaults; `token_key_file` is read here.
pub(super) fn validate(
    s: RawSession,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<SessionConfig, ConfigError> {
    let same_site = match s.cookie_same_site.as_deref().unwrap_or("lax") {
        v if v.eq_ignore_ascii_case("lax") => cookie::SameSite::Lax,
        v if v.eq_ignore_ascii_case("strict") => cookie::SameSite::Strict,
        v if v.eq_ignore_ascii_case("none") => cookie::SameSite::None,
        other => {
            return Err(ConfigError::invalid(
                "session.cookie_same_site",
                format!("`{other}` is not one of lax, strict, none"),
            ))
        }
    };
    let token_key = match &s.token_key_file {
        None => None,
        Some(p) => {
            let bytes = std::fs::read(resolve(p))
                .map_err(|e| ConfigError::invalid("session.token_key_file", e.to_string()))?;
            if bytes.len() < 32 {
                return Err(ConfigError::invalid(
                    "session.token_key_file",
                    "needs at least 32 bytes of key material",
                ));
            }
            Some(bytes)
        }
    };
    let session = SessionConfig {
        access_ttl: duration("session.access_ttl", s.access_ttl, "15m")?,
        lifetime: duration("session.lifetime", s.lifetime, "12h")?,
        idle_timeout: s
            .idle_timeout
            .map(|t| duration("session.idle_timeout", Some(t), "0s"))
            .transpose()?,
        login_state_ttl: duration("session.login_state_ttl", s.login_state_ttl, "2m")?,
        cookie_secure: s.cookie_secure.unwrap_or(true),
        cookie_domain: s.cookie_domain,
        cookie_path: s.cookie_path.unwrap_or_else(|| "/".into()),
        cookie_same_site: same_site,
        host_prefix: s.host_prefix.unwrap_or(false),
        token_cache_entries: s.token_cache_entries.unwrap_or(100_000).max(16),
        token_key,
        max_per_user: match s.max_per_user {
            Some(0) => {
                return Err(ConfigError::invalid(
                    "session.max_per_user",
                    "must be at least 1",
                ))
            }
            Some(n) => n,
            None => 10,
        },
        outage_grace: duration("session.outage_grace", s.outage_grace, "30s")?,
        sliding_lifetime: s.sliding_lifetime.unwrap_or(false),
        refresh_grace: refresh_grace(s.refresh_grace)?,
        invalid_refresh_wipes_cookies: s.invalid_refresh_wipes_cookies.unwrap_or(false),
    };
    if session.host_prefix
        && (!session.cookie_secure || session.cookie_domain.is_some() || session.cookie_path != "/")
    {
        return Err(ConfigError::invalid(
            "session.host_prefix",
            "`__Host-` cookies need cookie_secure = true, no cookie_domain and cookie_path \"/\"",
        ));
    }
    if session.lifetime < session.access_ttl {
        return Err(ConfigError::invalid(
            "session.lifetime",
            "must be at least session.access_ttl",
        ));
    }
    Ok(session)
}

/// `session.refresh_grace`: zero turns it off; more than [`MAX_REFRESH_GRACE`] is refused (a
/// refresh token stolen and replayed inside the window revokes nothing).
fn refresh_grace(value: Option<String>) -> Result<Duration, ConfigError> {
    const KEY: &str = "session.refresh_grace";
    let text = value.as_deref().unwrap_or("5s");
    let d = humantime::parse_duration(text)
        .map_err(|e| ConfigError::invalid(KEY, format!("`{text}`: {e} (e.g. \"5s\", \"0s\")")))?;
    if d > MAX_REFRESH_GRACE {
        return Err(ConfigError::invalid(
            KEY,
            "at most 60s: within the window a replayed refresh token does not revoke the session",
        ));
    }
    Ok(d)
}
