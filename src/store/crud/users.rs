//! The [`Users`] of the CRUD service: the requests of the table in the parent's doc, and the
//! service's JSON read as the shared user document (`store::user_doc`).

use async_trait::async_trait;
use http::{Method, StatusCode};
use mongodb::bson::{Bson, Document};
use serde_json::{json, Value};

use super::{identity_query, oldest_first, states, CrudUsers, PAGE, STORE};
use crate::store::first_login::{self, Inserted, LoginCollection};
use crate::store::user_doc::{
    idp_fields, project_defaults, record_from_doc, user_from_doc, user_id_of,
    IDS_BY_IDENTITY_LIMIT, PUBLIC,
};
use crate::store::{Identity, StoreError, User, UserRecord, Users};

/// A document as the service returns it (JSON, dates as ISO strings), as BSON.
fn doc_of(value: Value) -> Result<Document, StoreError> {
    match Bson::try_from(value) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(other) => Err(StoreError::corrupt(
            STORE,
            format!("expected a user document, got {other}"),
        )),
        Err(e) => Err(StoreError::corrupt(
            STORE,
            format!("unreadable user document: {e}"),
        )),
    }
}

/// A document as the service returns it → [`User`].
fn user_from_json(value: Value) -> Result<User, StoreError> {
    user_from_doc(STORE, &doc_of(value)?)
}

/// Any document of the service as a [`UserRecord`].
fn record_from_json(value: Value) -> Result<UserRecord, StoreError> {
    match Bson::try_from(value) {
        Ok(Bson::Document(d)) => Ok(record_from_doc(STORE, &d)),
        _ => Err(StoreError::corrupt(
            STORE,
            "the list holds something other than documents",
        )),
    }
}

impl CrudUsers {
    /// `fields` as JSON, without those the collection does not accept.
    fn accepted(&self, fields: Document) -> serde_json::Map<String, Value> {
        fields
            .into_iter()
            .filter(|(field, _)| self.accepts(field))
            .map(|(field, value)| (field, value.into_relaxed_extjson()))
            .collect()
    }

    /// Every record in the states `st`, sorted by `sort`, page by page.
    async fn all_pages(
        &self,
        what: &str,
        st: String,
        sort: String,
    ) -> Result<Vec<Value>, StoreError> {
        let mut docs = Vec::new();
        loop {
            let query = [
                ("_st", st.clone()),
                ("_s", sort.clone()),
                ("_l", PAGE.to_string()),
                ("_sk", docs.len().to_string()),
            ];
            let page = self.list(what, &query).await?;
            let full = page.len() == PAGE;
            docs.extend(page);
            if !full {
                return Ok(docs);
            }
        }
    }
}

#[async_trait]
impl LoginCollection for CrudUsers {
    type Record = Value;

    fn store(&self) -> &'static str {
        STORE
    }

    async fn active_holders(&self, id: &Identity) -> Result<Vec<(String, Value)>, StoreError> {
        let query = [
            (
                "_q",
                identity_query(&id.realm, &id.provider_id, &id.provider_user_id),
            ),
            ("_st", PUBLIC.into()),
            ("_s", oldest_first()),
            ("_l", "2".into()),
        ];
        let docs = self.list("find by identity", &query).await?;
        Ok(docs
            .into_iter()
            .map(|d| (d["_id"].as_str().unwrap_or_default().to_owned(), d))
            .collect())
    }

    async fn refresh(
        &self,
        id: &Identity,
        user_id: &str,
        record: Value,
    ) -> Result<Option<User>, StoreError> {
        let set = self.accepted(idp_fields(id));
        if set.is_empty() {
            return user_from_json(record).map(Some);
        }
        self.patch(user_id, set)
            .await?
            .map(user_from_json)
            .transpose()
    }

    async fn hidden_holder(&self, id: &Identity) -> Result<Option<(String, String)>, StoreError> {
        let query = [
            (
                "_q",
                identity_query(&id.realm, &id.provider_id, &id.provider_user_id),
            ),
            ("_st", states(false)),
            ("_s", oldest_first()),
            ("_l", "1".into()),
        ];
        let docs = self.list("find hidden by identity", &query).await?;
        Ok(docs.first().map(|d| {
            (
                d["_id"].as_str().unwrap_or_default().to_owned(),
                d["__STATE__"].as_str().unwrap_or("(none)").to_owned(),
            )
        }))
    }

    async fn insert(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<Inserted, StoreError> {
        let mut on_insert = serde_json::Map::new();
        on_insert.insert("realm".into(), json!(id.realm));
        on_insert.insert("providerId".into(), json!(id.provider_id));
        on_insert.insert("providerUserId".into(), json!(id.provider_user_id));
        on_insert.extend(self.accepted(project_defaults(default_groups)));
        let body = json!({ "$set": self.accepted(idp_fields(id)), "$setOnInsert": on_insert });
        let query = [
            (
                "_q",
                identity_query(&id.realm, &id.provider_id, &id.provider_user_id),
            ),
            ("_st", PUBLIC.into()),
        ];
        let url = self.url(Some("upsert-one"), &query);
        let answer = self
            .call(
                Method::POST,
                "upsert-one",
                url,
                Some(&body),
                &[StatusCode::CONFLICT],
            )
            .await?;
        if answer.status == StatusCode::CONFLICT {
            return Ok(Inserted::Taken);
        }
        user_from_json(answer.body).map(|u| Inserted::User(Box::new(u)))
    }
}

#[async_trait]
impl Users for CrudUsers {
    async fn upsert_login(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<User, StoreError> {
        first_login::upsert_login(self, self.inactive, &self.notes, id, default_groups).await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let url = self.url(Some(user_id), &[("_st", PUBLIC.into())]);
        let answer = self
            .call(
                Method::GET,
                "get by id",
                url,
                None,
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        user_from_json(answer.body).map(Some)
    }

    async fn find_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        let query = [
            ("_st", PUBLIC.into()),
            ("_q", identity_query(realm, provider_id, provider_user_id)),
            ("_s", oldest_first()),
            ("_l", "1".into()),
        ];
        let docs = self.list("find by identity", &query).await?;
        docs.into_iter().next().map(user_from_json).transpose()
    }

    async fn find_ids_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let query = [
            ("_st", states(true)),
            ("_q", identity_query(realm, provider_id, provider_user_id)),
            ("_l", IDS_BY_IDENTITY_LIMIT.to_string()),
        ];
        let docs = self.list("find by identity in every state", &query).await?;
        docs.into_iter()
            .map(|d| user_id_of(STORE, &doc_of(d)?))
            .collect()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let docs = self.all_pages("list", PUBLIC.into(), "_id".into()).await?;
        docs.into_iter().map(user_from_json).collect()
    }

    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<bool, StoreError> {
        let mut set = serde_json::Map::new();
        set.insert("groups".into(), json!(groups));
        Ok(self.patch(user_id, set).await?.is_some())
    }

    async fn ping_users(&self) -> Result<(), StoreError> {
        let url = self.url(Some("count"), &[]);
        self.call(Method::GET, "count", url, None, &[]).await?;
        Ok(())
    }

    async fn scan_records(&self) -> Result<Option<Vec<UserRecord>>, StoreError> {
        let docs = self
            .all_pages("list every state", states(true), oldest_first())
            .await?;
        let records: Result<Vec<UserRecord>, StoreError> =
            docs.into_iter().map(record_from_json).collect();
        records.map(Some)
    }

    async fn merge_into(
        &self,
        user_id: &str,
        groups: &[String],
        permissions: &[String],
    ) -> Result<bool, StoreError> {
        let set = self.accepted(mongodb::bson::doc! {
            "groups": groups,
            "permissions": permissions,
        });
        if set.is_empty() {
            return Ok(self.get_user(user_id).await?.is_some());
        }
        Ok(self.patch(user_id, set).await?.is_some())
    }

    async fn retire_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let mut url = self.url(Some(user_id), &[]);
        if let Ok(mut path) = url.path_segments_mut() {
            path.push("state");
        }
        let answer = self
            .call(
                Method::POST,
                "state transition",
                url,
                Some(&json!({ "stateTo": "TRASH" })),
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        Ok(answer.status != StatusCode::NOT_FOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_document_reads_as_a_user() {
        let u = user_from_json(json!({
            "_id": "5e8a125eb74dbf0011444ed3",
            "realm": "web", "providerId": "dev", "providerUserId": "alice",
            "groups": ["users"], "__STATE__": "PUBLIC",
            "createdAt": "2020-04-05T17:16:14.175Z", "creatorId": "public",
        }))
        .unwrap();
        assert_eq!(u.user_id, "5e8a125eb74dbf0011444ed3");
        assert_eq!(u.created_at, 1_586_106_974);
        assert!(matches!(
            user_from_json(json!([1])),
            Err(StoreError::Corrupt {
                store: "crud service",
                ..
            })
        ));
    }
}
