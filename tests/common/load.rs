//! An open-loop load generator for the fault tests and the soak: requests fall due at a fixed
//! rate whatever the answers do, so a stall shows up as latency and errors rather than as a
//! slower loop (the way `oha --rps` or `wrk2` drive a server). Like them it uses a bounded set
//! of connections ([`MAX_IN_FLIGHT`]): a request due while all are busy waits for one, and its
//! latency counts from the moment it was due, so the wait is measured rather than hidden —
//! while a stall can never turn into thousands of new connections (which would exhaust Nginx's
//! and close other clients' idle ones). Each request carries one logged-in user's cookie, the
//! users taken in turn, and is recorded with the moment it was due, its status (0: no answer
//! within [`REQUEST_TIMEOUT`] of that moment, or a transport error) and its latency. A renewed
//! session token (`Set-Cookie: sid=…`) replaces the target's, as a browser would keep it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// How long one request may take, from the moment it was due, before it counts as failed
/// (status 0).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The most requests in flight, hence connections, at once.
pub const MAX_IN_FLIGHT: usize = 512;

/// One request the generator sent.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was due, from the start of the load.
    pub at: Duration,
    /// Which target (user) it was for.
    pub target: usize,
    /// The HTTP status, or 0 for no answer.
    pub status: u16,
    pub latency: Duration,
}

/// A request the load repeats: `url`, with `cookie` as the `Cookie` header.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub cookie: String,
}

/// A load running in the background; [`Load::stop`] ends it and returns what it saw.
pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Load {
    /// Starts sending `rate` requests a second over `targets`, in turn.
    pub fn start(rate: u32, targets: Vec<Target>) -> Self {
        assert!(!targets.is_empty());
        Self::start_shared(rate, Arc::new(Mutex::new(targets)))
    }

    /// Like [`Load::start`], over a list the caller may change while the load runs (users
    /// logging in and out); a tick that finds it empty sends nothing.
    pub fn start_shared(rate: u32, targets: Arc<Mutex<Vec<Target>>>) -> Self {
        assert!(rate > 0);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            // Keep every connection: one closed after each request beyond a small pool would
            // churn through the ephemeral ports (each waits a minute in TIME_WAIT).
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let period = Duration::from_secs_f64(1.0 / f64::from(rate));
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        let task = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::from_std(started), period);
                // Open loop: a late tick is sent at once, never skipped.
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut inflight = JoinSet::new();
                let (mut n, mut tick) = (0usize, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    ticks.tick().await;
                    // When it was due, not when this loop got to it.
                    let at = period * tick;
                    tick += 1;
                    let (target, url, req) = {
                        let targets = targets.lock().unwrap();
                        if targets.is_empty() {
                            continue;
                        }
                        let target = n % targets.len();
                        let t = &targets[target];
                        let req = client.get(&t.url).header("cookie", &t.cookie);
                        (target, t.url.clone(), req)
                    };
                    n += 1;
                    let targets = targets.clone();
                    let slots = slots.clone();
                    let due = started + at;
                    inflight.spawn(async move {
                        let deadline = tokio::time::Instant::from_std(due + REQUEST_TIMEOUT);
                        let answer = tokio::time::timeout_at(deadline, async {
                            let _slot = slots.acquire().await.expect("never closed");
                            match req.send().await {
                                Ok(resp) => {
                                    let status = resp.status().as_u16();
                                    // As a browser does: a renewed session token replaces the old.
                                    if let Some(sid) = renewed_sid(&resp) {
                                        let mut targets = targets.lock().unwrap();
                                        if let Some(t) = targets.iter_mut().find(|t| t.url == url) {
                                            t.cookie = with_sid(&t.cookie, &sid);
                                        }
                                    }
                                    // Read the body, so the latency is the whole answer's.
                                    match resp.bytes().await {
                                        Ok(_) => status,
                                        Err(_) => 0,
                                    }
                                }
                                Err(_) => 0,
                            }
                        });
                        Sample {
                            at,
                            target,
                            status: answer.await.unwrap_or(0),
                            latency: due.elapsed(),
                        }
                    });
                }
                let mut samples = Vec::with_capacity(n);
                while let Some(s) = inflight.join_next().await {
                    samples.push(s.unwrap());
                }
                samples.sort_by_key(|s| s.at);
                samples
            })
        };
        Self {
            started,
            stop,
            task,
        }
    }

    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until the load has run for `at` since it started.
    pub async fn until(&self, at: Duration) {
        if let Some(rest) = at.checked_sub(self.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }

    /// Stops sending, waits for the requests in flight, and returns every sample.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        Report {
            samples: self.task.await.unwrap(),
        }
    }
}

/// The value of a `sid` cookie the response sets, if it sets one (a renewal).
fn renewed_sid(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get_all("set-cookie").iter().find_map(|v| {
        let pair = v.to_str().ok()?.split(';').next()?;
        let value = pair.trim().strip_prefix("sid=")?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// `cookie` (a `Cookie` header) with its `sid` replaced by `sid`.
fn with_sid(cookie: &str, sid: &str) -> String {
    cookie
        .split("; ")
        .map(|pair| {
            if pair.starts_with("sid=") {
                format!("sid={sid}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a load saw.
pub struct Report {
    pub samples: Vec<Sample>,
}

impl Report {
    /// The samples due within `[from, to)` of the load's start.
    pub fn window(&self, from: Duration, to: Duration) -> Report {
        Report {
            samples: self
                .samples
                .iter()
                .filter(|s| s.at >= from && s.at < to)
                .cloned()
                .collect(),
        }
    }

    pub fn sent(&self) -> usize {
        self.samples.len()
    }

    /// The samples whose status is not 200.
    pub fn failed(&self) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.status != 200).collect()
    }

    pub fn count(&self, status: u16) -> usize {
        self.samples.iter().filter(|s| s.status == status).count()
    }

    /// The `q` quantile (0..=1) of the latencies.
    pub fn latency(&self, q: f64) -> Duration {
        let mut l: Vec<Duration> = self.samples.iter().map(|s| s.latency).collect();
        if l.is_empty() {
            return Duration::ZERO;
        }
        l.sort();
        l[((l.len() - 1) as f64 * q).round() as usize]
    }

    /// One line for the test's output: sent, failed, 401s, 5xx, no answer, p50 and p99.
    pub fn summary(&self, label: &str) -> String {
        let s5xx = self.samples.iter().filter(|s| s.status >= 500).count();
        format!(
            "{label}: sent {}, failed {}, 401 {}, 5xx {}, no answer {}, p50 {:?}, p99 {:?}, max {:?}",
            self.sent(),
            self.failed().len(),
            self.count(401),
            s5xx,
            self.count(0),
            self.latency(0.5),
            self.latency(0.99),
            self.latency(1.0),
        )
    }

    /// Fails the test, with a summary, the first failures and `context` (e.g. Nginx's error
    /// log), unless every request got 200.
    pub fn assert_all_ok(&self, label: &str, context: &str) {
        let failed = self.failed();
        assert!(
            failed.is_empty(),
            "{}\nfirst failures: {:?}\n{context}",
            self.summary(label),
            &failed[..failed.len().min(10)]
        );
    }
}
