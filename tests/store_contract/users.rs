//! The contract of [`Users`]: the project's user records, created on a first login and found
//! on the next, one per identity whatever the races, hidden once out of `PUBLIC`, and chosen by
//! the oldest-record rule when a collection holds duplicates (`store::DUPLICATE_RULE`).

use std::collections::BTreeSet;

use idgate::now_secs;
use idgate::store::{Identity, StoreError, User, Users};
use mongodb::bson::oid::ObjectId;

use crate::backends::UsersFixture;
use crate::common::mongo::mia_user_doc;

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

/// An id no record has, in the form every store accepts.
fn unknown_id() -> String {
    ObjectId::new().to_hex()
}

async fn login(u: &dyn Users, sub: &str) -> User {
    u.upsert_login(&identity(sub, sub), &groups(&["users"]))
        .await
        .unwrap()
}

/// How many active users hold the identity `web`/`dev`/`sub`.
async fn holders(u: &dyn Users, sub: &str) -> usize {
    let users = u.list_users().await.unwrap();
    users.iter().filter(|u| u.provider_user_id == sub).count()
}

/// A first login creates the user with the default groups; the next finds it, refreshing only
/// what the IdP owns; the identity is the (realm, provider, subject) triple.
pub async fn first_login_creates_then_finds(f: &UsersFixture) {
    let u = f.users.as_ref();
    u.ping_users().await.unwrap();
    let before = now_secs();
    let first = u
        .upsert_login(&identity("alice", "Alice"), &groups(&["users"]))
        .await
        .unwrap();
    assert!(!first.user_id.is_empty());
    assert_eq!(
        (first.realm.as_str(), first.provider_id.as_str()),
        ("web", "dev")
    );
    assert_eq!(first.provider_user_id, "alice");
    assert_eq!(first.name.as_deref(), Some("Alice"));
    assert_eq!(first.email.as_deref(), Some("alice@example.test"));
    assert_eq!(first.username.as_deref(), Some("alice"));
    assert_eq!(first.groups, groups(&["users"]));
    assert!(first.permissions.is_empty());
    assert_eq!(first.metadata, serde_json::json!({}));
    assert!(
        (before - 60..=now_secs() + 60).contains(&first.created_at),
        "created at {}",
        first.created_at
    );
    assert_eq!(
        u.get_user(&first.user_id).await.unwrap(),
        Some(first.clone())
    );
    let found = u.find_by_identity("web", "dev", "alice").await.unwrap();
    assert_eq!(found, Some(first.clone()));
    let ids = u.find_ids_by_identity("web", "dev", "alice").await.unwrap();
    assert_eq!(ids, vec![first.user_id.clone()]);

    // The next login: the same user; the IdP's fields refreshed, the defaults not applied again.
    let mut changed = identity("alice", "Alice B.");
    changed.email = Some("alice.b@example.test".into());
    let again = u.upsert_login(&changed, &groups(&["other"])).await.unwrap();
    assert_eq!(again.user_id, first.user_id);
    assert_eq!(again.name.as_deref(), Some("Alice B."));
    assert_eq!(again.email.as_deref(), Some("alice.b@example.test"));
    assert_eq!(again.groups, groups(&["users"]));
    assert_eq!(again.created_at, first.created_at);
    assert_eq!(u.get_user(&first.user_id).await.unwrap(), Some(again));
    assert_eq!(holders(u, "alice").await, 1);

    // Another provider or realm with the same subject is another person.
    let mut elsewhere = identity("alice", "Alice");
    elsewhere.provider_id = "github".into();
    let other = u.upsert_login(&elsewhere, &[]).await.unwrap();
    assert_ne!(other.user_id, first.user_id);
    elsewhere.realm = "admin".into();
    let third = u.upsert_login(&elsewhere, &[]).await.unwrap();
    assert!(third.user_id != first.user_id && third.user_id != other.user_id);
    assert_eq!(u.list_users().await.unwrap().len(), 3);

    assert_eq!(u.get_user(&unknown_id()).await.unwrap(), None);
    assert_eq!(
        u.find_by_identity("web", "dev", "nobody").await.unwrap(),
        None
    );
    let none = u
        .find_ids_by_identity("web", "dev", "nobody")
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// Simultaneous first logins of one person end with one user.
pub async fn concurrent_first_logins(f: &UsersFixture) {
    let logins = (0..10).map(|_| {
        let u = f.users.clone();
        async move { login(u.as_ref(), "bob").await.user_id }
    });
    let ids: BTreeSet<String> = futures_util::future::join_all(logins)
        .await
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let u = f.users.as_ref();
    assert_eq!(holders(u, "bob").await, 1);
    let held = u.find_ids_by_identity("web", "dev", "bob").await.unwrap();
    assert_eq!(
        held,
        ids.into_iter().collect::<Vec<_>>(),
        "no hidden second record"
    );
}

/// The project's groups (and, where records are merged, permissions) are its own: changed
/// by the project, kept through the next login.
pub async fn groups_updates(f: &UsersFixture) {
    let u = f.users.as_ref();
    let alice = login(u, "alice").await;
    let dave = login(u, "dave").await;
    let staff = groups(&["admins", "auditors"]);
    assert!(u.set_groups(&alice.user_id, &staff).await.unwrap());
    assert_eq!(
        u.get_user(&alice.user_id).await.unwrap().unwrap().groups,
        staff
    );
    assert_eq!(
        login(u, "alice").await.groups,
        staff,
        "kept through a login"
    );
    assert!(!u.set_groups(&unknown_id(), &staff).await.unwrap());
    assert_eq!(
        u.get_user(&dave.user_id).await.unwrap().unwrap().groups,
        groups(&["users"])
    );

    let perms = groups(&["reports:read"]);
    assert!(u
        .merge_into(&dave.user_id, &groups(&["editors"]), &perms)
        .await
        .unwrap());
    let merged = u.get_user(&dave.user_id).await.unwrap().unwrap();
    assert_eq!(merged.groups, groups(&["editors"]));
    // Only a store that can hold duplicates merges permissions (see `Users::merge_into`).
    let expected = if f.has_states { perms.clone() } else { vec![] };
    assert_eq!(merged.permissions, expected);
    assert!(!u.merge_into(&unknown_id(), &staff, &perms).await.unwrap());
    let listed = u.list_users().await.unwrap();
    let listed = listed.iter().find(|x| x.user_id == alice.user_id).unwrap();
    assert_eq!(listed.groups, staff);
}

/// A record moved out of `PUBLIC` is no user: not found, not listed, not changed, and its
/// login refused (`inactive_users = "refuse"`) rather than answered with a second record; only
/// back-channel logout still finds it. A store without states retires nothing.
pub async fn inactive_records(f: &UsersFixture) {
    let u = f.users.as_ref();
    let carol = login(u, "carol").await;
    let dave = login(u, "dave").await;
    let retired = u.retire_user(&carol.user_id).await.unwrap();
    let records = u.scan_records().await.unwrap().expect("every store scans");
    let state = |id: &str| {
        let r = records.iter().find(|r| r.user_id == id).unwrap();
        r.state.clone()
    };
    assert_eq!(state(&dave.user_id), "PUBLIC");
    if !f.has_states {
        assert!(!retired, "a store without states has nothing to retire to");
        assert_eq!(state(&carol.user_id), "PUBLIC");
        assert_eq!(login(u, "carol").await.user_id, carol.user_id);
        return;
    }
    assert!(retired);
    assert_eq!(state(&carol.user_id), "TRASH");
    assert_eq!(u.get_user(&carol.user_id).await.unwrap(), None);
    assert_eq!(
        u.find_by_identity("web", "dev", "carol").await.unwrap(),
        None
    );
    let listed: Vec<String> = u
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.user_id)
        .collect();
    assert_eq!(listed, vec![dave.user_id.clone()]);
    assert!(!u.set_groups(&carol.user_id, &groups(&["x"])).await.unwrap());
    assert!(!u
        .merge_into(&carol.user_id, &groups(&["x"]), &[])
        .await
        .unwrap());

    let err = u
        .upsert_login(&identity("carol", "Carol"), &groups(&["users"]))
        .await
        .unwrap_err();
    let StoreError::Refused { store, .. } = &err else {
        panic!("a refusal (403), not an outage: {err:?}");
    };
    assert_eq!(*store, f.name);
    let msg = err.to_string();
    assert!(
        msg.contains("TRASH") && msg.contains(&carol.user_id),
        "{msg}"
    );
    let held = u.find_ids_by_identity("web", "dev", "carol").await.unwrap();
    assert_eq!(
        held,
        vec![carol.user_id],
        "found for back-channel logout, and alone"
    );
    assert_eq!(login(u, "dave").await.user_id, dave.user_id);
}

/// Reading many users at once (the group refresher's round): the active ones among the ids,
/// each as `get_user` reads it, whatever the ids' number (past one batch) and order; unknown
/// and retired ids are left out.
pub async fn many_at_once(f: &UsersFixture) {
    let u = f.users.as_ref();
    let erin = login(u, "erin").await;
    let fred = login(u, "fred").await;
    let gina = login(u, "gina").await;
    assert!(u
        .set_groups(&fred.user_id, &groups(&["beta"]))
        .await
        .unwrap());
    let retired = u.retire_user(&gina.user_id).await.unwrap();
    assert_eq!(retired, f.has_states);
    // Past the MongoDB store's batch of 500, the known ones in the second batch.
    let mut ids: Vec<String> = (0..510).map(|_| unknown_id()).collect();
    ids.extend([
        fred.user_id.clone(),
        gina.user_id.clone(),
        erin.user_id.clone(),
    ]);
    let mut found = u.get_users(&ids).await.unwrap();
    found.sort_by(|a, b| a.provider_user_id.cmp(&b.provider_user_id));
    let mut expected = Vec::new();
    for id in [&erin.user_id, &fred.user_id, &gina.user_id] {
        expected.extend(u.get_user(id).await.unwrap());
    }
    assert_eq!(found, expected);
    let names: Vec<&str> = found.iter().map(|x| x.provider_user_id.as_str()).collect();
    if f.has_states {
        assert_eq!(names, ["erin", "fred"]);
    } else {
        assert_eq!(names, ["erin", "fred", "gina"]);
    }
    assert_eq!(found[1].groups, groups(&["beta"]));
    assert!(u.get_users(&[]).await.unwrap().is_empty());
}

/// A collection holding several `PUBLIC` records of one identity (as Mia's authentication
/// service leaves them) logs the person into the oldest by `createdAt` (none counts as oldest),
/// then the smallest `_id`, every time; records out of `PUBLIC` are never chosen.
pub async fn duplicates_use_the_oldest(f: &mut UsersFixture) {
    let ids: Vec<ObjectId> = (0..7).map(|_| ObjectId::new()).collect(); // ascending
    let doc = |i: usize, sub: &str, state: &str, ms: i64| {
        mia_user_doc(ids[i], ("web", "dev", sub), state, ms, &["users"])
    };
    let mut undated = doc(6, "undated", "PUBLIC", 1_600_000_000_000);
    undated.remove("createdAt");
    let u = f
        .seeded(vec![
            // The older record has the larger `_id`: age decides, not insertion.
            doc(0, "dup", "PUBLIC", 1_600_000_000_000),
            doc(1, "dup", "PUBLIC", 1_500_000_000_000),
            doc(2, "dup", "TRASH", 1_400_000_000_000),
            // Same age: the smaller `_id`, whatever order they were written in.
            doc(4, "tie", "PUBLIC", 1_500_000_000_000),
            doc(3, "tie", "PUBLIC", 1_500_000_000_000),
            doc(5, "undated", "PUBLIC", 1_400_000_000_000),
            undated,
        ])
        .await;
    let u = u.as_ref();
    for (sub, chosen) in [("dup", 1), ("tie", 3), ("undated", 6)] {
        let want = ids[chosen].to_hex();
        assert_eq!(login(u, sub).await.user_id, want, "{sub}: first login");
        assert_eq!(login(u, sub).await.user_id, want, "{sub}: next login");
        let found = u.find_by_identity("web", "dev", sub).await.unwrap();
        assert_eq!(found.map(|x| x.user_id), Some(want), "{sub}: found");
    }
    let held: BTreeSet<String> = u
        .find_ids_by_identity("web", "dev", "dup")
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(held, ids[..3].iter().map(|id| id.to_hex()).collect());
    assert_eq!(holders(u, "dup").await, 2, "no record added");
}
