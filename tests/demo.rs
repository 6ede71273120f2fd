//! `scripts/demo`, the README's first command, run as a new user runs it: it installs what is
//! missing, builds idgate (release), starts the development IdP, idgate on the embedded store
//! and Nginx with the shipped snippets; a person logs in through Nginx and the app behind it sees
//! their identity; Ctrl-C stops every component. Then its readiness wait, on its own: a
//! component gets a minute to listen (a busy machine is slow, and ten seconds once were not
//! enough), and one that dies at startup stops the demo with the end of its log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Holds `port` for the life of the value: a socket bound to it with `SO_REUSEADDR` and not
/// listening, so no `bind(…:0)` and no outgoing connection of a concurrent test or process can be
/// handed the port, while a component that binds it with `SO_REUSEADDR` (as servers do) still can.
fn reserve(port: u16) -> socket2::Socket {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    socket.bind(&address.into()).unwrap();
    socket
}

/// What a demo that does not stop leaves to look at: its processes still running (`ps`, the
/// demo's shell and its children) and the end of each component's log in its run directory.
fn stop_report(pid: u32, run: &std::path::Path) -> String {
    let ps = Command::new("ps")
        .args([
            "-o",
            "pid,ppid,stat,etime,args",
            "--pid",
            &pid.to_string(),
            "--ppid",
            &pid.to_string(),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("ps failed: {e}"));
    let mut report = format!("Processes:\n{ps}");
    for log in ["idgate.log", "idp.log", "nginx/logs/error.log"] {
        let text = std::fs::read_to_string(run.join(log)).unwrap_or_else(|e| format!("({e})"));
        report.push_str(&format!("\nThe end of {log}:\n{}\n", last_lines(&text, 20)));
    }
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_logs_a_person_in_through_nginx_and_ctrl_c_stops_everything() {
    let run = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let [site_port, idgate_port, idp_port, app_port] = ports;
    // Held until the components bind them (each sets SO_REUSEADDR): minutes of a release build
    // may come first.
    let _held = ports.map(reserve);
    // Ctrl-C as a user sends it from a terminal, also when this test runs in the background.
    let mut cmd = script_command_with_sigint("scripts/demo");
    cmd.env("DEMO_RUN", run.path())
        .env("DEMO_PORT", site_port.to_string())
        .env("IDGATE_PORT", idgate_port.to_string())
        .env("IDP_PORT", idp_port.to_string())
        .env("APP_PORT", app_port.to_string());
    let mut demo = Proc::spawn("demo", &mut cmd);
    // Nginx starts last. The release build may come first: minutes on a cold target directory.
    wait_for("the demo's site", Duration::from_secs(30 * 60), || {
        assert!(
            demo.is_running(),
            "the demo stopped before its site listened; its stderr:\n{}",
            demo.log_tail()
        );
        listening(site_port).then_some(())
    });

    let site = format!("http://127.0.0.1:{site_port}");
    let browser = Browser::new();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let answer = login_at(&site, &issuer, &browser, "/", "alice").await;
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let page = browser.navigate(&format!("{site}/")).await;
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    let header = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} line on the app's page:\n{body}"))
            .trim()
            .to_owned()
    };
    assert!(!header("miauserid:").is_empty(), "{body}");
    assert!(
        header("miausergroups:").split(',').any(|g| g == "users"),
        "{body}"
    );

    demo.signal("INT");
    // Asked in turn by the wait and, if it times out, by its report.
    let demo = std::cell::RefCell::new(demo);
    wait_for_or(
        "the demo to stop within a minute of Ctrl-C",
        Duration::from_secs(60),
        || (!demo.borrow_mut().is_running()).then_some(()),
        || {
            let demo = demo.borrow();
            format!(
                "Its stderr:\n{}\n{}",
                demo.log_tail(),
                stop_report(demo.pid(), run.path())
            )
        },
    );
    for port in ports {
        assert!(!listening(port), "port {port} still answers after Ctrl-C");
    }
}

/// Runs `wait_until` from `scripts/lib/ready.sh` on a component started by `component` (a shell
/// command whose stderr is its log), as the demo does; returns the exit status and stderr.
fn wait_until(component: &str, port: u16) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("component.log");
    let ready = repo().join("scripts/lib/ready.sh");
    let script = format!(
        r#"die() {{ echo "demo: $*" >&2; exit 1; }}
source '{ready}'
( {component} ) 2>'{log}' &
wait_until "the component" $! '{log}' listening {port}"#,
        ready = ready.display(),
        log = log.display(),
    );
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_component_that_dies_at_startup_stops_the_wait_with_the_end_of_its_log() {
    let port = free_port();
    let (ok, stderr) = wait_until(
        "echo 'starting'; echo 'bind: address already in use' >&2; exit 3",
        port,
    );
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("the component exited during startup"),
        "{stderr}"
    );
    assert!(stderr.contains("bind: address already in use"), "{stderr}");
}

#[test]
fn a_component_slower_than_ten_seconds_is_waited_for() {
    // The port stays unbound for twelve seconds; once, on a busy CI machine, something else was
    // given it in that time, and the component's bind failed.
    let port = free_port();
    let _held = reserve(port);
    let listen = format!(
        "sleep 12; exec python3 -c 'import socket, time; s = socket.socket(); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
         s.bind((\"127.0.0.1\", {port})); s.listen(); time.sleep(5)'"
    );
    let (ok, stderr) = wait_until(&listen, port);
    assert!(ok, "{stderr}");
}

/// `scripts/lib/render.py` (the demo's and the benchmarks') on `template` with `values`.
fn render_py(template: &str, values: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new("python3")
        .arg(repo().join("scripts/lib/render.py"))
        .arg(repo().join("dev").join(template))
        .args(values.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .expect("python3: run scripts/install-deps");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_scripts_and_the_tests_fill_the_dev_configurations_alike() {
    let toml: &[(&str, &str)] = &[
        ("SITE", "http://127.0.0.1:8080"),
        ("ISSUER", "http://127.0.0.1:9000"),
        ("CLIENT_SECRET", "s"),
        (
            "APP",
            "post_logout_redirect_url = \"http://127.0.0.1:8080/\"",
        ),
        ("ALLOWED_REDIRECTS", ""),
        (
            "STORE",
            "[store]\nkind = \"redis\"\nurls = [\"redis://x}}\"]",
        ),
    ];
    let nginx: &[(&str, &str)] = &[("PREFIX", "/p"), ("HTTP", "    server { }")];
    for (template, values) in [("idgate.toml", toml), ("nginx.conf", nginx)] {
        let (ok, by_script, err) = render_py(template, values);
        assert!(ok, "{err}");
        assert_eq!(by_script, dev::render(template, values), "dev/{template}");
    }
    let rendered = dev::render("idgate.toml", toml);
    assert!(rendered.contains("allowed_redirects = []\n"), "{rendered}");
    assert!(!rendered.contains("path = \"idgate.db\""), "{rendered}");
    assert!(
        rendered.contains("urls = [\"redis://x}}\"]"),
        "values are not read again"
    );
    // A field left without a value, or a value for no field, is an error.
    let (ok, _, err) = render_py("idgate.toml", &[("SITE", "x"), ("CLIENT_SECRET", "s")]);
    assert!(!ok && err.contains("no value for ISSUER"), "{err}");
    let mut typo = toml.to_vec();
    typo.push(("CLIENT_SECRTE", "s"));
    let (ok, _, err) = render_py("idgate.toml", &typo);
    assert!(!ok && err.contains("no field CLIENT_SECRTE"), "{err}");
}
