//! Users behind a CRUD HTTP service (Mia's `USERS_CRUD_BASE_URL`). Not implemented yet.

use std::sync::Arc;

use super::{StoreError, Users};
use crate::config::CrudConfig;

pub fn open_users(_cfg: &CrudConfig) -> Result<Arc<dyn Users>, StoreError> {
    Err(StoreError::Unavailable {
        store: "crud service",
        message: "the CRUD users store is not implemented yet".into(),
    })
}
