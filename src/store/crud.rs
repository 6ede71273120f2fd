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
//! itself (and refuses them in a body); the document shape is the one of `store::user_doc`,
//! shared with MongoDB. The configured headers (API key, …) go on every request, plus
//! `userid: idgate` so the service's audit fields name the writer.
//!
//! **Fields.** A collection defined with a schema refuses a body naming any other field with
//! 400, so idgate writes only the fields of `[users] fields` (`CrudConfig::fields`); the default
//! is the users collection of Mia's documentation before `metadata`: realm, providerId,
//! providerUserId, name, email, username, groups. `permissions` and `metadata` (written empty on
//! insert) are sent only when listed; they are read whenever present.
//!
//! **Duplicates, races and inactive users** follow `store::first_login`, as for MongoDB: logins
//! use the oldest `PUBLIC` record of the identity and never fail because of the others. No
//! unique index is needed; with one (realm, providerId, providerUserId) in the collection
//! definition, two simultaneous first logins are kept to one document, the loser gets a 409
//! and tries again. Without it, such a race may leave two documents, which the rule then
//! resolves like any others. `inactive_users = "recreate"` is Mia's behaviour: `upsert-one`
//! filtered on PUBLIC inserts a new document.

mod users;

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::user_doc::{identity_key, HIDDEN_STATES, OLDEST_FIRST, PUBLIC, WRITER};
use super::{DuplicateNotes, StoreError, Users};
use crate::config::{CrudConfig, InactiveUsers};

const STORE: &str = "crud service";

/// Page size for listing; the service's default `CRUD_MAX_LIMIT` is 200.
const PAGE: usize = 200;

pub fn open_users(cfg: &CrudConfig) -> Result<Arc<dyn Users>, StoreError> {
    open_users_with_trust(cfg, &crate::tls::TrustStore::default())
}

/// [`open_users`] with the HTTP client trusting `trust` (`[tls]`, the `crud` client).
pub fn open_users_with_trust(
    cfg: &CrudConfig,
    trust: &crate::tls::TrustStore,
) -> Result<Arc<dyn Users>, StoreError> {
    let mut headers = HeaderMap::new();
    headers.insert("userid", HeaderValue::from_static(WRITER));
    for (name, value) in &cfg.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            StoreError::unavailable(
                STORE,
                format!("users.headers: `{name}` is not a header name: {e}"),
            )
        })?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
            StoreError::unavailable(
                STORE,
                format!("users.headers: the value of `{name}` is not a valid header value"),
            )
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
        .map_err(|e| {
            StoreError::unavailable(STORE, format!("cannot build the HTTP client: {e}"))
        })?;
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

/// `_st` for the states out of `PUBLIC`, and `PUBLIC` too when `public_too`.
fn states(public_too: bool) -> String {
    let public = public_too.then_some(PUBLIC);
    public
        .into_iter()
        .chain(HIDDEN_STATES)
        .collect::<Vec<_>>()
        .join(",")
}

/// `_s` for the sort of [`crate::store::DUPLICATE_RULE`].
fn oldest_first() -> String {
    OLDEST_FIRST.join(",")
}

/// `_q` for an identity.
fn identity_query(realm: &str, provider_id: &str, provider_user_id: &str) -> String {
    mongodb::bson::Bson::Document(identity_key(realm, provider_id, provider_user_id))
        .into_relaxed_extjson()
        .to_string()
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
    #[tracing::instrument(target = "idgate::trace", name = "users crud", skip_all, fields(otel.kind = "client", http.request.method = %method))]
    async fn call(
        &self,
        method: Method,
        what: &str,
        url: Url,
        body: Option<&Value>,
        expected: &[StatusCode],
    ) -> Result<Answer, StoreError> {
        let unavailable = |message: String| StoreError::unavailable(STORE, message);
        let mut request = self.client.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = crate::telemetry::propagate(request)
            .send()
            .await
            .map_err(|e| {
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
            serde_json::from_str(&text).map_err(|e| {
                StoreError::corrupt(
                    STORE,
                    format!("{method} {what}: the answer is not JSON: {e}"),
                )
            })?
        };
        Ok(Answer { status, body })
    }

    fn accepts(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f == field)
    }

    /// A GET of the list that must answer an array.
    async fn list(&self, what: &str, query: &[(&str, String)]) -> Result<Vec<Value>, StoreError> {
        let answer = self
            .call(Method::GET, what, self.url(None, query), None, &[])
            .await?;
        match answer.body {
            Value::Array(docs) => Ok(docs),
            _ => Err(StoreError::corrupt(
                STORE,
                format!("GET {what} did not answer an array"),
            )),
        }
    }

    /// A PATCH of the active record `user_id` with `{"$set": set}`: its document after, `None`
    /// when there is no such active record (404).
    async fn patch(
        &self,
        user_id: &str,
        set: serde_json::Map<String, Value>,
    ) -> Result<Option<Value>, StoreError> {
        let url = self.url(Some(user_id), &[("_st", PUBLIC.into())]);
        let body = serde_json::json!({ "$set": set });
        let answer = self
            .call(
                Method::PATCH,
                "patch by id",
                url,
                Some(&body),
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        Ok((answer.status != StatusCode::NOT_FOUND).then_some(answer.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn state_lists_and_sorts_are_the_services_words() {
        assert_eq!(states(true), "PUBLIC,DRAFT,TRASH,DELETED");
        assert_eq!(states(false), "DRAFT,TRASH,DELETED");
        assert_eq!(oldest_first(), "createdAt,_id");
        let q: Value = serde_json::from_str(&identity_query("web", "dev", "a")).unwrap();
        assert_eq!(
            q,
            serde_json::json!({ "realm": "web", "providerId": "dev", "providerUserId": "a" })
        );
    }
}
