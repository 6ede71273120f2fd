//! What each kind of rule answers: public or not, strict or lenient, frontend or backoffice, and
//! a rule stated by the Nginx location in place of the table.

use super::*;

#[test]
fn outcomes_public_strict_lenient_backoffice_and_location_rules() {
    let mut with_bo = route("/bo/", &["ALL"], "groups.front", false);
    with_bo.backoffice_expression = Some("groups.staff".into());
    let routes = [
        route("/public/", &["GET"], "true", true),
        route("/closed/", &["GET"], "false", true),
        route("/admin/", &["ALL"], "groups.admin", false),
        with_bo,
    ];
    let strict = RouteTable::build(None, &routes, true).unwrap();
    let lenient = RouteTable::build(None, &routes, false).unwrap();
    let admin = vec!["admin".to_string()];
    let staff = vec!["staff".to_string()];
    let a = Context {
        session: true,
        groups: &admin,
        ..Context::default()
    };
    let s_bo = Context {
        session: true,
        groups: &staff,
        is_backoffice: true,
        ..Context::default()
    };
    let s_front = Context {
        session: true,
        groups: &staff,
        ..Context::default()
    };

    assert_eq!(
        strict.decide("GET", "/public/x", None, &Context::default()),
        Decision::Allow
    );
    // Public, but its expression is false: refused (401 anonymous, 403 with a session).
    assert_eq!(
        strict.decide("GET", "/closed/x", None, &Context::default()),
        Decision::Unauthenticated
    );
    assert_eq!(
        strict.decide("GET", "/closed/x", None, &a),
        Decision::Forbidden
    );
    assert_eq!(
        strict.decide("POST", "/public/x", None, &Context::default()),
        Decision::Unauthenticated
    );
    assert_eq!(
        strict.decide("GET", "/admin/x", None, &Context::default()),
        Decision::Unauthenticated
    );
    assert_eq!(strict.decide("GET", "/admin/x", None, &a), Decision::Allow);
    assert_eq!(
        strict.decide("GET", "/public/../admin/x", None, &s_front),
        Decision::Forbidden
    );
    assert_eq!(
        strict.decide("GET", "/public%2F..%2Fadmin", None, &Context::default()),
        Decision::Unauthenticated
    );
    assert_eq!(strict.decide("GET", "/bo/x", None, &s_bo), Decision::Allow);
    assert_eq!(
        strict.decide("GET", "/bo/x", None, &s_front),
        Decision::Forbidden
    );
    // Uncovered routes: strict refuses, lenient passes a session's request on unchecked.
    assert_eq!(
        strict.decide("GET", "/other", None, &a),
        Decision::Unauthenticated
    );
    assert_eq!(
        lenient.decide("GET", "/other", None, &a),
        Decision::Unchecked
    );
    assert_eq!(
        lenient.decide("GET", "/other", None, &Context::default()),
        Decision::Unauthenticated
    );
    // A location's own rule replaces the table.
    let own = expr::parse("groups.staff").unwrap();
    assert_eq!(
        strict.decide("GET", "/admin/x", Some(&own), &a),
        Decision::Forbidden
    );
    assert_eq!(
        strict.decide("GET", "/admin/x", Some(&own), &s_front),
        Decision::Allow
    );
    // No rules at all: a session is all it takes.
    let none = RouteTable::build(None, &[], true).unwrap();
    assert_eq!(none.decide("GET", "/x", None, &a), Decision::Allow);
    assert_eq!(
        none.decide("GET", "/x", None, &Context::default()),
        Decision::Unauthenticated
    );
}

#[test]
fn a_backoffice_request_without_a_backoffice_rule_uses_the_frontend_rule() {
    // Inferred (Mia's docs do not say): Mia's Console writes `backofficeAuthorization` only
    // where the CMS has its own expression; elsewhere the route's `authorization` decides.
    let t = RouteTable::build(
        None,
        &[route("/api/", &["ALL"], "groups.admin", false)],
        true,
    )
    .unwrap();
    let admin = vec!["admin".to_string()];
    let bo = |groups| Context {
        session: true,
        groups,
        is_backoffice: true,
        ..Context::default()
    };
    assert_eq!(t.decide("GET", "/api/x", None, &bo(&admin)), Allow);
    assert_eq!(t.decide("GET", "/api/x", None, &bo(&[])), Deny);
}

#[test]
fn toml_routes_default_to_every_method_and_any_session() {
    let routes: Vec<RawRoute> = toml::from_str::<toml::Table>(
        "[[r]]\npath = \"/a/\"\n[[r]]\npath = \"/b/\"\nexpression = \"groups.x\"\n",
    )
    .unwrap()["r"]
        .clone()
        .try_into()
        .unwrap();
    assert_eq!(routes[0].methods, ["ALL"]);
    assert_eq!(routes[0].expression, "true");
    assert!(!routes[0].public);
    let t = RouteTable::build(None, &routes, true).unwrap();
    for method in ["GET", "DELETE", "OPTIONS"] {
        assert_eq!(decide_as(&t, method, "/a/x", Who::User), Allow, "{method}");
        assert_eq!(decide_as(&t, method, "/a/x", Who::Anonymous), Login);
        assert_eq!(decide_as(&t, method, "/b/x", Who::User), Deny);
    }
}
