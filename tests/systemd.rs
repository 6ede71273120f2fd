//! idgate under systemd's protocols, with the real binary: socket activation (the sockets
//! `systemd-socket-activate` passes, as `idgate.socket` does, TCP and unix, instead of
//! `[server] listen`; a passed socket idgate cannot serve stops the start) and the service
//! notifications (`READY=1`, `WATCHDOG=1` at half `WATCHDOG_USEC`, `STOPPING=1`) on a
//! `NOTIFY_SOCKET` the test listens on, and SIGTERM and SIGHUP sent the instant `READY=1`
//! arrives. (The watchdog stopping when the runtime is stuck is a unit test: `systemd::tests`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// A config whose own listen address is `listen` (its IdP is never asked: no login here).
fn config(dir: &Path, listen: &str) -> String {
    let toml = config_toml(
        &Setup::default(),
        dir,
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
    );
    let config = toml.replace(
        "listen = [\"127.0.0.1:0\"]",
        &format!("listen = [\"{listen}\"]"),
    );
    assert!(config.contains(listen), "{config}");
    let path = dir.join("idgate.toml");
    std::fs::write(&path, &config).unwrap();
    config
}

/// `GET path` over the unix socket at `sock`: the status line.
fn status_over_unix(sock: &Path, path: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: idgate\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// `systemd-socket-activate` listening on `sockets`, to start idgate with them on the first
/// connection (as systemd does with `idgate.socket`); `extra` goes before the sockets.
fn activated(dir: &Path, sockets: &[String], extra: &[&str]) -> Proc {
    assert!(
        which("systemd-socket-activate").is_some(),
        "systemd-socket-activate missing (package systemd): run scripts/install-deps"
    );
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", log_filter())
        .args(extra);
    for s in sockets {
        cmd.args(["-l", s]);
    }
    cmd.arg(idgate_bin())
        .args(["serve", "--config"])
        .arg(dir.join("idgate.toml"));
    let mut proc = Proc::spawn("idgate", &mut cmd);
    // systemd-socket-activate says so once its sockets are bound.
    let log = proc.log.clone();
    proc.ready("its sockets bound", || {
        let bound = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("Listening on"))
            .count();
        (bound == sockets.len()).then_some(())
    });
    proc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activation_serves_the_sockets_systemd_passes_instead_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let own = free_port();
    config(dir.path(), &format!("127.0.0.1:{own}"));
    let port = free_port();
    let sock = dir.path().join("idgate.sock");
    let mut proc = activated(
        dir.path(),
        &[format!("127.0.0.1:{port}"), sock.display().to_string()],
        &[],
    );
    // The first connection starts idgate, which accepts it on the socket it was given.
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/-/healthz"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    proc.wait_log(&["serving the sockets systemd passed", "sockets=2"]);
    assert_eq!(status_over_unix(&sock, "/-/healthz"), "HTTP/1.1 200 OK");
    // Its own listen address is not bound: systemd's sockets replace it.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", own)).is_err(),
        "[server] listen is not used under socket activation"
    );
    let status = proc.terminate().expect("idgate stops on SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_socket_idgate_cannot_serve_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "127.0.0.1:0");
    let port = free_port();
    let mut proc = activated(dir.path(), &[format!("127.0.0.1:{port}")], &["--datagram"]);
    // A datagram starts it (a datagram socket is what it was given).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while proc.is_running() {
        assert!(Instant::now() < deadline, "{}", proc.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    }
    proc.wait_log(&[
        "socket 1 passed by systemd (LISTEN_FDS) is not a listening TCP or unix stream socket",
    ]);
}

/// The datagrams idgate sent to the test's `NOTIFY_SOCKET` so far, as text.
fn notifications(socket: &UnixDatagram, into: &mut Vec<String>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        into.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_then_watchdog_pings_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&notify_path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let toml = config(dir.path(), "127.0.0.1:0");
    // WatchdogSec=200ms: a ping every 100 ms; WATCHDOG_PID unset is accepted (sd_watchdog_enabled).
    let mut idgate = Idgate::start_with_env(
        Path::new(idgate_bin()),
        dir.path(),
        &toml,
        &[
            ("NOTIFY_SOCKET", notify_path.as_os_str()),
            ("WATCHDOG_USEC", std::ffi::OsStr::new("200000")),
        ],
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        notifications(&listener, &mut seen);
        let pings = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
        if pings >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no watchdog pings: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = seen.iter().position(|m| m.contains("READY=1"));
    let first_ping = seen.iter().position(|m| m.contains("WATCHDOG=1"));
    assert!(
        ready.is_some() && ready < first_ping,
        "READY=1 first: {seen:?}"
    );
    idgate.proc.wait_log(&["systemd watchdog on"]);
    assert!(idgate.proc.terminate().unwrap().success());
    notifications(&listener, &mut seen);
    assert!(seen.iter().any(|m| m.contains("STOPPING=1")), "{seen:?}");
}

/// `systemctl stop` and `systemctl reload` may come the instant systemd hears `READY=1` (and a
/// connection systemd queued may be answered at once): the handlers of SIGTERM and SIGHUP are
/// in place by then. Until a handler is registered, either signal ends the process, so the
/// test sends each from its own thread the moment the datagram arrives, over several starts
/// since it races the daemon's own start: SIGTERM must drain and exit 0, SIGHUP must reload.
#[test]
fn signals_sent_the_moment_idgate_is_ready_are_handled() {
    for round in 0..12 {
        let signal = if round % 2 == 0 { "TERM" } else { "HUP" };
        let dir = tempfile::tempdir().unwrap();
        let notify_path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&notify_path).unwrap();
        listener.set_read_timeout(Some(STARTUP)).unwrap();
        config(dir.path(), "127.0.0.1:0");
        let mut cmd = idgate_command(Path::new(idgate_bin()));
        cmd.args(["serve", "--config"])
            .arg(dir.path().join("idgate.toml"))
            .env("NOTIFY_SOCKET", &notify_path);
        let mut proc = Proc::spawn("idgate", &mut cmd);
        let mut buf = [0u8; 4096];
        loop {
            let n = listener
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no READY=1 ({e}): {}", proc.log_tail()));
            if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
                break;
            }
        }
        proc.signal(signal);
        if signal == "TERM" {
            // Nothing more is sent: the one SIGTERM must be enough.
            let status = proc
                .exit_within(Duration::from_secs(30))
                .unwrap_or_else(|| {
                    panic!("round {round}: SIG{signal} at READY=1 was not acted on")
                });
            assert!(
                status.success(),
                "round {round}: SIG{signal} at READY=1 must drain and exit 0: {status:?}\n{}",
                proc.log_tail()
            );
            proc.wait_log(&["SIGTERM received, draining"]);
        } else {
            proc.wait_log(&["configuration reloaded"]);
            assert!(
                proc.is_running(),
                "round {round}: SIG{signal} at READY=1 ended idgate: {}",
                proc.log_tail()
            );
            assert!(proc.terminate().unwrap().success());
        }
    }
}
