//! Authorization: which routes need which users (SPEC §2 "Route rules").
//!
//! Rules come from Mia's `auth.json` (top-level `mia_auth` key, read unchanged) and/or from
//! `[[authorization.routes]]` in the TOML. A request is matched on its original path and method:
//! the exact path first, then the nearest configured ancestor ending in `/`, then `/`; the exact
//! method before `ALL`. A Nginx location may carry its own rule instead (see
//! `nginx/idgate-protect-rule.conf`), which replaces the table for that request.
//!
//! Outcomes: a public route allows everyone; otherwise no session → 401, a session whose
//! expression is false → 403. With no rule at all configured, every protected location simply
//! needs a session. With rules, `strict` (the default) answers 401 to routes no rule covers;
//! lenient mode lets any session through there.
//!
//! Paths are normalised before matching (query dropped, repeated slashes collapsed, `.` and `..`
//! resolved, percent-escapes decoded); a path whose escapes decode to `/`, `\`, or a control
//! character cannot be matched safely against prefix rules and is refused outright.

pub mod expr;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
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
    pub authorization: Rule,
    /// Used instead of `authorization` for backoffice requests (`isbackoffice: true`).
    pub backoffice: Option<Rule>,
}

#[derive(Debug, Default)]
struct MethodRules {
    by_method: HashMap<String, RouteEntry>,
    all: Option<RouteEntry>,
}

/// What `/auth` should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// 401: a session is needed.
    Unauthenticated,
    /// 403: the session may not pass.
    Forbidden,
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
    routes: HashMap<String, MethodRules>,
    strict: bool,
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
    #[serde(default = "true_expression")]
    expression: String,
    #[serde(default)]
    public: bool,
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ALL",
];

impl RouteTable {
    /// Builds the table from an optional `auth.json` and the TOML routes; any expression that
    /// does not parse is an error naming its source, route, method and column.
    pub fn build(
        mia_auth: Option<&Path>,
        routes: &[RawRoute],
        strict: bool,
    ) -> Result<Self, PolicyError> {
        let mut table = RouteTable {
            routes: HashMap::new(),
            strict,
        };
        if let Some(path) = mia_auth {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| PolicyError::Invalid(format!("{name}: {e}")))?;
            let parsed: MiaAuth = serde_json::from_str(&text)
                .map_err(|e| PolicyError::Invalid(format!("{name}: {e}")))?;
            for (route, methods) in parsed {
                for (method, rules) in methods {
                    let compile = |r: Option<&MiaRule>| -> Result<Option<Rule>, PolicyError> {
                        r.map(|r| rule(&name, &route, &method, &r.expression, r.public))
                            .transpose()
                    };
                    let authorization = compile(rules.authorization.as_ref())?.unwrap_or(Rule {
                        expression: Expr::Bool(true),
                        public: false,
                    });
                    let backoffice = compile(rules.backoffice_authorization.as_ref())?;
                    table.insert(
                        &name,
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
                    name,
                    &r.path,
                    method,
                    RouteEntry {
                        authorization,
                        backoffice,
                    },
                )?;
            }
        }
        Ok(table)
    }

    fn insert(
        &mut self,
        source: &str,
        path: &str,
        method: &str,
        entry: RouteEntry,
    ) -> Result<(), PolicyError> {
        if !path.starts_with('/') {
            return Err(PolicyError::Invalid(format!(
                "{source}: route `{path}` must start with `/`"
            )));
        }
        let method = method.to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(PolicyError::Invalid(format!(
                "{source}: route `{path}`: unknown method `{method}`"
            )));
        }
        let rules = self.routes.entry(path.to_owned()).or_default();
        if method == "ALL" {
            rules.all = Some(entry);
        } else {
            rules.by_method.insert(method, entry);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The rules for `method` on `path` (already normalised), if any route covers it.
    pub fn lookup(&self, method: &str, path: &str) -> Option<&RouteEntry> {
        let mut candidate = path;
        loop {
            if let Some(rules) = self.routes.get(candidate) {
                let hit = rules
                    .by_method
                    .get(method)
                    .or_else(|| {
                        (method == "HEAD")
                            .then(|| rules.by_method.get("GET"))
                            .flatten()
                    })
                    .or(rules.all.as_ref());
                if hit.is_some() {
                    return hit;
                }
            }
            // The nearest ancestor ending in `/`: "/a/b/c" → "/a/b/" → "/a/" → "/".
            let trimmed = candidate.strip_suffix('/').unwrap_or(candidate);
            match trimmed.rfind('/') {
                Some(i) => candidate = &path[..=i],
                None => return None,
            }
            if candidate.len() == path.len() {
                return None;
            }
        }
    }

    /// The decision for a request. `location_rule` (a rule stated by the Nginx location)
    /// replaces the table; `ctx` is `None` for an anonymous request.
    pub fn decide(
        &self,
        method: &str,
        uri: &str,
        location_rule: Option<&Expr>,
        ctx: Option<&Context<'_>>,
    ) -> Decision {
        let verdict = |rule: &Rule| match ctx {
            _ if rule.public => Decision::Allow,
            None => Decision::Unauthenticated,
            Some(c) if rule.expression.allows(c) => Decision::Allow,
            Some(_) => Decision::Forbidden,
        };
        if let Some(expr) = location_rule {
            return verdict(&Rule {
                expression: expr.clone(),
                public: false,
            });
        }
        if self.routes.is_empty() {
            return if ctx.is_some() {
                Decision::Allow
            } else {
                Decision::Unauthenticated
            };
        }
        let Some(path) = normalize(uri) else {
            return if ctx.is_some() {
                Decision::Forbidden
            } else {
                Decision::Unauthenticated
            };
        };
        match self.lookup(method, &path) {
            Some(entry) => {
                let backoffice = ctx.is_some_and(|c| c.is_backoffice);
                match (&entry.backoffice, backoffice) {
                    (Some(rule), true) => verdict(rule),
                    _ => verdict(&entry.authorization),
                }
            }
            None if self.strict => Decision::Unauthenticated,
            None => {
                if ctx.is_some() {
                    Decision::Allow
                } else {
                    Decision::Unauthenticated
                }
            }
        }
    }
}

/// The rules Nginx locations state in their `auth_request` URI (`/auth/<percent-encoded
/// expression>`), parsed once each and cached. The URI is written in the Nginx config, never by
/// a client, and only trusted peers reach `/auth`.
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
/// escapes decoded. Borrowed when the path is already in that form (the usual case); `None`
/// when the path cannot be matched safely.
pub fn normalize(uri: &str) -> Option<Cow<'_, str>> {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return None;
    }
    let plain =
        !path.contains('%') && !path.contains("//") && !path.contains("/.") && !path.contains('\\');
    if plain && !path.bytes().any(|b| b.is_ascii_control()) {
        return Some(Cow::Borrowed(path));
    }
    let mut segments: Vec<String> = Vec::new();
    let ends_with_slash = path.ends_with('/');
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_decode_str(raw).decode_utf8().ok()?;
        if decoded.contains(['/', '\\', '%']) || decoded.chars().any(char::is_control) {
            return None;
        }
        match decoded.as_ref() {
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
        out.push_str(s);
    }
    if out.is_empty() || ends_with_slash {
        out.push('/');
    }
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, methods: &[&str], expression: &str, public: bool) -> RawRoute {
        RawRoute {
            path: path.into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            expression: expression.into(),
            public,
            backoffice_expression: None,
            backoffice_public: false,
        }
    }

    #[test]
    fn paths_are_normalised_without_smuggling() {
        let table: &[(&str, Option<&str>)] = &[
            ("/", Some("/")),
            ("/a/b?x=1", Some("/a/b")),
            ("/a//b///c", Some("/a/b/c")),
            ("/a/./b/../c/", Some("/a/c/")),
            ("/public/../admin", Some("/admin")),
            ("/public/%2e%2e/admin", Some("/admin")),
            ("/caf%C3%A9", Some("/café")),
            ("/a%20b", Some("/a b")),
            ("/../..", Some("/")),
            ("/public%2F..%2Fadmin", None),
            ("/public/%2fadmin", None),
            ("/public/%5c..%5cadmin", None),
            ("/a%00b", None),
            ("/a%252F", None),
            ("/%ff", None),
            ("relative", None),
        ];
        for (input, want) in table {
            assert_eq!(
                normalize(input).map(|c| c.into_owned()),
                want.map(str::to_owned),
                "{input}"
            );
        }
    }

    #[test]
    fn routes_match_exact_then_nearest_ancestor_then_root() {
        let t = RouteTable::build(
            None,
            &[
                route("/", &["ALL"], "'root' in groups", false),
                route("/api/", &["ALL"], "'api' in groups", false),
                route("/api/users", &["GET"], "'users-get' in groups", false),
                route("/api/users", &["ALL"], "'users-all' in groups", false),
                route("/api/users/", &["ALL"], "'users-sub' in groups", false),
            ],
            true,
        )
        .unwrap();
        let table: &[(&str, &str, &str)] = &[
            ("GET", "/api/users", "users-get"),
            ("HEAD", "/api/users", "users-get"),
            ("POST", "/api/users", "users-all"),
            ("GET", "/api/users/42", "users-sub"),
            ("GET", "/api/users/42/x", "users-sub"),
            ("GET", "/api/other", "api"),
            ("GET", "/api", "root"),
            ("GET", "/elsewhere/deep", "root"),
            ("GET", "/", "root"),
        ];
        for (method, path, group) in table {
            let groups = vec![group.to_string()];
            let ctx = Context {
                groups: &groups,
                ..Context::default()
            };
            assert_eq!(
                t.decide(method, path, None, Some(&ctx)),
                Decision::Allow,
                "{method} {path}"
            );
            let other = vec!["nobody".to_string()];
            let ctx = Context {
                groups: &other,
                ..Context::default()
            };
            assert_eq!(
                t.decide(method, path, None, Some(&ctx)),
                Decision::Forbidden,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn outcomes_public_strict_lenient_backoffice_and_location_rules() {
        let mut with_bo = route("/bo/", &["ALL"], "groups.front", false);
        with_bo.backoffice_expression = Some("groups.staff".into());
        let routes = [
            route("/public/", &["GET"], "false", true),
            route("/admin/", &["ALL"], "groups.admin", false),
            with_bo,
        ];
        let strict = RouteTable::build(None, &routes, true).unwrap();
        let lenient = RouteTable::build(None, &routes, false).unwrap();
        let admin = vec!["admin".to_string()];
        let staff = vec!["staff".to_string()];
        let a = Context {
            groups: &admin,
            ..Context::default()
        };
        let s_bo = Context {
            groups: &staff,
            is_backoffice: true,
            ..Context::default()
        };
        let s_front = Context {
            groups: &staff,
            ..Context::default()
        };

        assert_eq!(
            strict.decide("GET", "/public/x", None, None),
            Decision::Allow
        );
        assert_eq!(
            strict.decide("POST", "/public/x", None, None),
            Decision::Unauthenticated
        );
        assert_eq!(
            strict.decide("GET", "/admin/x", None, None),
            Decision::Unauthenticated
        );
        assert_eq!(
            strict.decide("GET", "/admin/x", None, Some(&a)),
            Decision::Allow
        );
        assert_eq!(
            strict.decide("GET", "/public/../admin/x", None, Some(&s_front)),
            Decision::Forbidden
        );
        assert_eq!(
            strict.decide("GET", "/public%2F..%2Fadmin", None, None),
            Decision::Unauthenticated
        );
        assert_eq!(
            strict.decide("GET", "/bo/x", None, Some(&s_bo)),
            Decision::Allow
        );
        assert_eq!(
            strict.decide("GET", "/bo/x", None, Some(&s_front)),
            Decision::Forbidden
        );
        // Uncovered routes: strict refuses, lenient wants a session.
        assert_eq!(
            strict.decide("GET", "/other", None, Some(&a)),
            Decision::Unauthenticated
        );
        assert_eq!(
            lenient.decide("GET", "/other", None, Some(&a)),
            Decision::Allow
        );
        assert_eq!(
            lenient.decide("GET", "/other", None, None),
            Decision::Unauthenticated
        );
        // A location's own rule replaces the table.
        let own = expr::parse("groups.staff").unwrap();
        assert_eq!(
            strict.decide("GET", "/admin/x", Some(&own), Some(&a)),
            Decision::Forbidden
        );
        assert_eq!(
            strict.decide("GET", "/admin/x", Some(&own), Some(&s_front)),
            Decision::Allow
        );
        // No rules at all: a session is all it takes.
        let none = RouteTable::build(None, &[], true).unwrap();
        assert_eq!(none.decide("GET", "/x", None, Some(&a)), Decision::Allow);
        assert_eq!(
            none.decide("GET", "/x", None, None),
            Decision::Unauthenticated
        );
    }

    #[test]
    fn bad_expressions_name_the_route_and_column() {
        let err = RouteTable::build(
            None,
            &[route("/admin/", &["GET"], "groups.admin &&", false)],
            true,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("/admin/") && err.contains("GET") && err.contains("column 16"),
            "{err}"
        );
        let err = RouteTable::build(None, &[route("/x", &["FETCH"], "true", false)], true)
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("FETCH"));
    }

    #[test]
    fn reads_mia_auth_json() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        std::fs::write(
            &p,
            r#"{"/api/": {"GET": {"authorization": {"expression": "groups.admin", "public": false},
                                  "backofficeAuthorization": {"expression": "true", "public": false}},
                          "ALL": {"authorization": {"expression": "false"}}},
                "/open": {"ALL": {"authorization": {"expression": "true", "public": true}}}}"#,
        )
        .unwrap();
        let t = RouteTable::build(Some(&p), &[], true).unwrap();
        assert_eq!(t.decide("GET", "/open", None, None), Decision::Allow);
        let users = vec!["users".to_string()];
        let u = Context {
            groups: &users,
            ..Context::default()
        };
        assert_eq!(
            t.decide("GET", "/api/x", None, Some(&u)),
            Decision::Forbidden
        );
        let bo = Context {
            groups: &users,
            is_backoffice: true,
            ..Context::default()
        };
        assert_eq!(t.decide("GET", "/api/x", None, Some(&bo)), Decision::Allow);
        std::fs::write(
            &p,
            r#"{"/api/": {"GET": {"authorization": {"expression": "groups."}}}}"#,
        )
        .unwrap();
        let err = RouteTable::build(Some(&p), &[], true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("auth.json") && err.contains("/api/") && err.contains("column"),
            "{err}"
        );
    }
}
