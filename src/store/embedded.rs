//! The embedded store: one SQLite file holding login states, sessions, users and a revocation
//! log. It needs no server, survives restarts, and several processes may open it at once (WAL
//! mode plus a busy timeout), so `idgate users …` and `idgate sessions …` work while the daemon
//! runs and a revocation made by one process reaches the others through the revocation log.
//!
//! Writers take the lock up front (`BEGIN IMMEDIATE`) so a busy file makes them wait (busy
//! timeout) instead of failing on a stale snapshot.
//!
//! rusqlite is synchronous: every call runs where it may block ([`blocking`]): in place on the
//! daemon's multi-thread runtime (`block_in_place`), on tokio's blocking pool otherwise. A
//! login's short writes run right on their worker when the writer is free
//! ([`EmbeddedStore::run_short`]): at most one worker is ever in SQLite that way, and never
//! waiting for another process's lock (such a write gives up at once and waits elsewhere). The
//! writing connection sits in a `std::sync::Mutex` (never held across an `.await`); SQLite
//! serialises writers anyway.
//! The reads `/auth` makes when its token cache misses (a session, its last activity) go to a
//! few read-only connections of their own, so that concurrent first requests of many sessions
//! are not queued behind one lock or behind a login's write (WAL lets readers and one writer
//! work at once). The SQLite these connections run is built without the two process-wide
//! mutexes its default build takes on every read (memory statistics, a page cache shared by
//! all connections): see `.cargo/config.toml`.
//!
//! Checkpoints (copying the write-ahead log back into the file, with the only `fsync`s WAL mode
//! makes at `synchronous = NORMAL`) run on a thread of their own, never in a request, and when
//! the store is quiet where they can (`checkpoint.rs`): they were the p99 of `/oauth/token`.
//!
//! The file's tables are in `schema.rs`; each trait has a file: `states.rs`, `sessions.rs`
//! (with the revocation log in `revocations.rs`) and `users.rs`.

mod checkpoint;
mod revocations;
mod schema;
mod sessions;
mod states;
mod users;

use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, Row};

use self::schema::{ONCE_SCHEMA, SCHEMA};
use super::StoreError;

const STORE: &str = "embedded store";

/// Prepared statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 64;

/// Read-only connections for the cold reads of `/auth` (see the module doc).
const READERS: usize = 4;

/// How long a statement waits for a lock another connection holds (another process's write,
/// a checkpoint) before it fails as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a statement waiting for such a lock tries it again ([`wait_for_the_lock`]).
const LOCK_POLL: Duration = Duration::from_millis(1);

/// How long a bulk insert leaves the file's lock free after each of its transactions
/// (its `create_sessions`, the CLI's bulk fill), for another process's writes waiting for it.
const BULK_PAUSE: Duration = Duration::from_millis(10);

thread_local! {
    /// Set by [`give_up_when_busy`]: the write running in place on this thread found the file
    /// locked by another connection.
    static FOUND_BUSY: Cell<bool> = const { Cell::new(false) };
}

/// The writer's busy handler while a write runs in place ([`EmbeddedStore::run_short`]):
/// SQLite calls it when another connection holds the lock the write needs. It notes that and
/// gives up at once: the statement fails as busy, undone (or its transaction never begun).
fn give_up_when_busy(_tries: i32) -> bool {
    FOUND_BUSY.with(|found| found.set(true));
    false
}

/// The busy handler of every connection: SQLite calls it when another connection holds the
/// lock a statement needs; it tries again every [`LOCK_POLL`], for up to [`BUSY_TIMEOUT`].
/// SQLite's own (`busy_timeout`) sleeps longer and longer, 100 ms at a time after the first
/// few: against another process that lets the lock go only briefly between long transactions
/// (the CLI's bulk fill, [`BULK_PAUSE`]), it seldom tried in the gap, and a login waiting
/// there could fail after the five seconds.
fn wait_for_the_lock(tries: i32) -> bool {
    if LOCK_POLL.saturating_mul(tries.unsigned_abs()) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(LOCK_POLL);
    true
}

/// Handle to the SQLite file; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections for the cold reads of `/auth`; empty for an in-memory database
    /// (each connection to one would be a database of its own), where the writer reads too.
    readers: Arc<[Mutex<Connection>]>,
    /// The reader to try first, moved on at each read.
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
    /// Dropped with the last clone, which stops the checkpointer after a last checkpoint
    /// (`None` in memory).
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
    /// The writes made through `conn`, which the checkpointer follows.
    writes: Arc<checkpoint::Writes>,
}

/// `execute` and `query_row` on statements prepared once per connection and kept
/// (`prepare_cached`, see [`STATEMENT_CACHE`]): every query of this store goes through these.
trait CachedStatements {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, row: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl CachedStatements for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, row: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, row)
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(STORE, e)
}

/// A rusqlite error as a store error: a value of the wrong type is a record the store cannot
/// read; anything else, a store that does not answer.
fn read_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            StoreError::corrupt(STORE, e)
        }
        other => unavailable(other),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl EmbeddedStore {
    /// Opens (creating if needed) the file and its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| unavailable(format!("{}: {e}", dir.display())))?;
        }
        let open = || {
            let conn = Connection::open(path)
                .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
            conn.busy_handler(Some(wait_for_the_lock))
                .map_err(unavailable)?;
            // Every statement is prepared once per connection and kept (`prepare_cached`): a
            // login runs a handful of them, and parsing each again cost more than running it.
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok::<_, StoreError>(conn)
        };
        let mut conn = open()?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        // Checkpoints are the checkpointer's (see the module doc).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(unavailable)?;
        // The log cut back to this size when it starts over (`checkpoint::LOG_LIMIT_BYTES`).
        conn.pragma_update(None, "journal_size_limit", checkpoint::LOG_LIMIT_BYTES)
            .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        conn.execute_batch(ONCE_SCHEMA).map_err(unavailable)?;
        schema::upgrade(&mut conn).map_err(unavailable)?;
        let in_memory = path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:");
        let readers = if in_memory {
            Vec::new()
        } else {
            (0..READERS)
                .map(|_| {
                    let reader = open()?;
                    // A reader never writes, whatever a bug may ask of it.
                    reader
                        .pragma_update(None, "query_only", true)
                        .map_err(unavailable)?;
                    Ok(Mutex::new(reader))
                })
                .collect::<Result<Vec<_>, StoreError>>()?
        };
        let conn = Arc::new(Mutex::new(conn));
        let writes = Arc::new(checkpoint::Writes::new());
        let checkpointer = if in_memory {
            None
        } else {
            Some(Arc::new(checkpoint::spawn(
                open()?,
                conn.clone(),
                writes.clone(),
            )?))
        };
        Ok(Self {
            conn,
            readers: readers.into(),
            next_reader: Arc::default(),
            _checkpointer: checkpointer,
            writes,
        })
    }

    /// Like [`Self::run`], for a read: on a reader that is free (or, all busy, the next one in
    /// turn), not on the writer.
    ///
    /// Through [`blocking`] even when a reader is free: a read of a page the OS does not hold
    /// (a large file, a cold start) waits on the disk, and in place it would hold one of the
    /// runtime's workers, and the cached requests queued behind it, for as long. Run in place,
    /// the cold path's CPU per token went from 49 to 46 µs (`examples/cold.rs`, RS256, embedded
    /// store, nine rounds each in alternating processes): within this machine's noise, as in
    /// earlier tries (docs/benchmarks.md and docs/benchmarks-history.md), so not worth that
    /// risk.
    async fn run_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.run(f).await;
        }
        let (readers, next) = (self.readers.clone(), self.next_reader.clone());
        blocking(move || {
            use std::sync::atomic::Ordering;
            let first = next.fetch_add(1, Ordering::Relaxed) % readers.len();
            let free = (0..readers.len())
                .map(|i| &readers[(first + i) % readers.len()])
                .find_map(|r| r.try_lock().ok());
            let mut guard = match free {
                Some(guard) => guard,
                None => readers[first]
                    .lock()
                    .map_err(|_| unavailable("connection lock poisoned"))?,
            };
            f(&mut guard)
        })
        .await
    }

    /// The write transactions made so far (tests of batching).
    #[cfg(test)]
    pub(crate) fn write_count(&self) -> u64 {
        self.writes.count()
    }

    /// Runs `f`, a short write by key (a login's: its state, its user, its session), on the
    /// writing connection right here when the writer is free and no other process holds the
    /// file's lock, else as [`Self::run`].
    ///
    /// In place, no other thread is woken for the write. Through `block_in_place`, each of a
    /// login's three writes handed its worker to another thread, and on a busy machine each
    /// hand-off was a chance to wait for a core: the slowest logins' own time came down by half
    /// with these writes in place (`scripts/bench-peer`, 600 logins, alternating runs). Only the
    /// writer's holder runs in place, so SQLite holds at most one worker at a time; a write
    /// that finds the writer taken waits for it where it may block. In place, a write never
    /// waits for another process's lock (the CLI's bulk fill, a second daemon on the file):
    /// waiting there would hold the worker, and every task queued on it (a cached `/auth`,
    /// which reads no store), up to the busy timeout. It gives up at once instead
    /// ([`give_up_when_busy`]; SQLite undoes the statement) and runs again where it may wait,
    /// hence `Fn`. Long writes (bulk inserts, purges, scans) always go through [`Self::run`].
    async fn run_short<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Ok(mut guard) = self.conn.try_lock() {
            FOUND_BUSY.with(|found| found.set(false));
            guard
                .busy_handler(Some(give_up_when_busy))
                .map_err(unavailable)?;
            let out = f(&mut guard);
            let busy = FOUND_BUSY.with(Cell::take);
            // Every other use of the writer waits for the lock again (failing that, it gives
            // up at once when busy: errors, never a held worker).
            if let Err(e) = guard.busy_handler(Some(wait_for_the_lock)) {
                tracing::warn!(error = %e, "the embedded store's writer could not be set to wait for locks again");
            }
            if !(busy && out.is_err()) {
                self.writes.wrote();
                return out;
            }
        }
        self.run(f).await
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (conn, writes) = (self.conn.clone(), self.writes.clone());
        blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| unavailable("connection lock poisoned"))?;
            let out = f(&mut guard);
            writes.wrote();
            out
        })
        .await
    }
}

/// Runs `f`, a call into SQLite, where it may block: on this thread when the runtime has
/// several workers (`block_in_place` hands this worker's other tasks to another thread, and the
/// request goes on without waiting for a thread to wake), else on the blocking pool. The hop to
/// the pool was most of a login's store time, and its tail: on a busy machine, a thread woken
/// for each statement waited for a core.
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(f)
    } else {
        tokio::task::spawn_blocking(f).await.map_err(unavailable)?
    }
}

#[cfg(test)]
mod tests;
