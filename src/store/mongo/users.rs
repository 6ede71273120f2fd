//! The users collection in MongoDB, in the CRUD service's document format
//! (`store::user_doc`), so that service and its console keep working on the same collection.
//!
//! Only `__STATE__: "PUBLIC"` documents are users: every lookup filters on it, except
//! `find_ids_by_identity`, which back-channel logout uses to end the sessions of a user the
//! console trashed or deleted as well.
//!
//! Logins follow `store::first_login` on an existing collection as it is: a `PUBLIC`
//! document is refreshed with a `findOneAndUpdate` on its `_id` (`$set` for what the IdP
//! owns); a new one is inserted with an upsert keyed by (realm, providerId, providerUserId,
//! PUBLIC), `$setOnInsert` for what the project owns (the default groups). The unique index
//! that keeps simultaneous first logins to one document is [`super::index`].

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::results::UpdateResult;
use mongodb::Collection;

use super::index::IdentityIndex;
use super::{error_code, Redactor, STORE};
use crate::config::{InactiveUsers, MongoConfig};
use crate::store::first_login::{self, Inserted, LoginCollection};
use crate::store::user_doc::{
    id_text, identity_key, idp_fields, project_defaults, record_from_doc, user_from_doc,
    user_id_of, IDS_BY_IDENTITY_LIMIT, OLDEST_FIRST, PUBLIC, WRITER,
};
use crate::store::{DuplicateNotes, Identity, StoreError, User, UserRecord, Users};

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Handle to the users collection.
pub(super) struct MongoUsers {
    users: Collection<Document>,
    redactor: Redactor,
    inactive: InactiveUsers,
    index: IdentityIndex,
    notes: DuplicateNotes,
}

/// The sort of [`crate::store::DUPLICATE_RULE`].
fn oldest_first() -> Document {
    OLDEST_FIRST
        .iter()
        .map(|f| (f.to_string(), Bson::Int32(1)))
        .collect()
}

/// How many user ids one query of [`Users::get_users`] asks for.
const GET_USERS_BATCH: usize = 500;

/// The filter for an active user's id: an ObjectId when it reads as one, else a string `_id`.
fn id_filter(user_id: &str) -> Document {
    match ObjectId::parse_str(user_id) {
        Ok(oid) => doc! { "_id": { "$in": [oid, user_id] }, "__STATE__": PUBLIC },
        Err(_) => doc! { "_id": user_id, "__STATE__": PUBLIC },
    }
}

/// What every write of a user sets beside its own fields: the CRUD service's audit fields.
fn audited(mut set: Document) -> Document {
    set.insert("updatedAt", DateTime::now());
    set.insert("updaterId", WRITER);
    set
}

impl MongoUsers {
    pub(super) fn new(users: Collection<Document>, redactor: Redactor, cfg: &MongoConfig) -> Self {
        Self {
            users,
            redactor,
            inactive: cfg.inactive_users,
            index: IdentityIndex::new(cfg.create_index),
            notes: DuplicateNotes::default(),
        }
    }

    fn err(&self, e: mongodb::error::Error) -> StoreError {
        self.redactor.unavailable(e)
    }

    /// Creates the identity index if it can; not fatal when it cannot be read yet (MongoDB may
    /// be down at startup: `/-/ready` says so and the index is tried again from there).
    pub(super) async fn ensure_index_logged(&self) {
        if let Err(e) = self.index.ensure(&self.users, &self.redactor).await {
            tracing::warn!(error = %e, "the users collection's indexes cannot be read yet");
        }
    }

    /// The documents matching `filter`, sorted by the duplicate rule, at most `limit`.
    async fn find_oldest_first(
        &self,
        filter: Document,
        limit: Option<i64>,
    ) -> Result<Vec<Document>, StoreError> {
        let mut find = self.users.find(filter).sort(oldest_first());
        if let Some(limit) = limit {
            find = find.limit(limit);
        }
        find.await
            .map_err(|e| self.err(e))?
            .try_collect()
            .await
            .map_err(|e| self.err(e))
    }

    /// The identity's `PUBLIC` documents by the duplicate rule: at most two, enough to tell
    /// whether there are duplicates.
    async fn public_holders(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<Document>, StoreError> {
        let mut filter = identity_key(realm, provider_id, provider_user_id);
        filter.insert("__STATE__", PUBLIC);
        self.find_oldest_first(filter, Some(2)).await
    }

    /// Sets `set` (and the audit fields) on the active user `user_id`.
    async fn update_user(&self, user_id: &str, set: Document) -> Result<UpdateResult, StoreError> {
        self.users
            .update_one(id_filter(user_id), doc! { "$set": audited(set) })
            .await
            .map_err(|e| self.err(e))
    }
}

#[async_trait]
impl LoginCollection for MongoUsers {
    type Record = Document;

    fn store(&self) -> &'static str {
        STORE
    }

    async fn active_holders(&self, id: &Identity) -> Result<Vec<(String, Document)>, StoreError> {
        let docs = self
            .public_holders(&id.realm, &id.provider_id, &id.provider_user_id)
            .await?;
        Ok(docs.into_iter().map(|d| (id_text(&d), d)).collect())
    }

    async fn refresh(
        &self,
        id: &Identity,
        _user_id: &str,
        record: Document,
    ) -> Result<Option<User>, StoreError> {
        // On the `_id` as stored (ObjectId or string), and only while it is PUBLIC.
        let filter = doc! {
            "_id": record.get("_id").cloned().unwrap_or(Bson::Null),
            "__STATE__": PUBLIC,
        };
        let found = self
            .users
            .find_one_and_update(filter, doc! { "$set": audited(idp_fields(id)) })
            .return_document(ReturnDocument::After)
            .await
            .map_err(|e| self.err(e))?;
        found.map(|d| user_from_doc(STORE, &d)).transpose()
    }

    async fn hidden_holder(&self, id: &Identity) -> Result<Option<(String, String)>, StoreError> {
        let mut filter = identity_key(&id.realm, &id.provider_id, &id.provider_user_id);
        filter.insert("__STATE__", doc! { "$ne": PUBLIC });
        let found = self.find_oldest_first(filter, Some(1)).await?;
        Ok(found.first().map(|d| {
            let state = d.get_str("__STATE__").unwrap_or("(none)");
            (id_text(d), state.to_owned())
        }))
    }

    async fn insert(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<Inserted, StoreError> {
        let set = audited(idp_fields(id));
        let mut on_insert = project_defaults(default_groups);
        on_insert.insert(
            "createdAt",
            set.get("updatedAt").cloned().unwrap_or(Bson::Null),
        );
        on_insert.insert("creatorId", WRITER);
        on_insert.insert("__STATE__", PUBLIC);
        let mut filter = identity_key(&id.realm, &id.provider_id, &id.provider_user_id);
        filter.insert("__STATE__", PUBLIC);
        let found = self
            .users
            .find_one_and_update(filter, doc! { "$set": set, "$setOnInsert": on_insert })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        match found {
            Ok(Some(d)) => user_from_doc(STORE, &d).map(|u| Inserted::User(Box::new(u))),
            // No document back (secantusdb's answer to some raced upserts), or a duplicate key:
            // another login inserted first, or an index ignoring __STATE__ (see first_login).
            Ok(None) => Ok(Inserted::Taken),
            Err(e) if error_code(&e) == Some(DUPLICATE_KEY) => Ok(Inserted::Taken),
            Err(e) => Err(self.err(e)),
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
        first_login::upsert_login(self, self.inactive, &self.notes, id, default_groups).await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let found = self
            .users
            .find_one(id_filter(user_id))
            .await
            .map_err(|e| self.err(e))?;
        found.map(|d| user_from_doc(STORE, &d)).transpose()
    }

    /// One query per [`GET_USERS_BATCH`] ids (`_id` in the list, `PUBLIC` only).
    async fn get_users(&self, user_ids: &[String]) -> Result<Vec<User>, StoreError> {
        let mut found = Vec::with_capacity(user_ids.len());
        for batch in user_ids.chunks(GET_USERS_BATCH) {
            let ids: Vec<Bson> = batch
                .iter()
                .flat_map(|id| {
                    // Either form, as `id_filter` reads one id.
                    let oid = ObjectId::parse_str(id).ok().map(Bson::ObjectId);
                    oid.into_iter().chain([Bson::String(id.clone())])
                })
                .collect();
            let docs: Vec<Document> = self
                .users
                .find(doc! { "_id": { "$in": ids }, "__STATE__": PUBLIC })
                .await
                .map_err(|e| self.err(e))?
                .try_collect()
                .await
                .map_err(|e| self.err(e))?;
            for d in &docs {
                found.push(user_from_doc(STORE, d)?);
            }
        }
        Ok(found)
    }

    async fn find_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let holders = self
            .public_holders(realm, provider_id, provider_user_id)
            .await?;
        holders.first().map(|d| user_from_doc(STORE, d)).transpose()
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
        docs.iter().map(|d| user_id_of(STORE, d)).collect()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let docs = self
            .find_oldest_first(doc! { "__STATE__": PUBLIC }, None)
            .await?;
        docs.iter().map(|d| user_from_doc(STORE, d)).collect()
    }

    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<bool, StoreError> {
        let result = self.update_user(user_id, doc! { "groups": groups }).await?;
        Ok(result.matched_count > 0)
    }

    async fn ping_users(&self) -> Result<(), StoreError> {
        self.users
            .client()
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| self.err(e))?;
        self.index.retry_if_due(&self.users, &self.redactor).await;
        Ok(())
    }

    async fn scan_records(&self) -> Result<Option<Vec<UserRecord>>, StoreError> {
        let docs = self.find_oldest_first(doc! {}, None).await?;
        Ok(Some(
            docs.iter().map(|d| record_from_doc(STORE, d)).collect(),
        ))
    }

    async fn merge_into(
        &self,
        user_id: &str,
        groups: &[String],
        permissions: &[String],
    ) -> Result<bool, StoreError> {
        let set = doc! { "groups": groups, "permissions": permissions };
        let result = self.update_user(user_id, set).await?;
        Ok(result.matched_count > 0)
    }

    async fn retire_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let result = self
            .update_user(user_id, doc! { "__STATE__": "TRASH" })
            .await?;
        Ok(result.modified_count > 0)
    }
}
