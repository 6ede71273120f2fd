//! What the store keeps and how it reads it back: bulk inserts in one transaction, single-use
//! keys forgotten when they expire, live sessions counted at a given time, the session's head
//! read from its covering index, and long-expired sessions purged with their activity.

use super::*;

#[tokio::test]
async fn sessions_stored_in_bulk_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let records = many_sessions("bulk", 3);
    store.create_sessions(&records).await.unwrap();
    // One transaction: a batch with a duplicate stores none of it.
    let mut again = records[..1].to_vec();
    again.insert(
        0,
        SessionRecord {
            sid: "bulk-new".into(),
            ..records[0].clone()
        },
    );
    assert!(store.create_sessions(&again).await.is_err());
    assert_eq!(store.get_session("bulk-new").await.unwrap(), None);
}

/// Once, across handles and under races, is the contract's (`tests/store_contract`); this is
/// how this store forgets: an expired key counts as absent, and later inserts purge expired
/// rows through the expiry index.
#[tokio::test]
async fn an_expired_key_is_forgotten_and_purged_through_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let a = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let later = crate::now_secs() + 300;
    let past = crate::now_secs() - 1;
    assert!(a.remember_once("old", past).await.unwrap());
    assert!(a.remember_once("old", later).await.unwrap());
    assert!(!a.remember_once("old", later).await.unwrap());
    for i in 0..10 {
        assert!(a.remember_once(&format!("gone-{i}"), past).await.unwrap());
    }
    assert!(a.remember_once("jti-3", later).await.unwrap());
    let left: i64 = a
        .run(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM once_keys WHERE expires_at <= ?1",
                [past],
                |r| r.get(0),
            )
            .map_err(unavailable)
        })
        .await
        .unwrap();
    assert_eq!(left, 0, "expired keys are purged");
    // The purge finds expired rows through the expiry index, not by scanning the table.
    let plan = query_plan(
        &a.conn.lock().unwrap(),
        "SELECT key FROM once_keys WHERE expires_at <= 1 LIMIT 64",
    );
    assert!(
        plan.iter().any(|p| p.contains("once_keys_by_expiry")),
        "{plan:?}"
    );
}

/// A store whose records outlive their end counts the live ones at the time it is given.
#[tokio::test]
async fn live_sessions_are_counted_at_the_given_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let now = crate::now_secs();
    for i in 0..3 {
        let rec = SessionRecord {
            sid: format!("s{i}"),
            user_id: "u".into(),
            app_id: "web".into(),
            provider_id: "dev".into(),
            created_at: now,
            expires_at: now + 60,
            refresh_hash: "h".into(),
            idp_tokens: vec![],
            revoked: false,
            context: Default::default(),
        };
        store.create_session(&rec, 10).await.unwrap();
    }
    store.revoke_session("s1").await.unwrap();
    assert_eq!(store.count_live_sessions(now).await.unwrap(), 2);
    assert_eq!(store.count_live_sessions(now + 60).await.unwrap(), 0);
}

/// The cold read of `/auth` is answered from the covering index alone, and a file made before
/// that index gets it at open: the read works on it, revoked and all.
#[tokio::test]
async fn the_session_head_is_read_from_its_covering_index_on_new_and_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let plan = |c: &Connection| query_plan(c, sessions::SESSION_HEAD);
    {
        let store = EmbeddedStore::open(&path).unwrap();
        let rec = many_sessions("s", 2).remove(1);
        store.create_session(&rec, 10).await.unwrap();
        store.revoke_session(&rec.sid).await.unwrap();
        let plan = plan(&store.conn.lock().unwrap());
        assert!(
            plan.iter()
                .any(|p| p.contains("COVERING INDEX sessions_head")),
            "{plan:?}"
        );
    }
    // As a file from before the index: without it, then opened again.
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP INDEX sessions_head")
        .unwrap();
    let store = EmbeddedStore::open(&path).unwrap();
    let plan = plan(&store.conn.lock().unwrap());
    assert!(
        plan.iter()
            .any(|p| p.contains("COVERING INDEX sessions_head")),
        "{plan:?}"
    );
    let head = store.session_head("s1").await.unwrap().unwrap();
    assert!(head.revoked, "the index follows the row's updates");
    assert_eq!(head.user_id, many_sessions("s", 2)[1].user_id);
    assert_eq!(store.session_head("s0").await.unwrap(), None);
}

/// The next login drops sessions a day past their end with their last activity: now that every
/// used session reports activity, the activity table must not outgrow the sessions.
#[tokio::test]
async fn long_expired_sessions_leave_with_their_activity() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let now = crate::now_secs();
    let old = SessionRecord {
        sid: "old".into(),
        user_id: "u".into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        created_at: now - 3 * 86_400,
        expires_at: now - 2 * 86_400,
        refresh_hash: "h".into(),
        idp_tokens: vec![],
        revoked: false,
        context: Default::default(),
    };
    // Stored in bulk, which drops nothing (a login would drop it at once).
    store
        .create_sessions(std::slice::from_ref(&old))
        .await
        .unwrap();
    store.touch_session("old", now - 2 * 86_400).await.unwrap();
    assert!(store.last_activity("old").await.unwrap().is_some());
    let fresh = SessionRecord {
        sid: "fresh".into(),
        created_at: now,
        expires_at: now + 60,
        ..old.clone()
    };
    store.create_session(&fresh, 10).await.unwrap();
    assert_eq!(store.get_session("old").await.unwrap(), None);
    assert_eq!(store.last_activity("old").await.unwrap(), None);
}
