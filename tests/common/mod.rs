//! The process-level test harness: starts the real neighbours — the `oidc-provider` IdP
//! (`tests/js/idp.mjs`), the idgate binary, and Nginx with the shipped snippets in front of an
//! echo app — on ephemeral loopback ports, waits for each by polling, and stops every child on
//! `Drop`. A missing component fails the test loudly: `scripts/test` installs them.
//!
//! The echo app is an Nginx server block that answers with the identity headers it received,
//! one `name=value` line each, so a test sees exactly what an upstream would; its last two
//! lines, `body-length=` and `body-sha256=`, describe the request body it received.

#![allow(dead_code)]
// Test support: a failed set-up step should stop the test with a message, not be handled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
pub mod redis;

pub mod dev;
pub mod fleet;
pub mod inproc;
pub mod load;
pub mod mia;
pub mod mongo;
pub mod raw;

/// The IdP client secret; distinctive so a test can prove it never reaches a log line.
pub const CLIENT_SECRET: &str = "idgate-test-client-secret-5b1e0c";

/// The administrative token the harness writes into `admin.token` next to every config.
pub const ADMIN_TOKEN: &str = "idgate-test-admin-token-0123456789abcdef";

/// The `[server]` line that enables the administrative endpoints with [`ADMIN_TOKEN`].
pub const ADMIN_TOKEN_LINE: &str = "admin_token_file = \"admin.token\"";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// A port nobody listens on right now, for servers that cannot report the port they bound
/// (Nginx). Taken below Linux's ephemeral range (32768+), so no `bind(…:0)` of a concurrently
/// starting IdP or idgate can be handed the same port; a per-process counter keeps the test
/// threads of one binary apart, and the pid spreads binaries apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 400) as u16 * 25;
    for _ in 0..1000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 10_000;
        let port = base + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port");
}

/// Polls until `f` returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long a component gets to be ready: a minute, since the machine may be busy.
pub const STARTUP: Duration = Duration::from_secs(60);

/// A child process stopped (SIGTERM, then SIGKILL) and reaped on drop; its stderr is kept.
pub struct Proc {
    name: String,
    child: std::process::Child,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Where the process writes its log, when not on stderr (Nginx's `-e`, Redis's `logfile`).
    log_file: Option<PathBuf>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name} ({cmd:?}): {e}; run scripts/install-deps")
            });
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let (log, name) = (log.clone(), name.to_owned());
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    log.lock().unwrap().push(line);
                }
            });
        }
        Self {
            name: name.to_owned(),
            child,
            log,
            log_file: None,
        }
    }

    /// Like [`Proc::spawn`], for a process that writes its log to `file` rather than stderr: a
    /// failure shows that file's end.
    pub fn spawn_logging_to(name: &str, cmd: &mut Command, file: &Path) -> Self {
        let mut proc = Self::spawn(name, cmd);
        proc.log_file = Some(file.to_owned());
        proc
    }

    /// Polls `f` until it returns `Some`, for up to [`STARTUP`]. Fails the test with the end of
    /// the process's log if the process exits first or the minute passes.
    pub fn ready<T>(&mut self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                self.is_running(),
                "{} exited before {what}; the end of its log:\n{}",
                self.name,
                self.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "{} not ready ({what}) within {STARTUP:?}; the end of its log:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (see [`Proc::ready`]) until something accepts connections on loopback `port`.
    pub fn ready_on_port(&mut self, port: u16) {
        self.ready(&format!("listening on port {port}"), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory, in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: no VmRSS in /proc", self.name))
    }

    /// How many file descriptors it has open (/proc/PID/fd).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or_else(|e| panic!("{}: /proc fd: {e}", self.name))
    }

    /// The process's TCP connections to remote port `port`: its socket descriptors, matched
    /// by inode to the kernel's connection tables (`/proc/PID/net/tcp` and `tcp6`).
    pub fn connections_to(&self, port: u16) -> usize {
        let pid = self.child.id();
        let inodes: std::collections::HashSet<String> =
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap_or_else(|e| panic!("{}: /proc fd: {e}", self.name))
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_str()?;
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect();
        ["tcp", "tcp6"]
            .iter()
            .flat_map(|table| {
                let text =
                    std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
                text.lines().skip(1).map(str::to_owned).collect::<Vec<_>>()
            })
            .filter(|line| {
                // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
                let cols: Vec<&str> = line.split_whitespace().collect();
                let remote_port = cols
                    .get(2)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                remote_port == Some(port) && cols.get(9).is_some_and(|i| inodes.contains(*i))
            })
            .count()
    }

    /// The first line the process prints on stdout; fails the test, with the tail of the
    /// process's stderr, if none comes within a minute.
    pub fn first_stdout_line(&mut self) -> String {
        self.first_stdout_line_within(Duration::from_secs(60))
            .unwrap_or_else(|| {
                panic!(
                    "{} printed nothing within a minute; its stderr:\n{}",
                    self.name,
                    self.log_tail()
                )
            })
    }

    /// The first line the process prints on stdout, if it prints one within `timeout`.
    pub fn first_stdout_line_within(&mut self, timeout: Duration) -> Option<String> {
        let out = self.child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the child never blocks on a full pipe.
            for _ in reader.lines() {}
        });
        let line = rx.recv_timeout(timeout).ok()?;
        assert!(
            !line.is_empty(),
            "{} exited before printing its address; its stderr:\n{}",
            self.name,
            self.log_tail()
        );
        Some(line)
    }

    /// The last lines the process wrote on stderr, then those of its log file if it has one.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let mut tail = log[log.len().saturating_sub(30)..].join("\n");
        if let Some(file) = &self.log_file {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            tail.push_str(&format!(
                "\n{}:\n{}",
                file.display(),
                lines[lines.len().saturating_sub(30)..].join("\n")
            ));
        }
        tail
    }

    /// Sends `signal` (e.g. "USR2") to the process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "kill -{signal} {}",
            self.name
        );
    }

    /// Waits (up to 10 s) until the process has logged a line containing every one of
    /// `needles`; its stderr is read by another thread, so a line may lag the event.
    pub fn wait_log(&self, needles: &[&str]) -> String {
        wait_for(
            &format!("{} to log {needles:?}", self.name),
            Duration::from_secs(10),
            || {
                let log = self.log_text();
                needles.iter().all(|n| log.contains(n)).then_some(log)
            },
        )
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then wait (SIGKILL after 10 s); returns the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            self.terminate();
        }
    }
}

/// The development IdP (`tests/js/idp.mjs`, oidc-provider).
pub struct Idp {
    pub issuer: String,
    pub proc: Proc,
}

impl Idp {
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
        // Node's key generation has been seen to hang at startup on a loaded machine (a
        // deadlock inside node::crypto::KeyGenJob, the process idle): such an IdP is replaced
        // once rather than hanging the test.
        let mut proc = Proc::spawn("idp", &mut cmd);
        let line = match proc.first_stdout_line_within(Duration::from_secs(60)) {
            Some(line) => line,
            None => {
                eprintln!(
                    "the IdP did not start within a minute; starting another. Its stderr:\n{}",
                    proc.log_tail()
                );
                proc = Proc::spawn("idp", &mut cmd);
                proc.first_stdout_line()
            }
        };
        let v: serde_json::Value = serde_json::from_str(&line).expect("idp prints JSON");
        let issuer = v["issuer"].as_str().expect("issuer").to_owned();
        Self { issuer, proc }
    }
}

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
            log.iter().find_map(|l| {
                let rest = l.split("listen=").nth(1)?;
                rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
            })
        });
        proc.ready_on_port(addr.port());
        Self { addr, config, proc }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Nginx serving `nginx/example-site.conf` (ports and include paths substituted) in front of an
/// echo server, using the shipped snippets themselves.
pub struct Nginx {
    pub port: u16,
    pub prefix: PathBuf,
    pub proc: Proc,
}

impl Nginx {
    /// `port` must be free; `idgate` is where the `idgate` upstream points.
    pub fn start(prefix: &Path, port: u16, idgate: SocketAddr) -> Self {
        Self::start_with_locations(prefix, port, idgate, "")
    }

    /// Like `start`, with `locations` added to the example site's server block.
    pub fn start_with_locations(
        prefix: &Path,
        port: u16,
        idgate: SocketAddr,
        locations: &str,
    ) -> Self {
        Self::start_full(prefix, port, &[idgate], locations)
    }

    /// Nginx in front of several idgate instances (one `upstream idgate` with a `server` line
    /// each), as a scaled-out deployment runs it.
    pub fn start_multi(prefix: &Path, port: u16, idgates: &[SocketAddr]) -> Self {
        Self::start_full(prefix, port, idgates, "")
    }

    /// Like `start`, with the snippets from `snippets` (e.g. the package's
    /// `/etc/nginx/snippets/idgate`) instead of the repository's.
    pub fn start_with_snippets(
        prefix: &Path,
        port: u16,
        idgate: SocketAddr,
        snippets: &Path,
    ) -> Self {
        Self::start_from(prefix, port, &[idgate], "", snippets)
    }

    fn start_full(prefix: &Path, port: u16, idgates: &[SocketAddr], locations: &str) -> Self {
        Self::start_from(prefix, port, idgates, locations, &repo().join("nginx"))
    }

    fn start_from(
        prefix: &Path,
        port: u16,
        idgates: &[SocketAddr],
        locations: &str,
        snippets: &Path,
    ) -> Self {
        let nginx = which("nginx").expect("nginx is not installed: run scripts/install-deps");
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        // The snippets as shipped, copied with their includes pointing at the copies, the
        // decision microcache's files in the prefix (not under /run, the shipped path).
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        let copies = dev::copy_snippets(
            snippets,
            &prefix.join("snippets"),
            &prefix.join("tmp/decisions"),
        );
        let snippets = copies.as_path();
        // A test's own locations name the shipped files (`<repo>/nginx/idgate-protect.conf`):
        // they include the copies, whose own includes point at the copies too.
        let locations = &locations.replace(
            &format!("{}/", repo().join("nginx").display()),
            &format!("{}/", snippets.display()),
        );
        // The shipped `server` line, once per instance with the shipped parameters.
        let shipped = std::fs::read_to_string(snippets.join("idgate-upstream.conf")).unwrap();
        let line = shipped
            .lines()
            .find(|l| l.trim_start().starts_with("server 127.0.0.1:4280"))
            .expect("the upstream's server line");
        let servers: Vec<String> = idgates
            .iter()
            .map(|a| line.replace("127.0.0.1:4280", &a.to_string()))
            .collect();
        let upstream = shipped.replace(line, &servers.join("\n"));
        std::fs::write(snippets.join("idgate-upstream.conf"), upstream).unwrap();
        let echo_port = free_port();
        let site = std::fs::read_to_string(repo().join("nginx/example-site.conf"))
            .unwrap()
            .replace(
                "/etc/nginx/snippets/idgate/",
                &format!("{}/", snippets.display()),
            )
            .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{echo_port}"));
        let end = site.rfind('}').expect("a server block");
        let site = format!(
            "{}{}\n{}",
            &site[..end],
            locations.replace("ECHO_PORT", &echo_port.to_string()),
            &site[end..]
        );
        std::fs::write(prefix.join("site.conf"), site).unwrap();
        let recorder = start_body_recorder();
        let http = format!(
            r#"    include {p}/site.conf;
    # The upstream app: echoes the identity headers it received, and the length and SHA-256
    # of the request body. `return` reads no body, so every request first goes to the body
    # recorder (`start_body_recorder`), which reads the body Nginx forwards and hands the
    # request back with `X-Accel-Redirect` and its findings in two headers.
    server {{
        listen 127.0.0.1:{echo_port};
        client_max_body_size 8m;
        location / {{
            proxy_pass http://{recorder};
        }}
        location = /_idgate_test_echo {{
            internal;
            default_type text/plain;
            return 200 "uri=$request_uri\nmiauserid=$http_miauserid\nmiausergroups=$http_miausergroups\nmiauserproperties=$http_miauserproperties\nmia-allowed=$http_mia_allowed\nx-auth-request-user=$http_x_auth_request_user\nx-auth-request-email=$http_x_auth_request_email\nx-auth-request-groups=$http_x_auth_request_groups\nx-auth-request-preferred-username=$http_x_auth_request_preferred_username\nx-user-id=$http_x_user_id\nx-user-email=$http_x_user_email\nauthorization=$http_authorization\ncookie=$http_cookie\nbody-length=$upstream_http_x_body_length\nbody-sha256=$upstream_http_x_body_sha256\n";
        }}
    }}"#,
            p = prefix.display()
        );
        let conf = dev::render(
            "nginx.conf",
            &[
                ("PREFIX", &prefix.display().to_string()),
                ("CONNECTIONS", "8192"),
                ("HTTP", &http),
            ],
        );
        std::fs::write(prefix.join("nginx.conf"), conf).unwrap();
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"));
        cmd.arg("-e").arg(prefix.join("logs/error.log"));
        let mut proc = Proc::spawn_logging_to("nginx", &mut cmd, &prefix.join("logs/error.log"));
        proc.ready_on_port(port);
        Self {
            port,
            prefix: prefix.to_owned(),
            proc,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// One of the project's scripts (`scripts/…`), run with the environment a person's shell would
/// give it: the variables `cargo test` sets for the test are removed, so that a release build the
/// script makes sees what a build by hand sees and reuses its artefacts.
pub fn script_command(script: &str) -> Command {
    let mut cmd = Command::new(repo().join(script));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if (name.starts_with("CARGO_") && name != "CARGO_HOME" && name != "CARGO_TARGET_DIR")
            || name.starts_with("RUST_")
            || name == "OUT_DIR"
        {
            cmd.env_remove(&name);
        }
    }
    cmd
}

pub fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Options for the idgate config the harness writes.
pub struct Setup {
    pub algorithm: &'static str,
    pub key: &'static str,
    pub access_ttl: &'static str,
    /// Lines added to `[apps.web]`; `{{SITE}}` stands for the site's URL.
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
    /// `website` of the `web` app (cookies from `/oauth/token`).
    pub website: bool,
    /// Nginx `location` blocks added to the example site (`ECHO_PORT` = the echo app's port).
    pub nginx_locations: String,
    /// Leaves out the `[apps.web]` block (and `extra_app`), for apps that come from elsewhere
    /// (`mia_config`); default false.
    pub omit_apps: bool,
    /// Replaces the `[apps.web]` block, `extra_app` and its `dev` provider with this text
    /// (several apps and providers; `{{SITE}}` and `{{ISSUER}}` stand for the site's URL and
    /// the IdP's issuer); default None.
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
        let idp = Idp::start(
            &[
                format!("{site}/web-login/oauth/callback"),
                format!("{site}/web-login/callback"),
            ],
            &extra,
        );
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
    let config = dev::render(
        "idgate.toml",
        &[
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
            ("WEBSITE", &setup.website.to_string()),
            ("APP", &setup.extra_app.replace("{{SITE}}", site)),
            ("ISSUER", issuer),
            ("CLIENT_SECRET", CLIENT_SECRET),
            ("PROVIDER", setup.extra_provider),
        ],
    );
    match config.split_once("\n[apps.web]\n") {
        Some((before_apps, _)) if setup.apps.is_some() => {
            format!(
                "{before_apps}\n{}\n",
                setup
                    .apps
                    .as_deref()
                    .unwrap_or_default()
                    .replace("{{SITE}}", site)
                    .replace("{{ISSUER}}", issuer)
            )
        }
        Some((before_apps, _)) if setup.omit_apps => format!("{before_apps}\n"),
        _ => config,
    }
}

/// idgate alone, its IdP unreachable (it is only contacted at login); for tests of `/auth`,
/// tokens, parameters and the CLI.
pub fn start_idgate_alone(setup: Setup) -> (tempfile::TempDir, Idgate) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_toml(
        &setup,
        dir.path(),
        "http://127.0.0.1:8080",
        "http://127.0.0.1:1",
    );
    let idgate = Idgate::start(dir.path(), &config);
    (dir, idgate)
}

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

    /// POSTs the callback URL's `code` and `state` to `/oauth/token` as JSON, as the callback
    /// page's script does.
    pub async fn exchange(&self, site: &str, callback: &str) -> reqwest::Response {
        self.client
            .post(format!("{site}/oauth/token"))
            .json(&serde_json::json!({
                "code": query_param(callback, "code").expect("code"),
                "state": query_param(callback, "state").expect("state"),
            }))
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
                ("password", "any-password"),
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
        let (callback, _) = self.follow(next, callback_prefix).await;
        assert!(
            callback.starts_with(callback_prefix),
            "IdP did not come back: {callback}"
        );
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

/// The echo app's body recorder: a loopback HTTP/1.0 server (one request per connection, as
/// Nginx's `proxy_pass` speaks by default) that reads the request body and answers with no body
/// but `X-Accel-Redirect: /_idgate_test_echo`, `X-Body-Length` and `X-Body-Sha256` (lowercase
/// hex), so the echo server's internal location renders the answer. Lives as long as the test
/// process; returns its address.
pub fn start_body_recorder() -> SocketAddr {
    use sha2::Digest;
    use std::io::{Read, Write};
    /// Longest request head read; Nginx's own limits are far below it.
    const MAX_HEAD: usize = 1 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) if buf.len() + n <= MAX_HEAD => buf.extend_from_slice(&chunk[..n]),
                        Ok(_) => return,
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let length: usize = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = buf[head_end..].to_vec();
                while body.len() < length {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                body.truncate(length);
                let sha: String = sha2::Sha256::digest(&body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let _ = write!(
                    conn,
                    "HTTP/1.0 200 OK\r\nX-Accel-Redirect: /_idgate_test_echo\r\n\
                     X-Body-Length: {length}\r\nX-Body-Sha256: {sha}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
            });
        }
    });
    addr
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

/// Every `Set-Cookie` of a response, as sent.
pub fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}
