//! The OpenID Foundation's relying-party test plans (`oidcc-client-basic`, `oidcc-client-config`),
//! the items `tests/idp_lies.rs` does not reproduce: a signing key rotated just before the
//! id_token is signed, an id_token without `kid` against one key and against several, and the
//! signing-algorithm allow-list (`id_token_signing_algs`): its default drops `HS256` and `none`
//! even when discovery advertises them, and an explicit list refuses an IdP signing otherwise
//! (id_tokens, signed userinfo answers and back-channel logout tokens alike).
//! `docs/security.md` maps every plan item to the case that reproduces it.
//!
//! As in `idp_lies.rs`, one IdP and one stack serve many cases, the lie switched at run time;
//! a refusal is checked the same three ways (status, no session, the log line naming why).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::lies::*;
use common::*;

/// A login that must be refused with `status`, storing no session and logging `reason` (every
/// needle, on a "login refused" line): the failures found, if any.
async fn refused(stack: &Stack, who: &str, status: u16, reason: &[&str]) -> Vec<String> {
    let mut failures = Vec::new();
    let before = sessions(stack);
    let from = log_len(&stack.idgate.proc);
    let browser = Browser::new();
    let resp = login(stack, &browser, "/", who).await;
    let got = resp.status().as_u16();
    if got != status {
        failures.push(format!(
            "{who}: /oauth/token answered {got}: {}",
            resp.text().await.unwrap()
        ));
    }
    if browser.cookie(&stack.site(), "sid").is_some() || sessions(stack) != before {
        failures.push(format!("{who}: a session was opened"));
    }
    let mut needles = vec!["login refused"];
    needles.extend_from_slice(reason);
    if wait_line(&stack.idgate.proc, from, &needles).is_none() {
        failures.push(format!(
            "{who}: no log line with {needles:?}: {:?}",
            log_since(&stack.idgate.proc, from)
        ));
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_plan_keys_and_the_default_algorithm_list() {
    // Discovery advertises HS256 and none besides RS256 from the start (it is read once).
    let stack = Stack::start_with_idp(
        Setup::default(),
        &["--lie-endpoint", "--lie", "discovery-algs-symmetric"],
    );
    let idp = &stack.idp.proc;
    let mut failures: Vec<String> = Vec::new();

    // oidcc-client-test (and the config plan's discovery and jwks_uri items, RS256 signatures,
    // client_secret_basic, claims from userinfo): the honest login, its e-mail read from
    // userinfo (the id_token carries none).
    honest_login(&stack, "first").await;
    idp.wait_log(&["lie discovery-algs-symmetric"]);
    let users = stack.idgate.users();
    let first = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["providerUserId"] == "first")
        .unwrap();
    assert_eq!(first["email"], "first@example.test", "{first}");

    // oidcc-client-test-kid-absent-single-jwks: no kid, one key in the JWKS: accepted.
    lie(&stack.idp, &["id-token-kid-absent"]).await;
    honest_login(&stack, "no-kid-one-key").await;

    // oidcc-client-test-userinfo-signed (the dynamic plan): a signed userinfo answer, RS256 by
    // the IdP's key, is read (the e-mail comes from it); one signed HS256 with the client
    // secret (valid, were HS256 accepted) is refused like such an id_token.
    lie(&stack.idp, &["userinfo-jwt"]).await;
    let told = log_len(idp);
    honest_login(&stack, "signed-userinfo").await;
    assert!(wait_line(idp, told, &["lie userinfo-jwt"]).is_some());
    let users = stack.idgate.users();
    let signed = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["providerUserId"] == "signed-userinfo")
        .unwrap();
    assert_eq!(signed["email"], "signed-userinfo@example.test", "{signed}");
    lie(&stack.idp, &["userinfo-jwt-hs256-secret"]).await;
    failures.extend(
        refused(
            &stack,
            "victim-userinfo-hs256",
            401,
            &[
                "signed userinfo",
                "HS256",
                "not an algorithm of id_token_signing_algs",
            ],
        )
        .await,
    );

    // The default list is the advertised one minus HS*: an HS256 id_token keyed with the very
    // client secret (valid, were HS256 accepted) is refused, and so is alg none.
    lie(&stack.idp, &["id-token-alg-hs256-secret"]).await;
    failures.extend(
        refused(
            &stack,
            "victim-hs256",
            401,
            &["Disallowed signature algorithm", "`HS256`"],
        )
        .await,
    );
    lie(&stack.idp, &["id-token-alg-none"]).await;
    failures.extend(refused(&stack, "victim-none", 401, &["No signature found"]).await);

    // oidcc-client-test-signing-key-rotation-just-before-signing: idgate holds the JWKS from
    // discovery; the IdP rotates its key just before it signs the id_token, which names a kid
    // idgate has never seen: idgate fetches the JWKS again and the login works. (The JWKS now
    // also publishes a foreign RSA key, for the next case.)
    lie(&stack.idp, &["key-rotated", "jwks-extra-key"]).await;
    let told = log_len(idp);
    honest_login(&stack, "rotated").await;
    assert!(
        wait_line(idp, told, &["lie jwks-extra-key"]).is_some(),
        "idgate fetched the JWKS again"
    );
    assert!(wait_line(idp, told, &["lie key-rotated"]).is_some());

    // oidcc-client-test-kid-absent-multiple-jwks: no kid and two RSA keys that could match:
    // refused (idgate does not try each key in turn).
    lie(
        &stack.idp,
        &["key-rotated", "jwks-extra-key", "id-token-kid-absent"],
    )
    .await;
    failures.extend(
        refused(
            &stack,
            "victim-no-kid-two-keys",
            401,
            &["Ambiguous key identification"],
        )
        .await,
    );

    // Honest again, with the rotated key it keeps: the login works.
    lie(&stack.idp, &["key-rotated"]).await;
    honest_login(&stack, "last").await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_signed_outside_the_allow_list_is_refused() {
    // The IdP signs id_tokens ES256 (and advertises it); the provider accepts RS256 only.
    let stack = Stack::start_with_idp(
        Setup {
            extra_provider: "id_token_signing_algs = [\"RS256\"]",
            ..Setup::default()
        },
        &["--id-token-alg", "ES256", "--sign-endpoint"],
    );
    let mut failures = refused(
        &stack,
        "victim-es256",
        401,
        &["Disallowed signature algorithm", "`ES256`", "RS256"],
    )
    .await;

    // Back-channel logout tokens are held to the same list: one signed ES256 by the IdP's own
    // key is refused, the same claims signed RS256 are taken.
    let idgate = &stack.idgate.proc;
    for (alg, status) in [("ES256", 400), ("RS256", 200)] {
        let mut url = reqwest::Url::parse(&stack.idp.issuer).unwrap();
        url.set_path("/-/sign");
        let token = reqwest::Client::new()
            .post(url)
            .json(&serde_json::json!({
                "header": { "typ": "logout+jwt" },
                "payload": stack.idp.logout_claims("victim-es256"),
                "alg": alg,
            }))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let from = log_len(idgate);
        let resp = reqwest::Client::new()
            .post(format!("{}/backchannel-logout/web/dev", stack.site()))
            .form(&[("logout_token", token.as_str())])
            .send()
            .await
            .unwrap();
        let got = resp.status().as_u16();
        if got != status {
            failures.push(format!(
                "{alg} logout token: answered {got}: {}",
                resp.text().await.unwrap()
            ));
        }
        if status == 400
            && wait_line(
                idgate,
                from,
                &[
                    "back-channel logout refused",
                    "signed with ES256",
                    "id_token_signing_algs",
                ],
            )
            .is_none()
        {
            failures.push(format!(
                "{alg} logout token: no log line names the algorithm: {:?}",
                log_since(idgate, from)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
