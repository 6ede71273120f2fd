//! Request and route paths in the one form rules are matched in.
//!
//! A rule protects what the upstream serves under its path, so a request path is compared in
//! the form upstreams resolve it to, and refused when upstreams disagree about that form (see
//! [`normalize`]): the query is dropped, `//` collapsed, plain `.` and `..` segments resolved
//! (RFC 3986, as Nginx does), percent-escapes decoded. Refused: `;` anywhere in the path, raw or
//! encoded (Java servlet containers strip `;` parameters per segment, so `/admin;x/y` and
//! `/public/..;/admin/y` are `/admin/y` to them, while other upstreams serve a literal segment:
//! no single reading is safe for both); a segment that is `.` or `..` only once decoded (`%2e%2e`:
//! some upstreams decode before removing dot segments, some after); escapes that decode to `/`,
//! `\` or `%` (double encoding), control characters, invalid UTF-8, and `#` (never part of a
//! request target, and upstreams differ on whether it ends the path). Route paths from the
//! configuration go through the same normalisation at startup, so `/caf%C3%A9/` and `/café/`
//! are one route, and a route path that cannot be normalised stops startup naming it. With
//! `[authorization] case_insensitive = true`, request and route paths are both lowercased
//! before matching, for upstreams that serve paths case-insensitively.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// The request path as rules see it: no query, no repeated slashes, no `.`/`..` segments,
/// escapes decoded (but `?` and `#`, which stay `%3F` and `%23`), so that the result is its own
/// normal form. Borrowed when the path is already in that form (the usual case); `None`
/// when the path cannot be matched safely (see the module doc): `;` raw or encoded, a segment
/// that is `.`/`..` only once decoded, escapes that decode to `/`, `\` or `%`, control
/// characters, invalid UTF-8, a `#` anywhere, or a path not starting with `/`.
pub fn normalize(uri: &str) -> Option<Cow<'_, str>> {
    if uri.contains('#') {
        return None;
    }
    let path = uri.split('?').next().unwrap_or("");
    if !path.starts_with('/') {
        return None;
    }
    let plain = !path
        .bytes()
        .any(|b| matches!(b, b'%' | b'\\' | b';') || b.is_ascii_control())
        && !path.contains("//")
        && !path.contains("/.");
    if plain {
        return Some(Cow::Borrowed(path));
    }
    let mut segments: Vec<String> = Vec::new();
    let ends_with_slash = path.ends_with('/');
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_decode_str(raw).decode_utf8().ok()?;
        if decoded.contains(['/', '\\', '%', ';']) || decoded.chars().any(char::is_control) {
            return None;
        }
        match decoded.as_ref() {
            // `%2e%2e`: a dot segment to upstreams that decode first, a name to the others.
            "." | ".." if raw.contains('%') => return None,
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s.to_owned()),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        // `?` and `#` decoded from `%3F`, `%23` stay escaped: as themselves they would end the
        // path, and the result would not read back as itself.
        for c in s.chars() {
            match c {
                '?' => out.push_str("%3F"),
                '#' => out.push_str("%23"),
                c => out.push(c),
            }
        }
    }
    if out.is_empty() || ends_with_slash {
        out.push('/');
    }
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests;
