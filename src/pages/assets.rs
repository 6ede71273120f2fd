//! The files pages load: the stylesheet, the callback script and each app's colours, served
//! under `/web-login/static/` with a hash of their content in the name, so they can be cached
//! for a year (`immutable`) and a new release or new colours are new names.

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::HeaderValue;
use http_body_util::Full;
use sha2::{Digest, Sha256};

use crate::http::Response;

/// Where assets are served.
pub const PREFIX: &str = "/web-login/static/";

const CSS: &str = include_str!("static/idgate.css");
const CALLBACK_JS: &str = include_str!("static/callback.js");

/// One file.
#[derive(Debug, Clone)]
struct Asset {
    body: Bytes,
    content_type: &'static str,
}

/// The assets of a configuration, by path.
#[derive(Debug, Clone)]
pub struct Assets {
    files: HashMap<String, Asset>,
    css: String,
    callback_js: String,
}

/// `/web-login/static/<stem>.<first 12 hex digits of the SHA-256>.<ext>`.
fn hashed_path(stem: &str, ext: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}{stem}.{hex}.{ext}")
}

impl Assets {
    /// The built-in stylesheet and script.
    pub fn builtin() -> Self {
        let mut assets = Self {
            files: HashMap::new(),
            css: String::new(),
            callback_js: String::new(),
        };
        assets.css = assets.add("idgate", "css", CSS.as_bytes().to_vec());
        assets.callback_js = assets.add("callback", "js", CALLBACK_JS.as_bytes().to_vec());
        assets
    }

    /// Adds a file; returns its path.
    pub fn add(&mut self, stem: &str, ext: &str, body: Vec<u8>) -> String {
        let path = hashed_path(stem, ext, &body);
        let content_type = match ext {
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            _ => "application/octet-stream",
        };
        self.files.insert(
            path.clone(),
            Asset {
                body: Bytes::from(body),
                content_type,
            },
        );
        path
    }

    pub fn css_path(&self) -> &str {
        &self.css
    }

    pub fn callback_js_path(&self) -> &str {
        &self.callback_js
    }

    /// The callback script, for the built-in page to carry inline (see [`callback_csp`]).
    pub fn callback_inline(&self) -> &'static str {
        CALLBACK_JS
    }

    /// The built-in callback script, as the unhashed `/web-login/callback.js` serves it for
    /// pages rendered before an upgrade.
    pub fn callback_js(&self) -> &'static str {
        CALLBACK_JS
    }

    /// The response for `path`, if it names an asset: cached for a year, never sniffed.
    pub fn response(&self, path: &str) -> Option<Response> {
        let asset = self.files.get(path)?;
        let mut resp = http::Response::new(Full::new(asset.body.clone()));
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        Some(resp)
    }
}

/// The callback page's Content-Security-Policy: the pages' own, with the inline callback
/// script allowed by its SHA-256 (and nothing else inline), and its form allowed to lead to
/// `form_targets` too (origins, `https://host:port`). Browsers apply `form-action` to the
/// redirects after a form's submission as well: without JavaScript the form's answer is a 303
/// to the page wanted, which may be on another origin an app allows.
pub fn callback_csp(form_targets: &[String]) -> String {
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CALLBACK_JS));
    let mut form_action = "form-action 'self'".to_owned();
    for origin in form_targets {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    crate::headers::PAGE_CSP
        .replacen(
            "script-src 'self'",
            &format!("script-src 'self' 'sha256-{hash}'"),
            1,
        )
        .replacen("form-action 'self'", &form_action, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_s_hash_and_are_cached_for_good() {
        let assets = Assets::builtin();
        let css = assets.css_path().to_owned();
        assert!(
            css.starts_with("/web-login/static/idgate.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), PREFIX.len() + "idgate..css".len() + 12);
        let resp = assets.response(&css).unwrap();
        assert_eq!(
            resp.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(assets.response("/web-login/static/idgate.css").is_none());
        let mut other = Assets::builtin();
        let a = other.add("app-x", "css", b":root{--idg-accent:#000}".to_vec());
        let b = other.add("app-x", "css", b":root{--idg-accent:#111}".to_vec());
        assert_ne!(a, b, "new content, new name");
    }

    #[test]
    fn the_callback_csp_allows_the_callback_script_and_nothing_else_inline() {
        let csp = callback_csp(&[]);
        assert_ne!(csp, crate::headers::PAGE_CSP, "the hash is in");
        assert!(csp.contains("form-action 'self';"), "{csp}");
        let wider = callback_csp(&["https://app.test:8443".into(), "http://b.test".into()]);
        assert!(
            wider.contains("form-action 'self' https://app.test:8443 http://b.test;"),
            "{wider}"
        );
        assert_eq!(csp.matches("'sha256-").count(), 1);
        assert!(!csp.contains("unsafe-inline"));
        // Carried inside <script>…</script>: the script never closes the element itself.
        assert!(!CALLBACK_JS.to_ascii_lowercase().contains("</script"));
    }
}
