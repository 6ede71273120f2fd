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
//! A login is one `findOneAndUpdate` upsert keyed by (realm, providerId, providerUserId, PUBLIC):
//! `$set` for what the IdP owns, `$setOnInsert` for what the project owns (the default groups).
//! The unique index `preserve_idgate_identity` on (realm, providerId, providerUserId) makes two
//! simultaneous first logins collide (duplicate key, 11000) instead of creating two documents;
//! the loser retries as a plain find-and-update (a few short rounds: the winner's insert may not
//! be visible to it at once). The `preserve_` prefix is what the CRUD service requires of
//! indexes it did not define, or it drops them when it starts.
//!
//! Because the index ignores `__STATE__`, a user the console moved to TRASH, DRAFT or DELETED
//! also collides: that login is **refused** with a message saying so, never answered with a
//! fresh document and the default groups (which would silently undo a ban, and leave two
//! documents for one person). The index is created at open when MongoDB answers, else lazily
//! before the next use; a login is refused while it is missing, because without it the two
//! guarantees above do not hold.
//!
//! Errors never carry the URI (it may hold a password): messages go through [`Redactor`].

mod sessions;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};

use super::{Identity, Sessions, StoreError, User, Users};
use crate::config::MongoConfig;

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

/// Most user ids `find_ids_by_identity` returns (one, unless the unique index is missing).
pub(crate) const IDS_BY_IDENTITY_LIMIT: i64 = 10;

/// The users collection.
pub async fn open_users(cfg: &MongoConfig) -> Result<Arc<dyn Users>, StoreError> {
    let (client, redactor) = connect(cfg).await?;
    let store = MongoUsers {
        users: client
            .database(&cfg.database)
            .collection::<Document>(&cfg.collection),
        redactor,
        index_ready: Arc::new(AtomicBool::new(false)),
    };
    if let Err(e) = store.ensure_index().await {
        // Not fatal: MongoDB may be down at startup; `/-/ready` says so and the index is
        // created before the next login.
        tracing::warn!(error = %e, "the users collection's unique index is not in place yet");
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

    fn clean(&self, message: impl std::fmt::Display) -> String {
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
    /// Set once the unique identity index is known to exist; until then every login checks.
    index_ready: Arc<AtomicBool>,
}

impl MongoUsers {
    fn err(&self, e: mongodb::error::Error) -> StoreError {
        self.redactor.unavailable(e)
    }

    /// Creates the unique identity index unless an equivalent unique index exists.
    async fn ensure_index(&self) -> Result<(), StoreError> {
        if self.index_ready.load(Ordering::Acquire) {
            return Ok(());
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
        if !present {
            let model = IndexModel::builder()
                .keys(doc! { "realm": 1, "providerId": 1, "providerUserId": 1 })
                .options(
                    IndexOptions::builder()
                        .name(IDENTITY_INDEX.to_owned())
                        .unique(true)
                        .build(),
                )
                .build();
            self.users.create_index(model).await.map_err(|e| {
                self.redactor.unavailable(format!(
                    "cannot create the unique index {IDENTITY_INDEX} on (realm, providerId, \
                     providerUserId) of the users collection (duplicate users must be merged \
                     first): {e}"
                ))
            })?;
            tracing::info!(
                index = IDENTITY_INDEX,
                "created the users collection's unique index"
            );
        }
        self.index_ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn find_one(&self, filter: Document) -> Result<Option<User>, StoreError> {
        match self.users.find_one(filter).await.map_err(|e| self.err(e))? {
            Some(d) => user_from_doc(&d).map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Users for MongoUsers {
    async fn upsert_login(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<User, StoreError> {
        self.ensure_index().await?;
        let key = doc! {
            "realm": &id.realm,
            "providerId": &id.provider_id,
            "providerUserId": &id.provider_user_id,
        };
        let mut filter = key.clone();
        filter.insert("__STATE__", PUBLIC);
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
        let update = doc! {
            "$set": set,
            "$setOnInsert": {
                "groups": default_groups,
                "permissions": Bson::Array(Vec::new()),
                "metadata": Document::new(),
                "createdAt": now,
                "creatorId": WRITER,
                "__STATE__": PUBLIC,
            },
        };
        // The upsert; after a duplicate key (another login inserted first, or a non-PUBLIC
        // document holds the identity) plain updates until the winner's document is visible.
        // The winner's insert may not be visible at once to the loser's next read (seen with
        // secantusdb), hence a few short rounds instead of one.
        let mut upsert = true;
        for round in 0..RACE_ROUNDS {
            let found = self
                .users
                .find_one_and_update(filter.clone(), update.clone())
                .upsert(upsert)
                .return_document(ReturnDocument::After)
                .await;
            match found {
                Ok(Some(d)) => return user_from_doc(&d),
                Ok(None) => {}
                Err(e) if error_code(&e) == Some(DUPLICATE_KEY) => {
                    tracing::debug!(realm = %id.realm, provider = %id.provider_id,
                        "identity taken meanwhile; retrying as an update");
                    upsert = false;
                    continue;
                }
                Err(e) => return Err(self.err(e)),
            }
            if let Some(d) = self
                .users
                .find_one(key.clone())
                .await
                .map_err(|e| self.err(e))?
            {
                let state = d.get_str("__STATE__").unwrap_or("(none)");
                if state != PUBLIC {
                    let user_id = match d.get("_id") {
                        Some(Bson::ObjectId(oid)) => oid.to_hex(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    return Err(not_public(STORE, id, &user_id, state));
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
        self.find_one(id_filter(user_id)).await
    }

    async fn find_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        self.find_one(doc! {
            "realm": realm,
            "providerId": provider_id,
            "providerUserId": provider_user_id,
            "__STATE__": PUBLIC,
        })
        .await
    }

    async fn find_ids_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        // No `__STATE__` filter: a trashed or deleted user's sessions must end too. The unique
        // index keeps this to one document; the limit bounds it if the index was dropped.
        let docs: Vec<Document> = self
            .users
            .find(doc! {
                "realm": realm,
                "providerId": provider_id,
                "providerUserId": provider_user_id,
            })
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
            .sort(doc! { "createdAt": 1, "_id": 1 })
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
        if let Err(e) = self.ensure_index().await {
            tracing::warn!(error = %e, "the users collection's unique index is not in place");
        }
        Ok(())
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
