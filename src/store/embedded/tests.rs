//! Unit tests of the parent module, kept apart so the module itself stays readable.
use super::*;

#[tokio::test]
async fn the_oldest_sessions_beyond_the_cap_are_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let (cursor, _) = store.revocations_since(-1).await.unwrap();
    for i in 0..4 {
        let rec = SessionRecord {
            sid: format!("s{i}"),
            user_id: "u".into(),
            app_id: "web".into(),
            provider_id: "dev".into(),
            created_at: 100 + i,
            expires_at: crate::now_secs() + 60,
            refresh_hash: "h".into(),
            idp_tokens: vec![],
            revoked: false,
        };
        let evicted = store.create_session(&rec, 3).await.unwrap();
        assert_eq!(
            evicted,
            if i == 3 {
                vec!["s0".to_string()]
            } else {
                vec![]
            }
        );
    }
    assert!(!store
        .get_session("s0")
        .await
        .unwrap()
        .unwrap()
        .revoked
        .eq(&false));
    assert!(store
        .get_session("s3")
        .await
        .unwrap()
        .unwrap()
        .is_alive(crate::now_secs()));
    assert_eq!(
        store.revocations_since(cursor).await.unwrap().1,
        vec!["s0".to_string()]
    );
    // Counted as the listing would: s1 to s3 live now, none once they have expired.
    let now = crate::now_secs();
    assert_eq!(store.count_live_sessions(now).await.unwrap(), 3);
    store.revoke_session("s1").await.unwrap();
    assert_eq!(store.count_live_sessions(now).await.unwrap(), 2);
    assert_eq!(store.count_live_sessions(now + 60).await.unwrap(), 0);
}

#[tokio::test]
async fn sessions_stored_in_bulk_are_whole_and_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let now = crate::now_secs();
    let records: Vec<SessionRecord> = (0..3)
        .map(|i| SessionRecord {
            sid: format!("bulk{i}"),
            user_id: format!("u{i}"),
            app_id: "web".into(),
            provider_id: "dev".into(),
            created_at: now,
            expires_at: now + 60,
            refresh_hash: format!("h{i}"),
            idp_tokens: vec![i as u8],
            revoked: false,
        })
        .collect();
    store.create_sessions(&records).await.unwrap();
    for rec in &records {
        assert_eq!(
            store.get_session(&rec.sid).await.unwrap().as_ref(),
            Some(rec)
        );
    }
    assert_eq!(store.count_live_sessions(now).await.unwrap(), 3);
    // All or nothing: a batch with a duplicate stores none of it.
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

fn identity(sub: &str, name: &str) -> Identity {
    Identity {
        realm: "web".into(),
        provider_id: "dev".into(),
        provider_user_id: sub.into(),
        name: Some(name.into()),
        email: Some(format!("{sub}@example.test")),
        username: None,
    }
}

#[tokio::test]
async fn states_are_single_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let s = LoginState {
        state: "st".into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        redirect: "/".into(),
        client_state: None,
        pkce_verifier: "v".into(),
        nonce: "n".into(),
        binding_hash: "b".into(),
        expires_at: crate::now_secs() + 60,
    };
    store.put_state(&s).await.unwrap();
    assert_eq!(store.take_state("st").await.unwrap(), Some(s));
    assert_eq!(store.take_state("st").await.unwrap(), None);
}

#[tokio::test]
async fn users_keep_project_fields_and_refresh_idp_fields() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let first = store
        .upsert_login(&identity("alice", "Alice"), &["users".into()])
        .await
        .unwrap();
    assert_eq!(first.groups, vec!["users".to_string()]);
    assert!(store
        .set_groups(&first.user_id, &["admins".into()])
        .await
        .unwrap());
    let again = store
        .upsert_login(&identity("alice", "Alice B."), &["users".into()])
        .await
        .unwrap();
    assert_eq!(again.user_id, first.user_id);
    assert_eq!(again.groups, vec!["admins".to_string()]);
    assert_eq!(again.name.as_deref(), Some("Alice B."));
    assert_eq!(store.list_users().await.unwrap().len(), 1);
    assert!(!store.set_groups("nobody", &[]).await.unwrap());
}

#[tokio::test]
async fn revocations_are_logged_for_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = EmbeddedStore::open(&path).unwrap();
    let b = EmbeddedStore::open(&path).unwrap();
    let (cursor, _) = b.revocations_since(-1).await.unwrap();
    let rec = SessionRecord {
        sid: "s1".into(),
        user_id: "u".into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        created_at: 0,
        expires_at: crate::now_secs() + 60,
        refresh_hash: "h".into(),
        idp_tokens: vec![1],
        revoked: false,
    };
    assert!(a.create_session(&rec, 10).await.unwrap().is_empty());
    assert!(a.revoke_session("s1").await.unwrap());
    assert!(!a.revoke_session("s1").await.unwrap());
    let (next, sids) = b.revocations_since(cursor).await.unwrap();
    assert_eq!(sids, vec!["s1".to_string()]);
    assert!(b.revocations_since(next).await.unwrap().1.is_empty());
    assert!(!b
        .get_session("s1")
        .await
        .unwrap()
        .unwrap()
        .is_alive(crate::now_secs()));
}

#[tokio::test]
async fn a_key_is_remembered_once_across_handles_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let a = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let b = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let later = crate::now_secs() + 300;
    assert!(a.remember_once("jti-1", later).await.unwrap());
    assert!(!a.remember_once("jti-1", later).await.unwrap());
    // Another process on the same file agrees.
    assert!(!b.remember_once("jti-1", later).await.unwrap());
    assert!(b.remember_once("jti-2", later).await.unwrap());
    // An expired record no longer counts, and expired rows are purged by later inserts.
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
    let plan: Vec<String> = a
        .run(|c| {
            let mut stmt = c
                .prepare(
                    "EXPLAIN QUERY PLAN SELECT key FROM once_keys WHERE expires_at <= 1 LIMIT 64",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .map_err(unavailable)?;
            rows.collect::<Result<_, _>>().map_err(read_err)
        })
        .await
        .unwrap();
    assert!(
        plan.iter().any(|p| p.contains("once_keys_by_expiry")),
        "{plan:?}"
    );
    // Simultaneous first calls: exactly one wins.
    let calls = (0..8).map(|_| {
        let a = a.clone();
        tokio::spawn(async move { a.remember_once("race", later).await.unwrap() })
    });
    let mut wins = 0;
    for c in calls {
        wins += usize::from(c.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn ids_by_identity_find_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let id = Identity {
        realm: "web".into(),
        provider_id: "dev".into(),
        provider_user_id: "alice".into(),
        name: None,
        email: None,
        username: None,
    };
    let user = store.upsert_login(&id, &[]).await.unwrap();
    assert_eq!(
        store
            .find_ids_by_identity("web", "dev", "alice")
            .await
            .unwrap(),
        vec![user.user_id]
    );
    assert!(store
        .find_ids_by_identity("web", "other", "alice")
        .await
        .unwrap()
        .is_empty());
}

/// The reads `/auth` makes on a cache miss do not queue behind the writer: a session is read
/// while the writing connection is held (a login's write in progress), from a reader that sees
/// the writer's last commit and cannot write itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_reads_do_not_wait_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    assert_eq!(store.readers.len(), READERS);
    let rec = SessionRecord {
        sid: "s1".into(),
        user_id: "u".into(),
        app_id: "web".into(),
        provider_id: "dev".into(),
        created_at: 100,
        expires_at: crate::now_secs() + 60,
        refresh_hash: "h".into(),
        idp_tokens: vec![],
        revoked: false,
    };
    store.create_session(&rec, 10).await.unwrap();
    store.touch_session("s1", 123).await.unwrap();

    // Another thread holds the writer until told to let go.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let writer = store.conn.clone();
    let holder = std::thread::spawn(move || {
        let _held = writer.lock().unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    locked_rx.recv().unwrap();
    // A deadlock detector, not a speed limit: through the writer this would never return.
    let wait = std::time::Duration::from_secs(30);
    let session = tokio::time::timeout(wait, store.get_session("s1")).await;
    let activity = tokio::time::timeout(wait, store.last_activity("s1")).await;
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(
        session
            .expect("a cold read waited for the writer")
            .unwrap()
            .map(|s| s.user_id),
        Some("u".to_owned())
    );
    assert_eq!(
        activity
            .expect("a cold read waited for the writer")
            .unwrap(),
        Some(123)
    );
    for reader in store.readers.iter() {
        let reader = reader.lock().unwrap();
        assert!(reader.execute("DELETE FROM sessions", []).is_err());
    }
    assert!(store.get_session("s1").await.unwrap().is_some());
}
