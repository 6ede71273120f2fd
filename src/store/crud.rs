//! Users behind a CRUD HTTP service (Mia-Platform's CRUD Service, the original architecture's
//! `USERS_CRUD_BASE_URL`), following its public REST documentation:
//!
//! | idgate needs | request |
//! |---|---|
//! | login: the active record | `GET {base}/?_q=<identity>&_st=PUBLIC&_s=createdAt,_id&_l=2` (oldest first: see [`crate::store::DUPLICATE_RULE`]), then `PATCH {base}/{id}?_st=PUBLIC` with `{"$set": <IdP fields>}` |
//! | login: a new record | `POST {base}/upsert-one?_q=<identity>&_st=PUBLIC`, body `{"$set": <IdP fields>, "$setOnInsert": <key, default groups, and empty permissions and metadata when accepted>}`; the answer is the document after the update |
//! | login: a hidden record? | `GET {base}/?_q=<identity>&_st=DRAFT,TRASH,DELETED` |
//! | doctor: every record | `GET {base}/?_st=PUBLIC,DRAFT,TRASH,DELETED&_s=createdAt,_id&_l=200&_sk=N` |
//! | doctor: retire a duplicate | `POST {base}/{id}/state` with `{"stateTo": "TRASH"}` |
//! | one user | `GET {base}/{id}` (404: none; the service only shows PUBLIC documents by default) |
//! | all users | `GET {base}/?_st=PUBLIC&_s=_id&_l=200&_sk=N`, page by page |
//! | back-channel logout (user ids in any state) | `GET {base}/?_st=PUBLIC,DRAFT,TRASH,DELETED&_q=<identity>&_l=10` |
//! | change groups | `PATCH {base}/{id}` with `{"$set": {"groups": […]}}` (404: none) |
//! | readiness | `GET {base}/count` |
//!
//! The service fills `_id`, `createdAt`, `updatedAt`, `creatorId`, `updaterId` and `__STATE__`
//! itself (and refuses them in a body); the document shape is the one of `store::mongo`, whose
//! reader is reused. The configured headers (API key, …) go on every request, plus
//! `userid: idgate` so the service's audit fields name the writer.
//!
//! **Fields.** A collection defined with a schema refuses a body naming any other field with
//! 400, so idgate writes only the fields of `[users] fields` (`CrudConfig::fields`); the default
//! is the users collection of Mia's documentation before `metadata`: realm, providerId,
//! providerUserId, name, email, username, groups. `permissions` and `metadata` (written empty on
//! insert) are sent only when listed; they are read whenever present.
//!
//! **Duplicates and races.** Logins use the oldest `PUBLIC` record of the identity and never
//! fail because of the others (logged once, see [`super::DuplicateNotes`]). No unique index is needed;
//! with one (realm, providerId, providerUserId) in the collection definition, two simultaneous
//! first logins are kept to one document, the loser gets a 409 and retries (a few short rounds,
//! until the winner's document is visible). Without it, such a race may leave two documents,
//! which the rule then resolves like any others.
//!
//! **Inactive users.** When only non-PUBLIC documents hold the identity, `inactive_users`
//! decides: `refuse` (default) or `recreate` (Mia's behaviour: `upsert-one` filtered on PUBLIC
//! inserts a new document). A unique index ignoring `__STATE__` makes re-creation impossible
//! (409): that login is refused with a message saying why (see `store::mongo`).

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use mongodb::bson::Bson;
use serde_json::{json, Value};
use url::Url;

use super::DuplicateNotes;
use super::{Identity, StoreError, User, UserRecord, Users};
use crate::config::{CrudConfig, InactiveUsers};

const STORE: &str = "crud service";

/// Attempts of a login that lost a first-login race (409 from `upsert-one`).
const RACE_ROUNDS: u32 = 5;

/// Page size for listing; the service's default `CRUD_MAX_LIMIT` is 200.
const PAGE: usize = 200;

/// Every `__STATE__` the service knows, for `_st` ("`__STATE__` management").
const ALL_STATES: &str = "PUBLIC,DRAFT,TRASH,DELETED";

/// The sort of [`crate::store::DUPLICATE_RULE`], for `_s`.
const OLDEST_FIRST: &str = "createdAt,_id";

pub fn open_users(cfg: &CrudConfig) -> Result<Arc<dyn Users>, StoreError> {
    open_users_with_trust(cfg, &crate::tls::TrustStore::default())
}

/// [`open_users`] with the HTTP client trusting `trust` (`[tls]`, the `crud` client).
pub fn open_users_with_trust(
    cfg: &CrudConfig,
    trust: &crate::tls::TrustStore,
) -> Result<Arc<dyn Users>, StoreError> {
    let mut headers = HeaderMap::new();
    headers.insert("userid", HeaderValue::from_static("idgate"));
    for (name, value) in &cfg.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            unavailable(format!("users.headers: `{name}` is not a header name: {e}"))
        })?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
            unavailable(format!(
                "users.headers: the value of `{name}` is not a valid header value"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let builder = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout);
    let client = trust
        .apply_to(builder)
        .and_then(reqwest::ClientBuilder::build)
        .map_err(|e| unavailable(format!("cannot build the HTTP client: {e}")))?;
    let mut base = cfg.base_url.clone();
    // The service wants collection URLs to end with a slash; item paths are joined onto it.
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    Ok(Arc::new(CrudUsers {
        client,
        base,
        timeout: cfg.timeout,
        fields: cfg.fields.clone(),
        inactive: cfg.inactive_users,
        notes: DuplicateNotes::default(),
    }))
}

fn unavailable(message: impl Into<String>) -> StoreError {
    StoreError::Unavailable {
        store: STORE,
        message: message.into(),
    }
}

struct CrudUsers {
    client: reqwest::Client,
    /// The collection URL, ending with `/`.
    base: Url,
    timeout: std::time::Duration,
    /// The fields the collection accepts (`[users] fields`).
    fields: Vec<String>,
    inactive: InactiveUsers,
    notes: DuplicateNotes,
}

/// What came back: the status and the JSON body (`Null` when there is none).
struct Answer {
    status: StatusCode,
    body: Value,
}

impl CrudUsers {
    /// `{base}{segment}` with `query`; `segment` is one path segment, percent-encoded here.
    fn url(&self, segment: Option<&str>, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Some(segment) = segment {
            if let Ok(mut path) = url.path_segments_mut() {
                path.pop_if_empty().push(segment);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends the request; any status but 2xx and those in `expected` is an error naming it.
    async fn call(
        &self,
        method: Method,
        what: &str,
        url: Url,
        body: Option<&Value>,
        expected: &[StatusCode],
    ) -> Result<Answer, StoreError> {
        let mut request = self.client.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                unavailable(format!(
                    "{method} {what}: no answer within {}",
                    humantime::format_duration(self.timeout)
                ))
            } else {
                let cause = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                unavailable(format!("{method} {what}: {}{cause}", e.without_url()))
            }
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            unavailable(format!(
                "{method} {what}: reading the answer: {}",
                e.without_url()
            ))
        })?;
        if !status.is_success() && !expected.contains(&status) {
            let excerpt: String = text.chars().take(200).collect();
            return Err(unavailable(format!(
                "{method} {what} answered {status}: {excerpt}"
            )));
        }
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                store: STORE,
                message: format!("{method} {what}: the answer is not JSON: {e}"),
            })?
        };
        Ok(Answer { status, body })
    }

    fn accepts(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f == field)
    }

    fn identity_query(realm: &str, provider_id: &str, provider_user_id: &str) -> String {
        json!({ "realm": realm, "providerId": provider_id, "providerUserId": provider_user_id })
            .to_string()
    }

    /// A GET of the list that must answer an array.
    async fn list(&self, what: &str, query: &[(&str, String)]) -> Result<Vec<Value>, StoreError> {
        let answer = self
            .call(Method::GET, what, self.url(None, query), None, &[])
            .await?;
        match answer.body {
            Value::Array(docs) => Ok(docs),
            _ => Err(StoreError::Corrupt {
                store: STORE,
                message: format!("GET {what} did not answer an array"),
            }),
        }
    }

    /// The identity's PUBLIC documents, oldest first: at most two, enough to see duplicates.
    async fn active_holders(&self, id: &Identity) -> Result<Vec<Value>, StoreError> {
        self.list(
            "find by identity",
            &[
                (
                    "_q",
                    Self::identity_query(&id.realm, &id.provider_id, &id.provider_user_id),
                ),
                ("_st", "PUBLIC".into()),
                ("_s", OLDEST_FIRST.into()),
                ("_l", "2".into()),
            ],
        )
        .await
    }

    /// A document holding the identity outside PUBLIC, if any: `(user id, state)`.
    async fn hidden_holder(&self, id: &Identity) -> Result<Option<(String, String)>, StoreError> {
        let docs = self
            .list(
                "find hidden by identity",
                &[
                    (
                        "_q",
                        Self::identity_query(&id.realm, &id.provider_id, &id.provider_user_id),
                    ),
                    ("_st", "DRAFT,TRASH,DELETED".into()),
                    ("_s", OLDEST_FIRST.into()),
                    ("_l", "1".into()),
                ],
            )
            .await?;
        Ok(docs.first().map(|d| {
            (
                d["_id"].as_str().unwrap_or_default().to_owned(),
                d["__STATE__"].as_str().unwrap_or("(none)").to_owned(),
            )
        }))
    }

    /// The IdP fields of the login the collection accepts.
    fn idp_fields(&self, id: &Identity) -> serde_json::Map<String, Value> {
        let mut set = serde_json::Map::new();
        for (field, value) in [
            ("name", &id.name),
            ("email", &id.email),
            ("username", &id.username),
        ] {
            if let (Some(value), true) = (value, self.accepts(field)) {
                set.insert(field.into(), json!(value));
            }
        }
        set
    }

    async fn upsert(&self, id: &Identity, default_groups: &[String]) -> Result<Answer, StoreError> {
        let mut on_insert = serde_json::Map::new();
        on_insert.insert("realm".into(), json!(id.realm));
        on_insert.insert("providerId".into(), json!(id.provider_id));
        on_insert.insert("providerUserId".into(), json!(id.provider_user_id));
        for (field, value) in [
            ("groups", json!(default_groups)),
            ("permissions", json!([])),
            ("metadata", json!({})),
        ] {
            if self.accepts(field) {
                on_insert.insert(field.into(), value);
            }
        }
        let body = json!({ "$set": self.idp_fields(id), "$setOnInsert": on_insert });
        let url = self.url(
            Some("upsert-one"),
            &[
                (
                    "_q",
                    Self::identity_query(&id.realm, &id.provider_id, &id.provider_user_id),
                ),
                ("_st", "PUBLIC".into()),
            ],
        );
        self.call(
            Method::POST,
            "upsert-one",
            url,
            Some(&body),
            &[StatusCode::CONFLICT],
        )
        .await
    }

    /// Refreshes the IdP fields of the active document `user_id`; `None` when it is no longer
    /// PUBLIC.
    async fn refresh(
        &self,
        id: &Identity,
        user_id: &str,
        found: Value,
    ) -> Result<Option<User>, StoreError> {
        let set = self.idp_fields(id);
        if set.is_empty() {
            return user_from_json(found).map(Some);
        }
        let url = self.url(Some(user_id), &[("_st", "PUBLIC".into())]);
        let answer = self
            .call(
                Method::PATCH,
                "patch by id",
                url,
                Some(&json!({ "$set": set })),
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        user_from_json(answer.body).map(Some)
    }
}

/// A document as the service returns it (JSON, dates as ISO strings) → [`User`].
fn user_from_json(value: Value) -> Result<User, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        store: STORE,
        message,
    };
    match Bson::try_from(value) {
        Ok(Bson::Document(d)) => {
            super::mongo::user_from_doc(&d).map_err(|e| corrupt(e.to_string()))
        }
        Ok(other) => Err(corrupt(format!("expected a user document, got {other}"))),
        Err(e) => Err(corrupt(format!("unreadable user document: {e}"))),
    }
}

#[async_trait]
impl Users for CrudUsers {
    async fn upsert_login(
        &self,
        id: &Identity,
        default_groups: &[String],
    ) -> Result<User, StoreError> {
        for round in 0..RACE_ROUNDS {
            let mut holders = self.active_holders(id).await?;
            if !holders.is_empty() {
                let first = holders.swap_remove(0);
                let user_id = first["_id"].as_str().unwrap_or_default().to_owned();
                if !holders.is_empty() {
                    self.notes.note(STORE, id, &user_id);
                }
                if let Some(user) = self.refresh(id, &user_id, first).await? {
                    return Ok(user);
                }
            } else {
                let hidden = self.hidden_holder(id).await?;
                if let (Some((user_id, state)), InactiveUsers::Refuse) = (&hidden, self.inactive) {
                    return Err(super::mongo::not_public(STORE, id, user_id, state));
                }
                let answer = self.upsert(id, default_groups).await?;
                if answer.status.is_success() {
                    return user_from_json(answer.body);
                }
                // 409: another login inserted first (retry: the document is there to update),
                // or a unique index ignoring __STATE__ blocks re-creating a hidden user.
                if let Some((user_id, _)) = hidden {
                    if self.active_holders(id).await?.is_empty() {
                        return Err(StoreError::Refused {
                            store: STORE,
                            message: format!(
                                "user {user_id} (realm `{}`, provider `{}`, subject `{}`) is not \
                                 PUBLIC, and the collection refuses a new record for the \
                                 identity (409: a unique index ignoring __STATE__?), so \
                                 inactive_users = \"recreate\" cannot apply; restore the user",
                                id.realm, id.provider_id, id.provider_user_id
                            ),
                        });
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10 << round)).await;
        }
        Err(unavailable(
            "upsert-one kept answering 409 Conflict and no active document holds the identity",
        ))
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let url = self.url(Some(user_id), &[("_st", "PUBLIC".into())]);
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
        let filter = json!({ "realm": realm, "providerId": provider_id, "providerUserId": provider_user_id });
        let url = self.url(
            None,
            &[
                ("_st", "PUBLIC".into()),
                ("_q", filter.to_string()),
                ("_s", OLDEST_FIRST.into()),
                ("_l", "1".into()),
            ],
        );
        let answer = self
            .call(Method::GET, "find by identity", url, None, &[])
            .await?;
        match answer.body {
            Value::Array(mut docs) if !docs.is_empty() => {
                user_from_json(docs.swap_remove(0)).map(Some)
            }
            Value::Array(_) => Ok(None),
            _ => Err(StoreError::Corrupt {
                store: STORE,
                message: "GET list did not answer an array".into(),
            }),
        }
    }

    async fn find_ids_by_identity(
        &self,
        realm: &str,
        provider_id: &str,
        provider_user_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let filter = json!({ "realm": realm, "providerId": provider_id, "providerUserId": provider_user_id });
        let url = self.url(
            None,
            &[
                ("_st", ALL_STATES.into()),
                ("_q", filter.to_string()),
                ("_l", super::mongo::IDS_BY_IDENTITY_LIMIT.to_string()),
            ],
        );
        let answer = self
            .call(
                Method::GET,
                "find by identity in every state",
                url,
                None,
                &[],
            )
            .await?;
        let Value::Array(docs) = answer.body else {
            return Err(StoreError::Corrupt {
                store: STORE,
                message: "GET list did not answer an array".into(),
            });
        };
        docs.iter()
            .map(|d| match d.get("_id") {
                Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
                other => Err(StoreError::Corrupt {
                    store: STORE,
                    message: format!("a user has an unusable _id: {other:?}"),
                }),
            })
            .collect()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let mut users = Vec::new();
        loop {
            let url = self.url(
                None,
                &[
                    ("_st", "PUBLIC".into()),
                    ("_s", "_id".into()),
                    ("_l", PAGE.to_string()),
                    ("_sk", users.len().to_string()),
                ],
            );
            let answer = self.call(Method::GET, "list", url, None, &[]).await?;
            let Value::Array(page) = answer.body else {
                return Err(StoreError::Corrupt {
                    store: STORE,
                    message: "GET list did not answer an array".into(),
                });
            };
            let full = page.len() == PAGE;
            for d in page {
                users.push(user_from_json(d)?);
            }
            if !full {
                return Ok(users);
            }
        }
    }

    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<bool, StoreError> {
        let url = self.url(Some(user_id), &[("_st", "PUBLIC".into())]);
        let body = json!({ "$set": { "groups": groups } });
        let answer = self
            .call(
                Method::PATCH,
                "patch by id",
                url,
                Some(&body),
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        Ok(answer.status != StatusCode::NOT_FOUND)
    }

    async fn ping_users(&self) -> Result<(), StoreError> {
        let url = self.url(Some("count"), &[]);
        self.call(Method::GET, "count", url, None, &[]).await?;
        Ok(())
    }

    async fn scan_records(&self) -> Result<Option<Vec<UserRecord>>, StoreError> {
        let mut records = Vec::new();
        loop {
            let page = self
                .list(
                    "list every state",
                    &[
                        ("_st", ALL_STATES.into()),
                        ("_s", OLDEST_FIRST.into()),
                        ("_l", PAGE.to_string()),
                        ("_sk", records.len().to_string()),
                    ],
                )
                .await?;
            let full = page.len() == PAGE;
            for d in page {
                records.push(record_from_json(d)?);
            }
            if !full {
                return Ok(Some(records));
            }
        }
    }

    async fn merge_into(
        &self,
        user_id: &str,
        groups: &[String],
        permissions: &[String],
    ) -> Result<bool, StoreError> {
        let mut set = serde_json::Map::new();
        if self.accepts("groups") {
            set.insert("groups".into(), json!(groups));
        }
        if self.accepts("permissions") {
            set.insert("permissions".into(), json!(permissions));
        }
        if set.is_empty() {
            return Ok(self.get_user(user_id).await?.is_some());
        }
        let url = self.url(Some(user_id), &[("_st", "PUBLIC".into())]);
        let answer = self
            .call(
                Method::PATCH,
                "patch by id",
                url,
                Some(&json!({ "$set": set })),
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        Ok(answer.status != StatusCode::NOT_FOUND)
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

/// Any document of the service as a [`UserRecord`].
fn record_from_json(value: Value) -> Result<UserRecord, StoreError> {
    match Bson::try_from(value) {
        Ok(Bson::Document(d)) => Ok(super::mongo::record_from_doc(&d)),
        _ => Err(StoreError::Corrupt {
            store: STORE,
            message: "the list holds something other than documents".into(),
        }),
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
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn item_urls_are_joined_onto_the_collection() {
        let store = CrudUsers {
            client: reqwest::Client::new(),
            base: Url::parse("http://crud.local/v2/users/").unwrap(),
            timeout: std::time::Duration::from_secs(1),
            fields: vec![],
            inactive: InactiveUsers::Refuse,
            notes: DuplicateNotes::default(),
        };
        assert_eq!(
            store.url(Some("a/b"), &[]).as_str(),
            "http://crud.local/v2/users/a%2Fb"
        );
        assert_eq!(
            store.url(None, &[("_st", "PUBLIC".into())]).as_str(),
            "http://crud.local/v2/users/?_st=PUBLIC"
        );
    }
}
