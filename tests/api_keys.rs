//! API keys end to end, through real Nginx with the shipped snippets: `[[api_keys]]` (one key
//! given by its SHA-256, one by a file) map keys sent as Mia documents them — `client-key` or
//! `secret` header, `mia_client_key` cookie — to a client type that rules read and upstreams
//! receive as `client-type`; a wrong key is refused and never logged; a location can require a
//! key; a client's own `client-type` counts for nothing; the key does not reach the upstream
//! unless the location forwards it.
//!
//! The echo app of the harness shows only identity headers, so the protected locations here
//! proxy to a location of the same Nginx (`/_keys_echo/`) that shows the headers API keys are
//! about.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::collections::HashMap;

use common::raw::{self, RawResponse};
use common::*;
use sha2::{Digest, Sha256};

/// Configured by its SHA-256; client type `partner`.
const PARTNER_KEY: &str = "pk-7f3a9c1e5b2d4086a1c3e5f7092b4d6e";
/// Configured by a key file; client type `cms`.
const CMS_KEY: &str = "ck-0b9d8e7f6a5c4b3a2d1e0f9a8b7c6d5e";
/// Configured, inactive; client type `retired`.
const RETIRED_KEY: &str = "rk-1a2b3c4d5e6f70819a2b3c4d5e6f7081";
/// Configured nowhere.
const WRONG_KEY: &str = "wk-deadbeefdeadbeefdeadbeefdeadbeef";

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A protected location proxying to the header echo, with `sets` (`$idgate_*` variables) and,
/// if given, its own rule (`idgate-protect-rule.conf`).
fn location(path: &str, sets: &[(&str, &str)], rule: Option<&str>) -> String {
    let sets: String = sets
        .iter()
        .map(|(var, value)| format!("        set ${var} \"{value}\";\n"))
        .collect();
    let nginx = repo().join("nginx");
    let protect = match rule {
        Some(rule) => format!(
            "        auth_request \"/_idgate/auth/{rule}\";\n        include {}/idgate-protect-rule.conf;\n",
            nginx.display()
        ),
        None => format!(
            "        include {}/idgate-protect.conf;\n",
            nginx.display()
        ),
    };
    format!(
        "    location {path} {{\n{sets}{protect}        \
         proxy_pass http://127.0.0.1:$server_port/_keys_echo$uri;\n    }}\n"
    )
}

fn setup(key_dir: &std::path::Path) -> Setup {
    let cms_file = key_dir.join("cms.key");
    std::fs::write(&cms_file, format!("{CMS_KEY}\n")).unwrap();
    let extra = format!(
        "mia_auth = \"{auth}\"\n\
         [[api_keys]]\nclient_type = \"partner\"\nkey_sha256 = \"{partner}\"\n\
         [[api_keys]]\nclient_type = \"cms\"\nkey_file = \"{cms}\"\n\
         [[api_keys]]\nclient_type = \"retired\"\nkey_sha256 = \"{retired}\"\nactive = false\n",
        auth = fixture("mia/auth.json").display(),
        partner = sha256_hex(PARTNER_KEY),
        cms = cms_file.display(),
        retired = sha256_hex(RETIRED_KEY),
    );
    // The fixture's auth.json: `/` needs a session, `/public/` is public for GET.
    let locations = [
        // Shows what an upstream receives.
        "    location ^~ /_keys_echo/ {\n        default_type text/plain;\n        \
         return 200 \"client-type=$http_client_type\\nisbackoffice=$http_isbackoffice\\n\
         client-key=$http_client_key\\nsecret=$http_secret\\ncookie=$http_cookie\\n\
         miauserid=$http_miauserid\\n\";\n    }\n"
            .to_owned(),
        location("/k/open/", &[], None),
        // The fixture's public route, through idgate (which checks keys there too).
        location("/public/", &[], None),
        // A public location without an auth subrequest (idgate-public.conf).
        format!(
            "    location /k/nocheck/ {{\n        include {}/idgate-public.conf;\n        \
             proxy_pass http://127.0.0.1:$server_port/_keys_echo$uri;\n    }}\n",
            repo().join("nginx").display()
        ),
        location("/k/required/", &[("idgate_api_key_required", "true")], None),
        location(
            "/public/keyed/",
            &[("idgate_api_key_required", "true")],
            None,
        ),
        location("/k/cms-only/", &[], Some("clientType == 'cms'")),
        location(
            "/k/stated/",
            &[("idgate_client_type", "partner")],
            Some("clientType == 'cms' || clientType == 'partner'"),
        ),
        location(
            "/k/stated-cms-rule/",
            &[("idgate_client_type", "partner")],
            Some("clientType == 'cms'"),
        ),
        location("/k/forward/", &[("idgate_forward_api_key", "true")], None),
    ]
    .concat();
    Setup {
        extra: Box::leak(extra.into_boxed_str()),
        nginx_locations: locations,
        ..Setup::default()
    }
}

struct Keyed {
    stack: Stack,
    /// `sid=…` of alice, a logged-in `users` member.
    session: String,
    _key_dir: tempfile::TempDir,
}

async fn start() -> Keyed {
    let key_dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(setup(key_dir.path()));
    let alice = Browser::new();
    assert_eq!(login(&stack, &alice, "/", "alice").await.status(), 200);
    let session = format!("sid={}", alice.cookie(&stack.site(), "sid").unwrap());
    Keyed {
        stack,
        session,
        _key_dir: key_dir,
    }
}

impl Keyed {
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> RawResponse {
        let mut all = vec![("accept", "application/json")];
        all.extend_from_slice(headers);
        raw::send(self.stack.nginx.port, "GET", path, &all)
    }

    /// GET with alice's session (and `cookie_extra` appended to her Cookie header).
    fn get_as_alice(
        &self,
        path: &str,
        cookie_extra: &str,
        headers: &[(&str, &str)],
    ) -> RawResponse {
        let cookie = format!("{}{cookie_extra}", self.session);
        let mut all = vec![("cookie", cookie.as_str())];
        all.extend_from_slice(headers);
        self.get(path, &all)
    }
}

/// A case: what it is, what to append to the Cookie header, extra headers.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn echo(r: &RawResponse) -> HashMap<String, String> {
    assert_eq!(r.status, 200, "{r:?}");
    r.body
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A 401 that names the API key, without a login redirect and without the key.
fn assert_key_refused(r: &RawResponse, sent: &str, what: &str) {
    assert_eq!(r.status, 401, "{what}: {r:?}");
    assert!(r.body.contains("API key"), "{what}: {}", r.body);
    assert!(r.header("location").is_none(), "{what}: {r:?}");
    assert!(!r.body.contains(sent), "{what}: the key echoed");
    assert!(
        !r.headers.iter().any(|(_, v)| v.contains(sent)),
        "{what}: the key echoed in a header"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_key_gives_its_client_type_to_rules_and_upstreams() {
    let k = start().await;

    // Each place Mia reads a key from, each configured form (hash, file).
    let sent: &[(&str, &str, &str, &str)] = &[
        ("client-key header", "", "client-key", PARTNER_KEY),
        ("secret header", "", "secret", PARTNER_KEY),
        ("client-key header, file key", "", "client-key", CMS_KEY),
    ];
    for (what, cookie, name, key) in sent {
        let r = k.get_as_alice("/k/open/x", cookie, &[(name, key)]);
        let expected = if *key == CMS_KEY { "cms" } else { "partner" };
        assert_eq!(echo(&r)["client-type"], expected, "{what}");
    }
    let r = k.get_as_alice("/k/open/x", &format!("; mia_client_key={CMS_KEY}"), &[]);
    let seen = echo(&r);
    assert_eq!(seen["client-type"], "cms", "cookie");
    assert!(!seen["miauserid"].is_empty());

    // Rules read the validated client type, and only that.
    let r = k.get_as_alice("/k/cms-only/x", "", &[("client-key", CMS_KEY)]);
    assert_eq!(echo(&r)["client-type"], "cms");
    let r = k.get_as_alice("/k/cms-only/x", &format!("; mia_client_key={CMS_KEY}"), &[]);
    assert_eq!(r.status, 200, "key in the cookie: {r:?}");
    assert_eq!(
        k.get_as_alice("/k/cms-only/x", "", &[("secret", PARTNER_KEY)])
            .status,
        403
    );
    assert_eq!(k.get_as_alice("/k/cms-only/x", "", &[]).status, 403);

    // The auth.json's backoffice rule (`groups.users && clientType == 'cms'`) is not opened by
    // a key: backoffice is the location's to state, and this one does not.
    assert_eq!(
        k.get_as_alice("/backoffice/x", "", &[("client-key", CMS_KEY)])
            .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_client_type_wins_over_a_key() {
    let k = start().await;
    // The location states `partner`: a cms key does not widen it…
    assert_eq!(
        k.get_as_alice("/k/stated-cms-rule/x", "", &[("client-key", CMS_KEY)])
            .status,
        403
    );
    // …and the upstream hears the location's statement, not the key's.
    let r = k.get_as_alice("/k/stated/x", "", &[("client-key", CMS_KEY)]);
    assert_eq!(echo(&r)["client-type"], "partner");
    let r = k.get_as_alice("/k/stated/x", "", &[]);
    assert_eq!(echo(&r)["client-type"], "partner");
    // A key sent there is still checked.
    let r = k.get_as_alice("/k/stated/x", "", &[("client-key", WRONG_KEY)]);
    assert_key_refused(
        &r,
        WRONG_KEY,
        "wrong key where the location states its type",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_everywhere_and_never_logged() {
    let k = start().await;
    let wrong_cookie = format!("; mia_client_key={WRONG_KEY}");
    let cases: &[Case<'_>] = &[
        ("client-key", "", &[("client-key", WRONG_KEY)]),
        ("secret", "", &[("secret", WRONG_KEY)]),
        ("cookie", &wrong_cookie, &[]),
        // A wrong key next to a right one.
        (
            "right and wrong",
            "",
            &[("secret", PARTNER_KEY), ("client-key", WRONG_KEY)],
        ),
        // An inactive key is an unknown key.
        ("inactive", "", &[("client-key", RETIRED_KEY)]),
    ];
    for (what, cookie, headers) in cases {
        // On a location that does not need a key, with a session that would pass.
        let r = k.get_as_alice("/k/open/x", cookie, headers);
        let sent = if *what == "inactive" {
            RETIRED_KEY
        } else {
            WRONG_KEY
        };
        assert_key_refused(&r, sent, what);
    }
    // Anonymous, on a public route, and as a browser navigation: still a 401, no login page.
    let r = k.get("/public/x", &[("client-key", WRONG_KEY)]);
    assert_key_refused(&r, WRONG_KEY, "public route");
    let r = raw::send(
        k.stack.nginx.port,
        "GET",
        "/k/open/x",
        &[("accept", "text/html"), ("client-key", WRONG_KEY)],
    );
    assert_key_refused(&r, WRONG_KEY, "navigation");
    // Two valid keys of different client types.
    let r = k.get_as_alice(
        "/k/open/x",
        "",
        &[("client-key", CMS_KEY), ("secret", PARTNER_KEY)],
    );
    assert_key_refused(&r, CMS_KEY, "two client types");
    // An oversized key is refused unread.
    let huge = "k".repeat(4000);
    let r = k.get_as_alice("/k/open/x", "", &[("client-key", &huge)]);
    assert_key_refused(&r, &huge, "oversized");

    // idgate logged the refusals (so the search below looks at the right log)…
    let log = k.stack.idgate.proc.wait_log(&["API key", "is not valid"]);
    // …and no key, wrong or right, appears anywhere in it.
    for key in [WRONG_KEY, PARTNER_KEY, CMS_KEY, RETIRED_KEY, &huge[..64]] {
        assert!(!log.contains(key), "idgate logged a key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_can_require_a_key() {
    let k = start().await;
    // With a session but no key: refused, naming the key.
    let r = k.get_as_alice("/k/required/x", "", &[]);
    assert_key_refused(&r, PARTNER_KEY, "session without key");
    // A forged statement that no key is required changes nothing.
    let r = k.get_as_alice("/k/required/x", "", &[("idgate-api-key-required", "false")]);
    assert_key_refused(&r, PARTNER_KEY, "forged not-required");
    // With a key (any of the three places): through.
    let r = k.get_as_alice("/k/required/x", "", &[("secret", PARTNER_KEY)]);
    assert_eq!(echo(&r)["client-type"], "partner");
    let r = k.get_as_alice(
        "/k/required/x",
        &format!("; mia_client_key={PARTNER_KEY}"),
        &[],
    );
    assert_eq!(echo(&r)["client-type"], "partner");

    // A public route that requires a key: anonymous callers need the key, and only the key.
    let r = k.get("/public/keyed/x", &[]);
    assert_key_refused(&r, PARTNER_KEY, "anonymous without key");
    let r = k.get("/public/keyed/x", &[("client-key", PARTNER_KEY)]);
    let seen = echo(&r);
    assert_eq!(seen["client-type"], "partner");
    assert_eq!(seen["miauserid"], "");
    // A key is not a session: where the rules need a user, a key alone is not enough.
    let r = k.get("/k/required/x", &[("client-key", PARTNER_KEY)]);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("valid session"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_own_claims_count_for_nothing_and_the_key_stays_out_of_upstreams() {
    let k = start().await;
    // Forged client type and backoffice flag, no key.
    let forged = [("client-type", "cms"), ("isbackoffice", "true")];
    assert_eq!(k.get_as_alice("/k/cms-only/x", "", &forged).status, 403);
    let seen = echo(&k.get_as_alice("/k/open/x", "", &forged));
    assert_eq!(seen["client-type"], "");
    assert_eq!(seen["isbackoffice"], "");
    // Forged next to a valid key of another type: the key's type, not the claim.
    let mut with_key = forged.to_vec();
    with_key.push(("secret", PARTNER_KEY));
    assert_eq!(k.get_as_alice("/k/cms-only/x", "", &with_key).status, 403);
    assert_eq!(
        echo(&k.get_as_alice("/k/open/x", "", &with_key))["client-type"],
        "partner"
    );
    // Public pages' upstreams hear no claim either, with or without an auth subrequest.
    for path in ["/public/x", "/k/nocheck/x"] {
        let seen = echo(&k.get(path, &forged));
        assert_eq!(seen["client-type"], "", "{path}");
        assert_eq!(seen["isbackoffice"], "", "{path}");
    }

    // The key is idgate's to check, not the upstream's to read (nor log).
    let r = k.get_as_alice(
        "/k/open/x",
        &format!("; mia_client_key={CMS_KEY}; theme=dark"),
        &[("client-key", PARTNER_KEY), ("secret", PARTNER_KEY)],
    );
    assert_key_refused(&r, CMS_KEY, "cookie and headers of different types");
    let r = k.get_as_alice(
        "/k/open/x",
        &format!("; mia_client_key={PARTNER_KEY}; theme=dark"),
        &[("client-key", PARTNER_KEY), ("secret", PARTNER_KEY)],
    );
    let seen = echo(&r);
    assert_eq!(seen["client-type"], "partner");
    assert_eq!(seen["client-key"], "");
    assert_eq!(seen["secret"], "");
    assert!(!seen["cookie"].contains(PARTNER_KEY), "{}", seen["cookie"]);
    assert!(seen["cookie"].contains("theme=dark"), "{}", seen["cookie"]);
    // Nor on public pages.
    for path in ["/public/x", "/k/nocheck/x"] {
        let r = k.get(
            path,
            &[
                ("client-key", PARTNER_KEY),
                ("secret", PARTNER_KEY),
                ("cookie", &format!("mia_client_key={PARTNER_KEY}")),
            ],
        );
        let seen = echo(&r);
        assert_eq!(seen["client-key"], "", "{path}");
        assert_eq!(seen["secret"], "", "{path}");
        assert!(
            !seen["cookie"].contains(PARTNER_KEY),
            "{path}: {}",
            seen["cookie"]
        );
    }
    // Two `mia_client_key` cookies (one valid, then one empty): the upstream gets no cookie
    // rather than a key.
    let r = k.get_as_alice(
        "/k/open/x",
        &format!("; mia_client_key={PARTNER_KEY}; mia_client_key="),
        &[],
    );
    assert!(!echo(&r)["cookie"].contains(PARTNER_KEY));
    // A client saying the location forwards keys changes nothing: only the location says so
    // (the auth location replaces the header), and idgate keeps the cookie only then.
    let r = k.get_as_alice(
        "/k/open/x",
        &format!("; mia_client_key={PARTNER_KEY}; theme=dark"),
        &[("idgate-forward-api-key", "true")],
    );
    let seen = echo(&r);
    assert!(!seen["cookie"].contains(PARTNER_KEY), "{}", seen["cookie"]);
    assert!(seen["cookie"].contains("theme=dark"), "{}", seen["cookie"]);

    // A location that forwards keys, as Mia does to the project's own services.
    let r = k.get_as_alice(
        "/k/forward/x",
        &format!("; mia_client_key={PARTNER_KEY}"),
        &[("client-key", PARTNER_KEY)],
    );
    let seen = echo(&r);
    assert_eq!(seen["client-type"], "partner");
    assert_eq!(seen["client-key"], PARTNER_KEY);
    assert!(seen["cookie"].contains(&format!("mia_client_key={PARTNER_KEY}")));
}

#[test]
fn check_config_reports_keys_and_names_bad_entries_without_showing_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("short.key"), "abc123xyz\n").unwrap();
    let write = |extra: &str| {
        let setup = Setup {
            extra: Box::leak(extra.to_owned().into_boxed_str()),
            ..Setup::default()
        };
        let text = config_toml(
            &setup,
            dir.path(),
            "http://127.0.0.1:8080",
            "http://127.0.0.1:1",
        );
        let path = dir.path().join("idgate.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let good = format!(
        "[[api_keys]]\nclient_type = \"partner\"\nkey_sha256 = \"{}\"\n\
         [[api_keys]]\nclient_type = \"cms\"\nkey_file = \"short.key\"\n",
        sha256_hex(PARTNER_KEY)
    );
    let path = write(&good);
    let (code, out, err) = idgate_cmd(&["check-config", "--config", path.to_str().unwrap()]);
    let all = format!("{out}{err}");
    assert_eq!(code, 0, "{all}");
    assert!(all.contains("2 API key(s) configured"), "{all}");
    assert!(
        all.contains("api_keys[1]") && all.contains("shorter than"),
        "{all}"
    );
    assert!(!all.contains("abc123xyz"), "{all}");

    // The same key twice, and a key in clear (no such field): refused, naming the entry.
    let twice = format!(
        "{good}[[api_keys]]\nclient_type = \"other\"\nkey_sha256 = \"{}\"\n",
        sha256_hex(PARTNER_KEY)
    );
    let path = write(&twice);
    let (code, out, err) = idgate_cmd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 78, "{out}{err}");
    assert!(
        err.contains("api_keys[2]") && err.contains("api_keys[0]"),
        "{err}"
    );
    let path = write(&format!(
        "[[api_keys]]\nclient_type = \"x\"\nkey = \"{PARTNER_KEY}\"\n"
    ));
    let (code, _, err) = idgate_cmd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("key"), "{err}");
}
