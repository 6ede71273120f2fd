//! The idgate binary under test (a cleared environment, its listen address read from its log),
//! its admin commands, and the readers of its answers and metrics shared with the in-process
//! tier (`Served`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

/// The idgate binary, started on `127.0.0.1:0` with a config written into `dir`.
pub struct Idgate {
    pub addr: SocketAddr,
    pub config: PathBuf,
    pub proc: Proc,
}

/// idgate's log filter in the tests: `IDGATE_TEST_LOG`, else every request at debug (the
/// tests read the log).
pub fn log_filter() -> String {
    std::env::var("IDGATE_TEST_LOG").unwrap_or_else(|_| "info,idgate=debug".into())
}

pub fn idgate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_idgate")
}

/// `bin` (an idgate binary) with a cleared environment, `PATH` and the tests' log filter only: a
/// `REDIS_HOST` or `LOG_LEVEL` in the developer's shell does not reach the idgate under test.
pub fn idgate_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", log_filter());
    cmd
}

/// Runs an idgate command (`users list`, …) to completion; returns (status code, stdout, stderr).
pub fn idgate_cmd(args: &[&str]) -> (i32, String, String) {
    let out = idgate_command(Path::new(idgate_bin()))
        .args(args)
        .output()
        .expect("run idgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An idgate the tests talk to directly: the binary ([`Idgate`]) or the in-process server
/// (`inproc::InProc`).
pub trait Served {
    /// `path` on idgate itself.
    fn url(&self, path: &str) -> String;
    /// The config file it serves (the admin commands read it).
    fn config_file(&self) -> &Path;
}

impl<T: Served> Served for &T {
    fn url(&self, path: &str) -> String {
        (*self).url(path)
    }

    fn config_file(&self) -> &Path {
        (*self).config_file()
    }
}

impl Served for Idgate {
    fn url(&self, path: &str) -> String {
        Idgate::url(self, path)
    }

    fn config_file(&self) -> &Path {
        &self.config
    }
}

/// `idgate sessions mint`: a stored session for `user` with `groups` (comma-separated), as a JWT.
pub fn mint(idgate: &impl Served, user: &str, groups: &str) -> String {
    let config = idgate.config_file().to_str().unwrap();
    let (code, out, err) = idgate_cmd(&[
        "sessions", "mint", "--config", config, "--user", user, "--groups", groups,
    ]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

/// The status `/auth` answers for the session cookie `token`.
pub async fn auth_status(idgate: &impl Served, token: &str) -> u16 {
    Browser::new()
        .client
        .get(idgate.url("/auth"))
        .header("cookie", format!("sid={token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

impl Idgate {
    /// `idgate users list` against this instance's store.
    pub fn users(&self) -> serde_json::Value {
        let (code, out, err) =
            idgate_cmd(&["users", "list", "--config", self.config.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    }

    /// The id of the user who logged in first.
    pub fn first_user_id(&self) -> String {
        self.users()[0]["userId"]
            .as_str()
            .expect("a user")
            .to_owned()
    }

    pub fn start(dir: &Path, config_toml: &str) -> Self {
        Self::start_bin(Path::new(idgate_bin()), dir, config_toml)
    }

    /// Like `start`, with another idgate binary (the installed package's).
    pub fn start_bin(bin: &Path, dir: &Path, config_toml: &str) -> Self {
        Self::start_with_env(bin, dir, config_toml, &[])
    }

    /// Like `start_bin`, with `env` added to idgate's (otherwise cleared) environment.
    pub fn start_with_env(
        bin: &Path,
        dir: &Path,
        config_toml: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Self {
        let config = dir.join("idgate.toml");
        std::fs::write(&config, config_toml).unwrap();
        let mut cmd = idgate_command(bin);
        cmd.args(["serve", "--config"]).arg(&config);
        cmd.envs(env.iter().copied());
        let mut proc = Proc::spawn("idgate", &mut cmd);
        let log = proc.log.clone();
        let addr = proc.ready("its listen address in the log", || {
            let log = log.lock().unwrap();
            log.iter().find_map(|l| listen_address(l))
        });
        proc.ready_on_port(addr.port());
        Self { addr, config, proc }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// The address in idgate's `listening` log line (`listen=ADDR`), if `line` is that line.
pub fn listen_address(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listen=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The value of the sample `name` (with its labels, as printed) in `idgate`'s `/-/metrics`.
pub async fn metric(idgate: &impl Served, name: &str) -> u64 {
    let text = Browser::new()
        .client
        .get(idgate.url("/-/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// How many `/auth` requests `idgate`'s token cache has answered
/// (`idgate_token_cache_total{result="hit"}` of `/-/metrics`): a test that claims the cache
/// answered checks this counter moved.
pub async fn cache_hits(idgate: &impl Served) -> u64 {
    metric(idgate, r#"idgate_token_cache_total{result="hit"}"#).await
}

impl Idgate {
    /// The log, once idgate's log line for a request made now (to a path nobody else uses)
    /// has been read: everything idgate logged before this call is in it. For checks that
    /// something is NOT in the log (it is read by another thread, so it may lag).
    pub async fn log_caught_up(&self) -> String {
        let marker = format!("/-/log-marker-{}", uuid::Uuid::new_v4().simple());
        let _ = Browser::new()
            .client
            .get(self.url(&marker))
            .send()
            .await
            .unwrap();
        self.proc.wait_log(&[&format!("path={marker}")])
    }
}

/// Waits (up to 5 s) until `/auth` accepts `token` from its cache (the cache-hit counter moves
/// with a 200): the cache is used only once the revocation feed is current.
pub async fn served_from_cache(idgate: &Idgate, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let hits = cache_hits(idgate).await;
        let status = auth_status(idgate, token).await;
        if status == 200 && cache_hits(idgate).await > hits {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/auth never answered {token:.20}… from its cache (last status {status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
