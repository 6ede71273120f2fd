//! Waiting for a connection or for the file's lock: cold reads beside the writer, writes and
//! reads that wait without holding a runtime worker, and a write that gets in between the
//! batches of another process's bulk fill.

use super::*;

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
