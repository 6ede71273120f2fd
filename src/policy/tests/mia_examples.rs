//! The examples of Mia's own documentation, decided as those pages say.

use super::*;

/// The rules of Mia's own documentation (the authorization service's configuration page and the
/// Console's "Manage the security of your endpoints"), written as an `auth.json`, decided the
/// way those pages say. Where they are silent (a method entry without `authorization`, a
/// backoffice request to a route without `backofficeAuthorization`), the comment says what
/// idgate infers: never more than Mia would allow.
#[test]
fn mias_documented_examples_decide_as_mia_documents() {
    let rule = |e: &str, public: bool| format!(r#"{{"expression": {e:?}, "public": {public}}}"#);
    let json = format!(
        r#"{{
        "/": {{
            "GET": {{"authorization": {root_get}}},
            "POST": {{"authorization": {never}}},
            "PUT": {{"authorization": {never}, "backofficeAuthorization": {never}}}
        }},
        "/myApi": {{"ALL": {{"authorization": {admin_bo}}}}},
        "/foo-or-bar/": {{"ALL": {{"authorization": {foo_or_bar}}}}},
        "/staff/": {{"ALL": {{"authorization": {any_of}}}}},
        "/one/": {{"ALL": {{"authorization": {one_in}}}}},
        "/orders/": {{
            "GET": {{"authorization": {perm_any}}},
            "POST": {{"authorization": {perm_one}}}
        }},
        "/partners/": {{"ALL": {{"authorization": {partners}}}}},
        "/cms-only/": {{"ALL": {{"backofficeAuthorization": {admin_only}}}}},
        "/both/": {{"ALL": {{"authorization": {users_only}, "backofficeAuthorization": {admin_only}}}}}
    }}"#,
        root_get = rule("true", true),
        never = rule("false", false),
        admin_bo = rule("groups.admin && isBackoffice", false),
        // "Authentication required" off, "User Group Permission" `groups.foo || clientType=="bar"`.
        foo_or_bar = rule("groups.foo || clientType==\"bar\"", true),
        any_of = rule(r#"["admin", "user"] in groups"#, false),
        one_in = rule(r#""admin" in groups"#, false),
        perm_any = rule(r#"["write:orders","view:orders"] in permissions"#, false),
        perm_one = rule(r#"permissions["write:orders"]"#, false),
        partners = rule(r#"clientType == "apiKey" || clientType == "apiKey2""#, true),
        admin_only = rule("groups.admin", false),
        users_only = rule("groups.user", false),
    );
    let t = RouteTable::build(Some(("auth.json", &json)), &[], true).unwrap();

    let s = |v: &[&str]| v.iter().map(|g| g.to_string()).collect::<Vec<_>>();
    let (foo, admin, user, nobody) = (s(&["foo"]), s(&["admin"]), s(&["user"]), s(&[]));
    let (writer, viewer) = (s(&["write:orders"]), s(&["view:orders"]));
    /// One request: its session's groups and permissions (`None`: anonymous), its client type
    /// (a valid API key's), whether it is a backoffice request.
    struct Ask<'a>(Option<(&'a [String], &'a [String])>, Option<&'a str>, bool);
    fn ask<'a>(a: &Ask<'a>) -> Context<'a> {
        Context {
            session: a.0.is_some(),
            groups: a.0.map_or(&[], |s| s.0),
            permissions: a.0.map_or(&[], |s| s.1),
            client_type: a.1,
            is_backoffice: a.2,
            ..Default::default()
        }
    }
    let anonymous = Ask(None, None, false);
    let table: Vec<(&str, &str, Ask<'_>, Decision)> = vec![
        // The configuration page's example.
        ("GET", "/", Ask(None, None, false), Allow),
        (
            "GET",
            "/x",
            Ask(Some((&nobody, &nobody)), None, false),
            Allow,
        ),
        ("POST", "/x", Ask(None, None, false), Login),
        (
            "POST",
            "/x",
            Ask(Some((&admin, &nobody)), None, false),
            Deny,
        ),
        ("PUT", "/x", Ask(Some((&admin, &nobody)), None, true), Deny),
        (
            "GET",
            "/myApi",
            Ask(Some((&admin, &nobody)), None, true),
            Allow,
        ),
        (
            "GET",
            "/myApi",
            Ask(Some((&admin, &nobody)), None, false),
            Deny,
        ),
        ("DELETE", "/myApi", Ask(None, None, true), Login),
        // The Console page's three outcomes for `groups.foo || clientType=="bar"`, public:
        // anonymous without a key is refused, a `foo` user passes, the `bar` key passes.
        ("GET", "/foo-or-bar/x", anonymous, Login),
        ("GET", "/foo-or-bar/x", Ask(None, Some("bar"), false), Allow),
        (
            "GET",
            "/foo-or-bar/x",
            Ask(Some((&foo, &nobody)), None, false),
            Allow,
        ),
        (
            "GET",
            "/foo-or-bar/x",
            Ask(Some((&user, &nobody)), None, false),
            Deny,
        ),
        (
            "GET",
            "/foo-or-bar/x",
            Ask(None, Some("other"), false),
            Login,
        ),
        (
            "GET",
            "/foo-or-bar/x",
            Ask(Some((&user, &nobody)), Some("bar"), false),
            Allow,
        ),
        // `["admin", "user"] in groups`: admin or user.
        (
            "GET",
            "/staff/x",
            Ask(Some((&admin, &nobody)), None, false),
            Allow,
        ),
        (
            "GET",
            "/staff/x",
            Ask(Some((&user, &nobody)), None, false),
            Allow,
        ),
        (
            "GET",
            "/staff/x",
            Ask(Some((&foo, &nobody)), None, false),
            Deny,
        ),
        ("GET", "/staff/x", Ask(None, None, false), Login),
        (
            "GET",
            "/one/x",
            Ask(Some((&admin, &nobody)), None, false),
            Allow,
        ),
        (
            "GET",
            "/one/x",
            Ask(Some((&user, &nobody)), None, false),
            Deny,
        ),
        // Permissions, by name and by list.
        (
            "GET",
            "/orders/1",
            Ask(Some((&nobody, &viewer)), None, false),
            Allow,
        ),
        (
            "GET",
            "/orders/1",
            Ask(Some((&nobody, &writer)), None, false),
            Allow,
        ),
        (
            "GET",
            "/orders/1",
            Ask(Some((&admin, &nobody)), None, false),
            Deny,
        ),
        (
            "POST",
            "/orders/1",
            Ask(Some((&nobody, &writer)), None, false),
            Allow,
        ),
        (
            "POST",
            "/orders/1",
            Ask(Some((&nobody, &viewer)), None, false),
            Deny,
        ),
        // `clientType == "apiKey" || clientType == "apiKey2"`, public: the two keys only.
        (
            "GET",
            "/partners/x",
            Ask(None, Some("apiKey"), false),
            Allow,
        ),
        (
            "GET",
            "/partners/x",
            Ask(None, Some("apiKey2"), false),
            Allow,
        ),
        (
            "GET",
            "/partners/x",
            Ask(None, Some("apiKey3"), false),
            Login,
        ),
        ("GET", "/partners/x", Ask(None, None, false), Login),
        (
            "GET",
            "/partners/x",
            Ask(Some((&admin, &nobody)), None, false),
            Deny,
        ),
        // Only a backoffice block: a frontend request finds no rule for it and is refused
        // (inferred; idgate used to let any session through here).
        (
            "GET",
            "/cms-only/x",
            Ask(Some((&admin, &nobody)), None, false),
            Deny,
        ),
        ("GET", "/cms-only/x", Ask(None, None, false), Login),
        (
            "GET",
            "/cms-only/x",
            Ask(Some((&admin, &nobody)), None, true),
            Allow,
        ),
        (
            "GET",
            "/cms-only/x",
            Ask(Some((&user, &nobody)), None, true),
            Deny,
        ),
        // Both blocks: each request kind has its own.
        (
            "GET",
            "/both/x",
            Ask(Some((&user, &nobody)), None, false),
            Allow,
        ),
        (
            "GET",
            "/both/x",
            Ask(Some((&user, &nobody)), None, true),
            Deny,
        ),
        (
            "GET",
            "/both/x",
            Ask(Some((&admin, &nobody)), None, true),
            Allow,
        ),
        (
            "GET",
            "/both/x",
            Ask(Some((&admin, &nobody)), None, false),
            Deny,
        ),
    ];
    for (method, uri, who, want) in &table {
        assert_eq!(
            t.decide(method, uri, None, &ask(who)),
            *want,
            "{method} {uri} session={:?} client type={:?} backoffice={}",
            who.0,
            who.1,
            who.2
        );
    }
}
