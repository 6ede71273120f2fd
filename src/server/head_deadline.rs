//! The time a connection has to send each request's head (`server.header_timeout`): from when it
//! is accepted, and again from each answer. A client that sends a head a byte at a time, or
//! none at all (slowloris), or that keeps an idle connection open, is disconnected when the time
//! is up, so it cannot hold one of `server.max_connections` for long. While a request is being
//! answered (its body read, the IdP asked) the clock stops: those have deadlines of their own.
//!
//! hyper's own `header_read_timeout` does the same with a timer it arms for every request (a
//! boxed sleep made, registered and dropped, and one more read of the socket after each answer
//! to start it): about 0.6 µs of CPU a request, measured on `examples/floor.rs` with and without
//! it, where a cached `/auth` costs about 9 µs in all. Here each request only stores the time
//! it was answered; one sleep per connection looks at it when the time would be up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The [`HeadClock::ready_since`] of a connection whose request is being answered.
const ANSWERING: u64 = u64::MAX;

/// Milliseconds since the first call in this process: a clock an atomic can hold.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let millis = START.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(millis).unwrap_or(ANSWERING - 1)
}

/// One connection's clock.
#[derive(Debug)]
pub(super) struct HeadClock {
    /// When the connection last became ready for a new request head ([`now_ms`]): accepted,
    /// or its last request answered; [`ANSWERING`] while one is being answered.
    ready_since: AtomicU64,
}

impl HeadClock {
    /// The clock of a connection accepted now.
    pub(super) fn start() -> Arc<Self> {
        Arc::new(Self {
            ready_since: AtomicU64::new(now_ms()),
        })
    }

    /// Stops the clock while a request is answered; it starts again when the guard is dropped
    /// (the answer made, or the request abandoned).
    pub(super) fn answering(self: Arc<Self>) -> Answering {
        self.ready_since.store(ANSWERING, Ordering::Relaxed);
        Answering(self)
    }

    /// Resolves once the connection has been ready for a request head for `limit` without one
    /// arriving whole. Polled beside the connection: the caller then closes it.
    pub(super) async fn overdue(&self, limit: Duration) {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(ANSWERING - 1);
        loop {
            let since = self.ready_since.load(Ordering::Relaxed);
            let wait = if since == ANSWERING {
                limit
            } else {
                let due = since.saturating_add(limit_ms);
                let now = now_ms();
                if now >= due {
                    return;
                }
                Duration::from_millis(due - now)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request being answered (see [`HeadClock::answering`]).
pub(super) struct Answering(Arc<HeadClock>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.ready_since.store(now_ms(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_is_overdue_after_the_limit_counted_from_its_last_answer() {
        let started = Instant::now();
        let clock = HeadClock::start();
        let limit = Duration::from_millis(200);
        clock.overdue(limit).await;
        // The clock counts whole milliseconds: it may call time up to one early.
        let tick = Duration::from_millis(1);
        assert!(started.elapsed() + tick >= limit);

        // An answer restarts the clock: overdue a whole limit after it, not after the start.
        std::thread::sleep(Duration::from_millis(150));
        drop(clock.clone().answering());
        let answered = Instant::now();
        clock.overdue(limit).await;
        assert!(answered.elapsed() + tick >= limit);
    }

    #[tokio::test]
    async fn the_clock_stops_while_a_request_is_answered() {
        let clock = HeadClock::start();
        let answering = clock.clone().answering();
        let limit = Duration::from_millis(50);
        let waited = tokio::time::timeout(limit * 6, clock.overdue(limit)).await;
        assert!(
            waited.is_err(),
            "overdue while a request was being answered"
        );
        drop(answering);
        tokio::time::timeout(limit * 20, clock.overdue(limit))
            .await
            .expect("overdue once the answer is made");
    }
}
