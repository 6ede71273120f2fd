//! Which path decides a request, and in what form paths are compared: exact path, trailing
//! slash, nearest ancestor; no fallback to a permissive ancestor; paths the upstream would read
//! differently; case-insensitive matching; route paths normalised (or refused) at startup.

use super::*;

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
        // `/api/` covers `/api` too.
        ("GET", "/api", "api"),
        ("GET", "/api/", "api"),
        ("GET", "/elsewhere/deep", "root"),
        ("GET", "/", "root"),
    ];
    for (method, path, group) in table {
        let groups = vec![group.to_string()];
        let ctx = Context {
            session: true,
            groups: &groups,
            ..Context::default()
        };
        assert_eq!(
            t.decide(method, path, None, &ctx),
            Decision::Allow,
            "{method} {path}"
        );
        let other = vec!["nobody".to_string()];
        let ctx = Context {
            session: true,
            groups: &other,
            ..Context::default()
        };
        assert_eq!(
            t.decide(method, path, None, &ctx),
            Decision::Forbidden,
            "{method} {path}"
        );
    }
}

/// Every way a request path can be read differently by idgate and the upstream, through
/// `RouteTable::decide`: (method, raw URI, anonymous, user, admin).
#[test]
fn rules_match_what_the_upstream_serves() {
    let table: &[(&str, &str, Decision, Decision, Decision)] = &[
        // The plain cases.
        ("GET", "/admin/panel", Login, Deny, Allow),
        ("GET", "/admin/", Login, Deny, Allow),
        ("GET", "/public/page", Allow, Allow, Allow),
        ("GET", "/anything", Login, Allow, Allow),
        // `/admin/` covers `/admin` (most upstreams redirect it to, or serve it as, `/admin/`).
        ("GET", "/admin", Login, Deny, Allow),
        ("GET", "/admin?x=1", Login, Deny, Allow),
        ("GET", "/api/reports", Login, Deny, Allow),
        // …but not a longer name.
        ("GET", "/administrator", Login, Allow, Allow),
        // Percent-encoded characters compare decoded.
        ("GET", "/%61dmin/panel", Login, Deny, Allow),
        ("GET", "/%61%64%6D%69%6E", Login, Deny, Allow),
        ("GET", "/caf%C3%A9/menu", Login, Deny, Allow),
        ("GET", "/caf%c3%a9", Login, Deny, Allow),
        ("GET", "/café/menu", Login, Deny, Allow),
        // Plain dot segments and `//` are resolved as Nginx does.
        ("GET", "/public/../admin/panel", Login, Deny, Allow),
        ("GET", "/public/./../admin", Login, Deny, Allow),
        ("GET", "//admin//panel", Login, Deny, Allow),
        ("GET", "/admin/x/../../public/p", Allow, Allow, Allow),
        // `;` path parameters: refused, for everyone (a Java container reads `/admin;x/panel`
        // as `/admin/panel` and `/public/..;/admin/panel` as `/admin/panel`).
        ("GET", "/admin;x/panel", Login, Deny, Deny),
        ("GET", "/public/..;/admin/panel", Login, Deny, Deny),
        ("GET", "/public/page;x", Login, Deny, Deny),
        ("GET", "/admin/panel;jsessionid=0", Login, Deny, Deny),
        ("GET", "/admin%3Bx/panel", Login, Deny, Deny),
        ("GET", "/public/..%3B/admin/panel", Login, Deny, Deny),
        // Dot segments that are dots only once decoded: refused.
        ("GET", "/public/%2e%2e/admin/panel", Login, Deny, Deny),
        ("GET", "/public/%2E%2E/admin/panel", Login, Deny, Deny),
        ("GET", "/public/.%2e/admin/panel", Login, Deny, Deny),
        ("GET", "/public/%2e/page", Login, Deny, Deny),
        // Encoded separators, double encoding, control characters, fragments: refused.
        ("GET", "/public%2F..%2Fadmin/panel", Login, Deny, Deny),
        ("GET", "/public/..%5Cadmin", Login, Deny, Deny),
        ("GET", "/public\\..\\admin", Login, Deny, Deny),
        ("GET", "/public/%252e%252e/admin", Login, Deny, Deny),
        ("GET", "/admin%00/panel", Login, Deny, Deny),
        ("GET", "/public/p#/../../admin/panel", Login, Deny, Deny),
        ("GET", "/%ff", Login, Deny, Deny),
        ("GET", "admin/panel", Login, Deny, Deny),
        // Case-sensitive by default: `/docs/` is not `/Docs/` (see the case-insensitive test).
        ("GET", "/Docs/x", Login, Deny, Allow),
        ("GET", "/docs/x", Login, Allow, Allow),
        // The deciding path is authoritative: no fallback to `/api/`'s permissive ALL rule…
        ("POST", "/api/reports/q1", Login, Deny, Deny),
        ("DELETE", "/api/reports/", Login, Deny, Deny),
        ("POST", "/api/reports", Login, Deny, Deny),
        // …nor to `/`'s for a method the public route does not name.
        ("POST", "/public/page", Login, Deny, Deny),
        ("GET", "/api/reports/q1", Login, Deny, Allow),
        // HEAD uses the GET rule.
        ("HEAD", "/api/reports/q1", Login, Deny, Allow),
        ("HEAD", "/public/page", Allow, Allow, Allow),
        // Outside `/api/reports/`, `/api/` decides.
        ("POST", "/api/other", Login, Allow, Allow),
    ];
    let strict = RouteTable::build(None, &site_routes(), true).unwrap();
    let lenient = RouteTable::build(None, &site_routes(), false).unwrap();
    for t in [&strict, &lenient] {
        for (method, uri, anonymous, user, admin) in table {
            for (who, want) in [
                (Who::Anonymous, anonymous),
                (Who::User, user),
                (Who::Admin, admin),
            ] {
                assert_eq!(
                    decide_as(t, method, uri, who),
                    *want,
                    "{method} {uri} as {who:?} (strict: {})",
                    t.matching.strict
                );
            }
        }
    }
}

#[test]
fn a_method_without_a_rule_is_refused_in_lenient_mode_too() {
    // No `/` rule: lenient mode has uncovered paths to be lenient about.
    let routes = [
        route("/api/", &["ALL"], "true", false),
        route("/api/reports/", &["GET"], "groups.reports", false),
        route("/hook", &["POST"], "true", true),
    ];
    let strict = RouteTable::build(None, &routes, true).unwrap();
    let lenient = RouteTable::build(None, &routes, false).unwrap();
    let table: &[(&str, &str, Decision, Decision, Decision)] = &[
        // (method, uri, anonymous, user, admin) in lenient mode
        ("POST", "/api/reports/x", Login, Deny, Deny),
        ("PUT", "/api/reports", Login, Deny, Deny),
        ("GET", "/api/reports/x", Login, Deny, Allow),
        ("GET", "/hook", Login, Deny, Deny),
        ("POST", "/hook", Allow, Allow, Allow),
        ("POST", "/api/x", Login, Allow, Allow),
        // Covered by no rule at all: a session's request passes unchecked (`mia-allowed: 0`),
        // in lenient mode only.
        (
            "GET",
            "/elsewhere",
            Login,
            Decision::Unchecked,
            Decision::Unchecked,
        ),
        // A refused path is refused in lenient mode too.
        ("GET", "/elsewhere;x", Login, Deny, Deny),
    ];
    for (method, uri, anonymous, user, admin) in table {
        for (who, want) in [
            (Who::Anonymous, anonymous),
            (Who::User, user),
            (Who::Admin, admin),
        ] {
            assert_eq!(
                decide_as(&lenient, method, uri, who),
                *want,
                "lenient {method} {uri} as {who:?}"
            );
            let strict_want = if *uri == "/elsewhere" { Login } else { *want };
            assert_eq!(
                decide_as(&strict, method, uri, who),
                strict_want,
                "strict {method} {uri} as {who:?}"
            );
        }
    }
    assert_eq!(
        strict.find("POST", "/api/reports/x"),
        Match::NoRuleForMethod
    );
    assert_eq!(strict.find("GET", "/elsewhere"), Match::Uncovered);
    assert_eq!(
        strict.find("POST", "/api/reports/x"),
        Match::NoRuleForMethod
    );
}

#[test]
fn case_insensitive_matching_lowercases_both_sides() {
    let t = RouteTable::build_from(
        None,
        &site_routes(),
        Matching {
            strict: true,
            case_insensitive: true,
        },
    )
    .unwrap();
    let table: &[(&str, Decision, Decision)] = &[
        // (uri, user, admin)
        ("/ADMIN/panel", Deny, Allow),
        ("/Admin", Deny, Allow),
        ("/%41dmin/x", Deny, Allow),
        ("/docs/x", Deny, Allow),
        ("/DOCS", Deny, Allow),
        ("/CAF%C3%89/menu", Deny, Allow),
        ("/CAFÉ/menu", Deny, Allow),
        ("/Public/Page", Allow, Allow),
        ("/API/REPORTS/x", Deny, Allow),
        ("/elsewhere", Allow, Allow),
        ("/ADMIN;x/panel", Deny, Deny),
    ];
    for (uri, user, admin) in table {
        assert_eq!(decide_as(&t, "GET", uri, Who::User), *user, "{uri} as user");
        assert_eq!(
            decide_as(&t, "GET", uri, Who::Admin),
            *admin,
            "{uri} as admin"
        );
    }
    // Off by default.
    assert!(!Matching::default().case_insensitive);
    assert!(Matching::default().strict);
}

#[test]
fn route_paths_are_normalised_at_startup_or_refused_by_name() {
    for bad in [
        "/admin;x/",
        "/a%2Fb/",
        "/a%5cb",
        "/%2e%2e/admin/",
        "/a?x=1",
        "/a#b",
        "/a%00",
        "/%ff/",
        "admin/",
    ] {
        let err = RouteTable::build(None, &[route(bad, &["GET"], "true", false)], true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
    }
    // Written two ways, one path: refused when both name the same method…
    let err = RouteTable::build(
        None,
        &[
            route("/ab/", &["GET"], "true", false),
            route("/a%62/", &["GET"], "false", false),
        ],
        true,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("`/ab/`") && err.contains("`/a%62/`"), "{err}");
    let ci = Matching {
        strict: true,
        case_insensitive: true,
    };
    let twice = [
        route("/Admin/", &["ALL"], "true", false),
        route("/admin/", &["ALL"], "groups.admin", false),
    ];
    let err = RouteTable::build_from(None, &twice, ci)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("case_insensitive"), "{err}");
    // …but fine case-sensitively, for different methods, and for the same spelling again.
    assert!(RouteTable::build(None, &twice, true).is_ok());
    let t = RouteTable::build(
        None,
        &[
            route("/a%62/", &["POST"], "true", false),
            route("/ab/", &["GET"], "groups.admin", false),
            route("/ab/", &["GET"], "true", false),
            route("/x/./y/../z//", &["GET"], "groups.admin", false),
        ],
        true,
    )
    .unwrap();
    assert_eq!(decide_as(&t, "GET", "/ab/c", Who::User), Allow);
    assert_eq!(decide_as(&t, "POST", "/ab", Who::User), Allow);
    assert_eq!(decide_as(&t, "GET", "/x/z/1", Who::User), Deny);
    assert_eq!(decide_as(&t, "GET", "/x/z", Who::Admin), Allow);
}

#[test]
fn a_refused_path_is_logged_cut_at_a_character_boundary() {
    // Refused (`;`), longer than the 200 bytes logged, with a two-byte character across byte
    // 200: the cut steps back to a boundary instead of splitting the character or looping.
    let t = RouteTable::build(None, &site_routes(), true).unwrap();
    let uri = format!("/;{}é{}", "a".repeat(197), "b".repeat(50));
    assert!(!uri.is_char_boundary(200));
    assert_eq!(decide_as(&t, "GET", &uri, Who::Anonymous), Login);
    assert_eq!(decide_as(&t, "GET", &uri, Who::User), Deny);
}
