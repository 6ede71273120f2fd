//! The cookies idgate sets: `sid` (the session JWT), `refresh_token`, and `idgate_login`, the
//! short-lived cookie that binds a login state to the browser that started it. Attributes come
//! from `[session]` (Secure, Domain, Path, SameSite); all are HttpOnly.

use cookie::{Cookie, SameSite};

use crate::config::SessionConfig;

pub const SID: &str = "sid";
pub const REFRESH_TOKEN: &str = "refresh_token";
pub const LOGIN_BINDING: &str = "idgate_login";

/// Builds `Set-Cookie` values with the configured attributes.
#[derive(Debug, Clone)]
pub struct CookieJar {
    secure: bool,
    domain: Option<String>,
    path: String,
    same_site: SameSite,
}

impl CookieJar {
    pub fn new(cfg: &SessionConfig) -> Self {
        Self {
            secure: cfg.cookie_secure,
            domain: cfg.cookie_domain.clone(),
            path: cfg.cookie_path.clone(),
            same_site: cfg.cookie_same_site,
        }
    }

    /// A cookie living `max_age_secs`.
    pub fn set(&self, name: &str, value: &str, max_age_secs: i64) -> String {
        self.build(name, value, max_age_secs)
    }

    /// A cookie that makes the browser forget `name`.
    pub fn clear(&self, name: &str) -> String {
        self.build(name, "", 0)
    }

    fn build(&self, name: &str, value: &str, max_age_secs: i64) -> String {
        let mut c = Cookie::build((name.to_owned(), value.to_owned()))
            .http_only(true)
            .secure(self.secure)
            .path(self.path.clone())
            .same_site(self.same_site)
            .max_age(cookie::time::Duration::seconds(max_age_secs));
        if let Some(d) = &self.domain {
            c = c.domain(d.clone());
        }
        c.build().to_string()
    }
}

/// The value of cookie `name` in a `Cookie` request header, without allocating.
pub fn find<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar(secure: bool) -> CookieJar {
        CookieJar {
            secure,
            domain: Some("example.com".into()),
            path: "/".into(),
            same_site: SameSite::Lax,
        }
    }

    #[test]
    fn cookies_carry_the_security_attributes() {
        let c = jar(true).set(SID, "abc", 60);
        for part in [
            "sid=abc",
            "HttpOnly",
            "Secure",
            "Path=/",
            "SameSite=Lax",
            "Max-Age=60",
            "Domain=example.com",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!jar(false).set(SID, "abc", 60).contains("Secure"));
        assert!(jar(true).clear(SID).contains("Max-Age=0"));
    }

    #[test]
    fn finds_cookies_in_a_header() {
        let h = "a=1; sid=tok.en.x; refresh_token=r";
        assert_eq!(find(h, SID), Some("tok.en.x"));
        assert_eq!(find(h, "refresh_token"), Some("r"));
        assert_eq!(find(h, "sidx"), None);
        assert_eq!(find("xsid=1", SID), None);
    }
}
