//! Where a browser may be sent after login or logout (the open-redirect rules of SPEC §7).
//!
//! A target is accepted when it is a relative path (`/x?y`) or an absolute `http(s)` URL under
//! one of the app's `allowed_redirects`, and every way it can be read leads to the same place.
//! The rules, in order:
//!
//! 1. At most `MAX_LEN` (2048) bytes of printable ASCII, with no space and no backslash: whatever
//!    else a target holds must be percent-encoded, so what we send back in `Location` is what we
//!    checked (browsers drop tabs and newlines and read `\` as `/`; we never rely on that).
//! 2. Every `%` starts a valid escape. The target is then read again after each layer of
//!    percent-decoding (up to `MAX_ENCODING_LAYERS`, 4; more is refused) and after folding
//!    Unicode look-alikes and full-width forms of `/ \ . @ : ? # %` to ASCII; each reading must
//!    be UTF-8 and hold no control, non-ASCII whitespace or invisible formatting character.
//!    Each reading is also taken with its spaces removed and with `;` parameters cut from every
//!    path segment (what a servlet container does), and with the path decoded on its own.
//! 3. Each reading, resolved like a browser does it (WHATWG, dot segments removed, `%2e` counted
//!    as a dot), must stay a path on the same origin that does not start with `//` or `/\`.
//! 4. An absolute target must be `http://` or `https://` written out, carry no user information,
//!    spell its host and port as the URL parser does (no decimal/octal/hex IPv4, no trailing
//!    dot, no encoded characters), and every reading's path must fall under the path prefix of
//!    an allow-listed entry of the same origin.
//!
//! What the caller gets back is the target as given (relative) or its WHATWG serialisation
//! (absolute): a valid header value that a browser resolves to the site's own origin or to an
//! allow-listed one. The payloads this refuses are in `tests/fixtures/redirect-payloads.jsonl`.

use percent_encoding::percent_decode_str;
use url::{Position, Url};

/// Longest target accepted; longer ones are refused rather than truncated.
const MAX_LEN: usize = 2048;

/// Layers of percent-encoding unwrapped while looking for a hidden `//`; a target that still
/// decodes to something new after this many is refused.
const MAX_ENCODING_LAYERS: usize = 4;

/// Any http origin resolves a path-absolute reference the same way; this one only serves to
/// see what a browser would make of a target.
const PROBE_BASE: &str = "http://idgate.invalid/";

/// One `allowed_redirects` entry: scheme, host, port and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTarget {
    origin: url::Origin,
    path_prefix: String,
}

impl AllowedTarget {
    /// The target's origin, as a browser writes it (`https://host:port`, default port left out).
    pub fn origin(&self) -> String {
        self.origin.ascii_serialization()
    }

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

    /// Whether a resolved path of this origin is under the prefix (`/portal` for `/portal/`).
    fn admits_path(&self, path: &str) -> bool {
        path.starts_with(&self.path_prefix)
            || path.len() + 1 == self.path_prefix.len() && self.path_prefix.starts_with(path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect is empty")]
    Empty,
    #[error("redirect is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("redirect may hold only printable ASCII without spaces or backslashes (percent-encode the rest)")]
    BadCharacters,
    #[error("redirect has malformed or too deeply nested percent-encoding, or encodes control, invisible or non-UTF-8 characters")]
    BadEncoding,
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
    if !raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return Err(RedirectError::BadCharacters);
    }
    check_escapes(raw)?;
    if raw.starts_with('/') {
        resolved_paths(raw)?;
        return Ok(raw.to_owned());
    }
    let url = absolute(raw)?;
    let paths = resolved_paths(&url[Position::BeforePath..])?;
    let origin = url.origin();
    if !allowed
        .iter()
        .any(|a| a.origin == origin && paths.iter().all(|p| a.admits_path(p)))
    {
        return Err(RedirectError::NotAllowed);
    }
    // The serialisation escapes what the target left raw (`"`, `{`, `` ` ``…): it may outgrow
    // the limit the target kept, and what is returned must pass this check again unchanged
    // (found by fuzzing).
    let out: String = url.into();
    if out.len() > MAX_LEN {
        return Err(RedirectError::TooLong);
    }
    Ok(out)
}

/// Every `%` must be followed by two hex digits (`%u002F`, `%%32%46`, `%2` are refused).
fn check_escapes(raw: &str) -> Result<(), RedirectError> {
    let bytes = raw.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(RedirectError::BadEncoding);
        }
    }
    Ok(())
}

/// Parses an absolute target: `http(s)://` written out, no user information, and the host and
/// port spelled exactly as the URL parser serialises them (case aside; the default port may be
/// written).
fn absolute(raw: &str) -> Result<Url, RedirectError> {
    let url = Url::parse(raw).map_err(|_| RedirectError::NotAllowed)?;
    let scheme = url.scheme();
    if !matches!(scheme, "http" | "https") {
        return Err(RedirectError::NotAllowed);
    }
    let prefix = format!("{scheme}://");
    if !raw
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(&prefix))
    {
        return Err(RedirectError::NotAllowed);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectError::NotAllowed);
    }
    let rest = raw.get(prefix.len()..).unwrap_or_default();
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = url.host_str().ok_or(RedirectError::NotAllowed)?;
    let spelled_as_parsed = match (url.port(), url.port_or_known_default()) {
        (Some(port), _) => authority.eq_ignore_ascii_case(&format!("{host}:{port}")),
        (None, default) => {
            authority.eq_ignore_ascii_case(host)
                || default.is_some_and(|p| authority.eq_ignore_ascii_case(&format!("{host}:{p}")))
        }
    };
    if !spelled_as_parsed {
        return Err(RedirectError::NotAllowed);
    }
    Ok(url)
}

/// Checks every reading of a path-absolute target (rules 2 and 3 of the module doc) and returns
/// the path each one resolves to.
fn resolved_paths(target: &str) -> Result<Vec<String>, RedirectError> {
    let base = Url::parse(PROBE_BASE).map_err(|_| RedirectError::NotAllowed)?;
    let (path, tail) = target.split_at(target.find(['?', '#']).unwrap_or(target.len()));
    let mut paths = Vec::new();
    // The whole target decoded: what a component that decodes before it parses sees.
    for reading in readings(target)? {
        for variant in variants(&reading) {
            paths.push(resolve(&base, &variant)?);
        }
    }
    // The path decoded on its own: an encoded `?` or `#` stays part of the path.
    for reading in readings(path)? {
        let reading = reading.replace('?', "%3F").replace('#', "%23");
        for variant in variants(&reading) {
            paths.push(resolve(&base, &format!("{variant}{tail}"))?);
        }
    }
    paths.sort_unstable();
    paths.dedup();
    Ok(paths)
}

/// The text itself, then each layer of percent-decoding, each also with look-alikes folded to
/// ASCII. Every reading is checked for control and invisible characters.
fn readings(text: &str) -> Result<Vec<String>, RedirectError> {
    let mut out = vec![text.to_owned()];
    let mut current = text.to_owned();
    for _ in 0..=MAX_ENCODING_LAYERS {
        let decoded = String::from_utf8(percent_decode_str(&current).collect())
            .map_err(|_| RedirectError::BadEncoding)?;
        let folded = fold_lookalikes(&decoded);
        if folded == current {
            for reading in &out {
                check_characters(reading)?;
            }
            return Ok(out);
        }
        if decoded != folded {
            out.push(decoded);
        }
        out.push(folded.clone());
        current = folded;
    }
    Err(RedirectError::BadEncoding)
}

/// A reading as given, without its spaces (a component that trims or drops them), and with
/// `;` parameters cut from each path segment (`/a/..;/x` is `/a/../x` to Java servlets).
fn variants(reading: &str) -> Vec<String> {
    let squeezed = reading.replace(' ', "");
    let mut out = vec![
        strip_path_params(reading),
        strip_path_params(&squeezed),
        squeezed,
        reading.to_owned(),
    ];
    out.sort_unstable();
    out.dedup();
    out
}

fn strip_path_params(reading: &str) -> String {
    let (path, tail) = reading.split_at(reading.find(['?', '#']).unwrap_or(reading.len()));
    let mut out: String = path
        .split('/')
        .map(|segment| segment.split(';').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("/");
    out.push_str(tail);
    out
}

/// Where a browser on our origin goes for this reading; refused unless it is a path there that
/// does not start with `//`.
fn resolve(base: &Url, reading: &str) -> Result<String, RedirectError> {
    let mut chars = reading.chars();
    if chars.next() != Some('/') || matches!(chars.next(), Some('/' | '\\')) {
        return Err(RedirectError::NotAllowed);
    }
    let joined = base.join(reading).map_err(|_| RedirectError::NotAllowed)?;
    if joined.origin() != base.origin() || joined.path().starts_with("//") {
        return Err(RedirectError::NotAllowed);
    }
    Ok(joined.path().to_owned())
}

/// Control characters (C0, DEL, C1), whitespace other than the ASCII space, and invisible
/// formatting characters have no place in a decoded redirect target.
fn check_characters(reading: &str) -> Result<(), RedirectError> {
    if reading
        .chars()
        .any(|c| c.is_control() || (c.is_whitespace() && c != ' ') || is_invisible(c))
    {
        return Err(RedirectError::BadEncoding);
    }
    Ok(())
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Maps full-width ASCII and the look-alikes of the URL delimiters to what a Unicode
/// compatibility normalisation (NFKC, as some servers and frameworks apply) makes of them, plus
/// the slash and dot look-alikes that confusable checks fold.
///
/// Left out on purpose, because folding them cannot change a verdict (every reading must pass,
/// so a fold only ever adds a reading to check): the small `?` and `#` (U+FE56, U+FE5F; they
/// can only end the path after the part an allowed target is matched on, which is ASCII), the
/// ideographic space (U+3000 is refused as whitespace in every reading before folding matters),
/// and ℀ ℁ ℅ ℆ (their slash sits between two letters, so it can make neither `//` nor a `.` or
/// `..` segment). Mutation testing found these arms made no difference.
fn fold_lookalikes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{FF01}'..='\u{FF5E}' => {
                out.push(char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c));
            }
            '\u{3002}' | '\u{FF61}' | '\u{FE52}' | '\u{2024}' => out.push('.'),
            '\u{2025}' => out.push_str(".."),
            '\u{2026}' => out.push_str("..."),
            '\u{2215}' | '\u{2044}' | '\u{29F8}' => out.push('/'),
            '\u{FE68}' | '\u{29F5}' | '\u{29F9}' | '\u{2216}' => out.push('\\'),
            '\u{FE6B}' => out.push('@'),
            '\u{FE55}' | '\u{FE13}' => out.push(':'),
            '\u{FE6A}' => out.push('%'),
            _ => out.push(c),
        }
    }
    out
}

#[doc(hidden)]
pub mod fuzz;
#[cfg(test)]
mod tests;
