//! Users behind a CRUD HTTP service (Mia-Platform's CRUD Service, the original architecture's
//! `USERS_CRUD_BASE_URL`), following its public REST documentation:
//!
//! | idgate needs | request |
//! |---|---|
//! | login (find or create) | `POST {base}/upsert-one?_q=<identity>&_st=PUBLIC`, body `{"$set": <IdP fields>, "$setOnInsert": <key, default groups, empty permissions and metadata>}`; the answer is the document after the update |
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
//! `upsert-one` is not atomic in the service: two simultaneous first logins are kept to one
//! document only by a unique index on (realm, providerId, providerUserId) in the service's
//! collection definition, and the loser gets a 409; idgate then retries (a few short rounds,
//! until the winner's document is visible). A 409 while a non-PUBLIC document holds the
//! identity refuses the login (see `store::mongo` for why).

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use mongodb::bson::Bson;
use serde_json::{json, Value};
use url::Url;

use super::{Identity, StoreError, User, Users};
use crate::config::CrudConfig;

const STORE: &str = "crud service";

/// Attempts of a login that lost a first-login race (409 from `upsert-one`).
const RACE_ROUNDS: u32 = 5;

/// Page size for listing; the service's default `CRUD_MAX_LIMIT` is 200.
const PAGE: usize = 200;

/// Every `__STATE__` the service knows, for `_st` ("`__STATE__` management").
const ALL_STATES: &str = "PUBLIC,DRAFT,TRASH,DELETED";

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

    /// The refusal for a login whose identity a non-PUBLIC document holds, if one does.
    async fn hidden_holder(&self, id: &Identity) -> Result<Option<StoreError>, StoreError> {
        let query = json!({
            "realm": id.realm,
            "providerId": id.provider_id,
            "providerUserId": id.provider_user_id,
        });
        let url = self.url(
            None,
            &[
                ("_q", query.to_string()),
                ("_st", "DRAFT,TRASH,DELETED".into()),
            ],
        );
        let hidden = self.call(Method::GET, "list", url, None, &[]).await?;
        Ok(hidden
            .body
            .as_array()
            .and_then(|docs| docs.first())
            .map(|d| {
                let state = d["__STATE__"].as_str().unwrap_or("(none)");
                let user_id = d["_id"].as_str().unwrap_or_default();
                super::mongo::not_public(STORE, id, user_id, state)
            }))
    }

    async fn upsert(&self, id: &Identity, default_groups: &[String]) -> Result<Answer, StoreError> {
        let query = json!({
            "realm": id.realm,
            "providerId": id.provider_id,
            "providerUserId": id.provider_user_id,
        });
        let mut set = serde_json::Map::new();
        for (field, value) in [
            ("name", &id.name),
            ("email", &id.email),
            ("username", &id.username),
        ] {
            if let Some(value) = value {
                set.insert(field.into(), json!(value));
            }
        }
        let body = json!({
            "$set": set,
            "$setOnInsert": {
                "realm": id.realm,
                "providerId": id.provider_id,
                "providerUserId": id.provider_user_id,
                "groups": default_groups,
                "permissions": [],
                "metadata": {},
            },
        });
        let url = self.url(
            Some("upsert-one"),
            &[("_q", query.to_string()), ("_st", "PUBLIC".into())],
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
            let answer = self.upsert(id, default_groups).await?;
            if answer.status.is_success() {
                return user_from_json(answer.body);
            }
            // 409: another login inserted first (retry: the document is there to update), or
            // a document outside PUBLIC holds this identity (refuse).
            if let Some(refusal) = self.hidden_holder(id).await? {
                return Err(refusal);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10 << round)).await;
        }
        Err(unavailable(
            "upsert-one kept answering 409 Conflict and no hidden document holds the identity",
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
