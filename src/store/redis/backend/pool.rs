//! The bb8 pools of the standalone and sentinel modes: sized by the config, filled on demand,
//! each connection checked with a `PING` when taken out, and a check-out that times out
//! saying why (the last connection error).

use std::sync::{Arc, Mutex};

use bb8::{ErrorSink, ManageConnection, Pool, RunError};
use redis::RedisError;

use super::{unavailable, CONNECT_TIMEOUT};
use crate::config::RedisConfig;
use crate::store::StoreError;

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

pub(super) fn pool_builder<M: ManageConnection<Error = RedisError>>(
    cfg: &RedisConfig,
    last_error: &LastError,
) -> bb8::Builder<M> {
    Pool::builder()
        .max_size(cfg.pool_size)
        .connection_timeout(CONNECT_TIMEOUT)
        // Check-out runs a PING: the only way bb8 learns that a multiplexed connection died
        // (e.g. its master was killed), so the pool replaces it instead of failing forever.
        .test_on_check_out(true)
        .error_sink(Box::new(last_error.clone()))
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
