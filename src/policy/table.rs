//! The route table and the decision: which configured path decides a request (the exact path,
//! the same with a trailing slash, then the nearest ancestor ending in `/`), and what its rule
//! says for the request's method, session and client. See the module doc of `policy` for the
//! outcomes, which this file implements.

use std::borrow::Cow;
use std::collections::HashMap;

use super::path::normalize;
use super::{Context, Decision, Expr, Match, Matching, RouteEntry, Rule};

#[derive(Debug, Default)]
pub(super) struct MethodRules {
    pub(super) by_method: HashMap<String, RouteEntry>,
    pub(super) all: Option<RouteEntry>,
}

impl MethodRules {
    /// The exact method, then `GET` for `HEAD`, then `ALL`.
    fn for_method(&self, method: &str) -> Option<&RouteEntry> {
        self.by_method
            .get(method)
            .or_else(|| {
                (method == "HEAD")
                    .then(|| self.by_method.get("GET"))
                    .flatten()
            })
            .or(self.all.as_ref())
    }
}

#[derive(Debug, Default)]
pub struct RouteTable {
    /// Keyed by the normalised (and, case-insensitively, lowercased) route path.
    pub(super) routes: HashMap<String, MethodRules>,
    /// `/admin` → `/admin/` for every route path ending in `/` but `/`: where a request without
    /// the trailing slash looks next. A map of its own so the hot path never allocates `path/`.
    pub(super) with_slash: HashMap<String, String>,
    pub(super) matching: Matching,
}

impl RouteTable {
    /// A table without rules yet, matching as `matching` says.
    pub(super) fn empty(matching: Matching) -> Self {
        Self {
            routes: HashMap::new(),
            with_slash: HashMap::new(),
            matching,
        }
    }

    /// What the most specific path with any rule says about `method` on `path` (already
    /// normalised, and lowercased when matching is case-insensitive).
    pub fn find(&self, method: &str, path: &str) -> Match<'_> {
        match self.deciding(path) {
            Some(rules) => rules
                .for_method(method)
                .map_or(Match::NoRuleForMethod, Match::Rule),
            None => Match::Uncovered,
        }
    }

    /// The rules of the most specific path that has any: `path`, then `path/`, then the
    /// ancestors ending in `/` ("/a/b/c" → "/a/b/" → "/a/" → "/").
    fn deciding(&self, path: &str) -> Option<&MethodRules> {
        if let Some(rules) = self.routes.get(path) {
            return Some(rules);
        }
        if !path.ends_with('/') {
            if let Some(rules) = self.with_slash.get(path).and_then(|k| self.routes.get(k)) {
                return Some(rules);
            }
        }
        let mut candidate = path;
        loop {
            // Strictly shorter each turn, so the loop ends.
            let trimmed = candidate.strip_suffix('/').unwrap_or(candidate);
            candidate = &path[..=trimmed.rfind('/')?];
            if let Some(rules) = self.routes.get(candidate) {
                return Some(rules);
            }
        }
    }

    /// The decision for a request. `location_rule` (a rule stated by the Nginx location)
    /// replaces the table; `ctx` says who asks (`ctx.session` false for an anonymous request,
    /// whose groups and permissions are then empty).
    pub fn decide(
        &self,
        method: &str,
        uri: &str,
        location_rule: Option<&Expr>,
        ctx: &Context<'_>,
    ) -> Decision {
        let refused = if ctx.session {
            Decision::Forbidden
        } else {
            Decision::Unauthenticated
        };
        let holds = |expression: &Expr| {
            if expression.allows(ctx) {
                Decision::Allow
            } else {
                refused
            }
        };
        let verdict = |rule: &Rule| {
            if !rule.public && !ctx.session {
                Decision::Unauthenticated
            } else {
                holds(&rule.expression)
            }
        };
        if let Some(expr) = location_rule {
            // A location's rule is never public: it needs a session.
            return if ctx.session {
                holds(expr)
            } else {
                Decision::Unauthenticated
            };
        }
        if self.routes.is_empty() {
            return if ctx.session {
                Decision::Allow
            } else {
                Decision::Unauthenticated
            };
        }
        let Some(path) = normalize(uri) else {
            // Debug-formatted (control characters escaped) and cut short: the path is the
            // client's.
            let mut end = uri.len().min(200);
            while !uri.is_char_boundary(end) {
                end -= 1;
            }
            tracing::info!(
                path = ?&uri[..end],
                "request path refused: it cannot be matched safely against the route rules"
            );
            return refused;
        };
        let path = match path {
            p if self.matching.case_insensitive
                && p.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) =>
            {
                Cow::Owned(p.to_lowercase())
            }
            p => p,
        };
        match self.find(method, &path) {
            Match::Rule(entry) => {
                let rule = match (&entry.backoffice, ctx.is_backoffice) {
                    (Some(rule), true) => Some(rule),
                    _ => entry.authorization.as_ref(),
                };
                rule.map_or(refused, verdict)
            }
            Match::NoRuleForMethod => refused,
            Match::Uncovered if self.matching.strict || !ctx.session => Decision::Unauthenticated,
            Match::Uncovered => Decision::Unchecked,
        }
    }
}
