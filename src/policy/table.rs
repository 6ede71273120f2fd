//! The route table and the decision: which configured path decides a request (the exact path,
//! the same with a trailing slash, then the nearest ancestor ending in `/`), and what its rule
//! says for the request's method, session and client. See the module doc of `policy` for the
//! outcomes, which this file implements.

use std::borrow::Cow;
use std::collections::HashMap;

use super::path::normalize;
use super::{Context, Decision, Expr, Match, Matching, Reason, RouteEntry, Rule, Verdict};

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

    /// The decision for a request; see [`RouteTable::judge`].
    pub fn decide(
        &self,
        method: &str,
        uri: &str,
        location_rule: Option<&Expr>,
        ctx: &Context<'_>,
    ) -> Decision {
        self.judge(method, uri, location_rule, ctx).decision
    }

    /// The decision for a request, with the rule that decided and why. `location_rule` (a rule
    /// stated by the Nginx location) replaces the table; `ctx` says who asks (`ctx.session`
    /// false for an anonymous request, whose groups and permissions are then empty).
    pub fn judge<'a>(
        &'a self,
        method: &str,
        uri: &str,
        location_rule: Option<&Expr>,
        ctx: &Context<'_>,
    ) -> Verdict<'a> {
        let refused = if ctx.session {
            Decision::Forbidden
        } else {
            Decision::Unauthenticated
        };
        let verdict = |decision, rule, reason| Verdict {
            decision,
            rule,
            reason,
        };
        if let Some(expr) = location_rule {
            // A location's rule is never public: it needs a session.
            let decision = match (ctx.session, expr.allows(ctx)) {
                (false, _) => Decision::Unauthenticated,
                (true, true) => Decision::Allow,
                (true, false) => Decision::Forbidden,
            };
            return verdict(decision, None, Reason::LocationRule);
        }
        if self.routes.is_empty() {
            let decision = if ctx.session {
                Decision::Allow
            } else {
                Decision::Unauthenticated
            };
            return verdict(decision, None, Reason::NoRules);
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
            return verdict(refused, None, Reason::Unmatchable);
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
                match rule {
                    None => verdict(refused, None, Reason::NoBlockForRequest),
                    Some(rule) if !rule.public && !ctx.session => {
                        verdict(Decision::Unauthenticated, Some(rule), Reason::NotPublic)
                    }
                    Some(rule) => {
                        verdict(Self::apply(rule, ctx, refused), Some(rule), Reason::Rule)
                    }
                }
            }
            Match::NoRuleForMethod => verdict(refused, None, Reason::NoRuleForMethod),
            Match::Uncovered if self.matching.strict || !ctx.session => {
                verdict(Decision::Unauthenticated, None, Reason::Uncovered)
            }
            Match::Uncovered => verdict(Decision::Unchecked, None, Reason::Uncovered),
        }
    }

    /// A rule's decision for a request it applies to: its expression, then, for a session, its
    /// step-up demand (a session the expression refuses gets its 403: a new login would not
    /// change its groups).
    fn apply(rule: &Rule, ctx: &Context<'_>, refused: Decision) -> Decision {
        if !rule.expression.allows(ctx) {
            return refused;
        }
        match &rule.step_up {
            Some(step_up) if ctx.session && !step_up.met_by(ctx.acr, ctx.auth_age) => {
                Decision::StepUp
            }
            _ => Decision::Allow,
        }
    }
}
