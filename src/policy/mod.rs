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
//! # Matching what the upstream will serve
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

pub mod expr;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use percent_encoding::percent_decode_str;
use serde::Deserialize;

pub use expr::{Context, Expr};

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

#[derive(Debug, Default)]
struct MethodRules {
    by_method: HashMap<String, RouteEntry>,
    all: Option<RouteEntry>,
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

#[derive(Debug, Default)]
pub struct RouteTable {
    /// Keyed by the normalised (and, case-insensitively, lowercased) route path.
    routes: HashMap<String, MethodRules>,
    /// `/admin` → `/admin/` for every route path ending in `/` but `/`: where a request without
    /// the trailing slash looks next. A map of its own so the hot path never allocates `path/`.
    with_slash: HashMap<String, String>,
    matching: Matching,
}

/// A route as written in TOML (`[[authorization.routes]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub path: String,
    #[serde(default = "all_methods")]
    pub methods: Vec<String>,
    #[serde(default = "true_expression")]
    pub expression: String,
    #[serde(default)]
    pub public: bool,
    pub backoffice_expression: Option<String>,
    #[serde(default)]
    pub backoffice_public: bool,
}

fn all_methods() -> Vec<String> {
    vec!["ALL".into()]
}

fn true_expression() -> String {
    "true".into()
}

/// Mia's `auth.json`: path → method → rules.
type MiaAuth = HashMap<String, HashMap<String, MiaMethod>>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MiaMethod {
    authorization: Option<MiaRule>,
    backoffice_authorization: Option<MiaRule>,
}

#[derive(Debug, Deserialize)]
struct MiaRule {
    /// Required, as in Mia's schema: a block without one is an error naming the route, never a
    /// rule that allows.
    expression: String,
    #[serde(default)]
    public: bool,
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ALL",
];

impl RouteTable {
    /// Builds the table from an optional `auth.json` and the TOML routes, case-sensitively;
    /// see [`RouteTable::build_from`].
    pub fn build(
        mia_auth: Option<(&str, &str)>,
        routes: &[RawRoute],
        strict: bool,
    ) -> Result<Self, PolicyError> {
        Self::build_from(
            mia_auth,
            routes,
            Matching {
                strict,
                case_insensitive: false,
            },
        )
    }

    /// Builds the table from an optional `auth.json`, given as the name its errors use and its
    /// text (the config layer reads the file: policy does no I/O), and the TOML routes. Any
    /// expression that does not parse is an error naming its source, route, method and column,
    /// and so is a route path that cannot be normalised, or two spellings of one path (`/a%62/`,
    /// `/ab/`, or `/AB/` case-insensitively) that both state a rule for the same method.
    pub fn build_from(
        mia_auth: Option<(&str, &str)>,
        routes: &[RawRoute],
        matching: Matching,
    ) -> Result<Self, PolicyError> {
        let mut table = RouteTable {
            routes: HashMap::new(),
            with_slash: HashMap::new(),
            matching,
        };
        // (route key, method) → the path as written, to catch two spellings of one rule.
        let mut spelled: HashMap<(String, String), String> = HashMap::new();
        if let Some((name, text)) = mia_auth {
            let parsed: MiaAuth = serde_json::from_str(text)
                .map_err(|e| PolicyError::Invalid(format!("{name}: {e}")))?;
            for (route, methods) in parsed {
                for (method, rules) in methods {
                    let compile = |r: Option<&MiaRule>| -> Result<Option<Rule>, PolicyError> {
                        r.map(|r| rule(name, &route, &method, &r.expression, r.public))
                            .transpose()
                    };
                    let authorization = compile(rules.authorization.as_ref())?;
                    let backoffice = compile(rules.backoffice_authorization.as_ref())?;
                    table.insert(
                        &mut spelled,
                        name,
                        &route,
                        &method,
                        RouteEntry {
                            authorization,
                            backoffice,
                        },
                    )?;
                }
            }
        }
        for r in routes {
            let name = "authorization.routes";
            for method in &r.methods {
                let authorization = rule(name, &r.path, method, &r.expression, r.public)?;
                let backoffice = r
                    .backoffice_expression
                    .as_deref()
                    .map(|e| rule(name, &r.path, method, e, r.backoffice_public))
                    .transpose()?;
                table.insert(
                    &mut spelled,
                    name,
                    &r.path,
                    method,
                    RouteEntry {
                        authorization: Some(authorization),
                        backoffice,
                    },
                )?;
            }
        }
        Ok(table)
    }

    fn insert(
        &mut self,
        spelled: &mut HashMap<(String, String), String>,
        source: &str,
        path: &str,
        method: &str,
        entry: RouteEntry,
    ) -> Result<(), PolicyError> {
        let key = self.route_key(source, path)?;
        let method = method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(PolicyError::Invalid(format!(
                "{source}: route `{path}`: unknown method `{method}`"
            )));
        }
        match spelled.get(&(key.clone(), method.clone())) {
            Some(other) if other != path => {
                return Err(PolicyError::Invalid(format!(
                    "{source}: routes `{other}` and `{path}` are the same path `{key}` once \
                     normalised{}, and both have a rule for {method}: keep one",
                    if self.matching.case_insensitive {
                        " and lowercased (case_insensitive)"
                    } else {
                        ""
                    }
                )));
            }
            // The same spelling again (auth.json, then the TOML): the later one wins.
            _ => {
                spelled.insert((key.clone(), method.clone()), path.to_owned());
            }
        }
        if key.len() > 1 {
            if let Some(bare) = key.strip_suffix('/') {
                self.with_slash.insert(bare.to_owned(), key.clone());
            }
        }
        let rules = self.routes.entry(key).or_default();
        if method == "ALL" {
            rules.all = Some(entry);
        } else {
            rules.by_method.insert(method, entry);
        }
        Ok(())
    }

    /// The key a route path is stored under: normalised as request paths are, and lowercased
    /// when matching is case-insensitive.
    fn route_key(&self, source: &str, path: &str) -> Result<String, PolicyError> {
        let invalid = |why: &str| PolicyError::Invalid(format!("{source}: route `{path}` {why}"));
        if !path.starts_with('/') {
            return Err(invalid("must start with `/`"));
        }
        if path.contains(['?', '#']) {
            return Err(invalid("must be a path alone, without `?` or `#`"));
        }
        let Some(normal) = normalize(path) else {
            return Err(invalid(
                "cannot be matched safely: `;`, encoded dot segments (`%2e`), escapes that \
                 decode to `/`, `\\` or `%`, control characters and invalid UTF-8 are refused",
            ));
        };
        Ok(if self.matching.case_insensitive {
            normal.to_lowercase()
        } else {
            normal.into_owned()
        })
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

fn rule(
    source: &str,
    path: &str,
    method: &str,
    expression: &str,
    public: bool,
) -> Result<Rule, PolicyError> {
    let expression = expr::parse(expression).map_err(|error| PolicyError::Expression {
        source_name: source.to_owned(),
        path: path.to_owned(),
        method: method.to_owned(),
        error,
    })?;
    Ok(Rule { expression, public })
}

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
