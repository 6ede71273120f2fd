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

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
pub mod redis;

pub mod caddy;
pub mod dev;
pub mod fleet;
pub mod inproc;
pub mod lies;
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

/// A port nobody listens on right now and no other test holds, for servers that cannot report
/// the port they bound (Nginx). Taken below Linux's ephemeral range (32768+), so no `bind(…:0)`
/// of a concurrently starting IdP or idgate can be handed the same port. A lock on a file named
/// after the port, held until this process exits, keeps test processes apart: `scripts/test`
/// runs each test in a process of its own, and a test may hold a port unbound for minutes (the
/// demo's release build comes between choosing its ports and Nginx binding them); a counter
/// keeps the threads of one process apart, and the pid spreads processes over the range.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let locks = std::env::temp_dir().join("idgate-test-ports");
    std::fs::create_dir_all(&locks).unwrap();
    let base = 20_000 + (std::process::id() % 400) as u16 * 25;
    for _ in 0..1000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 10_000;
        let port = base + offset;
        let lock = std::fs::File::create(locks.join(port.to_string())).unwrap();
        if lock.try_lock().is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            HELD.lock().unwrap().push(lock);
            return port;
        }
    }
    panic!("no free loopback port");
}

/// Polls until `f` returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    wait_for_or(what, timeout, f, String::new)
}

/// [`wait_for`], whose failure also says what `report` finds then (logs, processes).
pub fn wait_for_or<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    report: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}\n{}", report());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `n` lines of `text` (a log read for a failed test's message).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
mod binary;
mod browser;
mod idp;
mod nginx;
mod proc;
mod setup;

pub use binary::*;
pub use browser::*;
pub use idp::*;
pub use nginx::*;
pub use proc::*;
pub use setup::*;

/// One of the project's scripts (`scripts/…`), run with the environment a person's shell would
/// give it: the variables `cargo test` sets for the test are removed, so that a release build the
/// script makes sees what a build by hand sees and reuses its artefacts.
pub fn script_command(script: &str) -> Command {
    without_cargo_env(Command::new(repo().join(script)))
}

/// [`script_command`], with SIGINT back at its default action for the script, as in a terminal.
/// A process started in the background without job control (`nohup … &`, many CI runners)
/// ignores SIGINT, its children inherit that, and a shell that starts with SIGINT ignored
/// cannot trap it: Ctrl-C sent to the script would do nothing.
pub fn script_command_with_sigint(script: &str) -> Command {
    let mut cmd = Command::new("env");
    cmd.arg("--default-signal=INT").arg(repo().join(script));
    without_cargo_env(cmd)
}

fn without_cargo_env(mut cmd: Command) -> Command {
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
