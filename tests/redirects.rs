//! The open-redirect corpus (`tests/fixtures/redirect-payloads.jsonl`, made by
//! `make-redirect-payloads.py`) sent through real Nginx with the shipped snippets: every payload,
//! percent-encoded as the `redirect` query value, is refused at `/authorize` and at `/logout`
//! with a 400 JSON error naming `redirect` and no `Location`; every must-accept target of the
//! site is redirected to (the IdP for `/authorize`, the target itself for `/logout`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;
use futures_util::stream::{self, StreamExt};

const PAYLOADS: &str = include_str!("fixtures/redirect-payloads.jsonl");
const ACCEPTED: &str = include_str!("fixtures/redirect-accepted.jsonl");

/// Requests in flight at once: enough to keep Nginx and idgate busy on two cores.
const CONCURRENCY: usize = 6;

/// `(class, text)` of each line, the placeholders filled in with the site's own host and port.
fn lines(jsonl: &str, field: &str, port: u16) -> Vec<(String, String)> {
    jsonl
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = v[field]
                .as_str()
                .unwrap()
                .replace("{{IP}}", "127.0.0.1")
                .replace("{{PORT}}", &port.to_string());
            (v["class"].as_str().unwrap().to_owned(), text)
        })
        .collect()
}

/// What one request got back: status, `Location`, content type and body.
struct Answer {
    status: u16,
    location: Option<String>,
    json: bool,
    body: String,
}

/// A browser's navigation (`Accept: text/html…`), or an API caller's (`application/json`).
async fn get_as(client: &reqwest::Client, url: String, accept: &str) -> Answer {
    let resp = client
        .get(&url)
        .header("accept", accept)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let location = header("location");
    let json = header("content-type").is_some_and(|c| c.starts_with("application/json"));
    Answer {
        status: resp.status().as_u16(),
        location,
        json,
        body: resp.text().await.unwrap_or_default(),
    }
}

async fn get(client: &reqwest::Client, url: String) -> Answer {
    get_as(client, url, "text/html,application/xhtml+xml,*/*;q=0.8").await
}

async fn get_json(client: &reqwest::Client, url: String) -> Answer {
    get_as(client, url, "application/json").await
}

/// The `/authorize` and `/logout` URLs carrying `target` as their `redirect`.
fn endpoint_urls(site: &str, target: &str) -> [String; 2] {
    let q = idgate::http::encode_query_value(target);
    [
        format!("{site}/authorize?appId=web&providerId=dev&redirect={q}"),
        format!("{site}/logout?redirect={q}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_corpus_through_nginx() {
    let stack = Stack::start();
    let site = stack.site();
    let client = Browser::new().client;

    // Every payload, at both endpoints, for an API caller: 400, JSON naming `redirect`, no
    // Location; for a browser: 400, a page that says the link is not valid, without Location.
    let payloads = lines(PAYLOADS, "payload", stack.nginx.port);
    assert!(payloads.len() >= 800, "{} payloads", payloads.len());
    let requests: Vec<(String, String, String)> = payloads
        .iter()
        .flat_map(|(class, p)| {
            endpoint_urls(&site, p)
                .map(|url| (class.clone(), p.clone(), url))
                .into_iter()
        })
        .collect();
    let answers: Vec<_> = stream::iter(requests)
        .map(|(class, p, url)| {
            let client = &client;
            async move {
                let page = get(client, url.clone()).await;
                (class, p, url.clone(), get_json(client, url).await, page)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    assert_eq!(answers.len(), 2 * payloads.len());
    let mut failures = Vec::new();
    for (class, p, url, a, page) in &answers {
        if page.status != 400
            || page.location.is_some()
            || page.json
            || !page.body.contains("This link is not valid")
        {
            failures.push(format!("{class} {p:?} page at {url}: {}", page.status));
        }
        let message = serde_json::from_str::<serde_json::Value>(&a.body)
            .ok()
            .and_then(|b| b["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if a.status != 400 || a.location.is_some() || !a.json || !message.contains("redirect") {
            failures.push(format!(
                "{class} {p:?} at {}: {} {:?} {}",
                &url[site.len()..url.find('?').unwrap_or(url.len())],
                a.status,
                a.location,
                a.body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests not refused:\n{}",
        failures.len(),
        answers.len(),
        failures.join("\n")
    );

    // The site's must-accept targets: `/authorize` sends the browser to the IdP, `/logout` (no
    // session) to the target itself, normalised, which lands on the site.
    let site_url = url::Url::parse(&site).unwrap();
    let accepted: Vec<_> = lines(ACCEPTED, "target", stack.nginx.port)
        .into_iter()
        // The `portal` origin is allow-listed in the unit tests only.
        .filter(|(class, _)| class != "portal")
        .collect();
    assert!(accepted.len() >= 30, "{} accepted targets", accepted.len());
    for (class, t) in &accepted {
        let [authorize, logout] = endpoint_urls(&site, t);
        let a = get(&client, authorize).await;
        assert_eq!(a.status, 302, "{class} {t:?} at /authorize: {}", a.body);
        assert!(
            a.location
                .as_deref()
                .is_some_and(|l| l.starts_with(&stack.idp.issuer)),
            "{t:?}: {:?}",
            a.location
        );
        let a = get(&client, logout).await;
        assert_eq!(a.status, 302, "{class} {t:?} at /logout: {}", a.body);
        let location = a.location.unwrap();
        let expected = if t.starts_with('/') {
            t.clone()
        } else {
            url::Url::parse(t).unwrap().to_string()
        };
        assert_eq!(location, expected, "{class} {t:?}");
        assert_eq!(
            site_url.join(&location).unwrap().origin(),
            site_url.origin(),
            "{t:?} -> {location}"
        );
    }
}
