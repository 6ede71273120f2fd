//! Nginx with the shipped snippets in front of an echo app, from `dev/nginx.conf`, and the body
//! recorder that lets the echo app report the request body it received.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// Where the shipped `upstream idgate` reaches idgate: the packaged service's unix socket.
pub const SHIPPED_UPSTREAM: &str = "unix:/run/idgate/idgate.sock";

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
    /// `/etc/nginx/snippets/idgate`) instead of the repository's, reaching idgate at `upstream`
    /// as an Nginx `server` names it (`unix:PATH`, or `IP:PORT`).
    pub fn start_with_snippets(prefix: &Path, port: u16, upstream: &str, snippets: &Path) -> Self {
        Self::start_from(prefix, port, &[upstream.to_owned()], "", snippets)
    }

    fn start_full(prefix: &Path, port: u16, idgates: &[SocketAddr], locations: &str) -> Self {
        let upstreams: Vec<String> = idgates.iter().map(|a| a.to_string()).collect();
        Self::start_from(prefix, port, &upstreams, locations, &repo().join("nginx"))
    }

    fn start_from(
        prefix: &Path,
        port: u16,
        upstreams: &[String],
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
        // The shipped `server` line (the packaged unix socket), once per instance with the
        // shipped parameters.
        let shipped = std::fs::read_to_string(snippets.join("idgate-upstream.conf")).unwrap();
        let line = shipped
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("server {SHIPPED_UPSTREAM} "))
            })
            .expect("the upstream's server line");
        let servers: Vec<String> = upstreams
            .iter()
            .map(|a| line.replace(SHIPPED_UPSTREAM, a))
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
