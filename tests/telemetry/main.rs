//! OpenTelemetry traces (`[telemetry]`), end to end: a small OTLP/HTTP receiver in the test
//! (hyper, decoding `POST /v1/traces` with the official protobuf definitions of
//! `opentelemetry-proto`) takes what idgate exports while a browser logs in through the real
//! Nginx (the shipped snippets) at the development IdP, sending a W3C `traceparent` of its own.
//!
//! idgate runs with a batch delay longer than the test (`OTEL_BSP_SCHEDULE_DELAY`): the spans
//! reach the receiver only through the flush at SIGTERM, which is what these tests check too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

#[path = "../common/mod.rs"]
mod common;
mod receiver;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::mongo::{CrudFake, Mongo};
use common::*;
use receiver::{Got, Receiver};

/// The trace the browser says it belongs to, and its caller's span.
const TRACE: &str = "4bf92f3577b34da6a3ce929705d0e736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// IdP, idgate (with `telemetry`, the `[telemetry]` section or "", and a batch delay longer
/// than any test) and Nginx, as `Stack::start_with_idp` starts them.
fn stack(telemetry: &str) -> Stack {
    stack_with(telemetry, Setup::default())
}

/// [`stack`] with the other knobs of `setup`.
fn stack_with(telemetry: &str, setup: Setup) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let idp = Idp::for_site(&site, &["--log-traceparent"]);
    let extra: &'static str = Box::leak(telemetry.to_owned().into_boxed_str());
    let setup = Setup { extra, ..setup };
    let config = config_toml(&setup, dir.path(), &site, &idp.issuer);
    let delay = std::ffi::OsStr::new("600000");
    let idgate = Idgate::start_with_env(
        std::path::Path::new(idgate_bin()),
        dir.path(),
        &config,
        &[("OTEL_BSP_SCHEDULE_DELAY", delay)],
    );
    let nginx = Nginx::start(&dir.path().join("nginx"), port, idgate.addr);
    Stack {
        dir,
        nginx,
        idgate,
        idp,
    }
}

/// A browser that sends `traceparent` (the caller's trace) with every request.
fn traced_browser() -> Browser {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{TRACE}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    Browser { client, jar }
}

/// The `traceparent`s idgate sent the IdP: (method and path, value).
fn idp_traceparents(idp: &Idp) -> Vec<(String, String)> {
    traceparents(&idp.proc, "idp.mjs")
}

/// The `traceparent`s a test server (`idp.mjs`, `crud_server.py`) logged: (method and path,
/// value).
fn traceparents(proc: &Proc, server: &str) -> Vec<(String, String)> {
    let marker = format!("{server}: traceparent ");
    proc.log_text()
        .lines()
        .filter_map(|l| l.split(marker.as_str()).nth(1))
        .filter_map(|rest| {
            let mut parts = rest.split_whitespace();
            let (method, path, value) = (parts.next()?, parts.next()?, parts.next()?);
            Some((format!("{method} {path}"), value.to_owned()))
        })
        .collect()
}

/// Logs in through Nginx with the traced browser and visits the page again (a cached `/auth`);
/// returns the browser and the refresh token.
async fn login_and_revisit(stack: &Stack) -> (Browser, String) {
    let browser = traced_browser();
    let resp = login(stack, &browser, "/docs/", "alice").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let refresh_token = body["refreshToken"].as_str().unwrap().to_owned();
    let page = browser.navigate(&format!("{}/docs/", stack.site())).await;
    assert_eq!(page.status(), 200);
    (browser, refresh_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_is_one_trace_continued_from_nginx_and_passed_to_the_idp() {
    let receiver = Receiver::start(true).await;
    let mut stack = stack(&format!(
        "[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"idgate-test\"\n",
        receiver.endpoint()
    ));
    let (browser, refresh_token) = login_and_revisit(&stack).await;
    let site = stack.site();
    let resp = browser
        .client
        .post(format!("{site}/refreshtoken"))
        .json(&serde_json::json!({ "refreshToken": refresh_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = browser
        .client
        .post(format!("{site}/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Nothing yet: the batch waits longer than the test; SIGTERM flushes it.
    assert!(receiver.spans().is_empty(), "{:?}", receiver.spans());
    let status = stack.idgate.proc.terminate().expect("idgate stops");
    assert!(status.success(), "{status:?}");

    let spans = receiver.spans();
    assert!(
        receiver.refused.lock().unwrap().is_empty(),
        "{:?}",
        receiver.refused
    );
    assert!(!spans.is_empty(), "nothing exported at shutdown");
    assert!(
        spans.iter().all(|s| s.service == "idgate-test"),
        "{spans:?}"
    );
    let named = |name: &str| -> Vec<&Got> { spans.iter().filter(|s| s.name == name).collect() };
    let one = |name: &str| -> &Got {
        let found = named(name);
        assert_eq!(found.len(), 1, "one `{name}` span: {spans:?}");
        found[0]
    };

    // The login steps continue the browser's trace, children of its span.
    let authorize = one("GET /authorize");
    let token = one("POST /oauth/token");
    let refresh = one("POST /refreshtoken");
    let logout = one("POST /logout");
    for step in [authorize, token, refresh, logout] {
        assert_eq!(step.trace, TRACE, "{step:?}");
        assert_eq!(step.parent, CALLER_SPAN, "{step:?}");
    }
    // The IdP calls of the code exchange are children of its step.
    let idp_token = one("idp token");
    assert_eq!(idp_token.parent, token.id, "{spans:?}");
    assert_eq!(idp_token.trace, TRACE);
    let userinfo = one("idp userinfo");
    assert_eq!(userinfo.parent, token.id, "{spans:?}");
    // Discovery (lazy: the first login's) under /authorize, its JWKS fetch under it.
    let discovery = one("idp discovery");
    assert_eq!(discovery.parent, authorize.id, "{spans:?}");
    assert_eq!(one("idp jwks").parent, discovery.id, "{spans:?}");
    // Store calls: the login state written at /authorize, taken and the session made at
    // /oauth/token.
    assert_eq!(one("put_state").parent, authorize.id, "{spans:?}");
    assert_eq!(one("take_state").parent, token.id, "{spans:?}");
    assert_eq!(one("create_session").parent, token.id, "{spans:?}");
    assert_eq!(one("rotate_refresh").parent, refresh.id, "{spans:?}");
    assert_eq!(one("revoke_session").parent, logout.id, "{spans:?}");
    // The cached `/auth` of the second visit (and the first's 401) made no span: every span is
    // a login step's or under one.
    let steps = [authorize, token, refresh, logout].map(|s| s.id.as_str());
    for s in &spans {
        let mut at = s;
        while !steps.contains(&at.id.as_str()) {
            at = spans
                .iter()
                .find(|p| p.id == at.parent)
                .unwrap_or_else(|| panic!("a span outside the login: {s:?} in {spans:?}"));
        }
    }

    // The IdP got the trace: its token endpoint saw the `idp token` span as the caller, its
    // userinfo endpoint the `idp userinfo` span.
    let sent = idp_traceparents(&stack.idp);
    let from = |span: &Got| format!("00-{TRACE}-{}-01", span.id);
    assert!(
        sent.iter().any(|(_, v)| *v == from(idp_token)),
        "the IdP's token endpoint got no traceparent of idgate's: {sent:?}"
    );
    assert!(
        sent.iter().any(|(_, v)| *v == from(userinfo)),
        "the IdP's userinfo endpoint got no traceparent of idgate's: {sent:?}"
    );
    for (span, endpoint) in [(discovery, "discovery"), (one("idp jwks"), "JWKS")] {
        assert!(
            sent.iter().any(|(_, v)| *v == from(span)),
            "the IdP's {endpoint} endpoint got no traceparent of idgate's: {sent:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported_nor_propagated() {
    let receiver = Receiver::start(true).await;
    // A `[telemetry]` section without `otlp_endpoint` is off too.
    let mut stack = stack("[telemetry]\nservice_name = \"idgate-test\"\n");
    login_and_revisit(&stack).await;
    let status = stack.idgate.proc.terminate().expect("idgate stops");
    assert!(status.success(), "{status:?}");
    assert_eq!(receiver.connections.load(Ordering::SeqCst), 0);
    // Only the browser's own requests to the IdP carried a traceparent (its own, unchanged);
    // idgate's (discovery, JWKS, token, userinfo) none.
    let sent = idp_traceparents(&stack.idp);
    let caller = format!("00-{TRACE}-{CALLER_SPAN}-01");
    assert!(
        !sent.is_empty(),
        "the browser's traceparent reached the IdP"
    );
    assert!(sent.iter().all(|(_, v)| *v == caller), "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_hangs_neither_blocks_nor_fails_a_login() {
    let receiver = Receiver::start(false).await;
    let mut stack = stack(&format!(
        "[telemetry]\notlp_endpoint = \"{}\"\n",
        receiver.endpoint()
    ));
    login_and_revisit(&stack).await;
    // SIGTERM: the flush gives up on the collector, and idgate still exits cleanly.
    let status = stack.idgate.proc.terminate().expect("idgate stops");
    assert!(status.success(), "{status:?}");
    assert!(receiver.connections.load(Ordering::SeqCst) >= 1);
    let counts: HashMap<&str, usize> = [
        "traces: the collector refused or could not be reached",
        "traces: the last export failed",
    ]
    .into_iter()
    .map(|line| (line, stack.idgate.proc.log_text().matches(line).count()))
    .collect();
    assert!(
        counts.values().sum::<usize>() >= 1 && counts.values().all(|n| *n <= 1),
        "logged once: {counts:?}\n{}",
        stack.idgate.proc.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crud_users_service_is_traced_and_gets_the_trace() {
    let mongo = Mongo::start();
    let crud = CrudFake::start_with_args(&mongo, "crud", "secret:k", &["--log-traceparent"]);
    let receiver = Receiver::start(true).await;
    let mut stack = stack_with(
        &format!("[telemetry]\notlp_endpoint = \"{}\"\n", receiver.endpoint()),
        Setup {
            users: Some(format!(
                "[users]\nkind = \"crud\"\nbase_url = \"{}\"\nheaders = {{ secret = \"k\" }}",
                crud.url
            )),
            ..Setup::default()
        },
    );
    login_and_revisit(&stack).await;
    let status = stack.idgate.proc.terminate().expect("idgate stops");
    assert!(status.success(), "{status:?}");
    let spans = receiver.spans();
    let token = spans
        .iter()
        .find(|s| s.name == "POST /oauth/token")
        .expect("the token step's span");
    let upsert = spans
        .iter()
        .find(|s| s.name == "upsert_login" && s.parent == token.id)
        .unwrap_or_else(|| panic!("upsert_login under the token step: {spans:?}"));
    let crud_calls: Vec<&Got> = spans
        .iter()
        .filter(|s| s.name == "users crud" && s.parent == upsert.id)
        .collect();
    assert!(!crud_calls.is_empty(), "{spans:?}");
    let sent = traceparents(&crud.proc, "crud_server.py");
    for call in crud_calls {
        let value = format!("00-{TRACE}-{}-01", call.id);
        assert!(
            sent.iter().any(|(_, v)| *v == value),
            "the CRUD service got no traceparent of {call:?}: {sent:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_at_auth_is_a_span_of_its_own() {
    let receiver = Receiver::start(true).await;
    let mut stack = stack_with(
        &format!("[telemetry]\notlp_endpoint = \"{}\"\n", receiver.endpoint()),
        Setup {
            access_ttl: "2s",
            ..Setup::default()
        },
    );
    let (browser, _) = login_and_revisit(&stack).await;
    let site = stack.site();
    let first = browser.cookie(&site, "sid").unwrap();
    let exp = jwt_claims(&first)["exp"].as_i64().unwrap();
    while idgate::now_secs() <= exp {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        browser.navigate(&format!("{site}/docs/")).await.status(),
        200
    );
    assert_ne!(browser.cookie(&site, "sid").unwrap(), first, "renewed");
    let status = stack.idgate.proc.terminate().expect("idgate stops");
    assert!(status.success(), "{status:?}");
    let spans = receiver.spans();
    let renewals: Vec<&Got> = spans.iter().filter(|s| s.name == "renewal").collect();
    assert_eq!(renewals.len(), 1, "{spans:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_follows_the_callers_flag_then_the_ratio() {
    let receiver = Receiver::start(true).await;
    let mut stack = stack(&format!(
        "[telemetry]\notlp_endpoint = \"{}\"\nsample_ratio = 0.0\n",
        receiver.endpoint()
    ));
    // The traced browser's trace is sampled (flag 01): recorded whatever the ratio.
    login_and_revisit(&stack).await;
    // A browser without a traceparent starts new traces: none is recorded at a ratio of 0.
    let plain = Browser::new();
    let resp = login(&stack, &plain, "/docs/", "bob").await;
    assert_eq!(resp.status(), 200);
    let status = stack.idgate.proc.terminate().expect("idgate stops");
    assert!(status.success(), "{status:?}");
    let spans = receiver.spans();
    assert!(
        spans.iter().any(|s| s.name == "POST /oauth/token"),
        "{spans:?}"
    );
    assert!(spans.iter().all(|s| s.trace == TRACE), "{spans:?}");
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.name == "POST /oauth/token")
            .count(),
        1,
        "{spans:?}"
    );
}
