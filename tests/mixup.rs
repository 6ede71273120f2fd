//! The mix-up defence (RFC 9207 `iss` in the authorization response), through the real Nginx:
//! one app with providers at two IdP processes (`dev` at A, `other` at B) and a third provider
//! at A that does not require `iss` (`lax`, `require_iss = false`). Both IdPs send `iss` and
//! advertise it (`idp.mjs --iss-auth-resp`).
//!
//! - the honest response (A's code, A's `iss`) logs in;
//! - A's response carrying B's issuer is refused with 400 naming `iss`, consumes the login
//!   state, opens no session, is logged at warn naming both providers (never the code) and
//!   audited as a failed login (`issuer_mismatch`);
//! - an `iss` of no configured provider is refused too;
//! - a response without `iss` from A, which advertises it, is refused; the same at `lax` logs in;
//! - the callback page carries `iss` to the no-JavaScript form, whose post logs in, and its
//!   script posts it in Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;
use serde_json::json;

/// The gateway with two IdPs: `web` has `dev` and `lax` at A, `other` at B.
struct TwoIdps {
    dir: tempfile::TempDir,
    nginx: Nginx,
    idgate: Idgate,
    a: Idp,
    b: Idp,
}

impl TwoIdps {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let site = format!("http://127.0.0.1:{port}");
        let a = Idp::for_site(&site, &["--iss-auth-resp"]);
        let b = Idp::for_site(&site, &["--iss-auth-resp"]);
        let provider = |id: &str, issuer: &str, extra: &str| {
            format!(
                "[apps.web.providers.{id}]\ntype = \"oidc\"\nissuer_url = \"{issuer}\"\n\
                 client_id = \"idgate\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra}\n"
            )
        };
        let apps = format!(
            "[apps.web]\nrealm = \"web\"\nissuer = \"{{{{SITE}}}}\"\n\
             redirect_url = \"{{{{SITE}}}}/web-login/oauth/callback\"\nwebsite = true\n\
             default_provider = \"dev\"\nallowed_redirects = [\"{{{{SITE}}}}/\"]\n\n{}{}{}",
            provider("dev", "{{ISSUER}}", ""),
            provider("other", &b.issuer, ""),
            provider("lax", "{{ISSUER}}", "require_iss = false"),
        );
        let setup = Setup {
            apps: Some(apps),
            extra: "[audit]\npath = \"audit.jsonl\"\n",
            ..Setup::default()
        };
        let config = config_toml(&setup, dir.path(), &site, &a.issuer);
        let idgate = Idgate::start(dir.path(), &config);
        let nginx = Nginx::start_with_locations(&dir.path().join("nginx"), port, idgate.addr, "");
        Self {
            dir,
            nginx,
            idgate,
            a,
            b,
        }
    }

    fn site(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx.port)
    }

    /// Starts a login at `provider` in a fresh browser and logs in at its IdP: the browser and
    /// the callback URL the IdP sent it to (with `code`, `state` and `iss`).
    async fn callback(&self, provider: &str, who: &str) -> (Browser, String) {
        let site = self.site();
        let browser = Browser::new();
        let resp = browser
            .navigate(&format!(
                "{site}/authorize?appId=web&providerId={provider}&redirect=%2F"
            ))
            .await;
        assert_eq!(resp.status(), 302, "{}", resp.text().await.unwrap());
        let callback = browser
            .login_at_idp(&location(&resp), who, &format!("{site}/web-login/"))
            .await;
        (browser, callback)
    }

    /// `POST /oauth/token` with the callback's `code` and `state`, and `iss` as given.
    async fn exchange(
        &self,
        browser: &Browser,
        callback: &str,
        iss: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut body = json!({
            "code": query_param(callback, "code").unwrap(),
            "state": query_param(callback, "state").unwrap(),
        });
        if let Some(iss) = iss {
            body["iss"] = iss.into();
        }
        let resp = browser
            .client
            .post(format!("{}/oauth/token", self.site()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// The audit trail's login events that failed for `reason` (`[audit]` is on).
    fn failed_logins(&self, reason: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "login" && e["reason"] == reason)
            .collect()
    }

    fn log_len(&self) -> usize {
        self.idgate.proc.log.lock().unwrap().len()
    }

    fn log_since(&self, from: usize) -> Vec<String> {
        self.idgate.proc.log.lock().unwrap()[from..].to_vec()
    }

    /// Waits (up to 10 s) for an idgate log line since `from` holding every one of `needles`.
    fn wait_line(&self, from: usize, needles: &[&str]) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = self
                .log_since(from)
                .into_iter()
                .find(|l| needles.iter().all(|n| l.contains(n)));
            if found.is_some() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// How many sessions idgate's store holds.
fn sessions(gate: &Idgate) -> usize {
    let config = gate.config.to_str().unwrap();
    let (code, out, err) = idgate_cmd(&["sessions", "list", "--config", config]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_response_with_another_providers_issuer_is_refused() {
    let gate = TwoIdps::start();
    let site = gate.site();

    // Honest: A's response carries A's issuer, the browser posts it on, the login works.
    let (browser, callback) = gate.callback("dev", "honest").await;
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(gate.a.issuer.as_str()),
        "the IdP sends iss (RFC 9207)"
    );
    let (status, body) = gate
        .exchange(&browser, &callback, Some(&gate.a.issuer))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(browser.cookie(&site, "sid").is_some());
    assert_eq!(sessions(&gate.idgate), 1);

    // Mixed up: the response to a login at A names B's issuer. Refused before the code goes
    // anywhere, logged naming both providers, and the state is spent.
    let (browser, callback) = gate.callback("dev", "mixed-up").await;
    let code = query_param(&callback, "code").unwrap();
    let from = gate.log_len();
    let (status, body) = gate
        .exchange(&browser, &callback, Some(&gate.b.issuer))
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("iss") && message.contains("another identity provider"),
        "{body}"
    );
    let line = gate
        .wait_line(
            from,
            &["WARN", "another provider's issuer", "dev", "web/other"],
        )
        .unwrap_or_else(|| {
            panic!(
                "no warning names both providers: {:?}",
                gate.log_since(from)
            )
        });
    assert!(!line.contains(&code), "the code is logged: {line}");
    assert!(
        gate.log_since(from).iter().all(|l| !l.contains(&code)),
        "the code reached the log"
    );
    assert!(browser.cookie(&site, "sid").is_none());
    assert_eq!(
        sessions(&gate.idgate),
        1,
        "no session for the mixed-up response"
    );
    let audited = wait_for(
        "the audit event",
        std::time::Duration::from_secs(10),
        || gate.failed_logins("issuer_mismatch").into_iter().next(),
    );
    assert_eq!(
        (&audited["outcome"], &audited["provider"]),
        (&json!("failure"), &json!("dev")),
        "{audited}"
    );
    let (status, body) = gate
        .exchange(&browser, &callback, Some(&gate.a.issuer))
        .await;
    assert_eq!(status, 400, "the login state was consumed: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("state"),
        "{body}"
    );
    assert_eq!(sessions(&gate.idgate), 1);

    // An issuer no provider has: refused too.
    let (browser, callback) = gate.callback("dev", "stranger").await;
    let from = gate.log_len();
    let (status, body) = gate
        .exchange(&browser, &callback, Some("http://127.0.0.1:1/elsewhere"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(gate
        .wait_line(from, &["WARN", "iss is not the provider's issuer", "dev"])
        .is_some());

    // Missing, while A advertises authorization_response_iss_parameter_supported: refused.
    let (browser, callback) = gate.callback("dev", "no-iss").await;
    let from = gate.log_len();
    let (status, body) = gate.exchange(&browser, &callback, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("iss"), "{body}");
    assert!(gate
        .wait_line(from, &["WARN", "has no iss", "require_iss"])
        .is_some());
    assert_eq!(sessions(&gate.idgate), 1);

    // `lax` (require_iss = false) at the same IdP: a frontend posting only code and state
    // logs in; an iss it does post is still checked.
    let (browser, callback) = gate.callback("lax", "no-iss-lax").await;
    let (status, body) = gate.exchange(&browser, &callback, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sessions(&gate.idgate), 2);
    let (browser, callback) = gate.callback("lax", "mixed-up-lax").await;
    let (status, body) = gate
        .exchange(&browser, &callback, Some(&gate.b.issuer))
        .await;
    assert_eq!(status, 400, "{body}");

    // B's own login, honest, works: `other` is an ordinary provider.
    let (browser, callback) = gate.callback("other", "at-b").await;
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(gate.b.issuer.as_str())
    );
    let (status, body) = gate
        .exchange(&browser, &callback, Some(&gate.b.issuer))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sessions(&gate.idgate), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_page_passes_iss_to_the_no_javascript_form() {
    let gate = TwoIdps::start();
    let site = gate.site();
    let (browser, callback) = gate.callback("dev", "no-js").await;
    let page = browser.navigate(&callback).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let field = format!(
        "name=\"iss\" value=\"{}\"",
        gate.a.issuer.replace('/', "&#x2f;")
    );
    assert!(html.contains(&field), "no iss field ({field}) in {html}");
    let js = browser
        .navigate(&format!("{site}/web-login/callback.js"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        js.contains("params.get('iss')") && js.contains("sent.iss = iss"),
        "the script forwards iss"
    );

    // The form's post, as a browser without JavaScript sends it: code, state and iss.
    let form = [
        ("code", query_param(&callback, "code").unwrap()),
        ("state", query_param(&callback, "state").unwrap()),
        ("iss", gate.a.issuer.clone()),
    ];
    let resp = browser
        .client
        .post(format!("{site}/web-login/finish"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    assert!(browser.cookie(&site, "sid").is_some());

    // Without iss, the form is refused (the IdP advertises it): the login-failed page.
    let (browser, callback) = gate.callback("dev", "no-js-no-iss").await;
    let resp = browser
        .client
        .post(format!("{site}/web-login/finish"))
        .form(&[
            ("code", query_param(&callback, "code").unwrap()),
            ("state", query_param(&callback, "state").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(browser.cookie(&site, "sid").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_runs_the_callback_script_which_passes_iss_on() {
    // The IdP sends and advertises iss: the login succeeds only if the callback page's script
    // posts it with code and state (a missing one is refused).
    let stack = Stack::start_with_idp(Setup::default(), &["--iss-auth-resp"]);
    let target = stack.nginx.url("/private/page");
    let result = browser_login(&target, "ida", &[]).await;
    assert_eq!(result["finalUrl"], stack.nginx.url("/private/page"));
    assert_eq!(result["pageErrors"], json!([]), "{result}");
    assert_eq!(result["consoleErrors"], json!([]), "{result}");
}
