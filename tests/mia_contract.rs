//! The contract with a migrating Mia project (`docs/migrating.md`, "The contract"), tested two
//! ways:
//!
//! - every test the table names exists, so a row cannot point at a test that was renamed or
//!   removed (each named test fails if its row's behaviour changes);
//! - the whole contract once, end to end, with a project's unmodified Mia files: the committed
//!   `config.json` and `auth.json`, and a MongoDB users collection shaped the way Mia's services
//!   leave it (CRUD-service fields, `__STATE__`, two `PUBLIC` records of one identity, a trashed
//!   user), through real Nginx, the real IdP and a real MongoDB-wire server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::mongo::Mongo;
use common::*;
use mongodb::bson::{doc, oid::ObjectId, Document};

/// The `file::test` (or `module::tests::test`) names in the contract table's last column.
fn named_tests() -> Vec<String> {
    let doc = std::fs::read_to_string(repo().join("docs/migrating.md")).unwrap();
    let start = doc.find("## The contract").expect("the contract section");
    let section = &doc[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    let mut names = Vec::new();
    for row in section[..end].lines().filter(|l| l.starts_with("| ")) {
        let last = row.trim_end_matches('|').rsplit('|').next().unwrap_or("");
        for part in last.split('`').skip(1).step_by(2) {
            if part.contains("::") {
                names.push(part.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_test_the_contract_names_exists() {
    let names = named_tests();
    assert!(names.len() >= 30, "the table names {} tests", names.len());
    let sources = |dir: &str| -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![repo().join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let rel = p.strip_prefix(repo()).unwrap().display().to_string();
                    out.push((rel, std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        out
    };
    let (src, tests) = (sources("src"), sources("tests"));
    for name in &names {
        let mut parts: Vec<&str> = name.split("::").collect();
        let test = parts.pop().unwrap();
        let needle = format!("fn {test}(");
        let found = match parts.as_slice() {
            // An integration test: tests/<file>.rs.
            [file] if tests.iter().any(|(p, _)| p == &format!("tests/{file}.rs")) => tests
                .iter()
                .any(|(p, t)| p == &format!("tests/{file}.rs") && t.contains(&needle)),
            // A unit test: src/<module path>[/tests].rs.
            modules => {
                let path = modules.join("/");
                src.iter()
                    .any(|(p, t)| p.starts_with(&format!("src/{path}")) && t.contains(&needle))
            }
        };
        assert!(found, "the contract names `{name}`, which does not exist");
    }
}

fn mia_user(id: ObjectId, sub: &str, state: &str, created_ms: i64, groups: &[&str]) -> Document {
    common::mongo::mia_user_doc(id, ("test", "keycloak", sub), state, created_ms, groups)
}

async fn get(browser: &Browser, url: &str) -> (u16, std::collections::HashMap<String, String>) {
    let resp = browser
        .client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, echoed(&resp.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_with_unmodified_mia_files() {
    let mongo = Mongo::start();
    let users = mongo
        .client()
        .await
        .database("project")
        .collection::<Document>("users");
    // `dup` twice (the older record, created second, is an admin), `tina` only in the trash.
    let (older, newer, tina) = (ObjectId::new(), ObjectId::new(), ObjectId::new());
    users
        .insert_many([
            mia_user(newer, "dup", "PUBLIC", 1_600_000_000_000, &["users"]),
            mia_user(
                older,
                "dup",
                "PUBLIC",
                1_500_000_000_000,
                &["users", "admin"],
            ),
            mia_user(
                tina,
                "tina",
                "TRASH",
                1_500_000_000_000,
                &["users", "admin"],
            ),
        ])
        .await
        .unwrap();
    let stack = common::mia::stack(Some(format!(
        "[users]\nkind = \"mongodb\"\nuri = \"{}\"\ndatabase = \"project\"",
        mongo.uri()
    )));
    let site = stack.site();

    // auth.json: `/public/` is public for GET, as the project's rules say.
    let anonymous = Browser::new();
    assert_eq!(get(&anonymous, &format!("{site}/public/x")).await.0, 200);
    assert_eq!(get(&anonymous, &format!("{site}/anything")).await.0, 401);

    // The duplicated identity logs in, as the oldest record: its groups open `/admin/`.
    let dup = Browser::new();
    assert_eq!(login(&stack, &dup, "/", "dup").await.status(), 200);
    let (status, seen) = get(&dup, &format!("{site}/admin/panel")).await;
    assert_eq!(status, 200);
    assert_eq!(seen["miauserid"], older.to_hex());
    assert_eq!(seen["miausergroups"], "users,admin");
    assert_eq!(seen["mia-allowed"], "1");

    // The trashed user is refused (idgate's default), and no record is created for her.
    let refused = login(&stack, &Browser::new(), "/", "tina").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        users
            .count_documents(doc! { "providerUserId": "tina" })
            .await
            .unwrap(),
        1
    );

    // A new user is created the way the authentication service creates one: PUBLIC, in the
    // app's realm, with config.json's defaultGroups, and only the fields Mia's docs define.
    let nora = Browser::new();
    assert_eq!(login(&stack, &nora, "/", "nora").await.status(), 200);
    let created = users
        .find_one(doc! { "providerUserId": "nora" })
        .await
        .unwrap()
        .expect("nora's record");
    assert_eq!(created.get_str("__STATE__").unwrap(), "PUBLIC");
    assert_eq!(created.get_str("realm").unwrap(), "test");
    assert_eq!(created.get_str("providerId").unwrap(), "keycloak");
    let (status, seen) = get(&nora, &format!("{site}/anything")).await;
    assert_eq!(status, 200);
    assert_eq!(seen["miausergroups"], "users");
    assert_eq!(get(&nora, &format!("{site}/admin/panel")).await.0, 403);
}
