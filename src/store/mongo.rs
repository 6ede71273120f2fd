//! MongoDB: the project's users collection, and (in [`sessions`]) the durable copy of sessions
//! kept beside Redis.
//!
//! # The users collection
//!
//! Documents have the shape of the original CRUD service's users collection, so that service and
//! its console keep working on the same collection:
//!
//! ```text
//! { _id: ObjectId, realm, providerId, providerUserId, name, email, username,
//!   groups: [..], permissions: [..], metadata: {..},
//!   createdAt: Date, updatedAt: Date, creatorId, updaterId, __STATE__: "PUBLIC" }
//! ```
//!
//! `userId` is `_id` as a hex string (a string `_id`, which the CRUD service allows, is used as
//! it is). Only `__STATE__: "PUBLIC"` documents are users: every lookup filters on it, except
//! `find_ids_by_identity`, which back-channel logout uses to end the sessions of a user the
//! console trashed or deleted as well.
//!
//! # Logins on an existing collection
//!
//! No index is required. A login first looks for the identity's `PUBLIC` documents, sorted by
//! the rule of [`crate::store::DUPLICATE_RULE`] (`createdAt`, then `_id`), and refreshes the
//! first with a `findOneAndUpdate` on its `_id`: a collection that already holds several
//! documents for one person (Mia's authentication service creates them: it keeps no unique
//! index) still logs that person in, always into the same document, and the identity is logged
//! once ([`crate::store::DuplicateNotes`]). With no `PUBLIC` document, the login inserts one
//! with an upsert keyed by (realm, providerId, providerUserId, PUBLIC): `$set` for what the IdP
//! owns, `$setOnInsert` for what the project owns (the default groups).
//!
//! The partial unique index `preserve_idgate_identity` on (realm, providerId, providerUserId),
//! for `PUBLIC` documents only, makes two simultaneous first logins collide (duplicate key,
//! 11000) instead of creating two documents; the loser retries and finds the winner's. idgate
//! creates it (unless `create_index = false`) when the collection has no unique index on those
//! keys and it **can**: at open, then at most every ten minutes from the readiness check while
//! it is missing. It cannot while duplicates exist (the build fails: logged once, the logins go
//! on without it) or without the `createIndex` privilege. The `preserve_` prefix is what the
//! CRUD service requires of indexes it did not define, or it drops them when it starts.
//!
//! A user the console moved to TRASH, DRAFT or DELETED holds its identity in a document that is
//! not `PUBLIC`. `inactive_users = "refuse"` (the default) refuses the login with a message
//! saying so, rather than creating a fresh document with the default groups (which would
//! silently undo a ban); `"recreate"` does what Mia's authentication service does: a new
//! `PUBLIC` document. An older, non-partial unique index on the identity makes re-creation
//! impossible: that login is refused with a message naming the index.
//!
//! Errors never carry the URI (it may hold a password): messages go through [`Redactor`].

mod sessions;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};

use super::DuplicateNotes;
use super::{Identity, Sessions, StoreError, User, UserRecord, Users};
use crate::config::{InactiveUsers, MongoConfig};

pub(crate) const STORE: &str = "mongodb";

/// The CRUD service's name for a visible document.
const PUBLIC: &str = "PUBLIC";

/// What idgate writes in `creatorId` / `updaterId`, the CRUD service's audit fields.
const WRITER: &str = "idgate";

/// Name of the unique identity index (see the module doc for the prefix).
const IDENTITY_INDEX: &str = "preserve_idgate_identity";

/// Server selection and connect timeout: a MongoDB that is down answers within this, so a
/// login or `/-/ready` fails fast with a 503 instead of hanging.
const TIMEOUT: Duration = Duration::from_secs(2);

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Attempts of a login that lost a first-login race (see `upsert_login`).
const RACE_ROUNDS: u32 = 5;

/// How long after a failed attempt the unique index is tried again (from the readiness check).
const INDEX_RETRY_SECS: i64 = 600;

/// Most user ids `find_ids_by_identity` returns (one per state, unless duplicates exist).
pub(crate) const IDS_BY_IDENTITY_LIMIT: i64 = 10;

/// The users collection.
pub async fn open_users(cfg: &MongoConfig) -> Result<Arc<dyn Users>, StoreError> {
    let (client, redactor) = connect(cfg).await?;
    let store = MongoUsers {
        users: client
            .database(&cfg.database)
            .collection::<Document>(&cfg.collection),
        redactor,
        create_index: cfg.create_index,
        inactive: cfg.inactive_users,
        index_ready: Arc::new(AtomicBool::new(false)),
        index_tried_at: Arc::new(AtomicI64::new(0)),
        index_warned: Arc::new(AtomicBool::new(false)),
        notes: Arc::new(DuplicateNotes::default()),
    };
    if let Err(e) = store.ensure_index().await {
        // Not fatal: MongoDB may be down at startup; `/-/ready` says so and the index is
        // tried again from there.
        tracing::warn!(error = %e, "the users collection's indexes cannot be read yet");
    }
    Ok(Arc::new(store))
}

/// `primary` (Redis) with every session also written to MongoDB, and restored from it on a miss.
pub async fn mirror_sessions(
    primary: Arc<dyn Sessions>,
    cfg: &MongoConfig,
) -> Result<Arc<dyn Sessions>, StoreError> {
    let (client, redactor) = connect(cfg).await?;
    let mirror = sessions::MirroredSessions::new(
        primary,
        client
            .database(&cfg.database)
            .collection::<Document>(&cfg.sessions_collection),
        redactor,
    );
    mirror.ensure_indexes_logged().await;
    Ok(Arc::new(mirror))
}

/// A client for `cfg.uri`, with short timeouts. Connects lazily: a MongoDB that is down does not
/// fail this.
async fn connect(cfg: &MongoConfig) -> Result<(Client, Redactor), StoreError> {
    let redactor = Redactor::for_uri(cfg.uri.expose());
    let mut options = ClientOptions::parse(cfg.uri.expose())
        .await
        .map_err(|e| redactor.unavailable(format!("users.uri: {e}")))?;
    options.server_selection_timeout = Some(TIMEOUT);
    options.connect_timeout = Some(TIMEOUT);
    options.app_name.get_or_insert_with(|| "idgate".into());
    let client = Client::with_options(options).map_err(|e| redactor.unavailable(e))?;
    Ok((client, redactor))
}

/// Removes the URI and its password from error messages.
#[derive(Clone)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    fn for_uri(uri: &str) -> Self {
        let mut secrets = vec![uri.to_owned()];
        // mongodb://user:password@host…: the password alone may appear too.
        if let Some(rest) = uri.split_once("://").map(|(_, r)| r) {
            if let Some((userinfo, _)) = rest.split_once('@') {
                if let Some((_, password)) = userinfo.split_once(':') {
                    if !password.is_empty() {
                        secrets.push(password.to_owned());
                        if let Ok(decoded) = percent_encoding::percent_decode_str(password)
                            .decode_utf8()
                            .map(|s| s.into_owned())
                        {
                            secrets.push(decoded);
                        }
                    }
                }
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    pub(crate) fn clean(&self, message: impl std::fmt::Display) -> String {
        let mut message = message.to_string();
        for secret in &self.secrets {
            message = message.replace(secret.as_str(), "***");
        }
        message
    }

    pub(crate) fn unavailable(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable {
            store: STORE,
            message: self.clean(e),
        }
    }
}

/// The server's error code, when the error is a command or write error.
pub(crate) fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        _ => None,
    }
}

fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        store: STORE,
        message: message.into(),
    }
}

/// Seconds since the epoch → BSON date.
pub(crate) fn date(secs: i64) -> DateTime {
    DateTime::from_millis(secs.saturating_mul(1000))
}

/// BSON date (or an RFC 3339 string, as a JSON import may leave) → seconds since the epoch.
fn secs_of(value: Option<&Bson>) -> i64 {
    match value {
        Some(Bson::DateTime(d)) => d.timestamp_millis().div_euclid(1000),
        Some(Bson::String(s)) => DateTime::parse_rfc3339_str(s)
            .map(|d| d.timestamp_millis().div_euclid(1000))
            .unwrap_or(0),
        _ => 0,
    }
}

/// The filter for a user id: an ObjectId when it reads as one, else a string `_id`.
fn id_filter(user_id: &str) -> Document {
    match ObjectId::parse_str(user_id) {
        Ok(oid) => doc! { "_id": { "$in": [oid, user_id] }, "__STATE__": PUBLIC },
        Err(_) => doc! { "_id": user_id, "__STATE__": PUBLIC },
    }
}

/// A users-collection document as a [`User`]. Lenient about what the CRUD console may leave
/// out (missing arrays are empty, missing dates are 0), strict about wrong types.
pub(crate) fn user_from_doc(d: &Document) -> Result<User, StoreError> {
    let user_id = match d.get("_id") {
        Some(Bson::ObjectId(oid)) => oid.to_hex(),
        Some(Bson::String(s)) => s.clone(),
        other => return Err(corrupt(format!("a user has an unusable _id: {other:?}"))),
    };
    let required = |field: &str| -> Result<String, StoreError> {
        d.get_str(field).map(str::to_owned).map_err(|_| {
            corrupt(format!(
                "user {user_id}: `{field}` is missing or not a string"
            ))
        })
    };
    let optional = |field: &str| -> Result<Option<String>, StoreError> {
        match d.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(corrupt(format!(
                "user {user_id}: `{field}` is not a string"
            ))),
        }
    };
    let strings = |field: &str| -> Result<Vec<String>, StoreError> {
        match d.get(field) {
            None | Some(Bson::Null) => Ok(Vec::new()),
            Some(Bson::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Bson::String(s) => Ok(s.clone()),
                    _ => Err(corrupt(format!(
                        "user {user_id}: `{field}` holds something other than strings"
                    ))),
                })
                .collect(),
            Some(_) => Err(corrupt(format!(
                "user {user_id}: `{field}` is not an array"
            ))),
        }
    };
    let metadata = match d.get("metadata") {
        None | Some(Bson::Null) => serde_json::json!({}),
        Some(value) => value.clone().into_relaxed_extjson(),
    };
    Ok(User {
        realm: required("realm")?,
        provider_id: required("providerId")?,
        provider_user_id: required("providerUserId")?,
        name: optional("name")?,
        email: optional("email")?,
        username: optional("username")?,
        groups: strings("groups")?,
        permissions: strings("permissions")?,
        metadata,
        created_at: secs_of(d.get("createdAt")),
        updated_at: secs_of(d.get("updatedAt")),
        user_id,
    })
}

/// The refusal of a login whose document exists but is not PUBLIC.
pub(crate) fn not_public(
    store: &'static str,
    id: &Identity,
    user_id: &str,
    state: &str,
) -> StoreError {
    StoreError::Refused {
        store,
        message: format!(
            "user {user_id} (realm `{}`, provider `{}`, subject `{}`) is in state {state}, not \
             PUBLIC: the login is refused rather than creating a second document; restore the \
             user to PUBLIC (or delete the document) in the users collection",
            id.realm, id.provider_id, id.provider_user_id
        ),
    }
}

/// Handle to the users collection; cheap to clone.
#[derive(Clone)]
struct MongoUsers {
    users: Collection<Document>,
    redactor: Redactor,
    /// `create_index` of the config.
    create_index: bool,
    inactive: InactiveUsers,
    /// Set once a unique identity index is known to exist.
    index_ready: Arc<AtomicBool>,
    /// When the index was last tried (seconds since the epoch), so a collection with duplicates
    /// is not scanned by an index build on every readiness check.
    index_tried_at: Arc<AtomicI64>,
    /// Set once a failure to build the index was logged as a warning.
    index_warned: Arc<AtomicBool>,
    notes: Arc<DuplicateNotes>,
}

/// The sort that picks one document among several `PUBLIC` ones of an identity
/// ([`crate::store::DUPLICATE_RULE`]).
fn oldest_first() -> Document {
    doc! { "createdAt": 1, "_id": 1 }
}

fn identity_key(realm: &str, provider_id: &str, provider_user_id: &str) -> Document {
    doc! {
        "realm": realm,
        "providerId": provider_id,
        "providerUserId": provider_user_id,
    }
}

/// A document's `_id` as text (hex for an ObjectId).
fn id_text(d: &Document) -> String {
    match d.get("_id") {
        Some(Bson::ObjectId(oid)) => oid.to_hex(),
        Some(Bson::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

impl MongoUsers {
    fn err(&self, e: mongodb::error::Error) -> StoreError {
        self.redactor.unavailable(e)
    }

    /// Creates the partial unique identity index unless a unique index on the identity exists;
    /// `Ok(false)` when it is not there (not wanted, or not buildable: see the module doc).
    async fn ensure_index(&self) -> Result<bool, StoreError> {
        if self.index_ready.load(Ordering::Acquire) {
            return Ok(true);
        }
        let wanted = ["realm", "providerId", "providerUserId"];
        let existing: Vec<IndexModel> = match self.users.list_indexes().await {
            Ok(cursor) => cursor.try_collect().await.map_err(|e| self.err(e))?,
            // 26 = NamespaceNotFound: the collection does not exist yet.
            Err(e) if error_code(&e) == Some(26) => Vec::new(),
            Err(e) => return Err(self.err(e)),
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
            self.index_ready.store(true, Ordering::Release);
            return Ok(true);
        }
        if !self.create_index {
            return Ok(false);
        }
        self.index_tried_at
            .store(crate::now_secs(), Ordering::Release);
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
        match self.users.create_index(model).await {
            Ok(_) => {
                tracing::info!(
                    index = IDENTITY_INDEX,
                    "created the users collection's partial unique index"
                );
                self.index_ready.store(true, Ordering::Release);
                Ok(true)
            }
            Err(e) if error_code(&e).is_some() => {
                // The server refused (duplicates, no privilege): logins go on without it.
                let message = self.redactor.clean(&e);
                if !self.index_warned.swap(true, Ordering::AcqRel) {
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
            Err(e) => Err(self.err(e)),
        }
    }

    /// The identity's `PUBLIC` documents by the duplicate rule: at most two, enough to tell
    /// whether there are duplicates.
    async fn active_holders(&self, key: &Document) -> Result<Vec<Document>, StoreError> {
        let mut filter = key.clone();
        filter.insert("__STATE__", PUBLIC);
        self.users
            .find(filter)
            .sort(oldest_first())
            .limit(2)
            .await
            .map_err(|e| self.err(e))?
            .try_collect()
            .await
            .map_err(|e| self.err(e))
    }

    /// A document holding the identity outside PUBLIC, if any.
    async fn hidden_holder(&self, key: &Document) -> Result<Option<Document>, StoreError> {
        let mut filter = key.clone();
        filter.insert("__STATE__", doc! { "$ne": PUBLIC });
        self.users
            .find_one(filter)
            .sort(oldest_first())
            .await
            .map_err(|e| self.err(e))
    }
}

#[async_trait]
impl Users for MongoUsers {
    async fn upsert_login(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<User, StoreError> {
        let key = identity_key(&id.realm, &id.provider_id, &id.provider_user_id);
        let now = DateTime::now();
        // What the IdP owns is refreshed; a field the IdP did not send keeps its stored value.
        let mut set = doc! { "updatedAt": now, "updaterId": WRITER };
        for (field, value) in [
            ("name", &id.name),
            ("email", &id.email),
            ("username", &id.username),
        ] {
            if let Some(value) = value {
                set.insert(field, value);
            }
        }
        let insert = doc! {
            "$set": set.clone(),
            "$setOnInsert": {
                "groups": default_groups,
                "permissions": Bson::Array(Vec::new()),
                "metadata": Document::new(),
                "createdAt": now,
                "creatorId": WRITER,
                "__STATE__": PUBLIC,
            },
        };
        let mut insert_filter = key.clone();
        insert_filter.insert("__STATE__", PUBLIC);
        // Each round: the active document if there is one, else an insert. A round ends
        // without an answer when a concurrent login or console edit got in between (the
        // document went out of PUBLIC, or another login inserted first); the next sees it.
        // The winner's insert may not be visible at once to the loser (seen with secantusdb),
        // hence a few short rounds.
        for round in 0..RACE_ROUNDS {
            let holders = self.active_holders(&key).await?;
            if let Some(first) = holders.first() {
                let user_id = id_text(first);
                if holders.len() > 1 {
                    self.notes.note(STORE, id, &user_id);
                }
                let found = self
                    .users
                    .find_one_and_update(
                        doc! { "_id": first.get("_id").cloned().unwrap_or(Bson::Null), "__STATE__": PUBLIC },
                        doc! { "$set": set.clone() },
                    )
                    .return_document(ReturnDocument::After)
                    .await
                    .map_err(|e| self.err(e))?;
                if let Some(d) = found {
                    return user_from_doc(&d);
                }
            } else {
                let hidden = self.hidden_holder(&key).await?;
                if let (Some(d), InactiveUsers::Refuse) = (&hidden, self.inactive) {
                    let state = d.get_str("__STATE__").unwrap_or("(none)");
                    return Err(not_public(STORE, id, &id_text(d), state));
                }
                let found = self
                    .users
                    .find_one_and_update(insert_filter.clone(), insert.clone())
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .await;
                match found {
                    Ok(Some(d)) => return user_from_doc(&d),
                    Ok(None) => {}
                    Err(e) if error_code(&e) == Some(DUPLICATE_KEY) => {
                        // Another login inserted first (retry), or an older unique index that
                        // ignores `__STATE__` blocks re-creating a hidden user (refuse).
                        if let Some(d) = hidden {
                            if self.active_holders(&key).await?.is_empty() {
                                return Err(StoreError::Refused {
                                    store: STORE,
                                    message: format!(
                                        "user {} (realm `{}`, provider `{}`, subject `{}`) is \
                                         not PUBLIC, and a unique index on the identity that \
                                         ignores __STATE__ prevents creating a new record \
                                         (inactive_users = \"recreate\"); replace it with a \
                                         partial index (PUBLIC only) or restore the user",
                                        id_text(&d),
                                        id.realm,
                                        id.provider_id,
                                        id.provider_user_id
                                    ),
                                });
                            }
                        }
                        tracing::debug!(realm = %id.realm, provider = %id.provider_id,
                            "identity taken meanwhile; retrying");
                    }
                    Err(e) => return Err(self.err(e)),
                }
            }
            tokio::time::sleep(Duration::from_millis(10 << round)).await;
        }
        Err(self.redactor.unavailable(
            "two logins of the same user collided and the winner's document never became \
             visible; retry the login",
        ))
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        match self
            .users
            .find_one(id_filter(user_id))
            .await
            .map_err(|e| self.err(e))?
        {
            Some(d) => user_from_doc(&d).map(Some),
            None => Ok(None),
        }
    }

    async fn find_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let key = identity_key(realm, provider_id, provider_user_id);
        match self.active_holders(&key).await?.first() {
            Some(d) => user_from_doc(d).map(Some),
            None => Ok(None),
        }
    }

    async fn find_ids_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        // No `__STATE__` filter: a trashed or deleted user's sessions must end too. Duplicates
        // are few; the limit bounds them.
        let docs: Vec<Document> = self
            .users
            .find(identity_key(realm, provider_id, provider_user_id))
            .sort(oldest_first())
            .projection(doc! { "_id": 1 })
            .limit(IDS_BY_IDENTITY_LIMIT)
            .await
            .map_err(|e| self.err(e))?
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        docs.iter()
            .map(|d| match d.get("_id") {
                Some(Bson::ObjectId(oid)) => Ok(oid.to_hex()),
                Some(Bson::String(s)) => Ok(s.clone()),
                other => Err(corrupt(format!("a user has an unusable _id: {other:?}"))),
            })
            .collect()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let docs: Vec<Document> = self
            .users
            .find(doc! { "__STATE__": PUBLIC })
            .sort(oldest_first())
            .await
            .map_err(|e| self.err(e))?
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        docs.iter().map(user_from_doc).collect()
    }

    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<bool, StoreError> {
        let result = self
            .users
            .update_one(
                id_filter(user_id),
                doc! { "$set": {
                    "groups": groups,
                    "updatedAt": DateTime::now(),
                    "updaterId": WRITER,
                } },
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(result.matched_count > 0)
    }

    async fn ping_users(&self) -> Result<(), StoreError> {
        self.users
            .client()
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| self.err(e))?;
        let due =
            crate::now_secs() - self.index_tried_at.load(Ordering::Acquire) >= INDEX_RETRY_SECS;
        if !self.index_ready.load(Ordering::Acquire) && due {
            if let Err(e) = self.ensure_index().await {
                tracing::warn!(error = %e, "the users collection's indexes cannot be read");
            }
        }
        Ok(())
    }

    async fn scan_records(&self) -> Result<Option<Vec<UserRecord>>, StoreError> {
        let docs: Vec<Document> = self
            .users
            .find(doc! {})
            .sort(oldest_first())
            .await
            .map_err(|e| self.err(e))?
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        Ok(Some(docs.iter().map(record_from_doc).collect()))
    }

    async fn merge_into(
        &self,
        user_id: &str,
        groups: &[String],
        permissions: &[String],
    ) -> Result<bool, StoreError> {
        let result = self
            .users
            .update_one(
                id_filter(user_id),
                doc! { "$set": {
                    "groups": groups,
                    "permissions": permissions,
                    "updatedAt": DateTime::now(),
                    "updaterId": WRITER,
                } },
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(result.matched_count > 0)
    }

    async fn retire_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let result = self
            .users
            .update_one(
                id_filter(user_id),
                doc! { "$set": {
                    "__STATE__": "TRASH",
                    "updatedAt": DateTime::now(),
                    "updaterId": WRITER,
                } },
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(result.modified_count > 0)
    }
}

/// Any document of the collection as a [`UserRecord`]: what it has of the identity, and why
/// it cannot be read as a user when it cannot.
pub(crate) fn record_from_doc(d: &Document) -> UserRecord {
    let text = |field: &str| d.get_str(field).ok().map(str::to_owned);
    let strings = |field: &str| -> Vec<String> {
        d.get_array(field)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    UserRecord {
        user_id: id_text(d),
        state: text("__STATE__").unwrap_or_else(|| "(none)".into()),
        realm: text("realm"),
        provider_id: text("providerId"),
        provider_user_id: text("providerUserId"),
        groups: strings("groups"),
        permissions: strings("permissions"),
        problem: user_from_doc(d).err().map(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_and_its_password_never_reach_a_message() {
        let r = Redactor::for_uri("mongodb://idgate:s%3Acret@db.example:27017/app");
        let msg = r.clean("failed mongodb://idgate:s%3Acret@db.example:27017/app: s:cret s%3Acret");
        assert!(!msg.contains("cret"), "{msg}");
    }

    #[test]
    fn a_console_document_reads_as_a_user() {
        let oid = ObjectId::new();
        let d = doc! {
            "_id": oid,
            "realm": "web",
            "providerId": "dev",
            "providerUserId": "alice",
            "name": "Alice",
            "groups": ["admins"],
            "metadata": { "team": "blue" },
            "createdAt": DateTime::from_millis(1_700_000_000_500),
            "__STATE__": "PUBLIC",
            "creatorId": "public",
        };
        let u = user_from_doc(&d).unwrap();
        assert_eq!(u.user_id, oid.to_hex());
        assert_eq!(u.groups, vec!["admins".to_string()]);
        assert!(u.permissions.is_empty());
        assert_eq!(u.metadata, serde_json::json!({ "team": "blue" }));
        assert_eq!(u.created_at, 1_700_000_000);
        assert_eq!(u.email, None);
        assert!(user_from_doc(&doc! { "_id": 1, "realm": "web" }).is_err());
    }
}
