//! The in-process test tier: idgate's own server, built from a config file exactly as
//! `idgate serve` builds it, listening on `127.0.0.1:0` and served by `server::run_until` inside
//! the test's runtime. No Nginx and no idgate process: a test reaches idgate's endpoints
//! directly (its `/auth` with the `Original-Request-*` headers the shipped snippet would send),
//! and starts in milliseconds, so `scripts/mutants` can run these tests for every mutant of the
//! route-level modules. The IdP, when a test needs a login, is still the real one
//! (`tests/js/idp.mjs`).
//!
//! The config is read with an empty environment: a `REDIS_HOST` or `LOG_LEVEL` in the
//! developer's shell does not leak into the server under test.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use idgate::config::Config;
use idgate::server::Listener;
use idgate::signal::Stop;
use idgate::state::AppState;

use super::{config_toml, location, Browser, Idp, Served, Setup};

/// A running in-process idgate; stopped (connections closed at once) on drop.
pub struct InProc {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub config: PathBuf,
    pub state: Arc<AppState>,
    /// What requests are served with, swapped by [`InProc::reload`] as SIGHUP swaps it.
    shared: idgate::server::SharedState,
    issuer: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl InProc {
    /// Builds and serves idgate from the harness's config for `setup`, its app's site being
    /// idgate's own address (the browser talks to idgate directly), its provider at `issuer`
    /// (unreachable is fine for tests without a login).
    pub async fn start(setup: &Setup, issuer: &str) -> Self {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(tcp, setup, issuer).await
    }

    /// Like [`InProc::start`], with the real development IdP (`idp_extra`: options of
    /// `tests/js/idp.mjs`) knowing idgate's callbacks, post-logout page and back-channel URL.
    pub async fn start_with_idp(setup: &Setup, idp_extra: &[&str]) -> (Self, Idp) {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let site = format!("http://{}", tcp.local_addr().unwrap());
        let (post_logout, backchannel) = (
            format!("{site}/"),
            format!("{site}/backchannel-logout/web/dev"),
        );
        let mut extra = vec![
            "--post-logout-redirect-uri",
            &post_logout,
            "--backchannel-logout-uri",
            &backchannel,
        ];
        extra.extend_from_slice(idp_extra);
        let idp = tokio::task::block_in_place(|| Idp::for_site(&site, &extra));
        let server = Self::serve(tcp, setup, &idp.issuer).await;
        (server, idp)
    }

    async fn serve(tcp: tokio::net::TcpListener, setup: &Setup, issuer: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = tcp.local_addr().unwrap();
        let site = format!("http://{addr}");
        let path = dir.path().join("idgate.toml");
        std::fs::write(&path, config_toml(setup, dir.path(), &site, issuer)).unwrap();
        let config = Config::load_with_env(&path, &HashMap::<String, String>::new())
            .unwrap_or_else(|e| panic!("the test config does not load: {e}"));
        let state = AppState::build(config).await.unwrap();
        let _background = state.spawn_background();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::new(arc_swap::ArcSwap::new(state.clone()));
        tokio::spawn(idgate::server::run_shared(
            vec![Listener::Tcp(tcp)],
            shared.clone(),
            async move {
                let _ = stopped.await;
                Stop::Fast
            },
        ));
        Self {
            dir,
            addr,
            config: path,
            state,
            shared,
            issuer: issuer.to_owned(),
            stop: Some(stop),
        }
    }

    /// Serves from now on with the config of `setup` (same folder, site and IdP), as a SIGHUP
    /// with a changed file would: the stores are the same files, requests in flight finish on
    /// the old state.
    pub async fn reload(&self, setup: &Setup) {
        let text = config_toml(setup, self.dir.path(), &self.site(), &self.issuer);
        std::fs::write(&self.config, text).unwrap();
        let config = Config::load_with_env(&self.config, &HashMap::<String, String>::new())
            .unwrap_or_else(|e| panic!("the reloaded test config does not load: {e}"));
        self.shared.store(AppState::build(config).await.unwrap());
    }

    /// The whole browser login for `login` against idgate directly, from `/authorize` to
    /// `POST /oauth/token`, whose response is returned (its cookies are in the browser's jar).
    pub async fn login(&self, idp: &Idp, browser: &Browser, login: &str) -> reqwest::Response {
        let site = self.site();
        let resp = browser
            .navigate(&format!(
                "{site}/authorize?appId=web&providerId=dev&redirect=%2F"
            ))
            .await;
        assert_eq!(resp.status(), 302, "/authorize");
        let idp_url = location(&resp);
        assert!(idp_url.starts_with(&idp.issuer), "{idp_url}");
        let callback = browser
            .login_at_idp(&idp_url, login, &format!("{site}/web-login/"))
            .await;
        browser.exchange(&site, &callback).await
    }

    /// The site's URL (idgate itself).
    pub fn site(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.site())
    }

    /// A `GET /auth` as the shipped snippet sends it for `method uri`, with `cookie` and
    /// `authorization` headers when given and a browser's or an API client's `Accept`.
    pub async fn auth(
        &self,
        method: &str,
        uri: &str,
        cookie: Option<&str>,
        authorization: Option<&str>,
        browser: bool,
    ) -> reqwest::Response {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut req = client
            .get(self.url("/auth"))
            .header("original-request-uri", uri)
            .header("original-request-method", method)
            .header(
                "accept",
                if browser {
                    "text/html,application/xhtml+xml,*/*;q=0.8"
                } else {
                    "application/json"
                },
            );
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send().await.unwrap()
    }
}

impl InProc {
    /// A `GET /auth` for `GET uri` (no `Original-Request-Uri` when `uri` is empty) with the
    /// extra `headers` given (an API client's `Accept` unless one is given).
    pub async fn auth_with(&self, uri: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .get(self.url("/auth"))
            .header("original-request-method", "GET");
        if !uri.is_empty() {
            req = req.header("original-request-uri", uri);
        }
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
        {
            req = req.header("accept", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }
}

impl Served for InProc {
    fn url(&self, path: &str) -> String {
        InProc::url(self, path)
    }

    fn config_file(&self) -> &std::path::Path {
        &self.config
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
