//! The cookies idgate sets, all HttpOnly:
//!
//! | cookie | holds | path | lives |
//! |---|---|---|---|
//! | `sid` | the session JWT | `[session] cookie_path` | the session |
//! | `idgate_renew` | the session's renewal secret: `/auth` renews an expired `sid` only with it | `cookie_path` | the session |
//! | `refresh_token` | the refresh token | `/refreshtoken` only (or the app's `refresh_cookie.path`) | the session |
//! | `idgate_login` | the browser bindings of logins in progress, and the app and page of the newest (see `routes::login::cookie`) | `cookie_path` | half an hour, or a login state's lifetime if longer |
//!
//! The shipped Nginx snippets remove all four from the `Cookie` header an upstream receives.
//! Secure, Domain and SameSite come from `[session]`; an app may set its own Domain, Path and
//! SameSite (`[apps.X.cookie]`, `[apps.X.refresh_cookie]`, Mia's `sidCookieCustomAttributes`
//! and `refreshCookieCustomAttributes`), see [`CookieJar::for_app`]. With `[session] host_prefix = true` the
//! names carry the `__Host-` prefix (`__Secure-` for `refresh_token`, whose path is not `/`), so
//! a sibling subdomain cannot plant them; the plain names stay the default, for compatibility
//! with clients that read `sid`.

use cookie::{Cookie, SameSite};

use crate::config::SessionConfig;

/// The path the refresh token cookie is sent to: the one endpoint that reads it.
pub const REFRESH_PATH: &str = "/refreshtoken";

/// Longest `Cookie` header `/auth` reads; a longer one is refused (403) rather than parsed.
pub const MAX_COOKIE_HEADER: usize = 16 * 1024;

/// Which of idgate's cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sid,
    Renew,
    Refresh,
    Login,
}

impl Kind {
    fn base_name(self) -> &'static str {
        match self {
            Kind::Sid => "sid",
            Kind::Renew => "idgate_renew",
            Kind::Refresh => "refresh_token",
            Kind::Login => "idgate_login",
        }
    }
}

/// The attributes one cookie is set with.
#[derive(Debug, Clone)]
struct Attributes {
    domain: Option<String>,
    path: String,
    same_site: SameSite,
}

/// Builds `Set-Cookie` values with the configured attributes, and knows each cookie's name.
#[derive(Debug, Clone)]
pub struct CookieJar {
    secure: bool,
    /// `sid`, `idgate_renew` and `idgate_login`.
    session: Attributes,
    /// `refresh_token`.
    refresh: Attributes,
    /// Indexed like [`Kind`]: the names with the configured prefix.
    names: [String; 4],
}

impl CookieJar {
    pub fn new(cfg: &SessionConfig) -> Self {
        let name = |kind: Kind| match (cfg.host_prefix, kind) {
            (false, _) => kind.base_name().to_owned(),
            (true, Kind::Refresh) => format!("__Secure-{}", kind.base_name()),
            (true, _) => format!("__Host-{}", kind.base_name()),
        };
        Self {
            secure: cfg.cookie_secure,
            session: Attributes {
                domain: cfg.cookie_domain.clone(),
                path: cfg.cookie_path.clone(),
                same_site: cfg.cookie_same_site,
            },
            refresh: Attributes {
                domain: cfg.cookie_domain.clone(),
                path: REFRESH_PATH.to_owned(),
                same_site: cfg.cookie_same_site,
            },
            names: [
                name(Kind::Sid),
                name(Kind::Renew),
                name(Kind::Refresh),
                name(Kind::Login),
            ],
        }
    }

    /// This jar with an app's own attributes (`[apps.X.cookie]`, `[apps.X.refresh_cookie]`,
    /// validated by the config) in place of `[session]`'s. The names stay the same: every app's
    /// cookies are read alike.
    pub fn for_app(&self, app: &crate::config::CookieAttributes) -> Self {
        let apply = |base: &Attributes, o: &crate::config::CookieOverride| Attributes {
            domain: o.domain.clone().or_else(|| base.domain.clone()),
            path: o.path.clone().unwrap_or_else(|| base.path.clone()),
            same_site: o.same_site.unwrap_or(base.same_site),
        };
        Self {
            secure: self.secure,
            session: apply(&self.session, &app.sid),
            refresh: apply(&self.refresh, &app.refresh),
            names: self.names.clone(),
        }
    }

    /// The cookie's name as configured.
    pub fn name(&self, kind: Kind) -> &str {
        &self.names[kind as usize]
    }

    /// A cookie living `max_age_secs`.
    pub fn set(&self, kind: Kind, value: &str, max_age_secs: i64) -> String {
        self.build(kind, value, max_age_secs)
    }

    /// A cookie that makes the browser forget `kind`.
    pub fn clear(&self, kind: Kind) -> String {
        self.build(kind, "", 0)
    }

    fn build(&self, kind: Kind, value: &str, max_age_secs: i64) -> String {
        let a = match kind {
            Kind::Refresh => &self.refresh,
            _ => &self.session,
        };
        let mut c = Cookie::build((self.name(kind).to_owned(), value.to_owned()))
            .http_only(true)
            .secure(self.secure)
            .path(a.path.clone())
            .same_site(a.same_site)
            .max_age(cookie::time::Duration::seconds(max_age_secs));
        if let Some(d) = &a.domain {
            c = c.domain(d.clone());
        }
        c.build().to_string()
    }

    /// The value of cookie `kind` in the request's `Cookie` headers.
    pub fn read<'a>(&self, headers: &'a http::HeaderMap, kind: Kind) -> Option<&'a str> {
        let name = self.name(kind);
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| find(h, name))
    }
}

/// The value of cookie `name` in a `Cookie` request header, without allocating.
pub fn find<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// The names of idgate's cookies, without a prefix: [`Kind`]'s.
const OWN_NAMES: [&[u8]; 4] = [b"sid", b"idgate_renew", b"refresh_token", b"idgate_login"];

/// The `Cookie` header an upstream receives (`idgate-upstream-cookie` in `/auth`'s 200, which
/// the shipped snippets pass on): the request's `Cookie` headers joined with `; `, without
/// idgate's cookies in any spelling (`sid`, `idgate_renew`, `refresh_token`, `idgate_login`,
/// each with or without a `__Host-` or `__Secure-` prefix, whatever the configuration says) and,
/// unless the location passes API keys on (`keep_api_key`), without `mia_client_key`. Every
/// one is removed, however many the client sends. Names compare as [`find`] reads them
/// (trimmed of whitespace, case-sensitive), on the header's bytes: a cookie idgate would
/// read goes even from a header it cannot read as text. `None` when nothing is left.
pub fn for_upstream(headers: &http::HeaderMap, keep_api_key: bool) -> Option<http::HeaderValue> {
    let mut kept: Vec<u8> = Vec::new();
    for header in headers.get_all(http::header::COOKIE) {
        let mut rest = header.as_bytes();
        while !rest.is_empty() {
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            let pair = rest[..end].trim_ascii();
            rest = rest.get(end + 1..).unwrap_or_default();
            let name = name_of(pair);
            let api_key = name == crate::apikeys::KEY_COOKIE.as_bytes();
            if pair.is_empty() || is_own(name) || (api_key && !keep_api_key) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    if kept.is_empty() {
        return None;
    }
    // The bytes are the client's own header's, which hyper accepted: this does not fail.
    http::HeaderValue::from_bytes(&kept).ok()
}

/// Whether `name` is one of idgate's cookies, in any spelling.
fn is_own(name: &[u8]) -> bool {
    let name = name
        .strip_prefix(b"__Host-")
        .or_else(|| name.strip_prefix(b"__Secure-"))
        .unwrap_or(name);
    OWN_NAMES.contains(&name)
}

/// The name of a cookie pair, trimmed as [`find`] trims it: of Unicode whitespace when it is
/// UTF-8 (`\u{85}sid` is `sid` to `find`). A name that is not UTF-8 is one `find` never reads;
/// it is trimmed of ASCII whitespace. (A header value holds no other control byte than tab.)
fn name_of(pair: &[u8]) -> &[u8] {
    let name = pair.split(|b| *b == b'=').next().unwrap_or(pair);
    match std::str::from_utf8(name) {
        Ok(text) => text.trim().as_bytes(),
        Err(_) => name.trim_ascii(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar(secure: bool, host_prefix: bool) -> CookieJar {
        let mut cfg = crate::config::SessionConfig::for_tests();
        cfg.cookie_secure = secure;
        cfg.host_prefix = host_prefix;
        cfg.cookie_domain = (!host_prefix).then(|| "example.com".to_owned());
        CookieJar::new(&cfg)
    }

    #[test]
    fn cookies_carry_the_security_attributes() {
        let c = jar(true, false).set(Kind::Sid, "abc", 60);
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
        assert!(!jar(false, false)
            .set(Kind::Sid, "abc", 60)
            .contains("Secure"));
        assert!(jar(true, false).clear(Kind::Sid).contains("Max-Age=0"));
        let r = jar(true, false).set(Kind::Refresh, "r", 60);
        assert!(r.contains("Path=/refreshtoken"), "{r}");
    }

    #[test]
    fn the_host_prefix_renames_every_cookie() {
        let j = jar(true, true);
        assert_eq!(j.name(Kind::Sid), "__Host-sid");
        assert_eq!(j.name(Kind::Renew), "__Host-idgate_renew");
        assert_eq!(j.name(Kind::Login), "__Host-idgate_login");
        assert_eq!(j.name(Kind::Refresh), "__Secure-refresh_token");
        let c = j.set(Kind::Sid, "t", 60);
        assert!(c.starts_with("__Host-sid=t") && c.contains("Path=/") && c.contains("Secure"));
        assert!(!c.contains("Domain"), "{c}");
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("sid=planted; __Host-sid=real"),
        );
        assert_eq!(j.read(&h, Kind::Sid), Some("real"));
        assert_eq!(jar(true, false).read(&h, Kind::Sid), Some("planted"));
    }

    #[test]
    fn plain_names_and_the_cookie_header_bound() {
        let j = jar(false, false);
        assert_eq!(j.name(Kind::Sid), "sid");
        assert_eq!(j.name(Kind::Renew), "idgate_renew");
        assert_eq!(j.name(Kind::Refresh), "refresh_token");
        assert_eq!(j.name(Kind::Login), "idgate_login");
        let cleared = j.clear(Kind::Renew);
        assert!(cleared.starts_with("idgate_renew=;"), "{cleared}");
        assert_eq!(MAX_COOKIE_HEADER, 16384);
        // Every Cookie header is searched, the first holding the name wins.
        let mut h = http::HeaderMap::new();
        h.append(http::header::COOKIE, "a=1".parse().unwrap());
        h.append(http::header::COOKIE, "idgate_renew=\"r1\"".parse().unwrap());
        h.append(http::header::COOKIE, "idgate_renew=r2".parse().unwrap());
        assert_eq!(j.read(&h, Kind::Renew), Some("r1"));
        assert_eq!(j.read(&h, Kind::Sid), None);
    }

    #[test]
    fn an_app_sets_its_own_attributes_and_keeps_the_names() {
        let base = jar(true, false);
        let app = crate::config::CookieAttributes {
            sid: crate::config::CookieOverride {
                domain: Some("app.example".into()),
                path: Some("/app".into()),
                same_site: Some(SameSite::Strict),
            },
            refresh: crate::config::CookieOverride {
                path: Some("/".into()),
                ..Default::default()
            },
        };
        let j = base.for_app(&app);
        let sid = j.set(Kind::Sid, "t", 60);
        for part in [
            "sid=t",
            "Domain=app.example",
            "Path=/app",
            "SameSite=Strict",
        ] {
            assert!(sid.contains(part), "{sid} lacks {part}");
        }
        assert!(j.clear(Kind::Renew).contains("Path=/app"));
        let r = j.set(Kind::Refresh, "r", 60);
        // The refresh cookie's own path; Domain and SameSite stay [session]'s.
        for part in ["Path=/;", "Domain=example.com", "SameSite=Lax"] {
            assert!(r.contains(part), "{r} lacks {part}");
        }
        assert_eq!(j.name(Kind::Sid), base.name(Kind::Sid));
        // No override: the same attributes as the base jar.
        let same = base.for_app(&crate::config::CookieAttributes::default());
        assert_eq!(same.set(Kind::Sid, "t", 60), base.set(Kind::Sid, "t", 60));
        assert_eq!(
            same.set(Kind::Refresh, "t", 60),
            base.set(Kind::Refresh, "t", 60)
        );
    }

    #[test]
    fn finds_cookies_in_a_header() {
        let h = "a=1; sid=tok.en.x; refresh_token=r";
        assert_eq!(find(h, "sid"), Some("tok.en.x"));
        assert_eq!(find(h, "refresh_token"), Some("r"));
        assert_eq!(find(h, "sidx"), None);
        assert_eq!(find("xsid=1", "sid"), None);
    }

    fn upstream(cookies: &[&[u8]], keep_api_key: bool) -> Option<Vec<u8>> {
        let mut headers = http::HeaderMap::new();
        for c in cookies {
            headers.append(
                http::header::COOKIE,
                http::HeaderValue::from_bytes(c).unwrap(),
            );
        }
        for_upstream(&headers, keep_api_key).map(|v| v.as_bytes().to_vec())
    }

    #[test]
    fn the_upstream_gets_every_cookie_but_idgates() {
        let jar: &[u8] = b"theme=dark; sid=t.o.k; idgate_renew=r; __Host-sid=h; \
            __Secure-refresh_token=s; refresh_token=f; idgate_login=l; __Host-idgate_login=m; lang=en";
        assert_eq!(upstream(&[jar], false).unwrap(), b"theme=dark; lang=en");
        // However many the client sends, in however many headers, spaced however.
        let crowded: &[u8] = b"sid=1;sid=2; sid=3 ;\tsid=4;  sid =5; sid\t= 6; keep=1;;; sid";
        assert_eq!(
            upstream(&[crowded, b"sid=7; other=2"], false).unwrap(),
            b"keep=1; other=2"
        );
        // Nothing left: no header at all.
        assert_eq!(upstream(&[b"sid=1; refresh_token=2"], false), None);
        assert_eq!(upstream(&[], false), None);
        // Not idgate's: other names, other cases, other prefixes.
        let near: &[u8] = b"sidx=1; xsid=2; SID=3; __host-sid=4; __Host-x=5; _sid=6";
        assert_eq!(upstream(&[near], false).unwrap(), near);
        // Bytes above 0x7F stay as they were, and the cookies beside them still go.
        assert_eq!(
            upstream(&[b"name=caf\xc3\xa9; sid=t; x=\xff"], false).unwrap(),
            b"name=caf\xc3\xa9; x=\xff"
        );
    }

    #[test]
    fn the_api_key_cookie_stays_only_where_keys_are_passed_on() {
        let h: &[u8] = b"mia_client_key=k1; a=1; mia_client_key = k2; sid=t";
        assert_eq!(upstream(&[h], false).unwrap(), b"a=1");
        assert_eq!(
            upstream(&[h], true).unwrap(),
            b"mia_client_key=k1; a=1; mia_client_key = k2"
        );
    }

    /// Whatever `/auth` would read as one of idgate's cookies (with either naming), the
    /// upstream's header does not hold.
    #[test]
    fn no_cookie_idgate_reads_reaches_the_upstream() {
        let headers: [&str; 7] = [
            "sid=a",
            " sid = b ; x=1",
            "x=1;\tsid\t=c",
            "x=1; sid=\"d\"; __Host-sid=e",
            "__Host-idgate_renew=f;__Secure-refresh_token=g; idgate_login=h",
            "a=b=c; sid==i; idgate_renew=",
            "\u{85}sid\u{85}=j; x=\u{a0}sid=k",
        ];
        for prefixed in [false, true] {
            let jar = jar(true, prefixed);
            for h in headers {
                let out = upstream(&[h.as_bytes()], false).unwrap_or_default();
                let out = std::str::from_utf8(&out).unwrap();
                for kind in [Kind::Sid, Kind::Renew, Kind::Refresh, Kind::Login] {
                    let name = jar.name(kind);
                    if find(h, name).is_some() {
                        assert_eq!(
                            find(out, name),
                            None,
                            "{name} of {h:?} reached the upstream: {out:?}"
                        );
                    }
                }
            }
        }
    }
}
