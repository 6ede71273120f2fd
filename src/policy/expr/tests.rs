//! Unit tests of the rule expression language: every form, the error columns, and the limits
//! that keep parsing, evaluating and dropping a hostile expression bounded.

use super::*;

fn ctx<'a>(
    groups: &'a [String],
    perms: &'a [String],
    client: Option<&'a str>,
    bo: bool,
) -> Context<'a> {
    Context {
        session: true,
        groups,
        permissions: perms,
        client_type: client,
        is_backoffice: bo,
        ..Default::default()
    }
}

#[test]
fn every_form_evaluates() {
    let groups = vec!["admin".to_string(), "team-a".to_string()];
    let perms = vec!["reports:read".to_string(), "write".to_string()];
    let c = ctx(&groups, &perms, Some("cms"), true);
    let none = ctx(&[], &[], None, false);
    let table: &[(&str, bool, bool)] = &[
        // expression, in `c`, in `none`
        ("true", true, true),
        ("false", false, false),
        ("groups.admin", true, false),
        ("groups.nope", false, false),
        ("groups.team-a", true, false),
        ("groups[\"admin\"]", true, false),
        ("\"admin\" in groups", true, false),
        ("'admin' in groups", true, false),
        ("\"x\" in groups", false, false),
        ("permissions.write", true, false),
        ("permissions[\"reports:read\"]", true, false),
        ("permissions.reports:read", true, false),
        ("'reports:read' in permissions", true, false),
        // A backslash takes the next character as it is.
        ("\"te\\am-a\" in groups", true, false),
        ("'adm\\'in' in groups", false, false),
        ("clientType == 'c\\ms'", true, false),
        // A string alone is true when not empty; so is the client type when there is one.
        ("\"x\"", true, true),
        ("''", false, false),
        ("clientType", true, false),
        // Mia's list form: any of the names.
        ("[\"admin\", \"user\"] in groups", true, false),
        ("['user', 'team-a'] in groups", true, false),
        ("[\"user\",\"guest\"] in groups", false, false),
        ("[\"admin\"] in groups", true, false),
        (
            "[\"write:orders\",\"reports:read\"] in permissions",
            true,
            false,
        ),
        ("['x', 'y'] in permissions", false, false),
        ("!['user', 'guest'] in groups", true, true),
        ("['user'] in groups || isBackoffice", true, false),
        ("clientType == \"cms\"", true, false),
        ("clientType === 'cms'", true, false),
        ("clientType != \"cms\"", false, true),
        ("clientType !== 'web'", true, true),
        ("isBackoffice", true, false),
        ("!isBackoffice", false, true),
        ("isBackoffice == true", true, false),
        ("!groups.admin", false, true),
        ("!!groups.admin", true, false),
        ("groups.admin && permissions.write", true, false),
        ("groups.nope || permissions.write", true, false),
        ("groups.nope || groups.none", false, false),
        // && binds tighter than ||
        ("true || false && false", true, true),
        ("(true || false) && false", false, false),
        ("!false && true", true, true),
        ("!(groups.admin || groups.other)", false, true),
        (
            "  groups.admin   &&\t(clientType == 'cms' || isBackoffice)  ",
            true,
            false,
        ),
    ];
    for (src, in_c, in_none) in table {
        let e = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(e.allows(&c), *in_c, "{src} with groups");
        assert_eq!(e.allows(&none), *in_none, "{src} without");
    }
}

#[test]
fn errors_give_the_column() {
    let table: &[(&str, usize)] = &[
        ("", 1),
        ("groups.", 8),
        ("groups", 7),
        ("groups[admin]", 8),
        ("groups.'x'", 8),
        ("groups == true", 8),
        ("true && )", 9),
        ("!&&", 2),
        ("permissions.(x)", 13),
        ("groups.admin &&", 16),
        ("(true", 6),
        ("true)", 5),
        ("unknown", 1),
        ("'x' in users", 8),
        ("groups.admin & true", 14),
        ("groups.admin | true", 14),
        ("'abc\\", 1),
        ("groups.admin = true", 14),
        ("'open", 1),
        ("true true", 6),
        ("clientType = 'x'", 12),
        // The list form: quoted names, commas, `]`, then `in groups|permissions`.
        ("[] in groups", 2),
        ("['a', ] in groups", 7),
        ("['a' 'b'] in groups", 6),
        ("['a'", 5),
        ("['a', b] in groups", 7),
        ("['a'] groups", 7),
        ("['a'] in users", 10),
        ("['a']", 6),
        ("'a', 'b'", 4),
        // Numbers and comparisons: whole numbers of at most 12 digits, an operand after `<`.
        ("authAge < 1234567890123", 11),
        ("authAge <", 10),
        ("authAge < < 3", 11),
        ("'otp' in amrs", 10),
        ("acr.x", 4),
    ];
    for (src, column) in table {
        let err = parse(src)
            .err()
            .unwrap_or_else(|| panic!("{src:?} should not parse"));
        assert_eq!(err.column, *column, "{src:?}: {err}");
    }
}

/// Runs `f` on a thread with a 256 KiB stack: a parser, evaluation or drop that recursed once
/// per character of these inputs would overflow it (and abort the test binary).
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn parse_err(src: &str) -> ParseError {
    parse(src)
        .err()
        .unwrap_or_else(|| panic!("{} bytes should not parse", src.len()))
}

#[test]
fn hostile_nesting_is_refused_before_the_stack_grows() {
    on_small_stack(|| {
        for c in ["(", "!"] {
            // 100 000 of them: over the length limit, refused before tokenizing.
            let err = parse_err(&c.repeat(100_000));
            assert_eq!(err.column, MAX_EXPRESSION_BYTES + 1, "{c}: {err}");
            assert!(err.to_string().contains("4096 bytes"), "{err}");
            // Within the length limit, the nesting limit stops the descent at its 33rd level.
            let err = parse_err(&c.repeat(4000));
            assert_eq!(err.column, MAX_NESTING + 1, "{c}: {err}");
            assert!(err.to_string().contains("32 levels"), "{err}");
        }
        // Mixed, and with a valid expression after it.
        let mixed = format!("{}true{}", "!(".repeat(17), ")".repeat(17));
        let err = parse_err(&mixed);
        assert_eq!(err.column, 33, "{err}");
        assert!(err.message.contains("nested deeper than 32"), "{err}");
    });
}

#[test]
fn nesting_up_to_the_limit_parses_and_evaluates() {
    on_small_stack(|| {
        let groups = vec!["admin".to_string()];
        let c = ctx(&groups, &[], None, false);
        let parens = format!("{}groups.admin{}", "(".repeat(32), ")".repeat(32));
        assert!(parse(&parens).unwrap().allows(&c));
        let nots = format!("{}groups.admin", "!".repeat(32));
        assert!(parse(&nots).unwrap().allows(&c));
        let odd = format!("{}groups.admin", "!".repeat(31));
        assert!(!parse(&odd).unwrap().allows(&c));
        // Closing a group gives its level back.
        let siblings = vec![format!("{}true{}", "(".repeat(32), ")".repeat(32)); 3].join(" && ");
        assert!(parse(&siblings).unwrap().allows(&c));
        let mixed = format!("{}true{}", "!(".repeat(16), ")".repeat(16));
        assert!(parse(&mixed).unwrap().allows(&c));
    });
}

#[test]
fn long_chains_are_flat_and_bounded() {
    on_small_stack(|| {
        let groups = vec!["g299".to_string()];
        let c = ctx(&groups, &[], None, false);
        // Near the length limit: one n-ary node, evaluated and dropped on the small stack.
        let any: Vec<String> = (0..300).map(|i| format!("groups.g{i}")).collect();
        let or = parse(&any.join("||")).unwrap();
        match &or {
            Expr::Or(items) => assert_eq!(items.len(), 300),
            other => panic!("not flat: {other:?}"),
        }
        assert!(or.allows(&c));
        let and = parse(&vec!["true"; 499].join(" && ")).unwrap();
        match &and {
            Expr::And(items) => assert_eq!(items.len(), 499),
            other => panic!("not flat: {other:?}"),
        }
        assert!(and.allows(&c));
        assert!(
            !parse(&format!("{} && false", vec!["true"; 499].join(" && ")))
                .unwrap()
                .allows(&c)
        );
        // 100 000 links: refused for its length.
        let err = parse_err(&format!("{}true", "a && ".repeat(100_000)));
        assert_eq!(err.column, MAX_EXPRESSION_BYTES + 1, "{err}");
        let err = parse_err(&"true || ".repeat(20_000));
        assert!(err.message.contains("longer than 4096 bytes"), "{err}");
    });
}

#[test]
fn long_strings_and_names_are_refused_by_length() {
    on_small_stack(|| {
        let long = "a".repeat(100_000);
        for src in [
            format!("'{long}' in groups"),
            format!("groups.{long}"),
            format!("'{long}"),
            format!("clientType == \"{long}\""),
            long.clone(),
        ] {
            let err = parse_err(&src);
            assert!(err.message.contains("4096"), "{err}");
        }
        // The column counts characters, not bytes.
        let err = parse_err(&"é".repeat(3000));
        assert_eq!(err.column, 2049, "{err}");
        // At the limit exactly, a long group name is fine.
        let name = "g".repeat(MAX_EXPRESSION_BYTES - "groups.".len());
        let groups = vec![name.clone()];
        assert!(parse(&format!("groups.{name}"))
            .unwrap()
            .allows(&ctx(&groups, &[], None, false)));
    });
}

#[test]
fn sibling_negations_do_not_add_up_to_the_nesting_limit() {
    // Forty `!` side by side nest one deep each: fine. Only `!` inside `!` counts.
    let src = vec!["!false"; 40].join(" && ");
    let e = parse(&src).unwrap_or_else(|e| panic!("{e}"));
    assert!(e.allows(&ctx(&[], &[], None, false)));
    let deep = format!("{}true", "!".repeat(MAX_NESTING + 1));
    assert!(parse(&deep).is_err());
}

#[test]
fn the_login_strength_forms_evaluate() {
    let amr = vec!["pwd".to_string(), "otp".to_string()];
    let strong = Context {
        session: true,
        acr: Some("loa2"),
        amr: &amr,
        auth_age: Some(120),
        ..Default::default()
    };
    let unknown = Context {
        session: true,
        ..Default::default()
    };
    let table: &[(&str, bool, bool)] = &[
        // expression, in `strong`, in `unknown`
        ("acr == 'loa2'", true, false),
        ("acr != 'loa2'", false, true),
        ("acr", true, false),
        ("'otp' in amr", true, false),
        ("['hwk', 'otp'] in amr", true, false),
        ("'hwk' in amr", false, false),
        ("authAge < 600", true, false),
        ("authAge <= 120", true, false),
        ("authAge < 120", false, false),
        ("authAge > 119", true, false),
        ("authAge >= 121", false, false),
        // An unknown age compares false either way: a rule on it refuses.
        ("authAge > 0 || authAge <= 0", true, false),
        ("600 > authAge", true, false),
        ("1 < 2", true, true),
        ("2 <= 1", false, false),
        // A comparison with anything but two numbers is false.
        ("acr < 3", false, false),
        ("'1' < 2", false, false),
        (
            "'otp' in amr && authAge < 300 && acr == 'loa2'",
            true,
            false,
        ),
    ];
    for (src, in_strong, in_unknown) in table {
        let e = parse(src).unwrap_or_else(|err| panic!("{src:?}: {err}"));
        assert_eq!(e.allows(&strong), *in_strong, "{src} in the strong login");
        assert_eq!(e.allows(&unknown), *in_unknown, "{src} with nothing known");
    }
}
