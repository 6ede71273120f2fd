//! Fuzz entry point for the redirect validator (see `crate::fuzz`), and the property it checks,
//! which the unit tests check too.

// Fuzz entry points fail by panicking: that is how libFuzzer and the replay test see a bug.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use url::Url;

use super::{validate, AllowedTarget};

const BASES: [&str; 3] = [
    "http://127.0.0.1:8080/authorize?appId=web",
    "http://127.0.0.1:8080/",
    "https://site.example/deep/dir/page?q=1#f",
];

/// The property issue 12 asks for, plus what the callers rely on: an accepted target resolves,
/// by WHATWG parsing against the site, to the site's origin (a relative path) or to an
/// allow-listed origin under its path prefix (an absolute URL), never to a path starting
/// with `//`; the value returned is the target itself (relative) or its serialisation
/// (absolute), is accepted again unchanged, and is a valid header value.
pub(crate) fn assert_lands_safely(raw: &str, out: &str, allowed: &[AllowedTarget]) {
    for base in BASES {
        let base = Url::parse(base).unwrap();
        let joined = base.join(out).unwrap();
        if out.starts_with('/') {
            assert_eq!(
                joined.origin(),
                base.origin(),
                "{raw:?} -> {out:?} on {base}"
            );
        } else {
            assert!(
                allowed
                    .iter()
                    .any(|a| a.origin == joined.origin() && a.admits_path(joined.path())),
                "{raw:?} -> {out:?} leaves the allow-list: {joined}"
            );
        }
        assert!(!joined.path().starts_with("//"), "{raw:?} -> {joined}");
    }
    if raw.starts_with('/') {
        assert_eq!(out, raw);
    } else {
        assert_eq!(
            Url::parse(out).unwrap(),
            Url::parse(raw).unwrap(),
            "{raw:?}"
        );
    }
    assert_eq!(validate(out, allowed).as_deref(), Ok(out), "{raw:?}");
    assert!(http::HeaderValue::from_str(out).is_ok(), "{out:?}");
}

/// Any text as a `redirect`: refused, or it lands on the site or an allowed origin.
pub fn redirect(data: &[u8]) {
    static ALLOWED: OnceLock<Vec<AllowedTarget>> = OnceLock::new();
    let allowed = ALLOWED.get_or_init(|| {
        ["http://127.0.0.1:8080/", "https://app.example.com/portal"]
            .iter()
            .filter_map(|a| AllowedTarget::parse(a).ok())
            .collect()
    });
    let raw = String::from_utf8_lossy(data);
    for list in [&allowed[..], &[]] {
        if let Ok(out) = validate(&raw, list) {
            assert_lands_safely(&raw, &out, list);
        }
    }
}
