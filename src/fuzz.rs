//! Fuzz entry points: one function per parser that sees untrusted input, each taking the
//! fuzzer's bytes. None may panic, whatever the bytes; each also asserts a property of what it
//! accepts (a canonical path is a fixed point, an accepted redirect lands on the site or an
//! allowed origin, a path rules cannot read is never allowed, …).
//!
//! `fuzz/` holds one cargo-fuzz (libFuzzer) target per entry of [`TARGETS`], each a one-line
//! call of the function here; `scripts/fuzz` runs them. The seed corpora are committed under
//! `fuzz/corpus/<target>/` and every input that ever crashed under `fuzz/regressions/<target>/`;
//! the unit test at the end replays all of them through the same functions on `cargo test`.

// Fuzz entry points fail by panicking: that is how libFuzzer and the replay test see a bug.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use crate::policy::expr::{self, Context};
use crate::policy::{Decision, Matching, RawRoute, RouteTable};

/// A fuzz entry point: the fuzzer's bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every target: its name (the `fuzz/fuzz_targets/<name>.rs` file and corpus folder) and its
/// entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("expr", expr),
    ("path", path),
    ("rules", rules),
    ("redirect", crate::redirect::fuzz::redirect),
    ("cookie", cookie),
    ("authorization", authorization),
    ("session_jwt", session_jwt),
    ("discovery", crate::idp::fuzz::discovery),
    ("jwks", crate::idp::fuzz::jwks),
    ("id_token", crate::idp::fuzz::id_token),
    ("userinfo", crate::idp::fuzz::userinfo),
    ("logout_token", crate::idp::fuzz::logout_token),
    ("token_body", token_body),
    ("query", query),
    ("mia_config", mia_config),
    ("mia_auth", mia_auth),
    ("toml_config", toml_config),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

const GROUPS: &[&str] = &["admins", "users"];

/// The contexts an expression is evaluated in: anonymous, a session, a backoffice API key.
fn contexts(groups: &[String]) -> [Context<'_>; 3] {
    [
        Context::default(),
        Context {
            session: true,
            groups,
            permissions: groups,
            client_type: None,
            is_backoffice: false,
            ..Default::default()
        },
        Context {
            session: true,
            groups,
            permissions: &[],
            client_type: Some("cms"),
            is_backoffice: true,
            ..Default::default()
        },
    ]
}

/// A rule expression (from `auth.json`, the TOML or an `/auth/<rule>` path): parsed within its
/// limits or refused, and a parsed one evaluates without a panic, the same way twice.
pub fn expr(data: &[u8]) {
    let src = text(data);
    let Ok(e) = expr::parse(&src) else {
        return;
    };
    let groups: Vec<String> = GROUPS.iter().map(|g| (*g).to_owned()).collect();
    for ctx in contexts(&groups) {
        assert_eq!(e.allows(&ctx), e.allows(&ctx));
    }
    assert_eq!(expr::parse(&src).ok(), Some(e), "parsing is deterministic");
}

/// A request path: idgate's dispatch check and the rules' normalisation. A normalised path is a
/// fixed point of normalisation and has no empty or dot segments.
pub fn path(data: &[u8]) {
    let uri = text(data);
    let _ = crate::http::non_canonical(&uri);
    let Some(n) = crate::policy::normalize(&uri) else {
        return;
    };
    assert!(n.starts_with('/'), "{uri:?} -> {n:?}");
    let inner = n[1..].strip_suffix('/').unwrap_or(&n[1..]);
    if !inner.is_empty() {
        assert!(
            inner
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".."),
            "{uri:?} -> {n:?}"
        );
    }
    assert_eq!(
        crate::policy::normalize(&n).as_deref(),
        Some(n.as_ref()),
        "{uri:?} -> {n:?} is not a fixed point"
    );
}

/// The rule table deciding a request: the first byte picks the method, the rest is the URI.
/// A path the rules cannot read is never allowed, and the decision does not depend on anything
/// but the request.
pub fn rules(data: &[u8]) {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let route = |path: &str, expression: &str, public: bool| RawRoute {
            path: path.into(),
            methods: vec!["ALL".into()],
            expression: expression.into(),
            public,
            backoffice_expression: Some("groups.admins".into()),
            backoffice_public: false,
            acr_values: Vec::new(),
            max_age: None,
        };
        let routes = [
            route("/", "true", false),
            route("/public/", "true", true),
            route("/admin/", "groups.admins", false),
            route("/api/v1/items", "groups.users && !groups.banned", false),
        ];
        let matching = Matching {
            strict: true,
            case_insensitive: false,
        };
        RouteTable::build_from(None, &routes, matching).expect("the fuzz table builds")
    });
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    const METHODS: [&str; 5] = ["GET", "POST", "DELETE", "PROPFIND", "get"];
    let method = METHODS[first as usize % METHODS.len()];
    let uri = text(rest);
    let groups: Vec<String> = GROUPS.iter().map(|g| (*g).to_owned()).collect();
    for ctx in contexts(&groups) {
        let decision = table.decide(method, &uri, None, &ctx);
        assert_eq!(decision, table.decide(method, &uri, None, &ctx));
        if crate::policy::normalize(&uri).is_none() {
            assert_ne!(
                decision,
                Decision::Allow,
                "{uri:?} cannot be read, yet allowed"
            );
        }
    }
}

/// The `Cookie` header: a cookie's value never spans another cookie, and the login bindings
/// read from `idgate_login` are well-formed and bounded.
pub fn cookie(data: &[u8]) {
    let header = text(data);
    for name in [
        "sid",
        "idgate_renew",
        "refresh_token",
        "idgate_login",
        "mia_client_key",
    ] {
        if let Some(value) = crate::cookie::find(&header, name) {
            assert!(!value.contains(';'), "{header:?}: {name} = {value:?}");
        }
    }
    // What the upstream gets holds none of idgate's cookies, in either spelling, nor the API
    // key where keys are not passed on.
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, value);
        for keep_api_key in [false, true] {
            let Some(upstream) = crate::cookie::for_upstream(&headers, keep_api_key) else {
                continue;
            };
            let upstream = String::from_utf8_lossy(upstream.as_bytes());
            for name in ["sid", "idgate_renew", "refresh_token", "idgate_login"]
                .into_iter()
                .flat_map(|n| [n.to_owned(), format!("__Host-{n}"), format!("__Secure-{n}")])
                .chain((!keep_api_key).then(|| "mia_client_key".to_owned()))
            {
                let found = crate::cookie::find(&upstream, &name);
                assert!(found.is_none(), "{header:?}: {name} reaches the upstream");
            }
        }
    }
    let login = crate::cookie::find(&header, "idgate_login");
    let bindings: Vec<&str> = crate::routes::login::bindings(login).collect();
    assert!(bindings.len() <= crate::routes::login::MAX_BINDINGS);
    assert!(bindings.iter().all(|b| b.len() == 43));
}

/// The `Authorization` header, and the API-key headers, as `/auth` reads them.
pub fn authorization(data: &[u8]) {
    let Ok(value) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value.clone());
    headers.insert("client-key", value.clone());
    headers.insert(http::header::COOKIE, value);
    if let Some(token) = crate::routes::bearer_token(&headers) {
        assert!(!token.is_empty() && token == token.trim());
    }
    static KEYS: OnceLock<crate::apikeys::ApiKeys> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        crate::apikeys::ApiKeys::new([(crate::apikeys::hash_key(b"a-known-key"), "cms".into())])
    });
    if let Ok(Some(client_type)) = keys.from_request(&headers) {
        assert_eq!(client_type, "cms");
    }
}

/// The issuer of the tokens [`session_jwt`] signs and accepts.
pub const FUZZ_ISSUER: &str = "https://app.example.com";

/// The keys of [`session_jwt`]: HS256 with a fixed test secret.
pub fn fuzz_keys() -> &'static crate::jwt::JwtKeys {
    static KEYS: OnceLock<crate::jwt::JwtKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = crate::jwt::KeyMaterial::signing_from_bytes(
            "HS256",
            b"fuzz-only-secret-0123456789abcdef".to_vec(),
            "fuzz",
            "k1",
        )
        .expect("an HS256 key");
        crate::jwt::JwtKeys::new(&key, &[], &[FUZZ_ISSUER.to_owned()]).expect("the fuzz keys")
    })
}

/// A session token presented by a client: refused, or it is one idgate signed, for its issuer.
pub fn session_jwt(data: &[u8]) {
    let token = text(data);
    let keys = fuzz_keys();
    if let Ok(claims) = keys.verify_ignoring_expiry(&token) {
        assert_eq!(claims.iss, FUZZ_ISSUER);
        // Re-signing the claims gives a token that verifies to the same claims.
        let again = keys.sign(&claims).expect("signs");
        assert_eq!(
            keys.verify_ignoring_expiry(&again).ok(),
            Some(claims.clone())
        );
        if let Ok(live) = keys.verify(&token) {
            assert_eq!(live, claims);
        }
    } else {
        assert!(keys.verify(&token).is_err());
    }
}

/// The body of `/oauth/token` or `/refreshtoken`: the first byte picks the content type.
pub fn token_body(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    const TYPES: [Option<&str>; 4] = [
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        None,
    ];
    let _ = crate::http::body_params(TYPES[first as usize % TYPES.len()], body);
}

/// A request target's query string, as the login endpoints read it.
pub fn query(data: &[u8]) {
    let Ok(uri) = http::Uri::try_from(data) else {
        return;
    };
    let params = crate::http::query_params(&uri);
    assert!(params.len() <= uri.query().map_or(0, |q| q.len() + 1));
}

/// Mia's `config.json`.
pub fn mia_config(data: &[u8]) {
    let _ = crate::config::mia::parse(&text(data), "config.json");
}

/// Mia's `auth.json`: builds a table, or is refused naming why.
pub fn mia_auth(data: &[u8]) {
    let text = text(data);
    for strict in [true, false] {
        let matching = Matching {
            strict,
            case_insensitive: !strict,
        };
        if let Ok(table) = RouteTable::build_from(Some(("auth.json", &text)), &[], matching) {
            let _ = table.decide("GET", "/", None, &Context::default());
        }
    }
}

/// idgate's TOML configuration (with no files beside it: key files are missing, so most valid
/// configurations stop there, after everything before them was checked).
pub fn toml_config(data: &[u8]) {
    let empty = std::collections::HashMap::<String, String>::new();
    let _ = crate::config::Config::from_toml(
        &text(data),
        std::path::Path::new("/nonexistent/idgate.toml"),
        &empty,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed corpus file and every past crash, through its target.
    #[test]
    fn the_corpora_and_past_crashes_replay_cleanly() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut replayed = 0;
        for (name, target) in TARGETS {
            assert!(
                root.join("fuzz_targets")
                    .join(format!("{name}.rs"))
                    .is_file(),
                "fuzz/fuzz_targets/{name}.rs is missing"
            );
            let mut seeds = 0;
            for folder in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(folder).join(name)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let data = std::fs::read(entry.path()).unwrap();
                    target(&data);
                    replayed += 1;
                    seeds += usize::from(folder == "corpus");
                }
            }
            assert!(seeds > 0, "fuzz/corpus/{name} has no seed");
        }
        assert!(replayed >= TARGETS.len());
    }
}
