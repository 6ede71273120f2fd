//! Pushed Authorization Requests (RFC 9126) through the real Nginx, a browser and the real IdP
//! (`oidc-provider`): with PAR required for the client, idgate's default (`par = "auto"`)
//! pushes the request and the browser carries only `client_id` and `request_uri`; with
//! `par = "never"` the IdP refuses the login (so it does enforce PAR); a push the IdP refuses,
//! or `par = "always"` at an IdP without a PAR endpoint, is a 502 at `/authorize` whose reason
//! idgate logs naming the provider.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::collections::BTreeSet;

use common::*;

/// From an anonymous navigation to `/` to the IdP: the URL idgate sends the browser to.
async fn authorize_url(stack: &Stack, browser: &Browser) -> String {
    let site = stack.site();
    let resp = browser.navigate(&format!("{site}/")).await;
    assert_eq!(resp.status(), 302);
    let resp = browser
        .navigate(&format!("{site}{}", location(&resp)))
        .await;
    assert_eq!(
        resp.status(),
        302,
        "/authorize: {}\n{}",
        resp.text().await.unwrap_or_default(),
        stack.idgate.proc.log_tail()
    );
    let url = location(&resp);
    assert!(url.starts_with(&stack.idp.issuer), "{url}");
    url
}

fn query_names(url: &str) -> BTreeSet<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_par_is_pushed_and_the_browser_carries_only_client_id_and_request_uri() {
    let stack = Stack::start_with_idp(Setup::default(), &["--require-par"]);
    let browser = Browser::new();
    let url = authorize_url(&stack, &browser).await;
    assert_eq!(
        query_names(&url),
        BTreeSet::from(["client_id".to_owned(), "request_uri".to_owned()]),
        "{url}"
    );
    assert_eq!(query_param(&url, "client_id").as_deref(), Some("idgate"));
    assert!(query_param(&url, "request_uri")
        .unwrap()
        .starts_with("urn:ietf:params:oauth:request_uri:"));
    let site = stack.site();
    let callback = browser
        .login_at_idp(&url, "alice", &format!("{site}/web-login/"))
        .await;
    assert!(query_param(&callback, "code").is_some(), "{callback}");
    assert_eq!(browser.navigate(&callback).await.status(), 200);
    let resp = browser.exchange(&site, &callback).await;
    assert_eq!(resp.status(), 200, "{}", stack.idgate.proc.log_tail());
    let page = browser.navigate(&format!("{site}/")).await;
    assert_eq!(page.status(), 200, "signed in");
    assert!(!stack.idp.proc.log_text().contains(".error:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_par_the_idp_that_requires_it_refuses_the_login() {
    let stack = Stack::start_with_idp(
        Setup {
            extra_provider: "par = \"never\"",
            ..Setup::default()
        },
        &["--require-par"],
    );
    let browser = Browser::new();
    let url = authorize_url(&stack, &browser).await;
    let names = query_names(&url);
    assert!(
        names.contains("code_challenge") && !names.contains("request_uri"),
        "{url}"
    );
    // The IdP answers the whole request with an error, at its page or at the callback.
    let site = stack.site();
    let (last, resp) = browser.follow(url, &format!("{site}/web-login/")).await;
    let refused = if last.starts_with(&site) {
        query_param(&last, "error").is_some() && query_param(&last, "code").is_none()
    } else {
        resp.status().is_client_error()
    };
    assert!(refused, "the IdP let an unpushed request through: {last}");
    stack.idp.proc.wait_log(&[
        "authorization.error: invalid_request",
        "Pushed Authorization",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_is_a_502_and_the_log_names_the_provider_and_the_reason() {
    let stack = Stack::start_with_idp(
        Setup {
            extra_provider: "par = \"always\"",
            ..Setup::default()
        },
        &["--client-secret", "not-the-secret-idgate-has-at-all"],
    );
    let browser = Browser::new();
    let site = stack.site();
    let resp = browser.navigate(&format!("{site}/")).await;
    let resp = browser
        .navigate(&format!("{site}{}", location(&resp)))
        .await;
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.unwrap();
    assert!(!body.contains(CLIENT_SECRET));
    stack.idgate.proc.wait_log(&[
        "provider `dev`: pushed authorization request: the identity provider refused (401",
        "invalid_client",
    ]);
    stack
        .idp
        .proc
        .wait_log(&["pushed_authorization_request.error: invalid_client"]);
    assert!(!stack.idgate.proc.log_text().contains(CLIENT_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn par_always_at_an_idp_without_a_par_endpoint_fails_naming_the_provider() {
    let stack = Stack::start_with_idp(
        Setup {
            extra_provider: "par = \"always\"",
            ..Setup::default()
        },
        &["--no-par"],
    );
    let browser = Browser::new();
    let site = stack.site();
    let resp = browser.navigate(&format!("{site}/")).await;
    let resp = browser
        .navigate(&format!("{site}{}", location(&resp)))
        .await;
    assert_eq!(resp.status(), 502);
    stack.idgate.proc.wait_log(
        &["provider `dev`: par = \"always\", but discovery names no \
         pushed_authorization_request_endpoint"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn par_always_pushes_at_an_idp_that_does_not_require_it() {
    let stack = Stack::start_with_idp(
        Setup {
            extra_provider: "par = \"always\"",
            ..Setup::default()
        },
        &[],
    );
    let browser = Browser::new();
    let url = authorize_url(&stack, &browser).await;
    assert_eq!(query_names(&url).len(), 2, "{url}");
    assert!(query_param(&url, "request_uri").is_some());
    assert_eq!(
        login(&stack, &Browser::new(), "/", "bob").await.status(),
        200
    );
}
