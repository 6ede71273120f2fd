//! Where a browser may be sent after login or logout (the open-redirect rules of SPEC §7).
//!
//! A target is accepted when it is a plain relative path (`/x?y`) or an absolute `http(s)` URL
//! under one of the app's `allowed_redirects`. Everything that a browser could read as
//! "another host" is refused: `//host`, `/\host`, their percent-encoded and double-encoded forms,
//! control characters and whitespace anywhere, userinfo (`user@host`), other schemes
//! (`javascript:`, `data:`), and look-alike hosts (`allowed.example.evil.com`).

use percent_encoding::percent_decode_str;
use url::Url;

/// Longest target accepted; longer ones are refused rather than truncated.
const MAX_LEN: usize = 2048;

/// One `allowed_redirects` entry: scheme, host, port and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTarget {
    origin: url::Origin,
    path_prefix: String,
}

impl AllowedTarget {
    pub fn parse(s: &str) -> Result<Self, String> {
        let url = Url::parse(s).map_err(|e| format!("`{s}`: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!("`{s}` must be an http(s) URL with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{s}` must not contain user information"));
        }
        let mut path_prefix = url.path().to_owned();
        if !path_prefix.ends_with('/') {
            path_prefix.push('/');
        }
        Ok(Self {
            origin: url.origin(),
            path_prefix,
        })
    }

    fn admits(&self, url: &Url) -> bool {
        url.origin() == self.origin
            && (url.path().starts_with(&self.path_prefix)
                || format!("{}/", url.path()) == self.path_prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect is empty")]
    Empty,
    #[error("redirect is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("redirect contains whitespace, control characters or backslashes")]
    BadCharacters,
    #[error("redirect must be a relative path or an allowed absolute URL")]
    NotAllowed,
}

/// Returns the target to send the browser to, or why it is refused.
pub fn validate(raw: &str, allowed: &[AllowedTarget]) -> Result<String, RedirectError> {
    if raw.is_empty() {
        return Err(RedirectError::Empty);
    }
    if raw.len() > MAX_LEN {
        return Err(RedirectError::TooLong);
    }
    // The text as given may hold no whitespace, control character or backslash at all. Its
    // decoded forms (once and twice: a browser or an upstream may decode what we pass on) may
    // hold no control character, and must not turn into a scheme-relative `//` or `/\`.
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(RedirectError::BadCharacters);
    }
    let once = percent_decode_str(raw).decode_utf8_lossy().into_owned();
    let twice = percent_decode_str(&once).decode_utf8_lossy().into_owned();
    for form in [once.as_str(), twice.as_str()] {
        if form.chars().any(char::is_control) {
            return Err(RedirectError::BadCharacters);
        }
    }
    if raw.starts_with('/') {
        for form in [raw, once.as_str(), twice.as_str()] {
            let trimmed = form.trim_start();
            if trimmed.starts_with("//") || trimmed.starts_with("/\\") {
                return Err(RedirectError::NotAllowed);
            }
        }
        // A relative path must stay on our origin once resolved.
        let base = Url::parse("http://idgate.invalid/").map_err(|_| RedirectError::NotAllowed)?;
        let joined = base.join(raw).map_err(|_| RedirectError::NotAllowed)?;
        if joined.origin() != base.origin() {
            return Err(RedirectError::NotAllowed);
        }
        return Ok(raw.to_owned());
    }
    let url = Url::parse(raw).map_err(|_| RedirectError::NotAllowed)?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || !raw
            .to_ascii_lowercase()
            .starts_with(&format!("{}://", url.scheme()))
    {
        return Err(RedirectError::NotAllowed);
    }
    if allowed.iter().any(|a| a.admits(&url)) {
        Ok(url.into())
    } else {
        Err(RedirectError::NotAllowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<AllowedTarget> {
        vec![
            AllowedTarget::parse("http://127.0.0.1:8080/").unwrap(),
            AllowedTarget::parse("https://app.example.com/portal").unwrap(),
        ]
    }

    #[test]
    fn accepts_relative_paths_and_allowed_origins() {
        for ok in [
            "/",
            "/dashboard",
            "/a/b?x=1&y=2#frag",
            "/search?q=%2F%2Fnot-a-host",
            "/reports/q?x=1&y=a%20b",
            "/caf%C3%A9",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/deep/page?x=1",
            "https://app.example.com/portal",
            "https://app.example.com/portal/settings",
        ] {
            assert!(validate(ok, &allowed()).is_ok(), "should accept {ok}");
        }
    }

    #[test]
    fn refuses_open_redirect_payloads() {
        let payloads = [
            "",
            "//evil.example",
            "///evil.example",
            "////evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "\\/evil.example",
            "/%2Fevil.example",
            "/%2fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%252F%252Fevil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nLocation: http://evil.example",
            " //evil.example",
            "/ /evil.example",
            "%20//evil.example",
            "\u{0}/evil",
            "https://evil.example",
            "http://evil.example/",
            "https:evil.example",
            "http:/evil.example",
            "http:\\\\evil.example",
            "HTTP://evil.example",
            "//127.0.0.1:8080@evil.example",
            "http://127.0.0.1:8080@evil.example/",
            "http://user:pass@127.0.0.1:8080/",
            "http://127.0.0.1:8080.evil.example/",
            "http://127.0.0.1:8081/",
            "https://127.0.0.1:8080/",
            "https://app.example.com/portalevil",
            "https://app.example.com/other",
            "https://app.example.com.evil.example/portal",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "javascript://%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "ftp://127.0.0.1:8080/",
            "file:///etc/passwd",
            "evil.example",
            "@evil.example",
            "/\u{3000}/evil.example",
        ];
        assert!(payloads.len() >= 30);
        for p in payloads {
            assert!(validate(p, &allowed()).is_err(), "should refuse {p:?}");
        }
        assert!(validate(&format!("/{}", "a".repeat(MAX_LEN)), &allowed()).is_err());
    }

    #[test]
    fn allowed_targets_must_be_plain_http_origins() {
        assert!(AllowedTarget::parse("javascript:alert(1)").is_err());
        assert!(AllowedTarget::parse("http://u:p@host/").is_err());
        assert!(AllowedTarget::parse("not a url").is_err());
    }
}
