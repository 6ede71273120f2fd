//! The Debian package, installed for real: `scripts/package` builds it (release build, cargo-deb,
//! lintian with warnings as failures), `dpkg -i` installs it on this machine, the installed
//! binary serves the installed example config (edited to point at the test IdP), Nginx includes
//! the installed snippets, a browser logs in end to end; then `dpkg -r` (config and key stay) and
//! `dpkg -P` (they go). The unit files are checked with `systemd-analyze verify` and `security`,
//! and the installed binary serves a socket passed to it as `idgate.socket` would.
//!
//! It changes the machine (a package, a system user), so it needs root, holds a lock file for
//! its whole run (two test runs never interleave), and fails loudly when a tool is missing:
//! `scripts/install-deps` installs them. A plain `cargo test` lists it as ignored, with that
//! reason; `scripts/test` runs it (`--include-ignored`), and so does
//! `cargo test --test package -- --ignored` as root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;

const UNIT: &str = "/usr/lib/systemd/system/idgate.service";
const SOCKET_UNIT: &str = "/usr/lib/systemd/system/idgate.socket";
/// Where the example config, the socket unit and Nginx's upstream snippet reach idgate.
const PACKAGED_SOCKET: &str = "unix:/run/idgate/idgate.sock";
/// The test's stand-in for /run/idgate, in its temporary folder.
const SOCKET_DIR: &str = "run";

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}; run scripts/install-deps"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn must(cmd: &str, args: &[&str]) -> String {
    let (ok, text) = run(cmd, args);
    assert!(ok, "{cmd} {args:?} failed:\n{text}");
    text
}

fn gid_of(group: &str) -> u32 {
    let groups = std::fs::read_to_string("/etc/group").unwrap();
    groups
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&group)).then(|| f[2].parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no group {group}"))
}

fn uid_of(user: &str) -> Option<u32> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&user)).then(|| f[2].parse().unwrap())
        })
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

/// The overall exposure verdict of `systemd-analyze security` (SAFE, OK, MEDIUM, EXPOSED, UNSAFE).
fn security_verdict(unit: &Path) -> String {
    let unit = unit.to_str().unwrap();
    let (_, text) = run("systemd-analyze", &["security", "--offline=true", unit]);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no verdict from systemd-analyze security:\n{text}"));
    line.split_whitespace()
        .find(|w| ["SAFE", "OK", "MEDIUM", "EXPOSED", "UNSAFE"].contains(w))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned()
}

/// The repository's unit file scores "OK" or better, without building anything.
#[test]
fn unit_file_is_hardened() {
    assert!(
        which("systemd-analyze").is_some(),
        "systemd-analyze missing: run scripts/install-deps"
    );
    let verdict = security_verdict(&repo().join("packaging/idgate.service"));
    assert!(
        verdict == "OK" || verdict == "SAFE",
        "systemd-analyze security: {verdict}"
    );
}

/// Rewrites the installed example config for this machine: the test IdP, the site's URLs, the
/// unix socket in `dir`'s [`SOCKET_DIR`] and a free port, the store in `dir`; everything else
/// (the shipped defaults) stays.
fn edit_example(example: &str, dir: &Path, site: &str, issuer: &str) -> String {
    let mut text = example.to_owned();
    for (from, to) in [
        (
            format!(r#"listen = ["{PACKAGED_SOCKET}", "127.0.0.1:4280"]"#),
            format!(
                r#"listen = ["unix:{}", "127.0.0.1:0"]"#,
                dir.join(SOCKET_DIR).join("idgate.sock").display()
            ),
        ),
        (
            r#"private_key_file = "signing.pem""#.to_owned(),
            r#"private_key_file = "/etc/idgate/signing.pem""#.to_owned(),
        ),
        (
            r#"path = "/var/lib/idgate/idgate.db""#.to_owned(),
            format!(r#"path = "{}/idgate.db""#, dir.display()),
        ),
        (
            "cookie_secure = true".to_owned(),
            "cookie_secure = false".to_owned(),
        ),
        ("https://app.example.com".to_owned(), site.to_owned()),
        (
            "https://sso.example.com/realms/main".to_owned(),
            issuer.to_owned(),
        ),
        (
            r#"client_secret = "change-me""#.to_owned(),
            format!(r#"client_secret = "{CLIENT_SECRET}""#),
        ),
    ] {
        assert!(text.contains(&from), "the example config lost `{from}`");
        text = text.replace(&from, &to);
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "installs a .deb on this machine as root; scripts/test runs it (--include-ignored)"]
async fn debian_package_installs_serves_a_login_and_purges() {
    assert!(
        std::env::var("USER").as_deref() == Ok("root") || uid_of_self_is_root(),
        "the package test installs a .deb: run it as root"
    );
    for tool in [
        "dpkg",
        "dpkg-deb",
        "cargo-deb",
        "lintian",
        "systemd-analyze",
        "nginx",
    ] {
        assert!(
            which(tool).is_some(),
            "{tool} missing: run scripts/install-deps"
        );
    }
    // One package test on this machine at a time (released when the file closes).
    let lock =
        std::fs::File::create(std::env::temp_dir().join("idgate-package-test.lock")).unwrap();
    lock.lock().unwrap();

    let deb = build_package();
    assert!(
        deb.ends_with(".deb") && Path::new(&deb).is_file(),
        "scripts/package printed {deb}"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.contains(&format!("idgate_{version}-1_")),
        "unexpected name {deb}"
    );

    // A previous run that died half-way may have left it installed; a failing assertion of this
    // one purges it on the way out.
    let _ = run("dpkg", &["--purge", "idgate"]);
    let _purge_on_failure = PurgeOnDrop;
    let installed = must("dpkg", &["-i", &deb]);
    assert!(
        !installed.contains("does not listen on"),
        "the example config listens where Nginx's upstream reaches it:\n{installed}"
    );

    // Files, owners and modes.
    let idgate_gid = gid_of("idgate");
    let idgate_uid = uid_of("idgate").expect("the idgate user");
    for f in [
        "/usr/bin/idgate",
        UNIT,
        "/etc/idgate/idgate.toml",
        "/etc/nginx/snippets/idgate/idgate-upstream.conf",
        "/etc/nginx/snippets/idgate/idgate-endpoints.conf",
        "/etc/nginx/snippets/idgate/idgate-protect.conf",
        "/usr/share/man/man1/idgate.1.gz",
        "/usr/share/bash-completion/completions/idgate",
        "/usr/share/zsh/vendor-completions/_idgate",
        "/usr/share/fish/vendor_completions.d/idgate.fish",
        "/usr/lib/tmpfiles.d/idgate.conf",
        "/usr/share/doc/idgate/README.md",
        "/usr/share/doc/idgate/operations.md",
        "/usr/share/doc/idgate/changelog.Debian.gz",
        "/usr/share/doc/idgate/examples/Caddyfile.example",
        "/usr/share/doc/idgate/examples/traefik-idgate.yml",
    ] {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    // The man page is the one the binary prints (generated from its command line), whole.
    let page = must("zcat", &["/usr/share/man/man1/idgate.1.gz"]);
    assert_eq!(
        page,
        must("/usr/bin/idgate", &["manpage"]),
        "the installed man page"
    );
    assert!(page.contains(".B sessions mint"), "{page}");
    let conffiles = must(
        "dpkg-query",
        &["--showformat=${Conffiles}", "--show", "idgate"],
    );
    assert!(conffiles.contains("/etc/idgate/idgate.toml"), "{conffiles}");
    let config_meta = std::fs::metadata("/etc/idgate/idgate.toml").unwrap();
    assert_eq!(mode("/etc/idgate/idgate.toml"), 0o640);
    assert_eq!((config_meta.uid(), config_meta.gid()), (0, idgate_gid));
    assert_eq!(mode("/etc/idgate"), 0o750);
    let key = std::fs::read_to_string("/etc/idgate/signing.pem").expect("a generated key");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    assert_eq!(mode("/etc/idgate/signing.pem"), 0o640);
    assert_eq!(
        std::fs::metadata("/etc/idgate/signing.pem").unwrap().gid(),
        idgate_gid
    );
    let state = std::fs::metadata("/var/lib/idgate").unwrap();
    assert_eq!((state.uid(), state.gid()), (idgate_uid, idgate_gid));
    // The socket's folder (systemd-tmpfiles, run by postinst): idgate's, group www-data with the
    // set-group-id bit, so the socket made in it is www-data's and only Nginx's group may reach
    // it.
    let socket_folder = std::fs::metadata("/run/idgate").expect("/run/idgate made at install");
    assert!(socket_folder.is_dir());
    assert_eq!(
        (
            socket_folder.uid(),
            socket_folder.gid(),
            socket_folder.permissions().mode() & 0o7777
        ),
        (idgate_uid, gid_of("www-data"), 0o2750),
        "/run/idgate: owner, group, mode"
    );

    // The installed unit: clean `verify` (the binary exists now), "OK" or better `security`.
    let (ok, text) = run("systemd-analyze", &["verify", UNIT]);
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
    let verdict = security_verdict(Path::new(UNIT));
    assert!(verdict == "OK" || verdict == "SAFE", "security: {verdict}");
    assert!(
        std::fs::read_to_string(UNIT)
            .unwrap()
            .contains("\nWatchdogSec="),
        "the service has a watchdog"
    );
    // The socket unit: clean `verify`, installed but not enabled, on the addresses the example
    // config listens on, the unix socket (www-data's) being the one Nginx's upstream snippet
    // names.
    let (ok, text) = run("systemd-analyze", &["verify", SOCKET_UNIT]);
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify {SOCKET_UNIT}:\n{text}"
    );
    assert!(
        !Path::new("/etc/systemd/system/sockets.target.wants/idgate.socket").exists(),
        "socket activation is the operator's choice"
    );
    let socket_unit = std::fs::read_to_string(SOCKET_UNIT).unwrap();
    let addresses: Vec<String> = socket_unit
        .lines()
        .filter_map(|l| l.strip_prefix("ListenStream="))
        .map(|a| match a.strip_prefix('/') {
            Some(_) => format!("unix:{a}"),
            None => a.to_owned(),
        })
        .collect();
    assert_eq!(
        addresses,
        [PACKAGED_SOCKET, "127.0.0.1:4280"],
        "{socket_unit}"
    );
    for line in ["SocketGroup=www-data", "SocketMode=0660"] {
        assert!(
            socket_unit.contains(&format!("\n{line}\n")),
            "{socket_unit}"
        );
    }
    let listen = format!("listen = [\"{}\"]", addresses.join("\", \""));
    assert!(
        std::fs::read_to_string("/etc/idgate/idgate.toml")
            .unwrap()
            .contains(&format!("\n{listen}\n")),
        "the example config: {listen}"
    );
    let upstream =
        std::fs::read_to_string("/etc/nginx/snippets/idgate/idgate-upstream.conf").unwrap();
    let servers: Vec<&str> = upstream
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("server "))
        .collect();
    assert_eq!(
        servers,
        [format!(
            "server {PACKAGED_SOCKET} max_fails=1 fail_timeout=1s;"
        )],
        "Nginx's upstream reaches the unix socket, and nothing else"
    );

    // The installed binary and example config.
    let out = must("/usr/bin/idgate", &["version"]);
    assert!(out.starts_with(&format!("idgate {version}\n")), "{out}");
    let out = must(
        "/usr/bin/idgate",
        &["check-config", "--config", "/etc/idgate/idgate.toml"],
    );
    assert!(out.contains(": ok"), "{out}");

    // Served for real: the installed example config pointed at the test IdP, the installed
    // snippets in Nginx reaching it on its unix socket, a login through it. The socket's folder
    // is made as the package makes /run/idgate, with the group of this Nginx's workers (nobody
    // and nogroup, Debian's Nginx started by root with no `user`) in place of www-data; the
    // temporary folder above it only lets them through.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let socket_dir = dir.path().join(SOCKET_DIR);
    std::fs::create_dir(&socket_dir).unwrap();
    std::os::unix::fs::chown(&socket_dir, None, Some(gid_of("nogroup"))).unwrap();
    std::fs::set_permissions(&socket_dir, std::fs::Permissions::from_mode(0o2750)).unwrap();
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let idp = Idp::for_site(&site, &[]);
    let example = std::fs::read_to_string("/etc/idgate/idgate.toml").unwrap();
    let config = edit_example(&example, dir.path(), &site, &idp.issuer);
    let idgate = Idgate::start_bin(Path::new("/usr/bin/idgate"), dir.path(), &config);
    let socket = socket_dir.join("idgate.sock");
    let meta = std::fs::metadata(&socket).expect("idgate's unix socket");
    assert_eq!(
        (meta.gid(), meta.permissions().mode() & 0o777),
        (gid_of("nogroup"), 0o660),
        "the socket takes its folder's group, and the shipped socket_mode"
    );
    let nginx = Nginx::start_with_snippets(
        &dir.path().join("nginx"),
        port,
        &format!("unix:{}", socket.display()),
        Path::new("/etc/nginx/snippets/idgate"),
    );
    let mut stack = Stack {
        dir,
        nginx,
        idgate,
        idp,
    };
    let browser = Browser::new();
    let resp = login(&stack, &browser, "/hello?x=1", "alice").await;
    assert_eq!(resp.status(), 200);
    let page = browser.navigate(&format!("{}/hello", stack.site())).await;
    assert_eq!(page.status(), 200);
    let seen = echoed(&page.text().await.unwrap());
    assert!(!seen["miauserid"].is_empty(), "{seen:?}");
    assert!(seen["miausergroups"].contains("users"), "{seen:?}");
    let status = stack.idgate.proc.terminate().expect("idgate exited");
    assert!(status.success(), "SIGTERM must exit 0: {status:?}");
    assert!(
        !stack.idgate.proc.log_text().contains(CLIENT_SECRET),
        "the client secret reached a log line"
    );
    // The installed binary under socket activation (as idgate.socket starts it), on the same
    // config and store: it serves the socket it is given, and the session lives on.
    let activated_port = free_port();
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args([
            "-l",
            &format!("127.0.0.1:{activated_port}"),
            "/usr/bin/idgate",
        ])
        .args(["serve", "--config"])
        .arg(&stack.idgate.config);
    let mut activated = Proc::spawn("idgate (socket-activated)", &mut cmd);
    let log = activated.log.clone();
    activated.ready("its socket bound", || {
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Listening on"))
            .then_some(())
    });
    let token = browser
        .cookie(&stack.site(), "sid")
        .expect("a session cookie");
    let resp = Browser::new()
        .client
        .get(format!("http://127.0.0.1:{activated_port}/auth"))
        .header("cookie", format!("sid={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", activated.log_tail());
    activated.wait_log(&["serving the sockets systemd passed"]);
    let status = activated.terminate().expect("idgate exited");
    assert!(status.success(), "SIGTERM must exit 0: {status:?}");

    // Remove: the binary goes, config, key and state stay.
    must("dpkg", &["-r", "idgate"]);
    assert!(!Path::new("/usr/bin/idgate").exists());
    assert!(!Path::new(UNIT).exists());
    assert!(Path::new("/etc/idgate/idgate.toml").exists());
    assert!(Path::new("/etc/idgate/signing.pem").exists());
    assert!(Path::new("/var/lib/idgate").exists());

    // A reinstall keeps the operator's key (no new one is generated over it). The operator's
    // config, kept from a version whose Nginx upstream was TCP, listens on TCP only: the
    // postinst says that Nginx's upstream reaches a socket idgate does not listen on.
    let example = std::fs::read_to_string("/etc/idgate/idgate.toml").unwrap();
    let tcp_only = example.replace(
        &format!(r#"listen = ["{PACKAGED_SOCKET}", "127.0.0.1:4280"]"#),
        r#"listen = ["127.0.0.1:4280"]"#,
    );
    assert_ne!(tcp_only, example);
    std::fs::write("/etc/idgate/idgate.toml", tcp_only).unwrap();
    let reinstalled = must("dpkg", &["-i", &deb]);
    assert!(
        reinstalled.contains(&format!(
            "reaches idgate on {PACKAGED_SOCKET}, which /etc/idgate/idgate.toml does not listen on"
        )),
        "{reinstalled}"
    );
    // The same config with the socket back, its listen array written over several lines (as
    // an operator may write it, a comment beside an entry): no warning, and idgate takes it.
    let multi_line = example.replace(
        &format!(r#"listen = ["{PACKAGED_SOCKET}", "127.0.0.1:4280"]"#),
        &format!("listen = [\n    \"127.0.0.1:4280\",\n    \"{PACKAGED_SOCKET}\", # Nginx\n]"),
    );
    assert_ne!(multi_line, example);
    std::fs::write("/etc/idgate/idgate.toml", &multi_line).unwrap();
    let reinstalled = must("dpkg", &["-i", &deb]);
    assert!(!reinstalled.contains("does not listen on"), "{reinstalled}");
    must(
        "/usr/bin/idgate",
        &["check-config", "--config", "/etc/idgate/idgate.toml"],
    );
    assert_eq!(
        std::fs::read_to_string("/etc/idgate/signing.pem").unwrap(),
        key
    );

    // Purge: config, keys and state are gone; the system user stays (see postrm).
    must("dpkg", &["-P", "idgate"]);
    for gone in [
        "/etc/idgate",
        "/var/lib/idgate",
        "/run/idgate",
        "/etc/nginx/snippets/idgate",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} survived the purge");
    }
    let overrides = must("dpkg-statoverride", &["--list"]);
    assert!(!overrides.contains("/etc/idgate"), "{overrides}");
    assert!(uid_of("idgate").is_some(), "the system user stays");
    stack.nginx.proc.terminate();
}

/// Purges the package when dropped (the test's end or a failed assertion).
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "idgate"]);
    }
}

/// Runs `scripts/package` (release build, reused when up to date; lintian) and returns the path
/// it prints, run as by hand (see [`script_command`]) so that the release build is not redone.
fn build_package() -> String {
    let out = script_command("scripts/package")
        .output()
        .expect("run scripts/package");
    if !out.status.success() {
        // The release build's "Compiling …" lines would push the cause out of a CI log's excerpt:
        // they are left out, and the cause (the last lines) comes first.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim_start().starts_with("Compiling "))
            .collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        panic!(
            "scripts/package failed ({}):\n{tail}\nits standard output:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            disk_space()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rfind(|l| l.trim().ends_with(".deb"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// What `df -h` says of the build's file system: a full disk is one way a release build fails.
fn disk_space() -> String {
    run("df", &["-h", "."]).1
}

fn uid_of_self_is_root() -> bool {
    run("id", &["-u"]).1.trim() == "0"
}
