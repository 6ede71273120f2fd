//! What a test runs: its `Setup` (the knobs of `dev/idgate.toml`), the idgate config rendered
//! from it, and the whole `Stack` (IdP, idgate, Nginx).

use std::path::Path;

use super::*;

/// Options for the idgate config the harness writes.
pub struct Setup {
    pub algorithm: &'static str,
    pub key: &'static str,
    pub access_ttl: &'static str,
    /// Lines added to `[apps.web]`; `{{SITE}}` stands for the site's URL, `{{SITE_AS_LOCALHOST}}`
    /// for the same site under `localhost`: another origin, served by the same Nginx.
    pub extra_app: &'static str,
    /// Lines added to `[session]`.
    pub extra_session: &'static str,
    /// Lines added to `[apps.web.providers.dev]`.
    pub extra_provider: &'static str,
    pub trusted_peers: &'static str,
    /// Lines before `[server]` (top-level keys).
    pub extra: &'static str,
    /// Lines added to `[server]` (e.g. `admin_token_file = "admin.token"`: the harness writes
    /// [`ADMIN_TOKEN`] into that file).
    pub extra_server: &'static str,
    /// Replaces the `[store]` section (default: embedded, `idgate.db`).
    pub store: Option<String>,
    /// Replaces the `[users]` section (default: embedded).
    pub users: Option<String>,
    /// Replaces the `[login_limits]` section (default: limits no test reaches).
    pub login_limits: Option<String>,
    /// `website` of the `web` app (cookies from `/oauth/token`).
    pub website: bool,
    /// Nginx `location` blocks added to the example site (`ECHO_PORT` = the echo app's port).
    pub nginx_locations: String,
    /// Leaves out the `[apps.web]` block (and `extra_app`), for apps that come from elsewhere
    /// (`mia_config`); default false.
    pub omit_apps: bool,
    /// Replaces the `[apps.web]` block, `extra_app` and its `dev` provider with this text
    /// (several apps and providers; `{{SITE}}`, `{{SITE_AS_LOCALHOST}}` and `{{ISSUER}}` stand
    /// for the site's URL, under 127.0.0.1 and under localhost, and the IdP's issuer); default
    /// None.
    pub apps: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            algorithm: "RS256",
            key: "rs256.pem",
            access_ttl: "15m",
            extra_app: "",
            extra_session: "",
            extra_provider: "",
            trusted_peers: r#"["127.0.0.1/32", "::1/128"]"#,
            extra: "",
            extra_server: "",
            store: None,
            users: None,
            login_limits: None,
            nginx_locations: String::new(),
            website: true,
            omit_apps: false,
            apps: None,
        }
    }
}

/// The whole gateway: IdP, idgate, Nginx + echo app.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub nginx: Nginx,
    pub idgate: Idgate,
    pub idp: Idp,
}

impl Stack {
    pub fn start() -> Self {
        Self::start_with(Setup::default())
    }

    pub fn start_with(setup: Setup) -> Self {
        Self::start_with_idp(setup, &[])
    }

    /// Like `start_with`, with `idp_extra` options of `tests/js/idp.mjs` as well (e.g.
    /// `--sign-endpoint`, `--log-logout-tokens`).
    pub fn start_with_idp(setup: Setup, idp_extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let site = format!("http://127.0.0.1:{port}");
        let post_logout = format!("{site}/");
        let backchannel = format!("{site}/backchannel-logout/web/dev");
        let mut extra = vec![
            "--post-logout-redirect-uri",
            &post_logout,
            "--backchannel-logout-uri",
            &backchannel,
        ];
        extra.extend_from_slice(idp_extra);
        let idp = Idp::for_site(&site, &extra);
        let config = config_toml(&setup, dir.path(), &site, &idp.issuer);
        let idgate = Idgate::start(dir.path(), &config);
        let nginx = Nginx::start_with_locations(
            &dir.path().join("nginx"),
            port,
            idgate.addr,
            &setup.nginx_locations,
        );
        Self {
            dir,
            nginx,
            idgate,
            idp,
        }
    }

    pub fn site(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx.port)
    }
}

/// The idgate config the harness writes: one website app `web` on `site`, one OIDC provider
/// `dev` at `issuer`, the embedded store in `dir` (the signing key is copied there too).
pub fn config_toml(setup: &Setup, dir: &Path, site: &str, issuer: &str) -> String {
    std::fs::copy(fixture(setup.key), dir.join(setup.key)).unwrap();
    std::fs::write(dir.join("admin.token"), ADMIN_TOKEN).unwrap();
    let store = setup
        .store
        .as_deref()
        .unwrap_or("[store]\nkind = \"embedded\"\npath = \"idgate.db\"");
    let users = setup
        .users
        .as_deref()
        .unwrap_or("[users]\nkind = \"embedded\"");
    let app = setup.extra_app.replace("{{SITE}}", site).replace(
        "{{SITE_AS_LOCALHOST}}",
        &site.replace("127.0.0.1", "localhost"),
    );
    let website = setup.website.to_string();
    let mut values = vec![
        ("BEFORE", setup.extra),
        ("TRUSTED_PEERS", setup.trusted_peers),
        ("SERVER", setup.extra_server),
        ("ALGORITHM", setup.algorithm),
        ("KEY", setup.key),
        ("ACCESS_TTL", setup.access_ttl),
        ("SESSION", setup.extra_session),
        ("STORE", store),
        ("USERS", users),
        ("SITE", site),
        ("WEBSITE", &website),
        ("APP", &app),
        ("ISSUER", issuer),
        ("CLIENT_SECRET", CLIENT_SECRET),
        ("PROVIDER", setup.extra_provider),
    ];
    if let Some(limits) = &setup.login_limits {
        values.push(("LOGIN_LIMITS", limits));
    }
    let config = dev::render("idgate.toml", &values);
    match config.split_once("\n[apps.web]\n") {
        Some((before_apps, _)) if setup.apps.is_some() => {
            format!(
                "{before_apps}\n{}\n",
                setup
                    .apps
                    .as_deref()
                    .unwrap_or_default()
                    .replace("{{SITE}}", site)
                    .replace(
                        "{{SITE_AS_LOCALHOST}}",
                        &site.replace("127.0.0.1", "localhost")
                    )
                    .replace("{{ISSUER}}", issuer)
            )
        }
        Some((before_apps, _)) if setup.omit_apps => format!("{before_apps}\n"),
        _ => config,
    }
}

/// The config of idgate alone in `dir`, its IdP unreachable (it is only contacted at login).
pub fn alone_config(setup: &Setup, dir: &Path) -> String {
    config_toml(setup, dir, "http://127.0.0.1:8080", "http://127.0.0.1:1")
}

/// idgate alone ([`alone_config`]); for tests of `/auth`, tokens, parameters and the CLI.
pub fn start_idgate_alone(setup: Setup) -> (tempfile::TempDir, Idgate) {
    start_idgate_alone_with_env(setup, &[])
}

/// Like [`start_idgate_alone`], with `env` added to idgate's (otherwise cleared) environment.
pub fn start_idgate_alone_with_env(
    setup: Setup,
    env: &[(&str, &std::ffi::OsStr)],
) -> (tempfile::TempDir, Idgate) {
    let dir = tempfile::tempdir().unwrap();
    let config = alone_config(&setup, dir.path());
    let idgate = Idgate::start_with_env(Path::new(idgate_bin()), dir.path(), &config, env);
    (dir, idgate)
}

/// [`Setup::apps`] text for the harness's `web` app and its `dev` provider, as `dev/idgate.toml`
/// has them, with `extra_redirects` allowed besides the site and `provider` lines in the
/// provider: its credentials (the template's `client_secret` is left out, so a test can
/// authenticate another way; [`client_secret_line`] gives it back) and any other key.
pub fn web_app(extra_redirects: &[&str], provider: &str) -> String {
    let redirects: String = std::iter::once("{{SITE}}/")
        .chain(extra_redirects.iter().copied())
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"[apps.web]
realm = "web"
issuer = "{{{{SITE}}}}"
redirect_url = "{{{{SITE}}}}/web-login/oauth/callback"
website = true
default_groups = ["users"]
default_provider = "dev"
allowed_redirects = [{redirects}]

[apps.web.providers.dev]
type = "oidc"
issuer_url = "{{{{ISSUER}}}}"
client_id = "idgate"
scope = ["openid", "profile", "email"]
label = "Development IdP"
{provider}
"#
    )
}

/// The `client_secret` line of the harness's `dev` provider.
pub fn client_secret_line() -> String {
    format!("client_secret = \"{CLIENT_SECRET}\"")
}
