//! The development IdP (`tests/js/idp.mjs`, oidc-provider), started per test on an ephemeral
//! port, and what it records (back-channel logout tokens).

use std::process::Command;

use super::*;

/// The development IdP (`tests/js/idp.mjs`, oidc-provider).
pub struct Idp {
    pub issuer: String,
    pub proc: Proc,
}

impl Idp {
    /// [`Self::start`] for a site of idgate's login pages: the two callbacks on `site` (the
    /// response in the query and in a form post) are its redirect URIs.
    pub fn for_site(site: &str, extra: &[&str]) -> Self {
        Self::start(&login_callbacks(site), extra)
    }

    pub fn start(redirect_uris: &[String], extra: &[&str]) -> Self {
        let script = repo().join("tests/js/idp.mjs");
        assert!(
            repo().join("tests/js/node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run scripts/install-deps"
        );
        let mut cmd = Command::new("node");
        cmd.arg(script).args([
            "--port",
            "0",
            "--client-id",
            "idgate",
            "--client-secret",
            CLIENT_SECRET,
        ]);
        for r in redirect_uris {
            cmd.args(["--redirect-uri", r]);
        }
        cmd.args(extra);
        let mut proc = Proc::spawn("idp", &mut cmd);
        let line = proc.first_stdout_line();
        let v: serde_json::Value = serde_json::from_str(&line).expect("idp prints JSON");
        let issuer = v["issuer"].as_str().expect("issuer").to_owned();
        Self { issuer, proc }
    }
}

impl Idp {
    /// `payload` signed with the IdP's current key (`idp.mjs --sign-endpoint`), `header` fields
    /// merged into the default header.
    pub async fn sign(&self, header: serde_json::Value, payload: serde_json::Value) -> String {
        let mut url = reqwest::Url::parse(&self.issuer).unwrap();
        url.set_path("/-/sign");
        let resp = reqwest::Client::new()
            .post(url)
            .json(&serde_json::json!({ "header": header, "payload": payload }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "start the IdP with --sign-endpoint");
        resp.text().await.unwrap()
    }

    /// The back-channel logout tokens the IdP has sent so far (`idp.mjs --log-logout-tokens`).
    pub fn logout_tokens(&self) -> Vec<String> {
        self.proc
            .log_text()
            .lines()
            .filter_map(|l| l.split("idp.mjs: logout_token ").nth(1))
            .map(|t| t.trim().to_owned())
            .collect()
    }

    /// The claims of a back-channel logout token for `sub` from this IdP to the client
    /// `idgate`: fresh `iat` and `jti`, the logout event. Change them to make bad ones.
    pub fn logout_claims(&self, sub: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": self.issuer,
            "aud": "idgate",
            "sub": sub,
            "iat": idgate::now_secs(),
            "exp": idgate::now_secs() + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        })
    }
}

/// The callbacks of idgate's login pages on `site`: where the IdP sends a browser back.
pub fn login_callbacks(site: &str) -> [String; 2] {
    [
        format!("{site}/web-login/oauth/callback"),
        format!("{site}/web-login/callback"),
    ]
}
