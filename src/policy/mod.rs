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

/// One rule: who may pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub expression: Expr,
    pub public: bool,
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
