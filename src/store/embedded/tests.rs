//! Unit tests of what only the embedded store does: bulk inserts in one transaction, forgetting
//! single-use keys, counting live sessions at a given time, cold reads beside the writer,
//! writes in place that never hold a worker waiting, and checkpoints on a thread of their own.
//! What every store does is the contract's (`tests/store_contract`).

use super::*;
use crate::store::{SessionRecord, Sessions};

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
        context: Default::default(),
    };
    store.create_session(&rec, 10).await.unwrap();
    store.touch_session("s1", 123).await.unwrap();

    let held = Held::writer(&store);
    // A deadlock detector, not a speed limit: through the writer this would never return.
    let wait = std::time::Duration::from_secs(30);
    let session = tokio::time::timeout(wait, store.get_session("s1")).await;
    let activity = tokio::time::timeout(wait, store.last_activity("s1")).await;
    held.release();
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

/// A login's writes run in place only while the writer is free: two of them waiting for a
/// writer held elsewhere leave both of the runtime's workers free for other tasks, and both
/// are stored once the writer is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_waiting_for_the_writer_hold_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    let held = Held::writer(&store);
    let writes: Vec<_> = many_sessions("waiting", 2)
        .into_iter()
        .map(|record| {
            let store = store.clone();
            tokio::spawn(async move { store.create_session(&record, 10).await })
        })
        .collect();
    let ran = another_task_runs(held);
    for write in writes {
        write.await.unwrap().unwrap();
    }
    assert!(ran, "the writes waiting for the writer held the workers");
    for sid in ["waiting0", "waiting1"] {
        assert!(store.get_session(sid).await.unwrap().is_some(), "{sid}");
    }
}

/// A write that finds the file locked by another connection (another process: the CLI's bulk
/// fill, a second daemon on the same file, a backup) waits for the lock where waiting holds no
/// worker. With one worker (a one-core machine's runtime), another task runs while the write
/// waits, and the write is stored once the lock is let go. Run in place, SQLite would wait for
/// the lock on the worker itself, and every task queued behind it with it (a cached `/auth`,
/// which reads no store) until the busy timeout failed the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_write_waiting_for_another_process_holds_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = EmbeddedStore::open(&path).unwrap();
    let held = Held::file(&path);
    let record = many_sessions("locked", 1).remove(0);
    let write = {
        let store = store.clone();
        tokio::spawn(async move { store.create_session(&record, 10).await })
    };
    // The write gets 300 ms to reach the lock; the test's own thread is not a worker.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (ran_tx, ran_rx) = std::sync::mpsc::channel();
    tokio::spawn(async move { ran_tx.send(()).unwrap() });
    let ran = ran_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .is_ok();
    let still_waiting = !write.is_finished();
    held.release();
    assert!(
        ran && still_waiting,
        "another task ran: {ran}; while the write waited for the lock: {still_waiting}"
    );
    write
        .await
        .unwrap()
        .expect("the write is stored once the lock is let go");
    assert!(store.get_session("locked0").await.unwrap().is_some());
}

/// Cold reads that find every reader held elsewhere (long reads of other requests) leave both
/// of the runtime's workers free for other tasks, and both answer once the readers are let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_waiting_for_a_reader_hold_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    for record in many_sessions("read", 2) {
        store.create_session(&record, 10).await.unwrap();
    }
    let held = Held::readers(&store);
    let reads: Vec<_> = ["read0", "read1"]
        .into_iter()
        .map(|sid| {
            let store = store.clone();
            tokio::spawn(async move { store.session_head(sid).await })
        })
        .collect();
    let ran = another_task_runs(held);
    for (read, user) in reads.into_iter().zip(["u0", "u1"]) {
        let head = read.await.unwrap().unwrap().expect("the session is stored");
        assert_eq!(head.user_id, user);
    }
    assert!(ran, "the reads waiting for a reader held the workers");
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

/// A bulk fill by another process (`idgate sessions mint --count`; here a second store on the
/// same file, its batches in flight eight at a time as the CLI sends them) lets a write that
/// waits for the file's lock in between two of its batches: a login of the daemon during a
/// long fill waits for a batch or two, not for the whole fill (nor fails, busy, when the fill
/// outlasts the busy timeout). Before, the next batch took the lock a moment after the last let
/// it go, and SQLite's own busy wait, which sleeps up to 100 ms between tries, seldom tried in
/// that moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_gets_in_between_the_batches_of_a_bulk_fill() {
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const BATCHES: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let daemon = EmbeddedStore::open(&path).unwrap();
    let cli = EmbeddedStore::open(&path).unwrap();
    let batches: Vec<_> = (0..BATCHES)
        .map(|b| many_sessions(&format!("bulk{b}-"), 1_000))
        .collect();
    let stored = Arc::new(AtomicUsize::new(0));
    let fill = {
        let stored = stored.clone();
        tokio::spawn(async move {
            let mut in_flight = futures_util::stream::iter(batches)
                .map(|batch| {
                    let cli = cli.clone();
                    async move { cli.create_sessions(&batch).await }
                })
                .buffer_unordered(8);
            while let Some(done) = in_flight.next().await {
                done.unwrap();
                stored.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while stored.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let mut login = many_sessions("login", 1).remove(0);
    login.user_id = "someone".into();
    let before = stored.load(Ordering::SeqCst);
    daemon
        .create_session(&login, 10)
        .await
        .expect("the login is stored during the fill");
    let waited = stored.load(Ordering::SeqCst) - before;
    fill.await.unwrap();
    // Here it waits for none (the pause or the millisecond retries let it in at the end of the
    // batch under way); with neither, for about seven of these short batches (SQLite's own
    // waits between tries grow to 100 ms), and for the whole fill of a real one.
    assert!(
        waited <= 3,
        "the login waited for {waited} of the fill's {BATCHES} batches"
    );
    assert!(daemon.get_session("login0").await.unwrap().is_some());
    assert!(daemon
        .get_session(&format!("bulk{}-999", BATCHES - 1))
        .await
        .unwrap()
        .is_some());
}

/// Whether the runtime still runs a new task while `held` holds what the tasks spawned before
/// wait for; releases `held` after. The tasks get 300 ms to reach the held connections (were
/// they waiting on them on their workers, nothing else could run). The test's own thread is not
/// a worker: it waits here without taking one.
fn another_task_runs(held: Held) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (ran_tx, ran_rx) = std::sync::mpsc::channel();
    tokio::spawn(async move { ran_tx.send(()).unwrap() });
    let ran = ran_rx.recv_timeout(std::time::Duration::from_secs(30));
    held.release();
    ran.is_ok()
}

/// Connections of the store held by another thread (a write or reads in progress elsewhere)
/// until released.
struct Held {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl Held {
    /// The writing connection.
    fn writer(store: &EmbeddedStore) -> Self {
        let writer = store.conn.clone();
        Self::hold(move |held| {
            let _held = writer.lock().unwrap();
            held();
        })
    }

    /// The file's write lock, taken by a connection of its own, as another process takes it.
    fn file(path: &Path) -> Self {
        let path = path.to_owned();
        Self::hold(move |held| {
            let other = Connection::open(&path).unwrap();
            other.execute_batch("BEGIN IMMEDIATE").unwrap();
            held();
            other.execute_batch("ROLLBACK").unwrap();
        })
    }

    /// Every read-only connection.
    fn readers(store: &EmbeddedStore) -> Self {
        let readers = store.readers.clone();
        Self::hold(move |held| {
            let _held: Vec<_> = readers.iter().map(|r| r.lock().unwrap()).collect();
            held();
        })
    }

    /// Runs `lock` on a thread of its own; it takes its locks, then calls `held`, which returns
    /// once [`Held::release`] is called.
    fn hold(lock: impl FnOnce(&dyn Fn()) + Send + 'static) -> Self {
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            lock(&|| {
                locked_tx.send(()).unwrap();
                let _ = release_rx.recv();
            })
        });
        locked_rx.recv().unwrap();
        Self { release, holder }
    }

    fn release(self) {
        self.release.send(()).unwrap();
        self.holder.join().unwrap();
    }
}

/// A numeric pragma's value on the connection the store's writes go through.
async fn pragma(store: &EmbeddedStore, name: &'static str) -> i64 {
    store
        .run(move |c| {
            c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(unavailable)
        })
        .await
        .unwrap()
}

/// How SQLite would run `sql` on `c` (the detail column of `EXPLAIN QUERY PLAN`); parameters
/// left unbound.
fn query_plan(c: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        plan.push(row.get::<_, String>(3).unwrap());
    }
    plan
}

/// `n` live sessions of distinct users, `{prefix}0` to `{prefix}{n-1}`, each with a few hundred
/// bytes of sealed tokens: enough pages for a checkpoint to show in the file's size.
fn many_sessions(prefix: &str, n: usize) -> Vec<SessionRecord> {
    let now = crate::now_secs();
    (0..n)
        .map(|i| SessionRecord {
            sid: format!("{prefix}{i}"),
            user_id: format!("u{i}"),
            app_id: "web".into(),
            provider_id: "dev".into(),
            created_at: now,
            expires_at: now + 600,
            refresh_hash: format!("h{i}"),
            idp_tokens: vec![7; 200],
            revoked: false,
            context: Default::default(),
        })
        .collect()
}
