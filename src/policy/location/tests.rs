//! Unit tests of the rules Nginx locations state: decoded once, bounded, cached boundedly.

use super::*;
use crate::policy::Context;

#[test]
fn location_rules_are_decoded_once_bounded_and_cached_boundedly() {
    let rules = LocationRules::default();
    assert!(rules.get("/auth").unwrap().is_none());
    assert!(rules.get("/auth/").unwrap().is_none());
    let admin = vec!["b".to_string()];
    let ctx = Context {
        session: true,
        groups: &admin,
        ..Context::default()
    };
    // As Nginx sends a rule written in quotes: spaces and `|` escaped once, the rest as is.
    for path in [
        "/auth/groups.a%20%7C%7C%20groups.b",
        "/auth/groups.a%20||%20groups.b",
        "/auth/!(groups.c)%20&&%20('b'%20in%20groups%20||%20groups[%22x%22])",
    ] {
        let rule = rules.get(path).unwrap().unwrap();
        assert!(rule.allows(&ctx), "{path}");
        // Cached: the same parsed rule again.
        assert!(Arc::ptr_eq(&rule, &rules.get(path).unwrap().unwrap()));
    }
    // A rule written percent-encoded in the Nginx config arrives double-encoded: not decoded
    // twice, refused.
    let err = rules
        .get("/auth/groups.a%2520%257C%257C%2520groups.b")
        .err()
        .unwrap();
    assert!(err.message.contains('%'), "{err}");
    // Hostile rules are errors, on a small stack, and are not cached.
    let huge = LocationRules::default();
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for rule in [
                format!("/auth/{}", "(".repeat(100_000)),
                format!("/auth/{}", "!".repeat(100_000)),
                format!("/auth/{}", "%28".repeat(100_000)),
                format!("/auth/{}", "%21".repeat(1000)),
                format!("/auth/{}true", "true%20%26%26%20".repeat(100_000)),
            ] {
                let err = huge.get(&rule).expect_err("refused");
                assert!(
                    err.message.contains("4096 bytes") || err.message.contains("32 levels"),
                    "{err}"
                );
            }
            assert!(huge.parsed.read().unwrap().is_empty());
        })
        .unwrap()
        .join()
        .unwrap();
    // The cache holds at most MAX_LOCATION_RULES rules; more still parse.
    let many = LocationRules::default();
    for i in 0..MAX_LOCATION_RULES + 50 {
        assert!(many.get(&format!("/auth/groups.g{i}")).unwrap().is_some());
    }
    assert_eq!(many.parsed.read().unwrap().len(), MAX_LOCATION_RULES);
}

#[test]
fn a_location_rule_is_decoded_up_to_three_times_the_expression_limit() {
    // Fully escaped, a rule of MAX_EXPRESSION_BYTES is exactly three times as long: still
    // decoded and parsed; one byte more is refused before decoding.
    let text = format!("{}true", " ".repeat(expr::MAX_EXPRESSION_BYTES - 4));
    let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(encoded.len(), 3 * expr::MAX_EXPRESSION_BYTES);
    let rules = LocationRules::default();
    let rule = rules.get(&format!("/auth/{encoded}")).unwrap().unwrap();
    assert_eq!(*rule, Expr::Bool(true));
    let err = rules.get(&format!("/auth/{encoded}%")).unwrap_err();
    assert!(err.message.contains("longer than"), "{err}");
}
