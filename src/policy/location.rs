//! The rules Nginx locations state themselves, in their `auth_request` URI: decoded once,
//! parsed within the expression limits, and cached in a bounded map, so that `/auth` parses
//! each one once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use percent_encoding::percent_decode_str;

use super::expr::{self, Expr};

/// The rules Nginx locations state in their `auth_request` URI (`/auth/<expression>`), parsed
/// once each and cached. The URI is written in the Nginx config, never by a client, and only
/// trusted peers reach `/auth`; still, a rule past the expression limits is refused like any
/// other that does not parse (403), never parsed without bounds.
///
/// Decoded exactly once: Nginx percent-escapes the subrequest URI once when it proxies it (space,
/// `"`, `|`, `%` …), so a rule written plainly in quotes (`auth_request "/_idgate/auth/groups.a
/// || groups.b";`) arrives as `/auth/groups.a%20%7C%7C%20groups.b` and decodes back to itself,
/// while a rule written already percent-encoded arrives double-encoded and fails to parse (403
/// and a log line) rather than being decoded a second time.
#[derive(Debug, Default)]
pub struct LocationRules {
    /// A std lock: held only for a map lookup or insert, never across an `.await`.
    parsed: RwLock<HashMap<String, Arc<Expr>>>,
}

/// Distinct location rules kept parsed; a config has a handful.
const MAX_LOCATION_RULES: usize = 1024;

impl LocationRules {
    /// The rule carried by the `/auth` request path, if any.
    pub fn get(&self, auth_path: &str) -> Result<Option<Arc<Expr>>, expr::ParseError> {
        let Some(encoded) = auth_path.strip_prefix("/auth/").filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        if let Some(rule) = self
            .parsed
            .read()
            .ok()
            .and_then(|m| m.get(encoded).cloned())
        {
            return Ok(Some(rule));
        }
        // Longer than any rule that can parse, even fully escaped: not worth decoding.
        if encoded.len() > 3 * expr::MAX_EXPRESSION_BYTES {
            return Err(expr::ParseError {
                column: 1,
                message: format!("longer than {} bytes", expr::MAX_EXPRESSION_BYTES),
            });
        }
        let text = percent_decode_str(encoded).decode_utf8_lossy();
        let rule = Arc::new(expr::parse(&text)?);
        if let Ok(mut map) = self.parsed.write() {
            if map.len() < MAX_LOCATION_RULES {
                map.insert(encoded.to_owned(), rule.clone());
            }
        }
        Ok(Some(rule))
    }
}

#[cfg(test)]
mod tests;
