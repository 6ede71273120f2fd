//! An identity provider that lies: everything idgate receives from an IdP is input too. The
//! development IdP (`tests/js/idp.mjs`, its lies in `tests/js/liar.mjs`) runs the real login,
//! then rewrites one answer on purpose — the id_token (wrong or missing `nonce`, a foreign
//! signature under its own `kid`, an unknown `kid`, wrong `iss`, wrong, extra or missing `aud`,
//! wrong `azp`, past `exp`, future or missing `iat`, missing `sub`, bad `at_hash` or `c_hash`,
//! `alg: none`, HS256 keyed with its public key), userinfo (another `sub`) or discovery
//! (another issuer) — or signs back-channel logout tokens that are wrong in one way each
//! (`/-/sign`, also with a foreign key). The rest of the OpenID Foundation's RP test plans
//! (key rotation, `kid` absent, the signing-algorithm allow-list) is in `tests/rp_plans.rs`;
//! `docs/security.md` maps every plan item to its case.
//!
//! Every case goes through the real Nginx and checks three things: the login (or logout) is
//! refused with the documented status, no session is created (or none ended), and idgate's
//! log line names the reason. One IdP and one stack serve all the login cases (the lie is
//! switched at run time with the IdP's `POST /-/lie`), another all the logout-token cases, so
//! the file stays fast. A case that fails is collected and the test fails at the end listing
//! all of them, so the test says exactly which check is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::lies::*;
use common::*;
use serde_json::json;

/// An id_token lie: the IdP mode, what idgate's refusal log line must say, and the status of
/// `POST /oauth/token`. The OpenID RP test plan items each reproduces are listed in
/// `docs/security.md`.
struct IdTokenCase {
    mode: &'static str,
    reason: &'static [&'static str],
    status: u16,
}

const ID_TOKEN_CASES: &[IdTokenCase] = &[
    IdTokenCase {
        mode: "id-token-nonce-wrong",
        reason: &["Invalid nonce", "nonce mismatch"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-nonce-missing",
        reason: &["Invalid nonce", "missing nonce claim"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-signature-foreign",
        reason: &["Signature verification failed", "Crypto error"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-kid-unknown",
        reason: &["signed by a key the IdP does not publish"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-iss-wrong",
        reason: &["Invalid issuer", "/another"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-aud-wrong",
        reason: &["Invalid audiences", "must contain `idgate`"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-aud-extra",
        reason: &[
            "Invalid audiences",
            "`another-client` is not a trusted audience",
        ],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-azp-wrong",
        reason: &["azp `another-client` is not this client"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-exp-past",
        reason: &["Expired", "ID token expired at"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-iat-future",
        reason: &["iat is", "in the future"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-at-hash-wrong",
        reason: &["at_hash does not match the access token"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-alg-none",
        reason: &["Signature verification failed", "No signature found"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-alg-hs256-public",
        reason: &["Disallowed signature algorithm", "HS256"],
        status: 401,
    },
    // An id_token without `sub` or `iat` is not one (OIDC Core 2): the token response cannot
    // be read, the IdP failed (502).
    IdTokenCase {
        mode: "id-token-sub-missing",
        reason: &["missing field `sub`"],
        status: 502,
    },
    IdTokenCase {
        mode: "id-token-iat-missing",
        reason: &["missing field `iat`"],
        status: 502,
    },
    IdTokenCase {
        mode: "id-token-aud-missing",
        reason: &["Invalid audiences", "must contain `idgate`"],
        status: 401,
    },
    IdTokenCase {
        mode: "id-token-c-hash-wrong",
        reason: &["c_hash does not match the authorization code"],
        status: 401,
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_through_an_idp_that_lies_are_refused() {
    // The IdP starts out lying about its issuer: the first login cannot even start.
    let stack = Stack::start_with_idp(
        Setup::default(),
        &["--lie-endpoint", "--lie", "discovery-issuer"],
    );
    let site = stack.site();
    let (idgate, idp) = (&stack.idgate.proc, &stack.idp.proc);
    let mut failures: Vec<String> = Vec::new();

    // Discovery announcing another issuer: /authorize answers 502, nothing is cached.
    let from = log_len(idgate);
    let browser = Browser::new();
    let resp = browser.navigate(&format!("{site}/x")).await;
    assert_eq!(resp.status(), 302);
    let resp = browser
        .navigate(&format!("{site}{}", location(&resp)))
        .await;
    if resp.status() != 502 {
        failures.push(format!(
            "discovery-issuer: /authorize answered {}",
            resp.status()
        ));
    }
    idp.wait_log(&["lie discovery-issuer"]);
    if wait_line(
        idgate,
        from,
        &["discovery", "announces the issuer", "/another"],
    )
    .is_none()
    {
        failures.push(format!(
            "discovery-issuer: no log line names the reason: {:?}",
            log_since(idgate, from)
        ));
    }

    // Honest again: the login works (discovery was not cached), and survives a key rotation.
    lie(&stack.idp, &[]).await;
    honest_login(&stack, "truthful").await;
    idp.signal("USR2");
    idp.wait_log(&["signing key rotated"]);
    honest_login(&stack, "after-rotation").await;
    assert_eq!(sessions(&stack), 2);

    for case in ID_TOKEN_CASES {
        lie(&stack.idp, &[case.mode]).await;
        let before = sessions(&stack);
        let from = log_len(idgate);
        let told = log_len(idp);
        let browser = Browser::new();
        let resp = login(&stack, &browser, "/", &format!("victim-{}", case.mode)).await;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        if wait_line(idp, told, &[&format!("lie {}", case.mode)]).is_none() {
            failures.push(format!("{}: the IdP did not tell the lie", case.mode));
        }
        if status != case.status {
            failures.push(format!(
                "{}: /oauth/token answered {status}: {body}",
                case.mode
            ));
        }
        if browser.cookie(&site, "sid").is_some() {
            failures.push(format!("{}: the browser got a session cookie", case.mode));
        }
        let page = browser.navigate(&format!("{site}/x")).await.status();
        if page != 302 {
            failures.push(format!("{}: the protected page answered {page}", case.mode));
        }
        // A refused id_token is a refused login (401); an unreadable token response an IdP
        // failure (502), logged as the failed code exchange.
        let mut needles = vec![if case.status == 502 {
            "code exchange failed"
        } else {
            "login refused"
        }];
        needles.extend_from_slice(case.reason);
        if wait_line(idgate, from, &needles).is_none() {
            failures.push(format!(
                "{}: no log line with {needles:?}: {:?}",
                case.mode,
                log_since(idgate, from)
            ));
        }
        if sessions(&stack) != before {
            failures.push(format!("{}: a session was stored", case.mode));
        }
    }

    // userinfo naming another subject than the id_token: the IdP contradicts itself, 502.
    lie(&stack.idp, &["userinfo-sub"]).await;
    let before = sessions(&stack);
    let from = log_len(idgate);
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/", "victim-userinfo").await;
    let status = resp.status().as_u16();
    if status != 502 {
        failures.push(format!(
            "userinfo-sub: /oauth/token answered {status}: {}",
            resp.text().await.unwrap()
        ));
    }
    idp.wait_log(&["lie userinfo-sub"]);
    if wait_line(
        idgate,
        from,
        &[
            "userinfo failed",
            "Invalid subject",
            "victim-userinfo-someone-else",
        ],
    )
    .is_none()
    {
        failures.push(format!(
            "userinfo-sub: no log line names the reason: {:?}",
            log_since(idgate, from)
        ));
    }
    if browser.cookie(&site, "sid").is_some() || sessions(&stack) != before {
        failures.push("userinfo-sub: a session was created".into());
    }

    // No victim became a user; honest once more, the login works.
    let users = stack.idgate.users();
    let victims: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["providerUserId"].as_str().unwrap().starts_with("victim"))
        .collect();
    if !victims.is_empty() {
        failures.push(format!("users were stored: {victims:?}"));
    }
    lie(&stack.idp, &[]).await;
    honest_login(&stack, "truthful").await;

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// POSTs a back-channel logout token for the `dev` provider; returns the status and body.
async fn post_logout_token(site: &str, token: &str) -> (u16, serde_json::Value) {
    let resp = Browser::new()
        .client
        .post(format!("{site}/backchannel-logout/web/dev"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// `payload` signed by the IdP (`/-/sign`) the way `key` says: `idp`, `foreign` (a foreign key
/// under the IdP's kid), `hs256-public`, `none`.
async fn sign(idp: &Idp, key: &str, payload: &serde_json::Value) -> String {
    let mut url = reqwest::Url::parse(&idp.issuer).unwrap();
    url.set_path("/-/sign");
    let resp = reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({
            "header": { "typ": "logout+jwt" }, "payload": payload, "key": key,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_tokens_that_lie_end_no_session() {
    let stack = Stack::start_with_idp(Setup::default(), &["--sign-endpoint"]);
    let site = stack.site();
    let idgate = &stack.idgate.proc;
    let browser = honest_login(&stack, "uma").await;
    let alive = || async { browser.navigate(&format!("{site}/x")).await.status() == 200 };
    let with = |changes: serde_json::Value| {
        let mut claims = stack.idp.logout_claims("uma");
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };

    // (what, signing key, claim changes, the reason idgate logs)
    let cases: Vec<(&str, &str, serde_json::Value, &str)> = vec![
        (
            "signed by a foreign key",
            "foreign",
            json!({}),
            "InvalidSignature",
        ),
        (
            "HS256 keyed with the public key",
            "hs256-public",
            json!({}),
            "symmetric signatures are not accepted",
        ),
        ("alg none", "none", json!({}), "logout_token: "),
        (
            "another audience",
            "idp",
            json!({ "aud": "another-client" }),
            "InvalidAudience",
        ),
        (
            "another issuer",
            "idp",
            json!({ "iss": "http://127.0.0.1:1/another" }),
            "InvalidIssuer",
        ),
        (
            "a nonce",
            "idp",
            json!({ "nonce": "n" }),
            "a nonce is not allowed",
        ),
        (
            "no events",
            "idp",
            json!({ "events": null }),
            "the back-channel logout event is missing",
        ),
        (
            "another event",
            "idp",
            json!({ "events": { "http://schemas.openid.net/event/other": {} } }),
            "the back-channel logout event is missing",
        ),
        ("no jti", "idp", json!({ "jti": null }), "jti is missing"),
        (
            "no sub and no sid",
            "idp",
            json!({ "sub": null }),
            "neither sub nor sid",
        ),
    ];
    let mut failures: Vec<String> = Vec::new();
    for (what, key, changes, reason) in cases {
        let token = sign(&stack.idp, key, &with(changes)).await;
        let from = log_len(idgate);
        let (status, body) = post_logout_token(&site, &token).await;
        if (status, &body["error"]) != (400, &json!("invalid_request")) {
            failures.push(format!("{what}: answered {status} {body}"));
        }
        if !alive().await {
            failures.push(format!("{what}: the session ended"));
            break;
        }
        if wait_line(idgate, from, &["back-channel logout refused", reason]).is_none() {
            failures.push(format!(
                "{what}: no log line names {reason:?}: {:?}",
                log_since(idgate, from)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The same claims, honestly signed: the session ends (so the refusals above were the lies).
    let (status, body) =
        post_logout_token(&site, &sign(&stack.idp, "idp", &with(json!({}))).await).await;
    assert_eq!((status, &body["revoked"]), (200, &json!(1)), "{body}");
    assert!(!alive().await, "the honest logout token ended the session");
}
