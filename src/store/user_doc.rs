//! The user document of the CRUD service's users collection: the one format MongoDB (`mongo`)
//! and the CRUD service (`crud`) share, so the service, its console and idgate keep working on
//! the same records. Reading a document as a [`User`] or a [`UserRecord`], the identity key,
//! the sort of [`super::DUPLICATE_RULE`] and what a login writes live here once; each store
//! only says how the document travels (BSON over the wire protocol, JSON over HTTP).
//!
//! ```text
//! { _id: ObjectId, realm, providerId, providerUserId, name, email, username,
//!   groups: [..], permissions: [..], metadata: {..},
//!   createdAt: Date, updatedAt: Date, creatorId, updaterId, __STATE__: "PUBLIC" }
//! ```
//!
//! `userId` is `_id` as a hex string (a string `_id`, which the CRUD service allows, is used as
//! it is). Only `__STATE__: "PUBLIC"` documents are users.

use mongodb::bson::{doc, Bson, DateTime, Document};

use super::{Identity, StoreError, User, UserRecord};

/// The CRUD service's name for a visible document: the only state that is a user.
pub(crate) const PUBLIC: &str = "PUBLIC";

/// Every other `__STATE__` the CRUD service knows ("`__STATE__` management"): a record in one
/// of them holds its identity without being a user.
pub(crate) const HIDDEN_STATES: [&str; 3] = ["DRAFT", "TRASH", "DELETED"];

/// What idgate writes in `creatorId` / `updaterId`, the CRUD service's audit fields.
pub(crate) const WRITER: &str = "idgate";

/// Most user ids `find_ids_by_identity` returns (one per state, unless duplicates exist).
pub(crate) const IDS_BY_IDENTITY_LIMIT: i64 = 10;

/// The fields of [`super::DUPLICATE_RULE`]'s sort, ascending: oldest `createdAt` first (a
/// document without one sorts first), then the smallest `_id`.
pub(crate) const OLDEST_FIRST: [&str; 2] = ["createdAt", "_id"];

/// The (realm, provider, subject) triple that makes an identity, as a filter.
pub(crate) fn identity_key(realm: &str, provider_id: &str, provider_user_id: &str) -> Document {
    doc! {
        "realm": realm,
        "providerId": provider_id,
        "providerUserId": provider_user_id,
    }
}

/// What a login refreshes from the IdP: the fields it sent (one it did not send keeps its
/// stored value).
pub(crate) fn idp_fields(id: &Identity) -> Document {
    let mut set = Document::new();
    for (field, value) in [
        ("name", &id.name),
        ("email", &id.email),
        ("username", &id.username),
    ] {
        if let Some(value) = value {
            set.insert(field, value);
        }
    }
    set
}

/// What a first login writes for the project, never after: the default groups, no
/// permissions, empty metadata.
pub(crate) fn project_defaults(default_groups: &[String]) -> Document {
    doc! {
        "groups": default_groups,
        "permissions": Bson::Array(Vec::new()),
        "metadata": Document::new(),
    }
}

/// A document's `_id` as text (hex for an ObjectId), whatever it holds: for messages and the
/// doctor's report.
pub(crate) fn id_text(d: &Document) -> String {
    match d.get("_id") {
        Some(Bson::ObjectId(oid)) => oid.to_hex(),
        Some(Bson::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A document's `_id` as a user id: an ObjectId's hex, or a string `_id` as it is.
pub(crate) fn user_id_of(store: &'static str, d: &Document) -> Result<String, StoreError> {
    match d.get("_id") {
        Some(Bson::ObjectId(oid)) => Ok(oid.to_hex()),
        Some(Bson::String(s)) => Ok(s.clone()),
        other => Err(StoreError::corrupt(
            store,
            format!("a user has an unusable _id: {other:?}"),
        )),
    }
}

/// BSON date (or an RFC 3339 string, as the CRUD service's JSON or an import leaves it) →
/// seconds since the epoch.
fn secs_of(value: Option<&Bson>) -> i64 {
    match value {
        Some(Bson::DateTime(d)) => d.timestamp_millis().div_euclid(1000),
        Some(Bson::String(s)) => DateTime::parse_rfc3339_str(s)
            .map(|d| d.timestamp_millis().div_euclid(1000))
            .unwrap_or(0),
        _ => 0,
    }
}

/// A users-collection document as a [`User`]. Lenient about what the CRUD console may leave
/// out (missing arrays are empty, missing dates are 0), strict about wrong types.
pub(crate) fn user_from_doc(store: &'static str, d: &Document) -> Result<User, StoreError> {
    let user_id = user_id_of(store, d)?;
    let corrupt = |message: String| StoreError::corrupt(store, message);
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

/// Any document of the collection as a [`UserRecord`]: what it has of the identity, and why
/// it cannot be read as a user when it cannot.
pub(crate) fn record_from_doc(store: &'static str, d: &Document) -> UserRecord {
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
        problem: user_from_doc(store, d).err().map(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::oid::ObjectId;

    use super::*;

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
        let u = user_from_doc("test", &d).unwrap();
        assert_eq!(u.user_id, oid.to_hex());
        assert_eq!(u.groups, vec!["admins".to_string()]);
        assert!(u.permissions.is_empty());
        assert_eq!(u.metadata, serde_json::json!({ "team": "blue" }));
        assert_eq!(u.created_at, 1_700_000_000);
        assert_eq!(u.email, None);
        assert!(matches!(
            user_from_doc("test", &doc! { "_id": 1, "realm": "web" }),
            Err(StoreError::Corrupt { store: "test", .. })
        ));
    }

    #[test]
    fn a_record_says_why_it_is_no_user() {
        let d = doc! { "_id": "u1", "realm": "web", "__STATE__": "TRASH", "groups": ["a", 1] };
        let r = record_from_doc("test", &d);
        assert_eq!((r.user_id.as_str(), r.state.as_str()), ("u1", "TRASH"));
        assert_eq!(r.groups, vec!["a".to_string()]);
        let problem = r.problem.unwrap();
        assert!(problem.contains("providerId"), "{problem}");
    }

    #[test]
    fn a_login_writes_what_the_idp_sent_and_the_defaults_once() {
        let id = Identity {
            realm: "web".into(),
            provider_id: "dev".into(),
            provider_user_id: "alice".into(),
            name: Some("Alice".into()),
            email: None,
            username: Some("al".into()),
        };
        assert_eq!(idp_fields(&id), doc! { "name": "Alice", "username": "al" });
        assert_eq!(
            project_defaults(&["users".to_string()]),
            doc! { "groups": ["users"], "permissions": [], "metadata": {} }
        );
    }
}
