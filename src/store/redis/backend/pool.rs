//! The bb8 pools of the standalone and sentinel modes: sized by the config, filled on demand,
//! and a check-out that times out saying why (the last connection error).
//!
//! A pooled connection is a multiplexed one, and callers use clones of it: the pool hands it
//! out again at once, and the commands of concurrent callers go out together on its socket.
//!
//! Checking a connection with a `PING` at every check-out cost each operation a second round
//! trip, half of what Redis costs the cold path of `/auth`. So each pooled connection
//! ([`Tracked`]) remembers when it last answered and whether it failed in a way that leaves it
//! unusable (see [`breaks`]: the connection itself failed, or `READONLY`, its server was
//! demoted to a replica by a Sentinel failover):
//!
//! - a connection that answered within [`TRUSTED_FOR`], since the last failure of any
//!   connection of the pool, goes out without a check; any other is `PING`ed first, and
//!   replaced if that fails (a server restarted while the pool was quiet is noticed there);
//! - a broken connection is dropped, and its replacement opened afresh (in sentinel mode, to
//!   the master the sentinels name now);
//! - a read (`Backend::read`) whose trusted connection turns out dead (the server restarted
//!   since its last answer) runs again on a checked one: reading twice changes nothing;
//! - a write (`Backend::conn`) always gets a connection that has just answered a `PING`, as
//!   before: a write that failed with its connection may have landed, so it is never retried.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bb8::{ErrorSink, ManageConnection, Pool, RunError};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};

use super::{unavailable, CONNECT_TIMEOUT};
use crate::config::RedisConfig;
use crate::store::StoreError;

/// How long after its last answer a pooled connection is handed out without a `PING`.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// Remembers the last connection error of a pool, so a check-out that times out can say why
/// instead of only "timed out".
#[derive(Debug, Clone, Default)]
pub(in crate::store::redis) struct LastError(Arc<Mutex<Option<String>>>);

impl LastError {
    fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

impl ErrorSink<RedisError> for LastError {
    fn sink(&self, error: RedisError) {
        // A std mutex: held for one assignment, never across an `.await`.
        if let Ok(mut last) = self.0.lock() {
            *last = Some(error.to_string());
        }
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<RedisError>> {
        Box::new(self.clone())
    }
}

/// Opens one multiplexed connection: to the configured server (standalone) or to the master
/// the sentinels name (sentinel).
pub(super) trait Connect: Send + Sync + 'static {
    fn connect(
        &self,
    ) -> impl std::future::Future<Output = Result<MultiplexedConnection, RedisError>> + Send;
}

impl Connect for redis::Client {
    async fn connect(&self) -> Result<MultiplexedConnection, RedisError> {
        self.get_multiplexed_async_connection().await
    }
}

/// A pooled connection, with when it last answered and whether it is broken. Callers use
/// clones of it (a multiplexed connection is cloned to be shared: their commands go out
/// together on the one socket), so the pool hands it out again at once; the clones share its
/// [`Health`].
#[derive(Clone)]
pub(in crate::store::redis) struct Tracked {
    conn: MultiplexedConnection,
    health: Arc<Health>,
    clock: Arc<PoolClock>,
}

/// What the clones of one pooled connection have seen of it.
#[derive(Default)]
struct Health {
    /// When it last answered ([`PoolClock`] milliseconds).
    answered_ms: AtomicU64,
    broken: AtomicBool,
}

/// The pool's clock, and when a connection of the pool last failed: a failure makes every
/// connection of the pool suspect (a server that restarts takes them all), so each is checked
/// before it goes out again.
pub(in crate::store::redis) struct PoolClock {
    start: Instant,
    failed_ms: AtomicU64,
}

impl PoolClock {
    fn new() -> Self {
        PoolClock {
            start: Instant::now(),
            failed_ms: AtomicU64::new(0),
        }
    }

    /// Milliseconds since the pool was made; 1 at the earliest, so 0 means "never".
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }
}

impl Tracked {
    fn new(conn: MultiplexedConnection, clock: Arc<PoolClock>) -> Self {
        let health = Health::default();
        health.answered_ms.store(clock.now_ms(), Ordering::Relaxed);
        Tracked {
            conn,
            health: Arc::new(health),
            clock,
        }
    }

    /// Whether a command of this connection failed on the connection itself.
    pub(in crate::store::redis) fn broken(&self) -> bool {
        self.health.broken.load(Ordering::Relaxed)
    }

    /// Handed out without a check: not broken, answered within [`TRUSTED_FOR`], and since the
    /// last failure of any connection of the pool.
    fn trusted(&self) -> bool {
        let answered = self.health.answered_ms.load(Ordering::Relaxed);
        let quiet = self.clock.now_ms().saturating_sub(answered);
        !self.broken()
            && answered > self.clock.failed_ms.load(Ordering::Relaxed)
            && u128::from(quiet) < TRUSTED_FOR.as_millis()
    }

    /// Notes how a command ended: an answer (even an error reply) proves the connection alive;
    /// see [`breaks`] for the failures that end it.
    fn observe<T>(&self, result: &Result<T, RedisError>) {
        let now = self.clock.now_ms();
        match result {
            Err(e) if breaks(e) => {
                self.health.broken.store(true, Ordering::Relaxed);
                self.clock.failed_ms.fetch_max(now, Ordering::Relaxed);
            }
            _ => {
                self.health.answered_ms.fetch_max(now, Ordering::Relaxed);
            }
        }
    }
}

/// Whether a failed command leaves its connection unusable. Error replies about the command
/// (a wrong type, `NOSCRIPT`, a script's own error) do not; a failure of the connection does,
/// and so does `READONLY`: the server was demoted to a replica, and only a new connection
/// finds the master.
fn breaks(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::Server(ServerErrorKind::ReadOnly) => true,
        ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType | ErrorKind::Extension => false,
        _ => true,
    }
}

impl ConnectionLike for Tracked {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.conn.req_packed_command(cmd).await;
            self.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.conn.req_packed_commands(pipeline, offset, count).await;
            self.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// The bb8 manager of [`Tracked`] connections opened by `C`.
pub(in crate::store::redis) struct Manager<C> {
    connect: C,
    clock: Arc<PoolClock>,
}

impl<C: Connect> ManageConnection for Manager<C> {
    type Connection = Tracked;
    type Error = RedisError;

    async fn connect(&self) -> Result<Tracked, RedisError> {
        let conn = self.connect.connect().await?;
        Ok(Tracked::new(conn, self.clock.clone()))
    }

    async fn is_valid(&self, conn: &mut Tracked) -> Result<(), RedisError> {
        if conn.broken() {
            // A clone saw it fail after it went back to the pool.
            return Err(RedisError::from((ErrorKind::Io, "the connection failed")));
        }
        if conn.trusted() {
            return Ok(());
        }
        redis::cmd("PING").query_async::<()>(conn).await
    }

    fn has_broken(&self, conn: &mut Tracked) -> bool {
        conn.broken()
    }
}

pub(super) fn pool<C: Connect>(
    cfg: &RedisConfig,
    last_error: &LastError,
    connect: C,
) -> Pool<Manager<C>> {
    Pool::builder()
        .max_size(cfg.pool_size)
        .connection_timeout(CONNECT_TIMEOUT)
        // Check-out calls `is_valid`: a `PING` for a connection not trusted (see the module
        // doc), the only way bb8 learns that a quiet multiplexed connection died (e.g. its
        // master was killed), so the pool replaces it instead of failing forever.
        .test_on_check_out(true)
        .error_sink(Box::new(last_error.clone()))
        .build_unchecked(Manager {
            connect,
            clock: Arc::new(PoolClock::new()),
        })
}

pub(super) fn pool_error(e: RunError<RedisError>, last_error: &LastError) -> StoreError {
    match e {
        RunError::User(e) => unavailable(e),
        RunError::TimedOut => unavailable(match last_error.take() {
            Some(why) => format!(
                "no connection within {} s ({why})",
                CONNECT_TIMEOUT.as_secs()
            ),
            None => format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a command gets for the error reply `-{reply}`.
    fn server_error(reply: &str) -> RedisError {
        redis::parse_redis_value(format!("-{reply}\r\n").as_bytes())
            .and_then(Value::extract_error)
            .unwrap_err()
    }

    #[test]
    fn only_failures_of_the_connection_or_a_demoted_master_break_it() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(breaks(&io));
        assert!(breaks(&server_error(
            "READONLY You can't write against a read only replica."
        )));
        assert!(!breaks(&server_error("NOSCRIPT No matching script.")));
        assert!(!breaks(&server_error("WRONGTYPE Operation against a key")));
        assert!(!breaks(&RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "not an integer"
        ))));
    }
}
