//! Existing users collections as Mia leaves them: several `PUBLIC` documents for one identity
//! (Mia keeps no unique index), trashed users, documents without identity fields, and CRUD
//! collections defined with a schema that refuses unknown fields. Logins work on them as they
//! are (no index required, duplicates resolved oldest-first and logged once), `inactive_users`
//! chooses between refusal and Mia's re-creation, and `idgate users doctor` lists and merges.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::Duration;

use common::mongo::{CrudFake, Mongo};
use common::*;
use idgate::config::{CrudConfig, InactiveUsers, MongoConfig};
use idgate::crypto::Secret;
use idgate::store::{Identity, StoreError};
use mongodb::bson::{doc, oid::ObjectId, Bson, Document};

fn identity(sub: &str) -> Identity {
    Identity {
        realm: "web".into(),
        provider_id: "dev".into(),
        provider_user_id: sub.into(),
        name: Some(sub.to_uppercase()),
        email: Some(format!("{sub}@example.test")),
        username: Some(sub.into()),
    }
}

fn groups(g: &[&str]) -> Vec<String> {
    g.iter().map(|s| s.to_string()).collect()
}

/// A document as Mia's authentication service (through the CRUD service) writes it, in the
/// harness's realm `web` and provider `dev`.
fn mia_doc(oid: ObjectId, sub: &str, state: &str, created_ms: i64, groups: &[&str]) -> Document {
    common::mongo::mia_user_doc(oid, ("web", "dev", sub), state, created_ms, groups)
}

/// Two PUBLIC documents for `dup` (the older one created second, so `_id` order and age
/// disagree), a trashed-only `tina`, and a PUBLIC document without `providerUserId`.
/// Returns (older dup, newer dup, tina, broken).
async fn seed(coll: &mongodb::Collection<Document>) -> (ObjectId, ObjectId, ObjectId, ObjectId) {
    let newer = ObjectId::new();
    let older = ObjectId::new();
    let tina = ObjectId::new();
    let broken = ObjectId::new();
    let mut newer_doc = mia_doc(
        newer,
        "dup",
        "PUBLIC",
        1_600_000_000_000,
        &["admins", "users"],
    );
    newer_doc.insert("permissions", vec!["reports:read"]);
    coll.insert_many([
        newer_doc,
        mia_doc(
            older,
            "dup",
            "PUBLIC",
            1_500_000_000_000,
            &["editors", "users"],
        ),
        mia_doc(tina, "tina", "TRASH", 1_500_000_000_000, &["users"]),
        doc! { "_id": broken, "realm": "web", "providerId": "dev", "__STATE__": "PUBLIC" },
    ])
    .await
    .unwrap();
    (older, newer, tina, broken)
}

fn mongo_config(uri: &str, inactive_users: InactiveUsers) -> MongoConfig {
    MongoConfig {
        uri: Secret::new(uri),
        database: "app".into(),
        collection: "users".into(),
        sessions_collection: "idgate_sessions".into(),
        create_index: true,
        inactive_users,
    }
}

fn doctor(config: &str, merge: bool) -> serde_json::Value {
    let mut args = vec!["users", "doctor", "--config", config];
    if merge {
        args.push("--merge");
    }
    let (code, out, err) = idgate_cmd(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn user_id_after_login(stack: &Stack, sub: &str) -> String {
    let browser = Browser::new();
    let resp = login(stack, &browser, "/", sub).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let echo = echoed(
        &browser
            .navigate(&format!("{}/", stack.site()))
            .await
            .text()
            .await
            .unwrap(),
    );
    echo["miauserid"].clone()
}

/// The whole path on a MongoDB collection Mia left behind: the index cannot be built (logged,
/// not fatal), duplicates log in to the oldest record (logged once), a trashed-only user is
/// refused, and the doctor lists everything, merges, and leaves a clean collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mia_collection_with_duplicates_logs_in_and_the_doctor_merges_it() {
    let mongo = Mongo::start();
    let coll = mongo
        .client()
        .await
        .database("app")
        .collection::<Document>("users");
    let (older, newer, tina, broken) = seed(&coll).await;
    let stack = Stack::start_with(Setup {
        users: Some(format!(
            "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"app\"",
            mongo.uri()
        )),
        ..Setup::default()
    });
    stack
        .idgate
        .proc
        .wait_log(&["cannot create the users collection's unique index"]);

    // Both logins land on the oldest record; the duplicate is logged once, not per login.
    assert_eq!(user_id_after_login(&stack, "dup").await, older.to_hex());
    assert_eq!(user_id_after_login(&stack, "dup").await, older.to_hex());
    let log = stack.idgate.log_caught_up().await;
    assert_eq!(
        log.matches("several active records hold this identity")
            .count(),
        1,
        "{log}"
    );
    assert!(log.contains(&older.to_hex()), "{log}");
    // The login refreshed the oldest only.
    let d = coll.find_one(doc! { "_id": older }).await.unwrap().unwrap();
    assert_eq!(d.get_str("email").unwrap(), "dup@example.test");
    let d = coll.find_one(doc! { "_id": newer }).await.unwrap().unwrap();
    assert!(d.get_str("email").is_err(), "{d}");

    // A user only in the trash is refused (the default), and nothing is created.
    let refused = login(&stack, &Browser::new(), "/", "tina").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        coll.count_documents(doc! { "providerUserId": "tina" })
            .await
            .unwrap(),
        1
    );

    // The doctor's report.
    let config = stack.idgate.config.to_str().unwrap().to_owned();
    let report = doctor(&config, false);
    assert_eq!(report["scanned"], 4, "{report}");
    assert_eq!(
        report["duplicates"],
        serde_json::json!([{
            "realm": "web", "providerId": "dev", "providerUserId": "dup",
            "keep": older.to_hex(), "others": [newer.to_hex()],
            "groups": ["editors", "users", "admins"], "permissions": ["reports:read"],
        }]),
        "{report}"
    );
    assert_eq!(
        report["incomplete"][0]["userId"],
        broken.to_hex(),
        "{report}"
    );
    assert!(
        report["incomplete"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("providerUserId"),
        "{report}"
    );
    assert_eq!(
        report["inactive"],
        serde_json::json!([{
            "realm": "web", "providerId": "dev", "providerUserId": "tina",
            "records": [[tina.to_hex(), "TRASH"]],
        }]),
        "{report}"
    );
    // Listing changes nothing.
    assert_eq!(
        coll.count_documents(doc! { "__STATE__": "PUBLIC" })
            .await
            .unwrap(),
        3
    );

    // The merge: the kept record has the union, the other is in the trash (not deleted).
    let merged = doctor(&config, true);
    assert_eq!(
        merged["merged"],
        serde_json::json!([{ "keep": older.to_hex(), "retired": [newer.to_hex()], "sessionsRevoked": 0 }]),
        "{merged}"
    );
    let kept = coll.find_one(doc! { "_id": older }).await.unwrap().unwrap();
    assert_eq!(
        kept.get_array("groups").unwrap(),
        &vec![
            Bson::String("editors".into()),
            Bson::String("users".into()),
            Bson::String("admins".into())
        ]
    );
    assert_eq!(
        kept.get_array("permissions").unwrap(),
        &vec![Bson::String("reports:read".into())]
    );
    let retired = coll.find_one(doc! { "_id": newer }).await.unwrap().unwrap();
    assert_eq!(retired.get_str("__STATE__").unwrap(), "TRASH");
    let after = doctor(&config, false);
    assert_eq!(after["duplicates"], serde_json::json!([]), "{after}");

    // The next login carries the merged groups.
    let browser = Browser::new();
    assert_eq!(login(&stack, &browser, "/", "dup").await.status(), 200);
    let echo = echoed(
        &browser
            .navigate(&format!("{}/", stack.site()))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(echo["miausergroups"], "editors,users,admins");
}

/// `inactive_users = "recreate"` does what Mia does: a trashed user's login creates a new
/// PUBLIC record with the default groups; under an old unique index that ignores `__STATE__`
/// it cannot, and the login is refused saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_inactive_users_recreate_or_refuse() {
    let mongo = Mongo::start();
    let coll = mongo
        .client()
        .await
        .database("app")
        .collection::<Document>("users");
    let tina = ObjectId::new();
    coll.insert_one(mia_doc(
        tina,
        "tina",
        "TRASH",
        1_500_000_000_000,
        &["admins"],
    ))
    .await
    .unwrap();

    let refuse =
        idgate::store::mongo::open_users(&mongo_config(&mongo.uri(), InactiveUsers::Refuse))
            .await
            .unwrap();
    let err = refuse
        .upsert_login(&identity("tina"), &groups(&["users"]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("TRASH"), "{err}");

    let recreate =
        idgate::store::mongo::open_users(&mongo_config(&mongo.uri(), InactiveUsers::Recreate))
            .await
            .unwrap();
    let user = recreate
        .upsert_login(&identity("tina"), &groups(&["users"]))
        .await
        .unwrap();
    assert_ne!(user.user_id, tina.to_hex());
    assert_eq!(
        user.groups,
        groups(&["users"]),
        "the default groups, not the trashed ones"
    );
    assert_eq!(
        coll.count_documents(doc! { "providerUserId": "tina" })
            .await
            .unwrap(),
        2
    );
    // Logged in again: the same new record.
    let again = recreate
        .upsert_login(&identity("tina"), &groups(&["users"]))
        .await
        .unwrap();
    assert_eq!(again.user_id, user.user_id);

    // Under a unique index that ignores __STATE__ (an older idgate's), re-creation is refused.
    let old = mongo
        .client()
        .await
        .database("old")
        .collection::<Document>("users");
    old.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "realm": 1, "providerId": 1, "providerUserId": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .unique(true)
                    .name("preserve_idgate_identity".to_owned())
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    old.insert_one(mia_doc(
        ObjectId::new(),
        "tina",
        "TRASH",
        1_500_000_000_000,
        &["admins"],
    ))
    .await
    .unwrap();
    let mut cfg = mongo_config(&mongo.uri(), InactiveUsers::Recreate);
    cfg.database = "old".into();
    let blocked = idgate::store::mongo::open_users(&cfg).await.unwrap();
    let err = blocked
        .upsert_login(&identity("tina"), &groups(&["users"]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("unique index"), "{err}");
}

/// The CRUD fake set up as Mia's docs define the users collection: a schema with only the
/// documented fields (anything else: 400) and no unique index.
fn mia_crud(mongo: &Mongo) -> CrudFake {
    CrudFake::start_with_args(
        mongo,
        "crud",
        "secret:k",
        &[
            "--schema-fields",
            "realm,providerId,providerUserId,name,email,username,groups",
            "--identity-index",
            "none",
        ],
    )
}

fn crud_config(url: &str, fields: Option<&[&str]>, inactive_users: InactiveUsers) -> CrudConfig {
    CrudConfig {
        base_url: url.parse().unwrap(),
        headers: vec![("secret".into(), Secret::new("k"))],
        timeout: Duration::from_secs(5),
        fields: fields
            .unwrap_or(&idgate::config::CRUD_DEFAULT_FIELDS)
            .iter()
            .map(|f| f.to_string())
            .collect(),
        inactive_users,
    }
}

/// A real login through Nginx into a CRUD collection defined from Mia's docs, with idgate's
/// default `fields`; the same collection refuses a store told to write permissions and
/// metadata (proof that the fake's schema check is on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_works_with_a_crud_collection_defined_from_mias_docs() {
    let mongo = Mongo::start();
    let crud = mia_crud(&mongo);
    let coll = mongo
        .client()
        .await
        .database("crud")
        .collection::<Document>("users");
    let stack = Stack::start_with(Setup {
        users: Some(format!(
            "[users]\nkind = \"crud\"\nbase_url = \"{}\"\nheaders = {{ secret = \"k\" }}",
            crud.url
        )),
        ..Setup::default()
    });
    let id = user_id_after_login(&stack, "frank").await;
    let d = coll
        .find_one(doc! { "providerUserId": "frank" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.get_object_id("_id").unwrap().to_hex(), id);
    assert!(
        !d.contains_key("permissions") && !d.contains_key("metadata"),
        "{d}"
    );
    // A second login (the PATCH path) works too.
    assert_eq!(user_id_after_login(&stack, "frank").await, id);

    let all = CRUD_ALL.to_vec();
    let greedy =
        idgate::store::crud::open_users(&crud_config(&crud.url, Some(&all), InactiveUsers::Refuse))
            .unwrap();
    let err = greedy
        .upsert_login(&identity("gina"), &groups(&["users"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("400") && err.to_string().contains("additional properties"),
        "{err}"
    );
}

const CRUD_ALL: [&str; 9] = idgate::config::CRUD_FIELDS;

/// Duplicates, trashed users and the doctor through the CRUD service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_duplicates_inactive_users_and_the_doctor() {
    let mongo = Mongo::start();
    let crud = mia_crud(&mongo);
    let coll = mongo
        .client()
        .await
        .database("crud")
        .collection::<Document>("users");
    let (older, newer, tina, _broken) = seed(&coll).await;

    let store =
        idgate::store::crud::open_users(&crud_config(&crud.url, None, InactiveUsers::Refuse))
            .unwrap();
    let user = store
        .upsert_login(&identity("dup"), &groups(&["users"]))
        .await
        .unwrap();
    assert_eq!(user.user_id, older.to_hex());
    assert_eq!(
        store
            .find_by_identity("web", "dev", "dup")
            .await
            .unwrap()
            .unwrap()
            .user_id,
        older.to_hex()
    );
    let err = store
        .upsert_login(&identity("tina"), &groups(&["users"]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err:?}");

    let recreate =
        idgate::store::crud::open_users(&crud_config(&crud.url, None, InactiveUsers::Recreate))
            .unwrap();
    let fresh = recreate
        .upsert_login(&identity("tina"), &groups(&["users"]))
        .await
        .unwrap();
    assert_ne!(fresh.user_id, tina.to_hex());
    assert_eq!(fresh.groups, groups(&["users"]));

    // The doctor, at the library level, through the service (state transition to TRASH).
    let dir = tempfile::tempdir().unwrap();
    let sessions = idgate::store::embedded::EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let report = idgate::users::doctor::examine(store.as_ref(), "crud service")
        .await
        .unwrap();
    assert_eq!(report.duplicates.len(), 1, "{report:?}");
    assert_eq!(report.duplicates[0].keep, older.to_hex());
    assert_eq!(report.duplicates[0].others, vec![newer.to_hex()]);
    let merged = idgate::users::doctor::merge(store.as_ref(), &sessions, &report)
        .await
        .unwrap();
    assert_eq!(merged[0].retired, vec![newer.to_hex()]);
    let d = coll.find_one(doc! { "_id": newer }).await.unwrap().unwrap();
    assert_eq!(d.get_str("__STATE__").unwrap(), "TRASH");
    let d = coll.find_one(doc! { "_id": older }).await.unwrap().unwrap();
    assert_eq!(
        d.get_array("groups").unwrap().len(),
        3,
        "groups merged, permissions not written (not an accepted field): {d}"
    );
    assert!(!d.contains_key("permissions"), "{d}");
    assert!(
        idgate::users::doctor::examine(store.as_ref(), "crud service")
            .await
            .unwrap()
            .duplicates
            .is_empty()
    );
}

/// The embedded store can be examined too; its unique constraint means it never has duplicates,
/// and `--merge` on a clean store changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_examines_the_embedded_store() {
    let (_dir, idgate) = start_idgate_alone(Setup::default());
    let config = idgate.config.to_str().unwrap().to_owned();
    let (code, _, err) = idgate_cmd(&["sessions", "mint", "--config", &config, "--user", "u1"]);
    assert_eq!(code, 0, "{err}");
    let report = doctor(&config, true);
    assert_eq!(report["duplicates"], serde_json::json!([]), "{report}");
    assert_eq!(report["merged"], serde_json::json!([]), "{report}");
    assert_eq!(report["rule"], idgate::store::DUPLICATE_RULE);
}
