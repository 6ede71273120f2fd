//! MongoDB: the project's users collection, and the durable copy of sessions kept beside Redis.
//! Not implemented yet.

use std::sync::Arc;

use super::{Sessions, StoreError, Users};
use crate::config::MongoConfig;

/// The users collection.
pub async fn open_users(_cfg: &MongoConfig) -> Result<Arc<dyn Users>, StoreError> {
    Err(StoreError::Unavailable {
        store: "mongodb",
        message: "the MongoDB users store is not implemented yet".into(),
    })
}

/// `primary` (Redis) with every session also written to MongoDB, and restored from it on a miss.
pub async fn mirror_sessions(
    _primary: Arc<dyn Sessions>,
    _cfg: &MongoConfig,
) -> Result<Arc<dyn Sessions>, StoreError> {
    Err(StoreError::Unavailable {
        store: "mongodb",
        message: "the MongoDB session copy is not implemented yet".into(),
    })
}
