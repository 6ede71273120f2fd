//! The file itself: the SQLite it is written with, files made by earlier releases, and the
//! write-ahead log copied into the file by the checkpointer and by the last handle dropped.

use super::*;

/// The bundled SQLite is built without its process-wide locks on the read path
/// (`.cargo/config.toml`): no memory statistics (a mutex around every allocation) and no
/// shared page cache (a mutex around every page lookup), so the readers' concurrent cold reads
/// do not take turns at either. A build that lost the options fails here.
#[test]
fn sqlite_is_built_without_its_process_wide_locks() {
    let c = Connection::open_in_memory().unwrap();
    let options: Vec<String> = c
        .prepare("PRAGMA compile_options")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}

/// A file made before sessions had a context (the sessions table of the previous release, with
/// a session in it) opens: the column is added once, even by two stores opening it in turn,
/// the old session reads with an empty context, and a new one keeps its own.
#[tokio::test]
async fn a_file_made_before_the_session_context_opens_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let now = crate::now_secs();
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE sessions (
                sid TEXT PRIMARY KEY, user_id TEXT NOT NULL, app_id TEXT NOT NULL,
                provider_id TEXT NOT NULL, created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL, refresh_hash TEXT NOT NULL,
                idp_tokens BLOB NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);",
        )
        .unwrap();
        old.execute(
            "INSERT INTO sessions VALUES ('old', 'u', 'web', 'dev', ?1, ?2, 'h', x'01', 0)",
            [now, now + 60],
        )
        .unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let again = EmbeddedStore::open(&path).unwrap();
    let old = again.get_session("old").await.unwrap().unwrap();
    assert_eq!(old.context, crate::store::SessionContext::default());
    assert_eq!(old.idp_tokens, vec![1]);
    let rec = SessionRecord {
        sid: "new".into(),
        context: crate::store::SessionContext {
            client_addr: Some("192.0.2.7".into()),
            user_agent: Some("curl/8".into()),
            acr: Some("mfa".into()),
            amr: vec!["otp".into()],
            auth_time: Some(now),
        },
        ..old.clone()
    };
    store.create_session(&rec, 10).await.unwrap();
    assert_eq!(again.get_session("new").await.unwrap(), Some(rec));
    assert_eq!(store.list_sessions(Some("u")).await.unwrap().len(), 2);
}

/// A file made before login states kept a step-up demand opens, gains the column, and keeps
/// working: an upgrade loses nothing.
#[tokio::test]
async fn a_file_from_before_the_step_up_column_gains_it() {
    use crate::store::{LoginState, LoginStates, StepUpRequest};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE login_states (
                state TEXT PRIMARY KEY, app_id TEXT NOT NULL, provider_id TEXT NOT NULL,
                redirect TEXT NOT NULL, client_state TEXT, pkce_verifier TEXT NOT NULL,
                nonce TEXT NOT NULL, binding_hash TEXT NOT NULL, expires_at INTEGER NOT NULL);
             INSERT INTO login_states VALUES ('old', 'web', 'dev', '/', NULL, 'v', 'n', 'b', 9999999999);",
        )
        .unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let old = store
        .take_state("old")
        .await
        .unwrap()
        .expect("the old state");
    assert_eq!(old.step_up, StepUpRequest::default());
    let asked = StepUpRequest {
        acr_values: vec!["loa2".into()],
        max_age: Some(60),
        prompt_login: true,
        replaces: None,
    };
    let new = LoginState {
        state: "new".into(),
        step_up: asked.clone(),
        ..old
    };
    store.put_state(&new).await.unwrap();
    assert_eq!(
        store.take_state("new").await.unwrap().unwrap().step_up,
        asked
    );
    // Opened again: the column is there, nothing is added twice.
    drop(store);
    EmbeddedStore::open(&path).unwrap();
}

/// A request never checkpoints (the writer's automatic checkpoints are off), and the
/// checkpointer still copies what was written into the file, while the store is open.
#[tokio::test]
async fn the_checkpointer_copies_the_log_into_the_file_and_no_writer_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        pragma(&store, "wal_autocheckpoint").await,
        0,
        "the writer must leave checkpoints to the checkpointer"
    );
    assert_eq!(
        pragma(&store, "journal_size_limit").await,
        checkpoint::LOG_LIMIT_BYTES,
        "a log that grew in a burst must be cut back when it starts over"
    );
    let before = std::fs::metadata(&path).unwrap().len();
    store
        .create_sessions(&many_sessions("cp", 500))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&path).unwrap().len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the sessions written never reached the file ({before} bytes) from its log"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(store.get_session("cp499").await.unwrap().is_some());
}

/// A process that writes and exits (`idgate sessions mint`) leaves its writes in the file: the
/// store's last handle, dropped, checkpoints before it goes, even while another process keeps
/// the file open (so SQLite's own checkpoint at the last close does not happen).
#[tokio::test]
async fn the_last_handle_dropped_leaves_its_writes_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let daemon = EmbeddedStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let cli = EmbeddedStore::open(&path).unwrap();
    cli.create_sessions(&many_sessions("cli", 500))
        .await
        .unwrap();
    drop(cli);
    assert!(
        std::fs::metadata(&path).unwrap().len() > before,
        "the writes are still only in the log after the writer's store was dropped"
    );
    assert!(daemon.get_session("cli499").await.unwrap().is_some());
}
