//! What needs the idgate binary as a process (its IdP is never contacted here): sessions that
//! survive a restart, the admin commands' revocation reaching the running daemon, signing keys
//! rotated across restarts, SIGHUP, `check-config` and the packaged example config; and what
//! around the daemon must not hold its requests: another process's lock on the embedded store,
//! a log nobody reads. The checks
//! that need no process (forged tokens, untrusted peers, open redirects, bad parameters, the
//! JWKS, the administrator's revocation) are in the fast tier, `tests/inproc_checks.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::*;
use std::time::Duration;

fn client() -> reqwest::Client {
    Browser::new().client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart_and_cli_revocation_reaches_the_daemon() {
    let (dir, mut idgate) = start_idgate_alone(Setup::default());
    let token = mint(&idgate, "u-9", "users");
    assert_eq!(auth_status(&idgate, &token).await, 200);
    let status = idgate.proc.terminate().expect("idgate exits on SIGTERM");
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");

    let config = std::fs::read_to_string(dir.path().join("idgate.toml")).unwrap();
    let idgate = Idgate::start(dir.path(), &config);
    assert_eq!(
        auth_status(&idgate, &token).await,
        200,
        "the session outlived the restart"
    );

    // Another process (the CLI) revokes it; the running daemon, which has it cached, follows.
    served_from_cache(&idgate, &token).await;
    let sid = jwt_claims(&token)["sid"].as_str().unwrap().to_owned();
    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "revoke",
        "--config",
        idgate.config.to_str().unwrap(),
        "--sid",
        &sid,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked 1"), "{out}");
    let mut refused = false;
    for _ in 0..50 {
        if auth_status(&idgate, &token).await == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(
        refused,
        "a revocation by another process must reach the daemon"
    );

    // A benchmark's bulk fill: sessions stored, live, each its own user, no token printed.
    let config = idgate.config.to_str().unwrap();
    let (code, out, err) = idgate_cmd(&[
        "sessions",
        "mint",
        "--config",
        config,
        "--user",
        "fill",
        "--count",
        "25",
        "--store-only",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "stored 25 session(s)");
    let (code, out, err) = idgate_cmd(&["sessions", "list", "--config", config]);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut filled: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["alive"] == true)
        .map(|s| s["userId"].as_str().unwrap())
        .collect();
    filled.sort_unstable();
    filled.dedup();
    assert_eq!(filled.len(), 25, "{out}");
    assert!(filled.iter().all(|u| u.starts_with("fill-")), "{out}");
}

#[test]
fn check_config_exits_78_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = config_toml(
        &Setup::default(),
        dir.path(),
        "http://127.0.0.1:8080",
        "http://127.0.0.1:1",
    );
    let path = dir.path().join("idgate.toml");
    let check = |text: &str| {
        std::fs::write(&path, text).unwrap();
        idgate_cmd(&["check-config", "--config", path.to_str().unwrap()])
    };
    let (code, out, err) = check(&good);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"));

    let (code, _, err) = check(&good.replace("[session]", "[session]\naccess_tll = \"1m\""));
    assert_eq!(code, 78);
    assert!(err.contains("access_tll"), "{err}");
    let (code, _, err) = check(&good.replace("type = \"oidc\"", "type = \"saml\""));
    assert_eq!(code, 78);
    assert!(err.contains("apps.web.providers.dev.type"), "{err}");
    let (code, _, err) = check(&good.replace(
        "private_key_file = \"rs256.pem\"",
        "private_key_file = \"missing.pem\"",
    ));
    assert_eq!(code, 78);
    assert!(
        err.contains("jwt.private_key_file") && err.contains("missing.pem"),
        "{err}"
    );
    let (code, _, err) = check(&good.replace("algorithm = \"RS256\"", "algorithm = \"ES256\""));
    assert_eq!(code, 78, "an RSA key is not an ES256 key");
    assert!(err.contains("ES256"), "{err}");
    let (code, _, _) = idgate_cmd(&["check-config", "--config", "/nonexistent/idgate.toml"]);
    assert_eq!(code, 78);
}

#[test]
fn the_packaged_example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo().join("packaging/idgate.toml"))
        .unwrap()
        .replace(
            "/var/lib/idgate/idgate.db",
            dir.path().join("idgate.db").to_str().unwrap(),
        );
    std::fs::copy(fixture("rs256.pem"), dir.path().join("signing.pem")).unwrap();
    let path = dir.path().join("idgate.toml");
    std::fs::write(&path, example).unwrap();
    let (code, _, err) = idgate_cmd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// A login whose store write waits for another process's lock on the embedded store (here the
/// test's; an operator's `idgate sessions mint --count`, a second daemon on the file or a backup
/// in life) holds up nothing else: with one runtime worker (a one-core machine's), a cached
/// `/auth` is answered while three logins wait for the lock, and the logins go on once it is let
/// go. Their write used to wait on the worker itself, and every request with it, up to the
/// five seconds after which it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_waiting_for_another_process_hold_up_no_cached_request() {
    let (dir, idgate) = start_idgate_alone_with_env(
        Setup::default(),
        &[("TOKIO_WORKER_THREADS", std::ffi::OsStr::new("1"))],
    );
    let token = mint(&idgate, "u-5", "users");
    served_from_cache(&idgate, &token).await;

    // Another process's write transaction on the store, kept until the test lets go.
    let other = rusqlite::Connection::open(dir.path().join("idgate.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Three logins end meanwhile; each first takes its login state, a write.
    let exchanges: Vec<_> = (0..3)
        .map(|i| {
            let url = idgate.url("/oauth/token");
            tokio::spawn(async move {
                let state = format!("made-up-{i}");
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", "c"),
                    ("state", state.as_str()),
                ];
                let resp = client().post(url).form(&form).send().await.unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            })
        })
        .collect();
    // They reach the lock; then the cached session is asked for, again and again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..10 {
        assert_eq!(auth_status(&idgate, &token).await, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = exchanges.iter().filter(|e| !e.is_finished()).count();
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        waiting, 3,
        "the cached /auth must be answered while the logins wait for the lock"
    );
    for exchange in exchanges {
        // They waited for the lock, then found no such login: not a store error.
        let (status, body) = exchange.await.unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("unknown or already used"), "{body}");
    }
}

/// An idgate started by hand, its stderr a pipe this test stops reading once it has the listen
/// address (as journald or a pipe that stalled would).
struct Unread {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    config: std::path::PathBuf,
    /// The pipe's reading end, kept open and never read again.
    _log: std::io::BufReader<std::process::ChildStderr>,
}

impl Served for Unread {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn config_file(&self) -> &std::path::Path {
        &self.config
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon whose log nobody reads goes on answering. Twenty thousand requests that each log
/// a line (to paths that do not exist) fill the pipe, then the daemon's queue of log lines;
/// the lines beyond are dropped and counted (`idgate_log_dropped_total`), and every request is
/// answered, a cached `/auth` too. Written on the requests' workers, the first full pipe held
/// every worker that logged, and every request queued on them, until something read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_nobody_reads_holds_up_no_request() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("idgate.toml");
    std::fs::write(&config, alone_config(&Setup::default(), dir.path())).unwrap();
    let mut child = idgate_command(std::path::Path::new(idgate_bin()))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "idgate ended before listening"
        );
        if let Some(addr) = listen_address(&line) {
            break addr;
        }
    };
    let idgate = Unread {
        child,
        addr,
        config,
        _log: log,
    };
    let token = mint(&idgate, "u-log", "users");
    assert_eq!(auth_status(&idgate, &token).await, 200);

    let floods: Vec<_> = (0..8)
        .map(|task| {
            let base = idgate.url("/no-such-page");
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0..2_500 {
                    let answered = tokio::time::timeout(
                        Duration::from_secs(30),
                        client.get(format!("{base}-{task}-{i}")).send(),
                    )
                    .await
                    .expect("idgate stopped answering while its log was not read")
                    .unwrap();
                    assert_eq!(answered.status(), 404);
                }
            })
        })
        .collect();
    for flood in floods {
        flood.await.unwrap();
    }
    let cached = tokio::time::timeout(Duration::from_secs(30), auth_status(&idgate, &token))
        .await
        .expect("the cached /auth must be answered while the log is not read");
    assert_eq!(cached, 200);
    assert!(
        metric(&idgate, "idgate_log_dropped_total").await > 0,
        "the lines beyond the queue are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_without_logging_anyone_out() {
    let (dir, mut idgate) = start_idgate_alone(Setup::default());
    let before = mint(&idgate, "u-r", "users");
    assert_eq!(
        jsonwebtoken::decode_header(&before).unwrap().kid.as_deref(),
        Some("k1")
    );
    idgate.proc.terminate();

    // A new signing key (k2); the old one (k1) still verifies.
    std::fs::copy(
        fixture("rs256-other.pem"),
        dir.path().join("rs256-other.pem"),
    )
    .unwrap();
    std::fs::copy(fixture("rs256.pub.pem"), dir.path().join("rs256.pub.pem")).unwrap();
    let config = std::fs::read_to_string(dir.path().join("idgate.toml")).unwrap();
    let rotated = config.replace(
        "private_key_file = \"rs256.pem\"\nkey_id = \"k1\"",
        "private_key_file = \"rs256-other.pem\"\nkey_id = \"k2\"\n\n[[jwt.verification_keys]]\nalgorithm = \"RS256\"\nkey_id = \"k1\"\nkey_file = \"rs256.pub.pem\"",
    );
    assert_ne!(rotated, config);
    let idgate = Idgate::start(dir.path(), &rotated);
    assert_eq!(
        auth_status(&idgate, &before).await,
        200,
        "a token of the previous key still works"
    );
    let jwks: serde_json::Value = client()
        .get(idgate.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        vec!["k2", "k1"],
        "both published, the signing key first"
    );
    let after = mint(&idgate, "u-r", "users");
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        Some("k2")
    );
    assert_eq!(auth_status(&idgate, &after).await, 200);
    let mut idgate = idgate;
    idgate.proc.terminate();

    // Once k1 is retired, its tokens are refused.
    let retired = config.replace(
        "private_key_file = \"rs256.pem\"\nkey_id = \"k1\"",
        "private_key_file = \"rs256-other.pem\"\nkey_id = \"k2\"",
    );
    let idgate = Idgate::start(dir.path(), &retired);
    assert_eq!(auth_status(&idgate, &before).await, 401);
    assert_eq!(auth_status(&idgate, &after).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_or_keeps_the_old_one() {
    let (dir, idgate) = start_idgate_alone(Setup::default());
    let token = mint(&idgate, "u-h", "users");
    let admin_status = || async {
        client()
            .get(idgate.url("/auth"))
            .bearer_auth(&token)
            .header("original-request-uri", "/admin/panel")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        admin_status().await,
        200,
        "no rules yet: any session passes"
    );

    // A new rule in the TOML, applied by SIGHUP without a restart.
    let path = dir.path().join("idgate.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let with_rule = format!(
        "{config}\n[authorization]\nstrict = false\n[[authorization.routes]]\npath = \"/admin/\"\nexpression = \"groups.admin\"\n"
    );
    std::fs::write(&path, &with_rule).unwrap();
    idgate.proc.signal("HUP");
    idgate.proc.wait_log(&["configuration reloaded"]);
    assert_eq!(admin_status().await, 403, "the reloaded rule applies");
    assert_eq!(
        auth_status(&idgate, &token).await,
        200,
        "sessions survive a reload"
    );

    // A config that does not validate is refused; the running one keeps serving.
    std::fs::write(&path, with_rule.replace("groups.admin", "groups.admin &&")).unwrap();
    idgate.proc.signal("HUP");
    idgate.proc.wait_log(&["reload refused"]);
    assert_eq!(admin_status().await, 403);
    assert_eq!(auth_status(&idgate, &token).await, 200);
}
