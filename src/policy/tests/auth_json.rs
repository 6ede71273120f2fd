//! Tables built from the text of Mia's `auth.json` and from TOML routes whose expressions do not
//! parse: the rules are read as Mia's schema has them, and every mistake names its source,
//! route, method and column.

use super::*;

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
    let text = r#"{"/api/": {"GET": {"authorization": {"expression": "groups.admin", "public": false},
                              "backofficeAuthorization": {"expression": "true", "public": false}},
                      "ALL": {"authorization": {"expression": "false"}}},
            "/open": {"ALL": {"authorization": {"expression": "true", "public": true}}}}"#;
    let t = RouteTable::build(Some(("auth.json", text)), &[], true).unwrap();
    assert_eq!(
        t.decide("GET", "/open", None, &Context::default()),
        Decision::Allow
    );
    let users = vec!["users".to_string()];
    let u = Context {
        session: true,
        groups: &users,
        ..Context::default()
    };
    assert_eq!(t.decide("GET", "/api/x", None, &u), Decision::Forbidden);
    let bo = Context {
        session: true,
        groups: &users,
        is_backoffice: true,
        ..Context::default()
    };
    assert_eq!(t.decide("GET", "/api/x", None, &bo), Decision::Allow);
    let text = r#"{"/api/": {"GET": {"authorization": {"expression": "groups."}}}}"#;
    let err = RouteTable::build(Some(("auth.json", text)), &[], true)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("auth.json") && err.contains("/api/") && err.contains("column"),
        "{err}"
    );
}

#[test]
fn an_auth_json_rule_without_an_expression_stops_startup() {
    let text = r#"{"/api/": {"GET": {"authorization": {"public": true}}}}"#;
    let err = RouteTable::build(Some(("auth.json", text)), &[], true)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("expression"), "{err}");
}
