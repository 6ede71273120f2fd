//! A browser as the tests drive it: a cookie jar without redirects followed, the login at the
//! development IdP, and readers of what a response says (`Location`, cookies, echoed headers).

use std::sync::Arc;
use std::time::Duration;

use super::*;

/// A browser without JavaScript: its own cookie jar, redirects followed by hand.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self { client, jar }
    }

    /// A browser whose connections come from the loopback address `ip` (`127.0.0.2`, …):
    /// another client, as Nginx and idgate see it.
    pub fn from_address(ip: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .local_address(Some(ip.parse().unwrap()))
            .build()
            .unwrap();
        Self { client, jar }
    }

    /// A navigation: GET with a browser's `Accept`.
    pub async fn navigate(&self, url: &str) -> reqwest::Response {
        self.client
            .get(url)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap()
    }

    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let header = self.jar.cookies(&url.parse().unwrap())?;
        let header = header.to_str().ok()?.to_owned();
        header.split("; ").find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    /// Follows redirects from `url` until a response is not a redirect or its target starts
    /// with `stop_at`; returns that URL (when stopped) or the last response's URL.
    pub async fn follow(&self, mut url: String, stop_at: &str) -> (String, reqwest::Response) {
        for _ in 0..20 {
            let resp = self.navigate(&url).await;
            if !resp.status().is_redirection() {
                return (url, resp);
            }
            let loc = location(&resp);
            let next = reqwest::Url::parse(&url)
                .unwrap()
                .join(&loc)
                .unwrap()
                .to_string();
            if next.starts_with(stop_at) {
                return (next, resp);
            }
            url = next;
        }
        panic!("too many redirects from {url}");
    }

    /// POSTs the callback URL's `code` and `state` (and `iss`, when the IdP sent one) to
    /// `/oauth/token` as JSON, as the callback page's script does.
    pub async fn exchange(&self, site: &str, callback: &str) -> reqwest::Response {
        let mut body = serde_json::json!({
            "code": query_param(callback, "code").expect("code"),
            "state": query_param(callback, "state").expect("state"),
        });
        if let Some(iss) = query_param(callback, "iss") {
            body["iss"] = iss.into();
        }
        self.client
            .post(format!("{site}/oauth/token"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Answers "yes" on the IdP's logout page at `end_url` (what a person's click, or the page's
    /// own script, does) and returns the IdP's response to that form.
    pub async fn confirm_idp_logout(&self, end_url: &str) -> reqwest::Response {
        let page = self.navigate(end_url).await;
        assert_eq!(page.status(), 200, "the IdP's logout page");
        let html = page.text().await.unwrap();
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a logout form");
        let mut fields: Vec<(String, String)> = html
            .split("<input")
            .skip(1)
            .filter_map(|tag| {
                let attr = |a: &str| {
                    tag.split(&format!("{a}=\""))
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .map(str::to_owned)
                };
                Some((attr("name")?, attr("value").unwrap_or_default()))
            })
            .collect();
        fields.retain(|(k, _)| k != "logout");
        fields.push(("logout".into(), "yes".into()));
        let post_url = reqwest::Url::parse(end_url).unwrap().join(action).unwrap();
        self.client
            .post(post_url)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    /// Logs in at the IdP's development form, starting from its authorization URL, and
    /// returns the callback URL the IdP sends the browser to.
    pub async fn login_at_idp(
        &self,
        authorize_url: &str,
        login: &str,
        callback_prefix: &str,
    ) -> String {
        self.login_at_idp_with(authorize_url, login, "any-password", callback_prefix)
            .await
    }

    /// [`Browser::login_at_idp`] with a password: `otp` logs in at the development IdP's
    /// higher assurance level (`urn:idgate:loa:2`, `amr` `pwd` and `otp`).
    pub async fn login_at_idp_with(
        &self,
        authorize_url: &str,
        login: &str,
        password: &str,
        callback_prefix: &str,
    ) -> String {
        let (form_url, resp) = self.follow(authorize_url.to_owned(), callback_prefix).await;
        if form_url.starts_with(callback_prefix) {
            // Still logged in at the IdP: it came straight back.
            return form_url;
        }
        assert_eq!(
            resp.status(),
            200,
            "expected the IdP login form at {form_url}"
        );
        let html = resp.text().await.unwrap();
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no form on the IdP page: {html}"));
        let post_url = reqwest::Url::parse(&form_url)
            .unwrap()
            .join(action)
            .unwrap()
            .to_string();
        let resp = self
            .client
            .post(&post_url)
            .form(&[
                ("prompt", "login"),
                ("login", login),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_redirection(),
            "login form answered {}",
            resp.status()
        );
        let next = reqwest::Url::parse(&post_url)
            .unwrap()
            .join(&location(&resp))
            .unwrap()
            .to_string();
        if next.starts_with(callback_prefix) {
            return next;
        }
        let (callback, resp) = self.follow(next, callback_prefix).await;
        if !callback.starts_with(callback_prefix) {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            panic!("IdP did not come back: {callback} answered {status}: {body}");
        }
        callback
    }
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("{} without Location", resp.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Query parameter `name` of `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `name=value` lines of the echo app's answer.
pub fn echoed(body: &str) -> std::collections::HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The claims of a JWT, read without checking its signature (tests read what idgate signed).
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Runs the whole login for `login` through Nginx, starting at `path`; returns the response
/// of `POST /oauth/token` (its cookies are in the browser's jar).
pub async fn login(stack: &Stack, browser: &Browser, path: &str, login: &str) -> reqwest::Response {
    login_at(&stack.site(), &stack.idp.issuer, browser, path, login).await
}

/// [`login`] on any site behind Nginx whose app logs in at the IdP `issuer`.
pub async fn login_at(
    site: &str,
    issuer: &str,
    browser: &Browser,
    path: &str,
    login: &str,
) -> reqwest::Response {
    let resp = browser.navigate(&format!("{site}{path}")).await;
    assert_eq!(
        resp.status(),
        302,
        "protected page must redirect an anonymous browser"
    );
    let authorize = format!("{site}{}", location(&resp));
    let resp = browser.navigate(&authorize).await;
    assert_eq!(
        resp.status(),
        302,
        "/authorize: {}",
        resp.text().await.unwrap_or_default()
    );
    let idp_url = location(&resp);
    assert!(idp_url.starts_with(issuer), "{idp_url}");
    let callback = browser
        .login_at_idp(&idp_url, login, &format!("{site}/web-login/"))
        .await;
    let page = browser.navigate(&callback).await;
    assert_eq!(page.status(), 200);
    browser.exchange(site, &callback).await
}

/// Every `Set-Cookie` of a response, as sent.
pub fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Runs `tests/js/browser-login.mjs` (headless Chromium through a real login) to `target` as
/// `login`, with `flags`; its JSON report. Fails loudly when Chromium is missing or the login
/// does not complete.
pub async fn browser_login(target: &str, login: &str, flags: &[&str]) -> serde_json::Value {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is not installed: run scripts/install-deps"
    );
    let mut cmd = std::process::Command::new("node");
    cmd.arg(repo().join("tests/js/browser-login.mjs"))
        .args(["--url", target, "--login", login])
        .args(flags);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run node"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser login failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}
