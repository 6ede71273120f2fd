//! Child processes of a test: started with their stderr kept (and echoed), waited for with a
//! generous readiness wait that shows the end of their log on failure, stopped on `Drop`.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

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
        let line = rx.recv_timeout(STARTUP).unwrap_or_else(|_| {
            panic!(
                "{} printed nothing within a minute; its stderr:\n{}",
                self.name,
                self.log_tail()
            )
        });
        assert!(
            !line.is_empty(),
            "{} exited before printing its address; its stderr:\n{}",
            self.name,
            self.log_tail()
        );
        line
    }

    /// The last lines the process wrote on stderr, then those of its log file if it has one.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let mut tail = log[log.len().saturating_sub(30)..].join("\n");
        if let Some(file) = &self.log_file {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            tail.push_str(&format!(
                "\n{}:\n{}",
                file.display(),
                super::last_lines(&text, 30)
            ));
        }
        tail
    }

    /// Sends `signal` (e.g. "USR2") to the process, from this thread, before returning (no
    /// `kill` process in between: a test may race the process's own start with it).
    pub fn signal(&self, signal: &str) {
        let sent = self.send(signal_named(signal));
        assert!(sent.is_ok(), "kill -{signal} {}: {sent:?}", self.name);
    }

    fn send(&self, signal: rustix::process::Signal) -> rustix::io::Result<()> {
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or(rustix::io::Errno::SRCH)?;
        rustix::process::kill_process(pid, signal)
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
        let _ = self.send(rustix::process::Signal::TERM);
        if let Some(status) = self.exit_within(Duration::from_secs(10)) {
            return Some(status);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// Waits up to `limit` for the process to end by itself, sending nothing; its exit status,
    /// or `None` if it still runs.
    pub fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            self.terminate();
        }
    }
}

/// The signal of a `kill -NAME`, for the names the tests send.
fn signal_named(name: &str) -> rustix::process::Signal {
    use rustix::process::Signal;
    match name {
        "HUP" => Signal::HUP,
        "INT" => Signal::INT,
        "KILL" => Signal::KILL,
        "TERM" => Signal::TERM,
        "STOP" => Signal::STOP,
        "CONT" => Signal::CONT,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        _ => panic!("no signal named {name} here: add it to signal_named"),
    }
}
