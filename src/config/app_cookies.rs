//! An app's own cookie attributes (`[apps.<id>.cookie]`, `[apps.<id>.refresh_cookie]`; Mia's
//! `sidCookieCustomAttributes` and `refreshCookieCustomAttributes`): Domain, Path and SameSite in
//! place of `[session]`'s, checked so that no value can break out of its cookie attribute.

use super::raw::RawCookieAttributes;
use super::ConfigError;

/// Per-app cookie attributes, each `None` where `[session]`'s apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieAttributes {
    pub sid: CookieOverride,
    pub refresh: CookieOverride,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieOverride {
    pub domain: Option<String>,
    pub path: Option<String>,
    pub same_site: Option<cookie::SameSite>,
}

impl CookieAttributes {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Validates an app's cookie attributes: a path starting with `/` without `;` or controls, a
/// plain domain, SameSite `lax` or `strict`; none of them with `__Host-` names, which forbid a
/// Domain and any Path but `/`.
pub(super) fn cookie_override(
    key: &str,
    raw: Option<&RawCookieAttributes>,
    host_prefix: bool,
) -> Result<CookieOverride, ConfigError> {
    let Some(raw) = raw else {
        return Ok(CookieOverride::default());
    };
    let bad = |what: &str, m: String| ConfigError::invalid(format!("{key}.{what}"), m);
    let plain = |v: &str| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    };
    if let Some(p) = &raw.path {
        if !p.starts_with('/') || !plain(p) {
            return Err(bad(
                "path",
                format!("`{p}` must be a path starting with `/`"),
            ));
        }
    }
    if let Some(d) = &raw.domain {
        if !plain(d) || d.contains('/') {
            return Err(bad("domain", format!("`{d}` is not a domain")));
        }
    }
    if host_prefix && (raw.domain.is_some() || raw.path.as_deref().is_some_and(|p| p != "/")) {
        return Err(ConfigError::invalid(
            key,
            "[session] host_prefix names the cookies __Host-, which allows no Domain and no \
             Path but `/`",
        ));
    }
    let same_site = match raw
        .same_site
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => None,
        Some("lax") => Some(cookie::SameSite::Lax),
        Some("strict") => Some(cookie::SameSite::Strict),
        Some(other) => {
            return Err(bad(
                "same_site",
                format!("`{other}`: lax or strict (a session cookie is never sent cross-site)"),
            ))
        }
    };
    Ok(CookieOverride {
        domain: raw.domain.clone(),
        path: raw.path.clone(),
        same_site,
    })
}
