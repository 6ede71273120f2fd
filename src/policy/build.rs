//! Building the [`RouteTable`]: Mia's `auth.json` (given as text, the config layer reads it)
//! and `[[authorization.routes]]` become one table, every expression parsed and every route
//! path normalised once, at startup. What can go wrong here stops startup naming its source,
//! route and method; nothing is left to fail per request.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::expr;
use super::path::normalize;
use super::table::RouteTable;
use super::{
    Matching, Origin, PolicyError, RouteEntry, Rule, StepUp, MAX_ACR_VALUES, MAX_ACR_VALUE_BYTES,
};

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
    /// Step-up: the login's `acr` must be one of these (any of).
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// Step-up: the login must be at most this old (`"10m"`).
    pub max_age: Option<String>,
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
        let mut table = RouteTable::empty(matching);
        // (route key, method) → the path as written, to catch two spellings of one rule.
        let mut spelled: HashMap<(String, String), String> = HashMap::new();
        if let Some((name, text)) = mia_auth {
            let parsed: MiaAuth = serde_json::from_str(text)
                .map_err(|e| PolicyError::Invalid(format!("{name}: {e}")))?;
            for (route, methods) in parsed {
                for (method, rules) in methods {
                    let compile = |r: Option<&MiaRule>, backoffice: bool| {
                        r.map(|r| {
                            let at = At {
                                source: name,
                                path: &route,
                                method: &method,
                                backoffice,
                            };
                            rule(&at, &r.expression, r.public, None)
                        })
                        .transpose()
                    };
                    let authorization = compile(rules.authorization.as_ref(), false)?;
                    let backoffice = compile(rules.backoffice_authorization.as_ref(), true)?;
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
            let step_up = step_up(name, r)?;
            for method in &r.methods {
                let at = |backoffice| At {
                    source: name,
                    path: &r.path,
                    method,
                    backoffice,
                };
                let authorization = rule(&at(false), &r.expression, r.public, step_up.clone())?;
                let backoffice = r
                    .backoffice_expression
                    .as_deref()
                    .map(|e| rule(&at(true), e, r.backoffice_public, step_up.clone()))
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
}

/// A TOML route's step-up demand (`acr_values`, `max_age`), checked.
fn step_up(source: &str, r: &RawRoute) -> Result<Option<Arc<StepUp>>, PolicyError> {
    let invalid = |why: String| PolicyError::Invalid(format!("{source}: route `{}` {why}", r.path));
    if r.acr_values.is_empty() && r.max_age.is_none() {
        return Ok(None);
    }
    if r.public || r.backoffice_public {
        return Err(invalid(
            "is public and states acr_values or max_age: a step-up needs a session".into(),
        ));
    }
    if r.acr_values.len() > MAX_ACR_VALUES {
        return Err(invalid(format!(
            "lists more than {MAX_ACR_VALUES} acr_values"
        )));
    }
    // Sent to the IdP as one space-separated parameter, and to API clients in a quoted
    // string: no spaces, controls, quotes or backslashes inside one.
    if let Some(bad) = r.acr_values.iter().find(|v| !super::is_acr_value(v)) {
        return Err(invalid(format!(
            "has acr_values entry {bad:?}: each is 1–{MAX_ACR_VALUE_BYTES} visible ASCII \
             characters, without `\"` or `\\`"
        )));
    }
    let max_age = match r.max_age.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Err(e)) => return Err(invalid(format!("has max_age that is not a duration: {e}"))),
        Some(Ok(d)) if d.as_secs() == 0 => {
            return Err(invalid("has max_age under one second".into()))
        }
        Some(Ok(d)) => Some(d.as_secs()),
    };
    Ok(Some(Arc::new(StepUp {
        acr_values: r.acr_values.clone(),
        max_age,
    })))
}

/// Where a rule is being built: for its errors and its [`Origin`].
struct At<'a> {
    source: &'a str,
    path: &'a str,
    method: &'a str,
    backoffice: bool,
}

fn rule(
    at: &At<'_>,
    text: &str,
    public: bool,
    step_up: Option<Arc<StepUp>>,
) -> Result<Rule, PolicyError> {
    let expression = expr::parse(text).map_err(|error| PolicyError::Expression {
        source_name: at.source.to_owned(),
        path: at.path.to_owned(),
        method: at.method.to_owned(),
        error,
    })?;
    Ok(Rule {
        expression,
        public,
        origin: Arc::new(Origin {
            source: at.source.to_owned(),
            path: at.path.to_owned(),
            method: at.method.to_ascii_uppercase(),
            expression: text.to_owned(),
            backoffice: at.backoffice,
        }),
        step_up,
    })
}
