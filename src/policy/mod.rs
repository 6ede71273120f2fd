//! Authorization: which routes need which users (SPEC §2 "Route rules").
//!
//! Rules come from Mia's `auth.json` (top-level `mia_auth` key, read unchanged) and/or from
//! `[[authorization.routes]]` in the TOML. A request is matched on its original path and method.
//! The path that decides is the most specific one with any rule: the exact path; for a path
//! without a trailing slash, the same path with one (a rule for `/admin/` covers `/admin`, which
//! most upstreams redirect to or serve as `/admin/`); then the nearest configured ancestor ending
//! in `/`, up to `/`. That path is authoritative: its rule for the method (or `HEAD` → `GET`, or
//! `ALL`) decides, and a method it has no rule for is refused; it never falls back to a more
//! permissive ancestor. A Nginx location may carry its own rule instead (see
//! `nginx/idgate-protect-rule.conf`), which replaces the table for that request.
//!
//! Outcomes, as Mia's authorization service documents them: a rule that is not public needs a
//! session (401 without one); then, public or not, its expression decides, evaluated on the
//! session's groups and permissions (none for an anonymous request), the client type (of the
//! location or of a valid API key) and the backoffice flag — true allows, false refuses (403 with
//! a session, 401 without). So `public: true` opens a route to anonymous requests only as far as
//! its expression holds for them (`true` does; `groups.foo || clientType == "bar"` does for the
//! `bar` API key, and for a `foo` session without a key, as Mia's Console documentation
//! spells out). A backoffice request (the
//! location says so) is decided by the route's `backofficeAuthorization` when it has one, else
//! by its `authorization`; a method entry with no block for the request (an `auth.json` entry
//! with only `backofficeAuthorization`, asked by a frontend request) is refused, never opened.
//! A refused request (a path that cannot be matched safely, a method the deciding path has no
//! rule for) is 401 without a session and 403 with one. With no rule at all configured, every
//! protected location simply needs a session. With rules, `strict` (the default) answers 401 to
//! paths no rule covers; lenient mode (Mia's `AUTHORIZATION_STRICT_MODE_ENABLED=false`) passes a
//! session's request there to the upstream marked `mia-allowed: 0` ([`Decision::Unchecked`]),
//! for upstreams that decide themselves as Mia's non-strict mode expects, and still sends an
//! anonymous one to log in.
//!
//! The parts: [`build`](RouteTable::build) turns `auth.json` and the TOML routes into a
//! [`RouteTable`] (`build.rs`), the table finds the deciding path and decides (`table.rs`),
//! [`normalize`] puts a path in the form both are compared in (`path.rs`), and
//! [`LocationRules`] holds the rules Nginx locations state themselves (`location.rs`). Nothing
//! here reads a file: the config layer hands over the text of `auth.json`.

mod build;
pub mod expr;
mod location;
mod path;
mod table;

pub use build::RawRoute;
pub use expr::{Context, Expr};
pub use location::LocationRules;
pub use path::normalize;
pub use table::RouteTable;

use std::sync::Arc;

/// One rule: who may pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub expression: Expr,
    pub public: bool,
    /// Where the rule was written and what it says, for explanations and the audit trail
    /// (never for a client).
    pub origin: Arc<Origin>,
    /// What the session's login must have been, beyond the expression (TOML `acr_values`,
    /// `max_age`): falling short asks for a new login at the IdP (step-up), not a 403.
    pub step_up: Option<Arc<StepUp>>,
}

/// Where a rule was written: its source (`auth.json`'s file name or `authorization.routes`),
/// its path and method as written, and its expression as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: String,
    pub path: String,
    pub method: String,
    pub expression: String,
    /// Whether this is the backoffice rule of its route and method.
    pub backoffice: bool,
}

impl Origin {
    /// The rule's id in log lines and the audit trail: `source path METHOD` (`[backoffice]`).
    pub fn id(&self) -> String {
        let bo = if self.backoffice { " [backoffice]" } else { "" };
        format!("{} {} {}{bo}", self.source, self.path, self.method)
    }
}

/// Whether `b` may be in an `acr` value idgate sends or asks for: visible ASCII but `"` and
/// `\`, so that a value is one word in `acr_values` and needs no escaping in the quoted string
/// of a `WWW-Authenticate` challenge.
pub fn is_acr_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b'\\'
}

/// The most `acr_values` a route, or a login, may ask for.
pub const MAX_ACR_VALUES: usize = 16;
/// The longest `acr` value a route, or a login, may ask for, in bytes.
pub const MAX_ACR_VALUE_BYTES: usize = 256;

/// Whether `v` may be asked for as an `acr` value: 1 to [`MAX_ACR_VALUE_BYTES`] bytes, each
/// an [`is_acr_byte`]. The one rule for the TOML's `acr_values` and `/authorize`'s.
pub fn is_acr_value(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_ACR_VALUE_BYTES && v.bytes().all(is_acr_byte)
}

/// A route's demand on how, and how recently, the user authenticated at the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    /// The login's `acr` must be one of these (any of); empty: any `acr`.
    pub acr_values: Vec<String>,
    /// The login must be at most this many seconds old.
    pub max_age: Option<u64>,
}

impl StepUp {
    /// Whether a login with `acr`, `auth_age` seconds ago, meets this demand. An unknown age
    /// never meets a `max_age`.
    pub fn met_by(&self, acr: Option<&str>, auth_age: Option<i64>) -> bool {
        let acr_ok = !self.acr_short(acr);
        let age_ok = match self.max_age {
            None => true,
            Some(max) => auth_age.is_some_and(|age| age <= max as i64),
        };
        acr_ok && age_ok
    }

    /// Whether `acr` alone falls short (the IdP must be asked to log the user in again, with
    /// `prompt=login`: an IdP session of a lower level would otherwise be reused).
    pub fn acr_short(&self, acr: Option<&str>) -> bool {
        !self.acr_values.is_empty() && !acr.is_some_and(|a| self.acr_values.iter().any(|v| v == a))
    }
}

/// The rules of one path and method.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteEntry {
    /// For frontend requests (and backoffice ones when `backoffice` is absent); `None` when an
    /// `auth.json` method entry has no `authorization` block: such requests are refused.
    pub authorization: Option<Rule>,
    /// Used instead of `authorization` for backoffice requests (`isbackoffice: true`).
    pub backoffice: Option<Rule>,
}

/// What the table says about a method on a (normalised) path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Match<'a> {
    /// The deciding path's rule for the method.
    Rule(&'a RouteEntry),
    /// The deciding path has rules, none for this method: refused.
    NoRuleForMethod,
    /// No rule covers the path at all (strict: 401; lenient: any session).
    Uncovered,
}

/// How request paths meet route paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matching {
    /// Paths no rule covers answer 401 (Mia's `AUTHORIZATION_STRICT_MODE_ENABLED`).
    pub strict: bool,
    /// Request and route paths are lowercased before they are compared
    /// (`[authorization] case_insensitive`).
    pub case_insensitive: bool,
}

impl Default for Matching {
    fn default() -> Self {
        Self {
            strict: true,
            case_insensitive: false,
        }
    }
}

/// What `/auth` should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// 401: a session is needed.
    Unauthenticated,
    /// 403: the session may not pass.
    Forbidden,
    /// Lenient mode, a route no rule covers, a session: passed to the upstream marked
    /// `mia-allowed: 0` (Mia's non-strict mode), the upstream deciding.
    Unchecked,
    /// 401: the session may pass, but its login is not strong or recent enough for the rule's
    /// [`StepUp`]; a new login at the IdP can fix that.
    StepUp,
}

/// Why a request was decided as it was: the decision, the rule that decided (if one did) and
/// how the deciding rule was found. What `idgate check-policy` prints and `/auth` logs at debug
/// level; never sent to a client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict<'a> {
    pub decision: Decision,
    /// The table's rule that decided, if one did.
    pub rule: Option<&'a Rule>,
    pub reason: Reason,
}

/// How a [`Verdict`] was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The Nginx location stated its own rule, which replaced the table.
    LocationRule,
    /// No route rule is configured: any session passes.
    NoRules,
    /// The path cannot be matched safely (e.g. `;`, encoded dot segments): refused.
    Unmatchable,
    /// The deciding path's rule for the method decided.
    Rule,
    /// The rule is not public and there is no session.
    NotPublic,
    /// The deciding path has rules, none for this method: refused.
    NoRuleForMethod,
    /// The deciding path's method entry has no block for this request (an `auth.json` entry
    /// with only `backofficeAuthorization`, asked by a frontend request): refused.
    NoBlockForRequest,
    /// No rule covers the path (strict: 401; lenient: passed to the upstream unchecked).
    Uncovered,
}

impl Reason {
    /// In words, for `check-policy` and log lines.
    pub fn describe(self) -> &'static str {
        match self {
            Self::LocationRule => "the Nginx location's own rule decided",
            Self::NoRules => "no route rule is configured: any session may pass",
            Self::Unmatchable => "the path cannot be matched safely against the route rules",
            Self::Rule => "the deciding route's rule for this method decided",
            Self::NotPublic => "the deciding route's rule is not public and there is no session",
            Self::NoRuleForMethod => "the deciding route has no rule for this method",
            Self::NoBlockForRequest => {
                "the deciding route's entry for this method has no rule for this kind of request"
            }
            Self::Uncovered => "no route rule covers this path",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{source_name}: route `{path}` {method}: expression {error}")]
    Expression {
        source_name: String,
        path: String,
        method: String,
        error: expr::ParseError,
    },
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests;
