//! The partial unique index `preserve_idgate_identity` on (realm, providerId, providerUserId),
//! for `PUBLIC` documents only: it makes two simultaneous first logins collide (duplicate key,
//! 11000) instead of creating two documents, and the loser finds the winner's (see
//! `store::first_login`). No index is required for logins to work.
//!
//! idgate creates it (unless `create_index = false`) when the collection has no unique index
//! on those keys and it **can**: at open, then at most every ten minutes from the readiness
//! check while it is missing. It cannot while duplicates exist (the build fails: logged once,
//! the logins go on without it) or without the `createIndex` privilege. The `preserve_` prefix
//! is what the CRUD service requires of indexes it did not define, or it drops them when it
//! starts.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use super::{error_code, Redactor};
use crate::store::user_doc::PUBLIC;
use crate::store::StoreError;

/// Name of the unique identity index (see the module doc for the prefix).
const IDENTITY_INDEX: &str = "preserve_idgate_identity";

/// How long after a failed attempt the index is tried again (from the readiness check).
const RETRY_SECS: i64 = 600;

/// MongoDB's code for a collection that does not exist (yet).
const NAMESPACE_NOT_FOUND: i32 = 26;

/// What is known of the index; shared by every login, so atomics.
pub(super) struct IdentityIndex {
    /// `create_index` of the config.
    create: bool,
    /// Set once a unique identity index is known to exist.
    ready: AtomicBool,
    /// When the index was last tried (seconds since the epoch), so a collection with duplicates
    /// is not scanned by an index build on every readiness check.
    tried_at: AtomicI64,
    /// Set once a failure to build the index was logged as a warning.
    warned: AtomicBool,
}

impl IdentityIndex {
    pub(super) fn new(create: bool) -> Self {
        Self {
            create,
            ready: AtomicBool::new(false),
            tried_at: AtomicI64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    /// Creates the partial unique identity index unless a unique index on the identity exists;
    /// `Ok(false)` when it is not there (not wanted, or not buildable: see the module doc).
    pub(super) async fn ensure(
        &self,
        users: &Collection<Document>,
        redactor: &Redactor,
    ) -> Result<bool, StoreError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(true);
        }
        let wanted = ["realm", "providerId", "providerUserId"];
        let existing: Vec<IndexModel> = match users.list_indexes().await {
            Ok(cursor) => cursor
                .try_collect()
                .await
                .map_err(|e| redactor.unavailable(e))?,
            Err(e) if error_code(&e) == Some(NAMESPACE_NOT_FOUND) => Vec::new(),
            Err(e) => return Err(redactor.unavailable(e)),
        };
        let present = existing.iter().any(|index| {
            let unique = index
                .options
                .as_ref()
                .and_then(|o| o.unique)
                .unwrap_or(false);
            unique
                && index.keys.len() == wanted.len()
                && wanted.iter().all(|k| index.keys.contains_key(k))
        });
        if present {
            self.ready.store(true, Ordering::Release);
            return Ok(true);
        }
        if !self.create {
            return Ok(false);
        }
        self.tried_at.store(crate::now_secs(), Ordering::Release);
        let model = IndexModel::builder()
            .keys(doc! { "realm": 1, "providerId": 1, "providerUserId": 1 })
            .options(
                IndexOptions::builder()
                    .name(IDENTITY_INDEX.to_owned())
                    .unique(true)
                    .partial_filter_expression(doc! { "__STATE__": PUBLIC })
                    .build(),
            )
            .build();
        match users.create_index(model).await {
            Ok(_) => {
                tracing::info!(
                    index = IDENTITY_INDEX,
                    "created the users collection's partial unique index"
                );
                self.ready.store(true, Ordering::Release);
                Ok(true)
            }
            Err(e) if error_code(&e).is_some() => {
                // The server refused (duplicates, no privilege): logins go on without it.
                let message = redactor.clean(&e);
                if !self.warned.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        index = IDENTITY_INDEX,
                        error = %message,
                        "cannot create the users collection's unique index (duplicate users? \
                         run `idgate users doctor`); logins work without it, but two \
                         simultaneous first logins of one person may then create two records"
                    );
                } else {
                    tracing::debug!(error = %message, "the unique index still cannot be built");
                }
                Ok(false)
            }
            Err(e) => Err(redactor.unavailable(e)),
        }
    }

    /// From the readiness check: tries the index again while it is missing, at most every
    /// [`RETRY_SECS`].
    pub(super) async fn retry_if_due(&self, users: &Collection<Document>, redactor: &Redactor) {
        let due = crate::now_secs() - self.tried_at.load(Ordering::Acquire) >= RETRY_SECS;
        if !self.ready.load(Ordering::Acquire) && due {
            if let Err(e) = self.ensure(users, redactor).await {
                tracing::warn!(error = %e, "the users collection's indexes cannot be read");
            }
        }
    }
}
