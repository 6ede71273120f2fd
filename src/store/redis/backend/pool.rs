//! The bb8 pools of the standalone and sentinel modes: sized by the config, filled on demand,
//! a connection checked with a `PING` when taken out only if it has not answered lately, and a
//! check-out that times out saying why (the last connection error).
//!
//! Checking every connection at every check-out would cost each operation a second round trip
//! (the `PING`, then the command): on the cold path of `/auth` that is half of what Redis costs.
//! So each pooled connection ([`Tracked`]) remembers when it last answered and whether it has
//! failed in a way that leaves it unusable:
//!
//! - a connection that answered within [`TRUSTED_FOR`] and never failed is handed out as it is;
//! - an older one is `PING`ed first, as before (a server restarted or killed while the pool
//!   was quiet is noticed there, and the caller gets a new connection);
//! - a connection whose command failed on the connection itself (I/O, a dropped connection, a
//!   timeout, an unreadable answer) or with `READONLY` (its server is no longer the master:
//!   a Sentinel failover that demoted it) is dropped when it returns to the pool, so the next
//!   one is opened afresh (in sentinel mode, to the master the sentinels name now).
//!
//! The price: a server that dies while the pool is busy fails the command in flight on each
//! pooled connection once, where the `PING` would have caught some of them. Those commands
//! would have failed anyway; callers see `store unavailable: redis`.

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
pub(super) const TRUSTED_FOR: Duration = Duration::from_secs(1);

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
}

/// What the clones of one pooled connection have seen of it.
struct Health {
    opened_at: Instant,
    /// When it last answered, in milliseconds since `opened_at`.
    answered_ms: AtomicU64,
    broken: AtomicBool,
}

impl Tracked {
    fn new(conn: MultiplexedConnection) -> Self {
        Tracked {
            conn,
            health: Arc::new(Health {
                opened_at: Instant::now(),
                answered_ms: AtomicU64::new(0),
                broken: AtomicBool::new(false),
            }),
        }
    }

    fn broken(&self) -> bool {
        self.health.broken.load(Ordering::Relaxed)
    }

    fn trusted(&self) -> bool {
        let answered = self.health.answered_ms.load(Ordering::Relaxed);
        let quiet = (self.health.opened_at.elapsed().as_millis() as u64).saturating_sub(answered);
        !self.broken() && quiet < TRUSTED_FOR.as_millis() as u64
    }

    /// Notes how a command ended: an answer (even an error reply) proves the connection alive;
    /// see [`breaks`] for the failures that end it.
    fn observe<T>(&self, result: &Result<T, RedisError>) {
        match result {
            Err(e) if breaks(e) => self.health.broken.store(true, Ordering::Relaxed),
            _ => {
                let now = self.health.opened_at.elapsed().as_millis() as u64;
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
pub(in crate::store::redis) struct Manager<C>(pub(super) C);

impl<C: Connect> ManageConnection for Manager<C> {
    type Connection = Tracked;
    type Error = RedisError;

    async fn connect(&self) -> Result<Tracked, RedisError> {
        self.0.connect().await.map(Tracked::new)
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
        .build_unchecked(Manager(connect))
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
