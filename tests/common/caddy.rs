//! Caddy in front of idgate, with the shipped example (`docs/caddy/Caddyfile.example`) as it
//! is, its placeholders filled from Caddy's environment, and an echo app as the upstream: a
//! Caddy site that answers with the identity headers it received, one `name=value` line each
//! (as the Nginx echo app does, see `tests/common/nginx.rs`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use super::*;

/// A running Caddy: the site on `port`, the example's `forward_auth` asking idgate.
pub struct Caddy {
    pub port: u16,
    pub proc: Proc,
}

impl Caddy {
    /// Starts Caddy in `dir` (its data and config go there too) for the site
    /// `http://127.0.0.1:{port}`, protecting the echo app for idgate's app `app`.
    pub fn start(dir: &Path, port: u16, idgate: SocketAddr, app: &str) -> Self {
        let caddy = which("caddy").expect("caddy is not installed: run scripts/install-deps");
        std::fs::create_dir_all(dir).unwrap();
        let echo_port = free_port();
        let example = repo().join("docs/caddy/Caddyfile.example");
        // The global options (before any site) keep Caddy to loopback and plain HTTP; the
        // example is imported unchanged; the echo app is a second site.
        let caddyfile = format!(
            r#"{{
	admin off
	auto_https off
}}

import {example}

http://127.0.0.1:{echo_port} {{
	respond "uri={{uri}}
miauserid={{header.Miauserid}}
miausergroups={{header.Miausergroups}}
miauserproperties={{header.Miauserproperties}}
mia-client-type={{header.Mia-Client-Type}}
cookie={{header.Cookie}}
" 200
}}
"#,
            example = example.display()
        );
        let file = dir.join("Caddyfile");
        std::fs::write(&file, caddyfile).unwrap();
        let mut cmd = Command::new(caddy);
        cmd.arg("run")
            .arg("--adapter")
            .arg("caddyfile")
            .arg("--config")
            .arg(&file)
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("IDGATE_SITE", format!("http://127.0.0.1:{port}"))
            .env("IDGATE_ADDRESS", idgate.to_string())
            .env("IDGATE_APP_ID", app)
            .env("IDGATE_UPSTREAM", format!("127.0.0.1:{echo_port}"));
        let mut proc = Proc::spawn("caddy", &mut cmd);
        proc.ready_on_port(port);
        proc.ready_on_port(echo_port);
        Self { port, proc }
    }

    pub fn site(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
