//! Every provider type, each through a full login through Nginx and the idgate binary ending
//! with the right `providerUserId`, name and email in the users collection:
//!
//! - the OpenID Connect types against the real `oidc-provider` IdP (`tests/js/idp.mjs`),
//!   configured the way each vendor behaves where it matters: a Keycloak realm issuer with a
//!   path, claims only in userinfo, `client_secret_post` (Google, Entra ID, Auth0, GitLab),
//!   an ES256-signed id_token with a signing-key rotation mid-run (Okta), Azure AD B2C's
//!   per-policy discovery URL announcing the tenant's issuer, Auth0's trailing-slash issuer,
//!   Entra ID's multi-tenant `common` endpoint and its tenant allow-list;
//! - e-mail addresses the IdP marks unverified (`email_verified: false`) are not passed on;
//! - the plain OAuth2 types against local fakes reproducing the vendors' documented answers
//!   (`tests/js/fake-github.mjs`, `fake-bitbucket.mjs`, `fake-generic.mjs`), and GitHub's
//!   refusal of a code it did not issue (a 200 carrying `error`): a 400 and no session;
//! - several apps with several providers in one instance: the chooser lists each app's own
//!   providers by `order`, and each login lands in its app's realm.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;
use std::process::Command;

/// A site (Nginx + idgate) with the apps given, and the IdPs/fakes it talks to.
struct Gate {
    site: String,
    config: String,
    _nginx: Nginx,
    _idgate: Idgate,
    _dir: tempfile::TempDir,
}

impl Gate {
    fn start(port: u16, apps: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = format!("http://127.0.0.1:{port}");
        let setup = Setup {
            apps: Some(apps),
            ..Setup::default()
        };
        let config = config_toml(&setup, dir.path(), &site, "http://127.0.0.1:1");
        let idgate = Idgate::start(dir.path(), &config);
        // Each app's pages live under a location bound to it (`/web/`, `/partners/`).
        let bound = |app: &str| {
            format!(
                "    location /{app}/ {{\n        set $idgate_app \"{app}\";\n        include {}/idgate-protect.conf;\n        \
                 proxy_pass http://127.0.0.1:ECHO_PORT;\n    }}\n",
                repo().join("nginx").display()
            )
        };
        let locations = bound("web") + &bound("partners");
        let nginx =
            Nginx::start_with_locations(&dir.path().join("nginx"), port, idgate.addr, &locations);
        Self {
            config: idgate.config.display().to_string(),
            site,
            _nginx: nginx,
            _idgate: idgate,
            _dir: dir,
        }
    }

    fn users(&self) -> Vec<serde_json::Value> {
        let (code, out, err) = idgate_cmd(&["users", "list", "--config", &self.config]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    }

    /// How many live sessions the store holds for `app`.
    fn sessions(&self, app: &str) -> usize {
        let (code, out, err) = idgate_cmd(&["sessions", "list", "--config", &self.config]);
        assert_eq!(code, 0, "{err}");
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        list.iter()
            .filter(|s| s["alive"] == true && s["appId"] == app)
            .count()
    }

    /// The stored user of `provider` in `realm`.
    fn user(&self, realm: &str, provider: &str) -> serde_json::Value {
        self.users()
            .into_iter()
            .find(|u| u["realm"] == realm && u["providerId"] == provider)
            .unwrap_or_else(|| panic!("no user of {provider} in realm {realm}: {:?}", self.users()))
    }
}

/// The real IdP for `site`, with `extra` options of `tests/js/idp.mjs`.
fn idp(site: &str, extra: &[&str]) -> Idp {
    Idp::for_site(site, extra)
}

/// A fake provider (`tests/js/<script>`) for `site`; returns it and its base URL.
fn fake(script: &str, site: &str, extra: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/js").join(script)).args([
        "--port",
        "0",
        "--client-id",
        "idgate",
        "--client-secret",
        CLIENT_SECRET,
    ]);
    for r in login_callbacks(site) {
        cmd.args(["--redirect-uri", &r]);
    }
    cmd.args(extra);
    let mut proc = Proc::spawn(script, &mut cmd);
    let line = proc.first_stdout_line();
    let v: serde_json::Value = serde_json::from_str(&line).expect("the fake prints JSON");
    let url = v["url"].as_str().expect("url").to_owned();
    (proc, url)
}

/// An app block on `site`; `providers` are its `[apps.<id>.providers.*]` blocks.
fn app(id: &str, realm: &str, site: &str, providers: &str) -> String {
    format!(
        r#"
[apps.{id}]
realm = "{realm}"
issuer = "{site}"
redirect_url = "{site}/web-login/oauth/callback"
website = true
default_groups = ["users"]
allowed_redirects = ["{site}/"]
{providers}
"#
    )
}

/// A provider block: `[apps.<app>.providers.<id>]`, the client, then `rest` (type, endpoints).
fn provider(app: &str, id: &str, rest: &str) -> String {
    format!(
        "\n[apps.{app}.providers.{id}]\nclient_id = \"idgate\"\nclient_secret = \"{CLIENT_SECRET}\"\n{rest}\n"
    )
}

/// Logs in at `app` through `provider_id`, with a fresh browser: at the IdP's login form as
/// `login` for an OIDC IdP, or straight through for an auto-approving fake. Checks the session
/// then reaches the upstream through Nginx; returns the `/oauth/token` answer.
async fn login(
    gate: &Gate,
    app: &str,
    provider_id: &str,
    login: Option<&str>,
) -> serde_json::Value {
    let (status, body) = try_login(gate, app, provider_id, login).await;
    assert_eq!(status, 200, "{app}/{provider_id}: {body}");
    body
}

/// Like [`login`], but the `/oauth/token` answer may be a refusal: returns its status and
/// body (and, on success, checks the session reaches the upstream).
async fn try_login(
    gate: &Gate,
    app: &str,
    provider_id: &str,
    login: Option<&str>,
) -> (u16, serde_json::Value) {
    try_login_with(gate, app, provider_id, login, |callback| {
        callback.to_owned()
    })
    .await
}

/// Like [`try_login`], with the callback URL the browser comes back to changed by `tamper`
/// before its code is exchanged.
async fn try_login_with(
    gate: &Gate,
    app: &str,
    provider_id: &str,
    login: Option<&str>,
    tamper: impl Fn(&str) -> String,
) -> (u16, serde_json::Value) {
    let browser = Browser::new();
    let site = &gate.site;
    let resp = browser
        .navigate(&format!(
            "{site}/authorize?appId={app}&providerId={provider_id}&redirect=%2Fdocs%2F"
        ))
        .await;
    assert_eq!(
        resp.status(),
        302,
        "/authorize for {app}/{provider_id}: {}",
        resp.text().await.unwrap_or_default()
    );
    let at_idp = location(&resp);
    assert_eq!(
        query_param(&at_idp, "code_challenge_method").as_deref(),
        Some("S256"),
        "{at_idp}"
    );
    let back = format!("{site}/web-login/");
    let callback = match login {
        Some(name) => browser.login_at_idp(&at_idp, name, &back).await,
        None => browser.follow(at_idp.clone(), &back).await.0,
    };
    assert!(
        callback.starts_with(&back),
        "{app}/{provider_id}: {callback}"
    );
    let resp = browser.exchange(site, &tamper(&callback)).await;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if status != 200 {
        return (status, body);
    }
    let page = browser.navigate(&format!("{site}/{app}/docs/")).await;
    assert_eq!(page.status(), 200, "the session reaches the app's upstream");
    let echo = echoed(&page.text().await.unwrap());
    assert!(!echo["miauserid"].is_empty());
    (status, body)
}

/// The `user` claim of the session JWT in an `/oauth/token` answer.
fn user_claim(token_answer: &serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    let jwt = token_answer["accessToken"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["user"].clone()
}

fn assert_identity(user: &serde_json::Value, id: &str, name: &str, email: &str) {
    assert_eq!(user["providerUserId"], id, "{user}");
    assert_eq!(user["name"], name, "{user}");
    assert_eq!(user["email"], email, "{user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_types_against_the_real_idp_configured_like_each_vendor() {
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    // Started side by side: each IdP takes ~0.4 s to come up.
    let b2c_tenant = "/775527ff-9a37-4307-8b3d-cc311f58d925/v2.0";
    let b2c_policy = "/contoso.onmicrosoft.com/B2C_1_signin/v2.0";
    let specs: [Vec<&str>; 7] = [
        // Keycloak: a realm issuer (with a path), claims only in userinfo, basic auth.
        vec!["--issuer-path", "/realms/main"],
        // Okta: a custom authorization server issuer, ES256 id_tokens, basic auth.
        vec![
            "--issuer-path",
            "/oauth2/default",
            "--id-token-alg",
            "ES256",
        ],
        // Entra ID B2C: discovery per policy, issuer per tenant; secret in the body.
        vec![
            "--issuer-path",
            b2c_tenant,
            "--discovery-alias",
            b2c_policy,
            "--token-auth-method",
            "client_secret_post",
            "--claims-in-id-token",
        ],
        // Google: secret in the body, claims in the id_token as well.
        vec![
            "--token-auth-method",
            "client_secret_post",
            "--claims-in-id-token",
        ],
        // Auth0 and GitLab: secret in the body.
        vec!["--token-auth-method", "client_secret_post"],
        vec!["--token-auth-method", "client_secret_post"],
        // A generic OIDC IdP that wants the secret in the body: `auth_method` says so.
        vec!["--token-auth-method", "client_secret_post"],
    ];
    let [keycloak, okta, microsoft, google, auth0, gitlab, oidc] = std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .map(|args| s.spawn(|| idp(&site, args)))
            .collect();
        let idps: Vec<Idp> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        <[Idp; 7]>::try_from(idps).ok().unwrap()
    });
    let origin = |i: &Idp| {
        let u = reqwest::Url::parse(&i.issuer).unwrap();
        format!("http://127.0.0.1:{}", u.port().unwrap())
    };
    assert!(keycloak.issuer.ends_with("/realms/main"));
    let providers = [
        provider(
            "web",
            "kc",
            &format!("type = \"keycloak\"\nissuer_url = \"{}\"", keycloak.issuer),
        ),
        provider(
            "web",
            "okta",
            &format!("type = \"okta\"\nissuer_url = \"{}\"", okta.issuer),
        ),
        provider(
            "web",
            "b2c",
            &format!(
                "type = \"microsoft\"\nissuer_url = \"{}{b2c_policy}\"",
                origin(&microsoft)
            ),
        ),
        provider(
            "web",
            "google",
            &format!("type = \"google\"\nissuer_url = \"{}\"", google.issuer),
        ),
        // Auth0's issuer ends with a slash; this IdP's does not: either spelling is accepted.
        provider(
            "web",
            "auth0",
            &format!("type = \"auth0\"\nissuer_url = \"{}/\"", auth0.issuer),
        ),
        provider(
            "web",
            "gitlab",
            &format!("type = \"gitlab\"\nissuer_url = \"{}\"", gitlab.issuer),
        ),
        provider(
            "web",
            "oidc",
            &format!(
                "type = \"oidc\"\nissuer_url = \"{}\"\nauth_method = \"client_secret_post\"",
                oidc.issuer
            ),
        ),
    ]
    .concat();
    // The same IdPs, each through a generic provider configured with the other method: the
    // IdP refuses the client (idp.mjs enforces the registered method).
    let wrong_method = [
        ("kc-wrong", &keycloak, "client_secret_post"),
        ("okta-wrong", &okta, "client_secret_post"),
        ("b2c-wrong", &microsoft, "client_secret_basic"),
        ("google-wrong", &google, "client_secret_basic"),
        ("auth0-wrong", &auth0, "client_secret_basic"),
        ("gitlab-wrong", &gitlab, "client_secret_basic"),
        ("oidc-wrong", &oidc, "client_secret_basic"),
    ];
    let providers = providers
        + &wrong_method
            .iter()
            .map(|(id, idp, method)| {
                provider(
                    "web",
                    id,
                    &format!(
                        "type = \"oidc\"\nissuer_url = \"{}\"\nauth_method = \"{method}\"",
                        idp.issuer
                    ),
                )
            })
            .collect::<String>();
    let gate = Gate::start(port, app("web", "web", &site, &providers));

    for (provider_id, who) in [
        ("kc", "karla"),
        ("okta", "otto"),
        ("b2c", "bea"),
        ("google", "gina"),
        ("auth0", "abel"),
        ("gitlab", "gil"),
        ("oidc", "olga"),
    ] {
        login(&gate, "web", provider_id, Some(who)).await;
        let user = gate.user("web", provider_id);
        let name = format!("{}{}", who[..1].to_uppercase(), &who[1..]);
        assert_identity(&user, who, &name, &format!("{who}@example.test"));
        assert_eq!(user["username"], who);
    }

    // Okta rotates its (ES256) signing key mid-run: the next login fetches the new JWKS.
    okta.proc.signal("USR2");
    okta.proc.wait_log(&["signing key rotated"]);
    login(&gate, "web", "okta", Some("otto-2")).await;
    assert!(gate
        .users()
        .iter()
        .any(|u| u["providerUserId"] == "otto-2" && u["providerId"] == "okta"));

    // The wrong method: the login fails (idgate answers 400 naming the IdP's refusal) and the
    // IdP says why. That line is the IdP's first `invalid_client` one: every login above
    // authenticated the way its IdP demanded (its stderr is read in order, so once this line
    // is in, every earlier line is too).
    for (provider_id, idp, method) in wrong_method {
        let (status, body) = try_login(&gate, "web", provider_id, Some("mallory")).await;
        assert_eq!(status, 400, "{provider_id}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("invalid_client"),
            "{provider_id}: {body}"
        );
        idp.proc.wait_log(&[&format!(
            "invalid_client: /token request authenticated with {method}"
        )]);
        let refusals = idp.proc.log_text().matches("invalid_client").count();
        assert_eq!(refusals, 1, "{provider_id}: {}", idp.proc.log_text());
    }
    assert!(!gate
        .users()
        .iter()
        .any(|u| u["providerUserId"] == "mallory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_oauth2_types_against_local_fakes() {
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    // GitHub keeps the address private: it comes from /user/emails.
    let (github, gh_url) = fake("fake-github.mjs", &site, &["--email-private"]);
    let (_bitbucket, bb_url) = fake("fake-bitbucket.mjs", &site, &[]);
    let (_generic, gen_url) = fake("fake-generic.mjs", &site, &[]);
    let providers = [
        provider(
            "web",
            "gh",
            &format!(
                "type = \"github\"\nauth_url = \"{gh_url}/login/oauth/authorize\"\n\
                 token_url = \"{gh_url}/login/oauth/access_token\"\napi_url = \"{gh_url}\""
            ),
        ),
        provider(
            "web",
            "bb",
            &format!(
                "type = \"bitbucket\"\nauth_url = \"{bb_url}/site/oauth2/authorize\"\n\
                 token_url = \"{bb_url}/site/oauth2/access_token\"\napi_url = \"{bb_url}/2.0\""
            ),
        ),
        provider(
            "web",
            "corp",
            &format!(
                "type = \"generic\"\nauth_url = \"{gen_url}/oauth/authorize\"\n\
                 token_url = \"{gen_url}/oauth/token\"\nuserinfo_url = \"{gen_url}/api/me\"\n\
                 keys = {{ id = \"data.uid\", name = \"data.displayName\", \
                 username = \"data.handle\", email = \"mail\" }}"
            ),
        ),
    ]
    .concat();
    let gate = Gate::start(port, app("web", "web", &site, &providers));

    login(&gate, "web", "gh", None).await;
    let user = gate.user("web", "gh");
    assert_identity(&user, "583231", "Mona Octocat", "mona@example.test");
    assert_eq!(user["username"], "octocat");
    // idgate asked for JSON and sent the secret in the form, as GitHub documents.
    github.wait_log(&["token issued (post, answered as JSON)"]);

    // A code GitHub does not know: GitHub refuses it with a 200 carrying `error` (its
    // documented answer). idgate reads that as the refusal it is, a 400 naming GitHub's error,
    // and opens no session; not as a token answer it could not parse, nor as an IdP that failed.
    let sessions_before = gate.sessions("web");
    let (status, body) = try_login_with(&gate, "web", "gh", None, |callback| {
        let mut url = url::Url::parse(callback).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| match k.as_ref() {
                "code" => (k.into_owned(), format!("{v}-not-issued")),
                _ => (k.into_owned(), v.into_owned()),
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    })
    .await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("bad_verification_code"), "{body}");
    github.wait_log(&["token request refused"]);
    assert_eq!(
        gate.sessions("web"),
        sessions_before,
        "a refused code opens no session"
    );

    login(&gate, "web", "bb", None).await;
    let user = gate.user("web", "bb");
    assert_identity(
        &user,
        "{d301aafa-d676-4ee0-88be-962be7417567}",
        "Erik van Zijst",
        "erik@example.test",
    );
    assert_eq!(user["username"], "evzijst");

    login(&gate, "web", "corp", None).await;
    let user = gate.user("web", "corp");
    assert_identity(&user, "4242", "Ada Lovelace", "ada@example.test");
    assert_eq!(user["username"], "ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_apps_and_providers_share_one_instance() {
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let sso = idp(&site, &[]);
    let (_github, gh_url) = fake("fake-github.mjs", &site, &[]);
    let (_generic, gen_url) = fake("fake-generic.mjs", &site, &["--uid", "77"]);
    let sso_block = format!("type = \"oidc\"\nissuer_url = \"{}\"", sso.issuer);
    let web = [
        provider(
            "web",
            "sso",
            &format!("{sso_block}\nlabel = \"Company SSO\"\norder = 5"),
        ),
        provider(
            "web",
            "gh",
            &format!(
                "type = \"github\"\nauth_url = \"{gh_url}/login/oauth/authorize\"\n\
                 token_url = \"{gh_url}/login/oauth/access_token\"\napi_url = \"{gh_url}\"\n\
                 label = \"GitHub\"\norder = 10"
            ),
        ),
    ]
    .concat();
    let partners = [
        provider(
            "partners",
            "sso",
            &format!("{sso_block}\nlabel = \"Company SSO for partners\"\norder = 1"),
        ),
        provider(
            "partners",
            "partner-idp",
            &format!(
                "type = \"generic\"\nauth_url = \"{gen_url}/oauth/authorize\"\n\
                 token_url = \"{gen_url}/oauth/token\"\nuserinfo_url = \"{gen_url}/api/me\"\n\
                 keys = {{ id = \"data.uid\", name = \"data.displayName\", email = \"mail\" }}\n\
                 label = \"Partner login\"\norder = 3"
            ),
        ),
    ]
    .concat();
    let apps = format!(
        "{}{}",
        app("web", "employees", &site, &web),
        app("partners", "partners", &site, &partners)
    );
    let gate = Gate::start(port, apps);

    // Each app's chooser lists its own providers, highest order first.
    let browser = Browser::new();
    for (app_id, labels) in [
        ("web", vec!["GitHub", "Company SSO"]),
        (
            "partners",
            vec!["Partner login", "Company SSO for partners"],
        ),
    ] {
        let page = browser
            .navigate(&format!(
                "{site}/web-login?appId={app_id}&redirect=%2Fdocs%2F"
            ))
            .await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        // Each provider is a link (`Continue with <label>`), in the chooser's order.
        let shown: Vec<&str> = html
            .split("<li><a ")
            .skip(1)
            .filter_map(|a| a.split_once("<span>")?.1.split_once("</span>"))
            .map(|(label, _)| label.trim_start_matches("Continue with "))
            .collect();
        assert_eq!(shown, labels, "{html}");
        // minijinja escapes `/` in attributes as `&#x2f;`.
        assert!(html.contains(&format!("&#x2f;authorize?appId={app_id}&amp;providerId=")));
        let list: serde_json::Value = browser
            .client
            .get(format!("{site}/apps/{app_id}/providers"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let got: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["label"].as_str().unwrap())
            .collect();
        assert_eq!(got, labels);
    }

    // The same person at the same IdP, through two apps: two users, one per realm.
    login(&gate, "web", "sso", Some("alice")).await;
    login(&gate, "partners", "sso", Some("alice")).await;
    login(&gate, "web", "gh", None).await;
    login(&gate, "partners", "partner-idp", None).await;
    let employees = gate.user("employees", "sso");
    let partner = gate.user("partners", "sso");
    assert_identity(&employees, "alice", "Alice", "alice@example.test");
    assert_identity(&partner, "alice", "Alice", "alice@example.test");
    assert_ne!(employees["userId"], partner["userId"]);
    assert_identity(
        &gate.user("employees", "gh"),
        "583231",
        "Mona Octocat",
        "mona@example.test",
    );
    assert_identity(
        &gate.user("partners", "partner-idp"),
        "77",
        "Ada Lovelace",
        "ada@example.test",
    );
    assert_eq!(gate.users().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_emails_are_not_passed_on() {
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    // The dev IdP says `email_verified: false` for logins starting with `unverified`: in
    // userinfo only (its default), or in the id_token as well.
    let (userinfo, id_token) = std::thread::scope(|s| {
        let a = s.spawn(|| idp(&site, &[]));
        let b = s.spawn(|| idp(&site, &["--claims-in-id-token"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    let providers = [
        provider(
            "web",
            "ui",
            &format!("type = \"oidc\"\nissuer_url = \"{}\"", userinfo.issuer),
        ),
        provider(
            "web",
            "idt",
            &format!("type = \"oidc\"\nissuer_url = \"{}\"", id_token.issuer),
        ),
    ]
    .concat();
    let gate = Gate::start(port, app("web", "web", &site, &providers));
    for provider_id in ["ui", "idt"] {
        let stored = |who: &str| {
            gate.users()
                .into_iter()
                .find(|u| u["providerId"] == provider_id && u["providerUserId"] == who)
                .unwrap_or_else(|| panic!("no user {who} of {provider_id}"))
        };
        // Verified: passed on, as before.
        let answer = login(&gate, "web", provider_id, Some("vera")).await;
        assert_eq!(user_claim(&answer)["email"], "vera@example.test");
        assert_eq!(stored("vera")["email"], "vera@example.test");
        // Unverified: the user signs in, without an address, in the store and in the token.
        let answer = login(&gate, "web", provider_id, Some("unverified-una")).await;
        let claim = user_claim(&answer);
        assert!(claim["email"].is_null(), "{provider_id}: {claim}");
        assert_eq!(claim["name"], "Unverified-Una", "{claim}");
        let user = stored("unverified-una");
        assert!(user["email"].is_null(), "{provider_id}: {user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_on_the_common_endpoint_admits_only_the_listed_tenants() {
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    // Entra ID's `common` endpoint: its discovery document announces the issuer template
    // `…/{tenantid}/v2.0`; this IdP's tokens carry tenant T1 in `iss` and `tid`.
    let t1 = "775527ff-9a37-4307-8b3d-cc311f58d925";
    let t2 = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let tenant_path = format!("/{t1}/v2.0");
    let entra = idp(
        &site,
        &[
            "--issuer-path",
            &tenant_path,
            "--multi-tenant-alias",
            "/common/v2.0",
            "--token-auth-method",
            "client_secret_post",
            "--claims-in-id-token",
        ],
    );
    let common = entra.issuer.replace(&tenant_path, "/common/v2.0");
    let providers = [
        provider(
            "web",
            "ms",
            &format!(
                "type = \"microsoft\"\nissuer_url = \"{common}\"\ntenants = [\"{}\"]",
                t1.to_uppercase()
            ),
        ),
        provider(
            "web",
            "ms-other",
            &format!("type = \"microsoft\"\nissuer_url = \"{common}\"\ntenants = [\"{t2}\"]"),
        ),
    ]
    .concat();
    let gate = Gate::start(port, app("web", "web", &site, &providers));

    // The listed tenant signs in.
    login(&gate, "web", "ms", Some("mia")).await;
    assert_identity(&gate.user("web", "ms"), "mia", "Mia", "mia@example.test");

    // The same IdP and tenant, through a provider that lists another tenant: refused, and no
    // user is created.
    let (status, body) = try_login(&gate, "web", "ms-other", Some("mallory")).await;
    assert_eq!(status, 401, "{body}");
    gate._idgate.proc.wait_log(&[
        "login refused: tenant not allowed",
        &format!("tenant `{t1}` is not one of the provider's `tenants`"),
    ]);
    assert!(!gate.users().iter().any(|u| u["providerId"] == "ms-other"));

    // Without a tenant list the configuration does not even load.
    let dir = tempfile::tempdir().unwrap();
    let text = config_toml(
        &Setup {
            apps: Some(app(
                "web",
                "web",
                &site,
                &provider("web", "ms", "type = \"microsoft\""),
            )),
            ..Setup::default()
        },
        dir.path(),
        &site,
        "http://127.0.0.1:1",
    );
    let path = dir.path().join("idgate.toml");
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = idgate_cmd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("apps.web.providers.ms.tenants") && err.contains("common"),
        "{err}"
    );
}

/// Bitbucket Server / Data Center (`bitbucket-server`) at a base URL with a context path,
/// against `tests/js/fake-bitbucket-server.mjs` (its documented OAuth 2.0 provider endpoints,
/// whoami and users API): the provider user id is the whoami username, the name and address
/// come from the users entry of exactly that name (the fake lists a decoy `jsmith-admin`
/// first, one per page), the client credentials go as request parameters (the fake refuses
/// HTTP Basic) and PKCE is checked. Bitbucket Cloud keeps working in the same instance under
/// the TOML's `bitbucket`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitbucket_server_through_its_documented_endpoints() {
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let (server, bs_url) = fake("fake-bitbucket-server.mjs", &site, &["--context", "/git"]);
    let (_cloud, bb_url) = fake("fake-bitbucket.mjs", &site, &[]);
    let providers = [
        provider(
            "web",
            "bbs",
            &format!("type = \"bitbucket-server\"\nbase_url = \"{bs_url}/git\""),
        ),
        provider(
            "web",
            "bb",
            &format!(
                "type = \"bitbucket\"\nauth_url = \"{bb_url}/site/oauth2/authorize\"\n\
                 token_url = \"{bb_url}/site/oauth2/access_token\"\napi_url = \"{bb_url}/2.0\""
            ),
        ),
    ]
    .concat();
    let gate = Gate::start(port, app("web", "web", &site, &providers));

    login(&gate, "web", "bbs", None).await;
    let user = gate.user("web", "bbs");
    assert_identity(&user, "jsmith", "Jane Smith", "jsmith@example.test");
    assert_eq!(user["username"], "jsmith");
    server.wait_log(&["token issued (form)"]);

    login(&gate, "web", "bb", None).await;
    let user = gate.user("web", "bb");
    assert_identity(
        &user,
        "{d301aafa-d676-4ee0-88be-962be7417567}",
        "Erik van Zijst",
        "erik@example.test",
    );
}
