//! The MongoDB users collection, the MongoDB copy of sessions and the CRUD-service users store,
//! against the real MongoDB-wire server (secantusdb) and the CRUD-compatible test service:
//! first at the library level, then through the whole login (Nginx + IdP + idgate binary),
//! including a back-channel logout that must end the sessions of a user the console trashed.
//! What every users store does (first logins, races, groups, records out of PUBLIC,
//! duplicates) is the store contract's (`tests/store_contract`); here, what only these stores
//! do: the CRUD document shape, the identity index, the service's headers, restoring sessions
//! from their MongoDB copy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::mongo::{CrudFake, Mongo};
use common::*;
use idgate::config::{CrudConfig, MongoConfig};
use idgate::crypto::Secret;
use idgate::store::embedded::EmbeddedStore;
use idgate::store::{Identity, SessionRecord, Sessions, StoreError, Users};
use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};

fn mongo_config(uri: &str, database: &str) -> MongoConfig {
    MongoConfig {
        uri: Secret::new(uri),
        database: database.into(),
        collection: "users".into(),
        sessions_collection: "idgate_sessions".into(),
        create_index: true,
        inactive_users: idgate::config::InactiveUsers::Refuse,
    }
}

fn identity(sub: &str, name: &str) -> Identity {
    Identity {
        realm: "web".into(),
        provider_id: "dev".into(),
        provider_user_id: sub.into(),
        name: Some(name.into()),
        email: Some(format!("{sub}@example.test")),
        username: Some(sub.into()),
    }
}

fn groups(g: &[&str]) -> Vec<String> {
    g.iter().map(|s| s.to_string()).collect()
}

/// A first login writes a document of the CRUD shape (the users store's own semantics are the
/// store contract's, `tests/store_contract`); `raw` reads a user's document (by provider user
/// id) from the MongoDB collection behind the store. Returns the user.
async fn check_crud_shape<F, Fut>(store: &dyn Users, raw: F) -> idgate::store::User
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = Option<Document>>,
{
    let first = store
        .upsert_login(&identity("alice", "Alice"), &groups(&["users"]))
        .await
        .unwrap();
    let doc = raw("alice")
        .await
        .expect("the document is in the collection");
    assert_eq!(doc.get_object_id("_id").unwrap().to_hex(), first.user_id);
    assert_eq!(doc.get_str("__STATE__").unwrap(), "PUBLIC");
    assert_eq!(doc.get_str("realm").unwrap(), "web");
    assert_eq!(doc.get_str("providerId").unwrap(), "dev");
    assert_eq!(doc.get_str("providerUserId").unwrap(), "alice");
    assert_eq!(doc.get_str("email").unwrap(), "alice@example.test");
    assert_eq!(doc.get_str("username").unwrap(), "alice");
    assert!(doc.get_datetime("createdAt").is_ok(), "{doc}");
    assert!(doc.get_datetime("updatedAt").is_ok(), "{doc}");
    assert!(doc.get_array("permissions").unwrap().is_empty());
    assert!(doc.get_document("metadata").unwrap().is_empty());
    assert!(doc.contains_key("creatorId") && doc.contains_key("updaterId"));
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_users_have_the_crud_shape_and_the_identity_index() {
    let mongo = Mongo::start();
    let client = mongo.client().await;
    let coll = client.database("app").collection::<Document>("users");
    let store = idgate::store::mongo::open_users(&mongo_config(&mongo.uri(), "app"))
        .await
        .unwrap();

    // The unique index (PUBLIC documents only) is in place after open, under a name the CRUD
    // service keeps.
    let indexes: Vec<mongodb::IndexModel> = {
        use futures_util::TryStreamExt;
        coll.list_indexes()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    let identity_index = indexes
        .iter()
        .find(|i| {
            i.options.as_ref().and_then(|o| o.name.as_deref()) == Some("preserve_idgate_identity")
        })
        .unwrap_or_else(|| panic!("no identity index in {indexes:?}"));
    assert_eq!(
        identity_index.options.as_ref().and_then(|o| o.unique),
        Some(true)
    );
    assert_eq!(
        identity_index.keys,
        doc! { "realm": 1, "providerId": 1, "providerUserId": 1 }
    );
    assert_eq!(
        identity_index
            .options
            .as_ref()
            .and_then(|o| o.partial_filter_expression.clone()),
        Some(doc! { "__STATE__": "PUBLIC" })
    );

    let raw = |sub: &'static str| {
        let coll = coll.clone();
        async move { coll.find_one(doc! { "providerUserId": sub }).await.unwrap() }
    };
    check_crud_shape(store.as_ref(), raw).await;
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 1);

    // A document written the way the CRUD console writes it is a user like any other.
    let oid = ObjectId::new();
    coll.insert_one(doc! {
        "_id": oid,
        "realm": "web",
        "providerId": "dev",
        "providerUserId": "dora",
        "name": "Dora",
        "email": "dora@example.test",
        "groups": ["editors"],
        "permissions": ["reports:read"],
        "metadata": { "team": "blue", "level": 3 },
        "__STATE__": "PUBLIC",
        "creatorId": "public",
        "updaterId": "public",
        "createdAt": DateTime::from_millis(1_586_106_974_175),
        "updatedAt": DateTime::from_millis(1_586_106_974_175),
    })
    .await
    .unwrap();
    let dora = store.get_user(&oid.to_hex()).await.unwrap().unwrap();
    assert_eq!(dora.groups, groups(&["editors"]));
    assert_eq!(dora.permissions, groups(&["reports:read"]));
    assert_eq!(
        dora.metadata,
        serde_json::json!({ "team": "blue", "level": 3 })
    );
    assert_eq!(dora.created_at, 1_586_106_974);
    let login = store
        .upsert_login(&identity("dora", "Dora"), &groups(&["users"]))
        .await
        .unwrap();
    assert_eq!(login.user_id, oid.to_hex());
    assert_eq!(
        login.groups,
        groups(&["editors"]),
        "the console's groups are kept"
    );
    let stored = coll.find_one(doc! { "_id": oid }).await.unwrap().unwrap();
    assert_eq!(
        stored.get_str("creatorId").unwrap(),
        "public",
        "insert-only field kept"
    );
}

fn session(sid: &str, user: &str) -> SessionRecord {
    let now = idgate::now_secs();
    SessionRecord {
        sid: sid.into(),
        user_id: user.into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        created_at: now,
        expires_at: now + 3600,
        refresh_hash: format!("hash-{sid}"),
        idp_tokens: vec![7, 8, 9],
        revoked: false,
        context: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_mirrored_to_mongo_survive_an_empty_primary() {
    let mongo = Mongo::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = mongo_config(&mongo.uri(), "app");
    let copies = mongo
        .client()
        .await
        .database("app")
        .collection::<Document>("idgate_sessions");

    // Created through the mirror over primary A: in A and in MongoDB.
    let a = EmbeddedStore::open(&dir.path().join("a.db")).unwrap();
    let over_a = idgate::store::mongo::mirror_sessions(Arc::new(a.clone()), &cfg)
        .await
        .unwrap();
    for sid in ["s1", "s2", "s3"] {
        assert!(over_a
            .create_session(&session(sid, "u1"), 10)
            .await
            .unwrap()
            .is_empty());
    }
    assert!(a.get_session("s1").await.unwrap().is_some());
    let copy = copies
        .find_one(doc! { "_id": "s1" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copy.get_str("userId").unwrap(), "u1");
    assert!(copy.get_datetime("expiresAt").is_ok());
    assert_eq!(copy.get_bool("revoked"), Ok(false));
    let ttl = copies.list_index_names().await.unwrap();
    assert!(ttl.contains(&"idgate_sessions_ttl".to_string()), "{ttl:?}");

    // The primary "restarts empty": a fresh primary B over the same MongoDB.
    let b = EmbeddedStore::open(&dir.path().join("b.db")).unwrap();
    let over_b = idgate::store::mongo::mirror_sessions(Arc::new(b.clone()), &cfg)
        .await
        .unwrap();
    assert_eq!(b.get_session("s1").await.unwrap(), None);
    let restored = over_b.get_session("s1").await.unwrap().unwrap();
    assert_eq!(restored, session_like(&restored, "s1"));
    assert_eq!(b.get_session("s1").await.unwrap(), Some(restored.clone()));
    assert_eq!(over_b.get_session("nope").await.unwrap(), None);
    assert_eq!(over_b.list_sessions(Some("u1")).await.unwrap().len(), 3);

    // Revocations reach both the primary and the copy, restored or not.
    assert!(over_b.revoke_session("s1").await.unwrap());
    assert!(b.get_session("s1").await.unwrap().unwrap().revoked);
    let copy = copies
        .find_one(doc! { "_id": "s1" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copy.get_bool("revoked"), Ok(true));
    assert!(
        over_b.revoke_session("s2").await.unwrap(),
        "copy-only session"
    );
    assert!(b.get_session("s2").await.unwrap().unwrap().revoked);
    let revoked = over_b.revoke_user_sessions("u1").await.unwrap();
    assert_eq!(revoked, vec!["s3".to_string()]);
    assert_eq!(
        copies
            .count_documents(doc! { "userId": "u1", "revoked": false })
            .await
            .unwrap(),
        0
    );
    // A revoked copy is reported revoked and never restored alive.
    let c = EmbeddedStore::open(&dir.path().join("c.db")).unwrap();
    let over_c = idgate::store::mongo::mirror_sessions(Arc::new(c.clone()), &cfg)
        .await
        .unwrap();
    assert!(over_c.get_session("s3").await.unwrap().unwrap().revoked);
    assert_eq!(c.get_session("s3").await.unwrap(), None);
    over_c.ping_sessions().await.unwrap();

    // Single-use keys are the primary's (short-lived, nothing to keep durable).
    let later = idgate::now_secs() + 60;
    assert!(over_c.remember_once("jti", later).await.unwrap());
    assert!(!c.remember_once("jti", later).await.unwrap());
    assert!(!over_c.remember_once("jti", later).await.unwrap());

    // MongoDB down during a create: nothing remains in the primary.
    let dead = free_port();
    let d = EmbeddedStore::open(&dir.path().join("d.db")).unwrap();
    let over_dead = idgate::store::mongo::mirror_sessions(
        Arc::new(d.clone()),
        &mongo_config(&format!("mongodb://127.0.0.1:{dead}/"), "app"),
    )
    .await
    .expect("a MongoDB that is down does not stop the mirror from opening");
    let err = over_dead
        .create_session(&session("s9", "u9"), 10)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                store: "mongodb",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(d.get_session("s9").await.unwrap(), None);
    assert!(d.list_sessions(None).await.unwrap().is_empty());
    assert!(over_dead.ping_sessions().await.is_err());
}

/// `rec` with the fields `session(sid, "u1")` fixes (the timestamps are the test's own).
fn session_like(rec: &SessionRecord, sid: &str) -> SessionRecord {
    SessionRecord {
        created_at: rec.created_at,
        expires_at: rec.expires_at,
        ..session(sid, "u1")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_service_users_have_the_crud_shape_and_carry_the_headers() {
    let mongo = Mongo::start();
    let crud = CrudFake::start(&mongo, "crud", "secret:xyz-123");
    let coll = mongo
        .client()
        .await
        .database("crud")
        .collection::<Document>("users");
    let config = |headers: Vec<(String, Secret)>| CrudConfig {
        base_url: crud.url.parse().unwrap(),
        headers,
        timeout: Duration::from_secs(5),
        // Every field, as a collection defined with permissions and metadata accepts.
        fields: idgate::config::CRUD_FIELDS.map(String::from).to_vec(),
        inactive_users: idgate::config::InactiveUsers::Refuse,
    };

    // Without the header the service answers 401, and the error names the service.
    let bare = idgate::store::crud::open_users(&config(vec![])).unwrap();
    let err = bare.ping_users().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                store: "crud service",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("401"), "{err}");
    let err = bare
        .upsert_login(&identity("eve", "Eve"), &groups(&["users"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("crud service") && err.to_string().contains("401"),
        "{err}"
    );

    let store =
        idgate::store::crud::open_users(&config(vec![("secret".into(), Secret::new("xyz-123"))]))
            .unwrap();
    store.ping_users().await.unwrap();
    let raw = |sub: &'static str| {
        let coll = coll.clone();
        async move { coll.find_one(doc! { "providerUserId": sub }).await.unwrap() }
    };
    check_crud_shape(store.as_ref(), raw).await;
    let alice = coll
        .find_one(doc! { "providerUserId": "alice" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.get_str("creatorId").unwrap(), "idgate");
}

fn users_list(config: &str) -> serde_json::Value {
    let (code, out, err) = idgate_cmd(&["users", "list", "--config", config]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// A real login through Nginx lands in the collection with the CRUD shape; the CLI lists and
/// changes it; the next login carries the new groups.
async fn login_and_manage(stack: &Stack, coll: &mongodb::Collection<Document>) {
    let browser = Browser::new();
    let resp = login(stack, &browser, "/", "frank").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let doc = coll
        .find_one(doc! { "providerUserId": "frank" })
        .await
        .unwrap()
        .expect("the user is in the collection");
    assert_eq!(doc.get_str("__STATE__").unwrap(), "PUBLIC");
    assert_eq!(doc.get_str("realm").unwrap(), "web");
    assert_eq!(doc.get_str("providerId").unwrap(), "dev");
    assert!(doc.get_datetime("createdAt").is_ok());
    let id = doc.get_object_id("_id").unwrap().to_hex();

    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let users = users_list(&config);
    assert_eq!(users[0]["userId"], id);
    assert_eq!(users[0]["groups"], serde_json::json!(["users"]));
    let (code, _, err) = idgate_cmd(&["users", "set-groups", "--config", &config, &id, "admins"]);
    assert_eq!(code, 0, "{err}");
    let doc = coll
        .find_one(doc! { "_id": doc.get_object_id("_id").unwrap() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        doc.get_array("groups").unwrap(),
        &vec![Bson::String("admins".into())]
    );

    let second = Browser::new();
    let resp = login(stack, &second, "/", "frank").await;
    assert_eq!(resp.status(), 200);
    let tokens: serde_json::Value = resp.json().await.unwrap();
    let echo = echoed(
        &second
            .navigate(&format!("{}/", stack.site()))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(echo["miauserid"], id);
    assert_eq!(echo["miausergroups"], "admins");
    assert_eq!(users_list(&config).as_array().unwrap().len(), 1);

    // Moved to the trash in the console: the next refresh ends the session (not "keeps the old
    // claims"), and a new login is refused with 403 (not a store outage).
    coll.update_one(
        doc! { "providerUserId": "frank" },
        doc! { "$set": { "__STATE__": "TRASH" } },
    )
    .await
    .unwrap();
    let site = stack.site();
    let refreshed = second
        .client
        .post(format!("{site}/refreshtoken"))
        .json(&serde_json::json!({ "refreshToken": tokens["refreshToken"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 401);
    let page = second
        .client
        .get(format!("{site}/"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 401, "the session ended with the refresh");
    let refused = login(stack, &Browser::new(), "/", "frank").await;
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("not active"), "{body}");
    assert!(!message.contains(&id), "no internal id in the body: {body}");
    coll.update_one(
        doc! { "providerUserId": "frank" },
        doc! { "$set": { "__STATE__": "PUBLIC" } },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_lands_in_the_mongodb_users_collection() {
    let mongo = Mongo::start();
    let coll = mongo
        .client()
        .await
        .database("app")
        .collection::<Document>("users");
    let stack = Stack::start_with(Setup {
        users: Some(format!(
            "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"app\"",
            mongo.uri()
        )),
        ..Setup::default()
    });
    login_and_manage(&stack, &coll).await;

    // MongoDB goes down: a login answers 503 naming it, and leaves no session behind.
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let sessions_before = sessions_list(&config);
    let mut mongo = mongo;
    mongo.proc.terminate();
    let resp = login(&stack, &Browser::new(), "/", "grace").await;
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("mongodb"),
        "{body}"
    );
    assert_eq!(sessions_list(&config), sessions_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_channel_logout_ends_the_sessions_of_a_trashed_user() {
    let mongo = Mongo::start();
    let coll = mongo
        .client()
        .await
        .database("app")
        .collection::<Document>("users");
    let stack = Stack::start_with(Setup {
        users: Some(format!(
            "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"app\"",
            mongo.uri()
        )),
        ..Setup::default()
    });
    let site = stack.site();
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "tess").await.status(), 200);
    let doc = coll
        .find_one(doc! { "providerUserId": "tess" })
        .await
        .unwrap()
        .unwrap();
    let id = doc.get_object_id("_id").unwrap();
    // Used once, so idgate knows the user's record (a user first seen after the trashing is
    // read on that cache miss, and the session ends there: README "Group changes").
    assert_eq!(browser.navigate(&format!("{site}/x")).await.status(), 200);

    // The console moves the user to the trash; the session is still alive (until the next
    // `[users] refresh_interval` round, 60 s by default).
    coll.update_one(
        doc! { "_id": id },
        doc! { "$set": { "__STATE__": "TRASH" } },
    )
    .await
    .unwrap();
    assert_eq!(browser.navigate(&format!("{site}/x")).await.status(), 200);

    // The user signs out at the IdP: its back-channel logout finds the trashed user.
    let resp = browser
        .confirm_idp_logout(&format!("{}/session/end", stack.idp.issuer))
        .await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let log = stack
        .idgate
        .proc
        .wait_log(&["back-channel logout", &id.to_hex()]);
    assert!(
        log.lines()
            .any(|l| l.contains("back-channel logout") && l.contains("sessions=1")),
        "{log}"
    );
    assert_eq!(
        browser.navigate(&format!("{site}/x")).await.status(),
        302,
        "the trashed user's session has ended"
    );
}

fn sessions_list(config: &str) -> usize {
    let (code, out, err) = idgate_cmd(&["sessions", "list", "--config", config]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_lands_in_the_crud_service() {
    let mongo = Mongo::start();
    let crud = CrudFake::start(&mongo, "crud", "secret:s3cr3t-key");
    let coll = mongo
        .client()
        .await
        .database("crud")
        .collection::<Document>("users");
    let stack = Stack::start_with(Setup {
        users: Some(format!(
            "[users]\nkind = \"crud\"\nbase_url = \"{}\"\nheaders = {{ secret = \"s3cr3t-key\" }}",
            crud.url
        )),
        ..Setup::default()
    });
    login_and_manage(&stack, &coll).await;
    assert!(
        !stack.idgate.log_caught_up().await.contains("s3cr3t-key"),
        "the header's value never reaches the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_down_at_startup_is_reported_then_recovered_from() {
    let port = free_port();
    let (_dir, idgate) = start_idgate_alone(Setup {
        users: Some(format!(
            "[users]\nkind = \"mongodb\"\nuri = \"mongodb://127.0.0.1:{port}/\"\ndatabase = \"app\""
        )),
        ..Setup::default()
    });
    let http = reqwest::Client::new();
    let resp = http.get(idgate.url("/-/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("mongodb"), "{body}");

    // MongoDB comes up on that port: ready again, without restarting idgate.
    let _mongo = Mongo::start_on(port);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = http.get(idgate.url("/-/ready")).send().await.unwrap();
        if resp.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still not ready: {}",
            resp.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
