//! Unit tests of route matching and decisions, by subject: the matching order and what is
//! matched ([`matching`]), the outcome of each kind of rule ([`outcomes`]), tables built from
//! `auth.json` text ([`auth_json`]), and Mia's documented examples ([`mia_examples`]). The
//! helpers below are the vocabulary they share. Path normalisation and location rules are
//! tested beside their code (`path/tests.rs`, `location/tests.rs`).

use super::*;

mod auth_json;
mod matching;
mod mia_examples;
mod outcomes;

fn route(path: &str, methods: &[&str], expression: &str, public: bool) -> RawRoute {
    RawRoute {
        path: path.into(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        expression: expression.into(),
        public,
        backoffice_expression: None,
        backoffice_public: false,
        acr_values: Vec::new(),
        max_age: None,
    }
}

/// Who asks, in the table tests below.
#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    /// A session in `users`.
    User,
    /// A session in `users`, `admin` and `reports`.
    Admin,
}

fn decide_as(t: &RouteTable, method: &str, uri: &str, who: Who) -> Decision {
    let user = vec!["users".to_string()];
    let admin = vec![
        "users".to_string(),
        "admin".to_string(),
        "reports".to_string(),
    ];
    let groups = match who {
        Who::Anonymous => return t.decide(method, uri, None, &Context::default()),
        Who::User => &user,
        Who::Admin => &admin,
    };
    let ctx = Context {
        session: true,
        groups,
        ..Context::default()
    };
    t.decide(method, uri, None, &ctx)
}

/// The site of the table tests: a session opens `/`, `/admin/` needs `admin`, `/public/` is
/// public for GET, `/api/reports/` has a GET rule only under a permissive `/api/`, and one
/// route is written percent-encoded and one with capitals.
fn site_routes() -> Vec<RawRoute> {
    vec![
        route("/", &["ALL"], "true", false),
        route("/public/", &["GET"], "true", true),
        route("/admin/", &["ALL"], "groups.admin", false),
        route("/api/", &["ALL"], "true", false),
        route("/api/reports/", &["GET"], "groups.reports", false),
        route("/caf%C3%A9/", &["ALL"], "groups.admin", false),
        route("/Docs/", &["ALL"], "groups.admin", false),
    ]
}

use Decision::{Allow, Forbidden as Deny, Unauthenticated as Login};

#[test]
fn a_step_up_demand_is_checked_when_the_table_is_built() {
    let with = |public: bool, acr: &[&str], max_age: Option<&str>| {
        let mut r = route("/pay/", &["GET"], "true", public);
        r.acr_values = acr.iter().map(|a| a.to_string()).collect();
        r.max_age = max_age.map(str::to_owned);
        RouteTable::build(None, &[r], true).map(|_| ())
    };
    assert!(with(false, &["loa2"], Some("10m")).is_ok());
    let refused = [
        with(true, &["loa2"], None),
        with(false, &[], Some("0s")),
        with(false, &[], Some("ten minutes")),
        with(false, &["two words"], None),
        with(false, &[""], None),
        with(false, &["lo\"a"], None),
        with(false, &["lo\\a"], None),
    ];
    for r in refused {
        assert!(r.is_err(), "{r:?}");
    }
    let message = with(true, &["loa2"], None).unwrap_err().to_string();
    assert!(
        message.contains("/pay/") && message.contains("public"),
        "{message}"
    );
}
