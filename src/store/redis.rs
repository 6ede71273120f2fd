//! Redis as the store of login states and sessions (standalone, Sentinel or Cluster), with
//! revocations broadcast by publish/subscribe. Not implemented yet.

use std::sync::Arc;

use super::{LoginStates, Sessions, StoreError};
use crate::config::RedisConfig;

/// Opens the Redis store; it answers both as [`LoginStates`] and [`Sessions`].
pub async fn open(
    _cfg: &RedisConfig,
) -> Result<(Arc<dyn LoginStates>, Arc<dyn Sessions>), StoreError> {
    Err(StoreError::Unavailable {
        store: "redis",
        message: "the Redis store is not implemented yet".into(),
    })
}
