//! Real Redis for the tests: `redis-server` (standalone, replica, cluster node) and
//! `redis-sentinel` on ephemeral loopback ports, with absolute paths for their files (a relative
//! logfile makes Redis exit silently), no persistence, readiness polled with `PING`, and each
//! process stopped on `Drop` by the harness's [`Proc`]. A missing binary fails the test: run
//! `scripts/install-deps`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{free_port, wait_for, which, Proc};

fn binary(name: &str) -> PathBuf {
    which(name).unwrap_or_else(|| panic!("{name} is not installed: run scripts/install-deps"))
}

/// Sends one inline command and returns the raw reply, or `None` if nothing answers.
pub fn raw_command(port: u16, command: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Waits (see [`Proc::ready`]) until the server on `port` answers PING.
fn wait_until_pong(proc: &mut Proc, port: u16) {
    proc.ready("answering PING", || {
        // NOAUTH: up, but wants the password (`--requirepass`).
        raw_command(port, "PING").filter(|r| r.starts_with("+PONG") || r.starts_with("-NOAUTH"))
    });
}

/// `redis-cli -p port args…`; panics if it cannot run, returns stdout.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new(binary("redis-cli"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One `redis-server`; `dir` is its own folder (absolute).
pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    pub proc: Option<Proc>,
}

impl RedisServer {
    /// Starts a server on a fresh port under `parent`, with extra arguments.
    pub fn start(parent: &Path, extra: &[&str]) -> Self {
        Self::start_on(parent, free_port(), extra)
    }

    pub fn start_on(parent: &Path, port: u16, extra: &[&str]) -> Self {
        let dir = parent.join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir: std::fs::canonicalize(&dir).unwrap(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            proc: None,
        };
        server.restart();
        server
    }

    /// Starts (again) on the same port with the same arguments; data is not kept.
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "redis on {} still runs", self.port);
        let dir = self.dir.display().to_string();
        let mut cmd = Command::new(binary("redis-server"));
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &dir])
            .args(["--logfile", &format!("{dir}/redis.log")])
            .args(&self.args);
        let mut proc = Proc::spawn_logging_to(
            &format!("redis-{}", self.port),
            &mut cmd,
            &self.dir.join("redis.log"),
        );
        wait_until_pong(&mut proc, self.port);
        self.proc = Some(proc);
    }

    /// Stops it (SIGTERM, wait).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate();
        }
    }

    /// Kills it hard (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            p.signal("KILL");
            drop(p);
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

/// A master, one replica and one sentinel (quorum 1) watching them as `mymaster`.
pub struct SentinelSetup {
    pub master: RedisServer,
    pub replica: RedisServer,
    pub sentinel_port: u16,
    pub sentinel: Proc,
}

impl SentinelSetup {
    pub fn start(parent: &Path) -> Self {
        // No delay before a full sync, so the replica is in sync at once.
        let master = RedisServer::start(parent, &["--repl-diskless-sync-delay", "0"]);
        let master_port = master.port.to_string();
        let replica = RedisServer::start(
            parent,
            &[
                "--replicaof",
                "127.0.0.1",
                &master_port,
                "--repl-diskless-sync-delay",
                "0",
            ],
        );
        wait_for("the replica to sync", Duration::from_secs(20), || {
            replica
                .cli(&["info", "replication"])
                .contains("master_link_status:up")
                .then_some(())
        });
        let sentinel_port = free_port();
        let dir = parent.join(format!("sentinel-{sentinel_port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = std::fs::canonicalize(dir).unwrap();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "bind 127.0.0.1\nport {sentinel_port}\ndir {d}\nlogfile {d}/sentinel.log\n\
                 sentinel monitor mymaster 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 3000\n\
                 sentinel parallel-syncs mymaster 1\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(binary("redis-sentinel"));
        cmd.arg(&conf);
        let mut sentinel = Proc::spawn_logging_to("sentinel", &mut cmd, &dir.join("sentinel.log"));
        wait_until_pong(&mut sentinel, sentinel_port);
        // The sentinel learns of the replica from the master's INFO; a failover needs it.
        wait_for(
            "the sentinel to see the replica",
            Duration::from_secs(20),
            || {
                cli(sentinel_port, &["sentinel", "replicas", "mymaster"])
                    .contains(&replica.port.to_string())
                    .then_some(())
            },
        );
        Self {
            master,
            replica,
            sentinel_port,
            sentinel,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.sentinel_port)
    }

    /// The port of the master the sentinel names now.
    pub fn current_master_port(&self) -> Option<u16> {
        let out = cli(
            self.sentinel_port,
            &["sentinel", "get-master-addr-by-name", "mymaster"],
        );
        out.lines().nth(1)?.trim().parse().ok()
    }
}

/// A cluster of three masters, no replicas.
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    pub fn start(parent: &Path) -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let port = free_port();
                // The bus port defaults to port + 10000, which may be taken: pick one too.
                let bus = free_port().to_string();
                let conf = parent.join(format!("nodes-{port}.conf"));
                std::fs::create_dir_all(parent).unwrap();
                let conf = std::fs::canonicalize(parent)
                    .unwrap()
                    .join(conf.file_name().unwrap());
                RedisServer::start_on(
                    parent,
                    port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &bus,
                        "--cluster-config-file",
                        conf.to_str().unwrap(),
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = nodes[0].cli(&args);
        assert!(out.contains("[OK]"), "cluster create failed: {out}");
        for n in &nodes {
            wait_for("the cluster to be ok", Duration::from_secs(20), || {
                n.cli(&["cluster", "info"])
                    .contains("cluster_state:ok")
                    .then_some(())
            });
        }
        Self { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}
