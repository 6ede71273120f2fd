//! The checkpointer: a thread that copies the write-ahead log back into the file, so that no
//! request does (see the module doc of `embedded`).
//!
//! A checkpoint ends with `fsync`s, and a write made while they run waits for them on ext4
//! (milliseconds on a virtual disk). Left to SQLite, every thousandth page written made one
//! login pay for them. Here a checkpoint runs when the store has been quiet for
//! [`QUIET`] (nobody is writing to be held up), or, under a steady flow of writes, once
//! [`BUSY_WRITES`] transactions have gone into the log or [`LONGEST`] has passed: a steady flow
//! of logins meets a checkpoint once in a few hundred, not once in a few dozen. What bounds the
//! log's size under such a flow is the second checkpoint of [`run`], which lets the log start
//! over ([`RESTART_FRAMES`]), and the writer's `journal_size_limit` ([`LOG_LIMIT_BYTES`]),
//! which gives back the space of a log that grew in a burst.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{unavailable, StoreError};

/// How long the store must have had no write for a checkpoint to run at once.
pub const QUIET: Duration = Duration::from_secs(1);
/// Write transactions after which a checkpoint runs even though writes go on (each writes a few
/// pages: the log stays within tens of megabytes).
pub const BUSY_WRITES: u64 = 4000;
/// The longest a write waits in the log for a checkpoint, writes going on or not.
pub const LONGEST: Duration = Duration::from_secs(60);
/// How often the checkpointer looks.
const TICK: Duration = Duration::from_millis(250);
/// Frames in the log past which a passive checkpoint is followed at once by one that holds the
/// writers back until every frame is in the file ([`run`]). Under a steady flow of writes a
/// passive checkpoint never catches up, and SQLite starts the log over only once every frame
/// is in the file: half a minute of `/authorize` at full speed left a 2 GB log behind a 38 MB
/// file, and each write slower than the one before. 4 096 frames are 16 MiB at SQLite's
/// default page size; a steady flow of writes meets a checkpoint at about four times that.
pub const RESTART_FRAMES: i64 = 4096;
/// How long that checkpoint waits for the writer and for the readers to leave the log. Writes
/// wait while it does, so a reader holding an old snapshot (a long `idgate sessions list`)
/// makes it give up, to try again at the next checkpoint, rather than hold logins up.
const RESTART_WAIT: Duration = Duration::from_millis(20);
/// The size the log is cut back to when it starts over (`journal_size_limit`, set on the
/// store's writer: SQLite cuts the log back at the first commit after it started over, on
/// the connection that made it): a log that grew past it in a burst keeps no disk space. A
/// steady flow of writes fills about this much between two checkpoints (`BUSY_WRITES` of a
/// few pages).
pub const LOG_LIMIT_BYTES: i64 = 64 << 20;

/// When the checkpointer checkpoints (the constants above; smaller in tests).
#[derive(Clone, Copy)]
pub struct Policy {
    pub busy_writes: u64,
    pub restart_frames: i64,
    pub tick: Duration,
}

impl Policy {
    pub const DEFAULT: Self = Self {
        busy_writes: BUSY_WRITES,
        restart_frames: RESTART_FRAMES,
        tick: TICK,
    };
}

/// What the store's writes tell the checkpointer: how many there were, and when the last was.
pub struct Writes {
    count: AtomicU64,
    /// Milliseconds from `epoch` to the end of the last write.
    last_ms: AtomicU64,
    epoch: Instant,
}

impl Writes {
    pub fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Notes a write transaction that has just ended.
    pub fn wrote(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Release);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Whether a checkpoint is due: `pending` write transactions since the last one, the last write
/// `quiet` ago, the last checkpoint `since` ago; a steady flow counts as such at `busy_writes`.
pub fn due(pending: u64, quiet: Duration, since: Duration, busy_writes: u64) -> bool {
    pending > 0 && (quiet >= QUIET || pending >= busy_writes || since >= LONGEST)
}

/// One checkpoint: a passive one, which never waits; then, if the log held `restart_frames`
/// frames or more when it started, a second passive one and a `RESTART` one, which holds the
/// store's `writer` while it copies what was written meanwhile, so that the next write starts
/// the log over instead of growing it. (A passive checkpoint cannot tell whether writes came in
/// while it ran: it counts the frames it found. Under a steady flow some always did, and SQLite
/// starts a log over only once every frame is in the file.) The second passive checkpoint
/// shortens the hold: under a steady flow of `/authorize` here the `RESTART` held the writers
/// 8-20 ms after one, 4-10 ms after two. Holding the writer, not waiting for SQLite's lock:
/// that lock is free for an instant between two transactions, and SQLite's busy wait (sleeps of
/// 1 ms and more) seldom finds it free under a steady flow. Another process's writes can still
/// hold it; the checkpoint then gives up after [`RESTART_WAIT`], without an error, and the next
/// one tries again.
fn run(conn: &Connection, writer: &Mutex<Connection>, restart_frames: i64) -> rusqlite::Result<()> {
    let passive = || conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
    if passive()? >= restart_frames {
        // What came in during the first is less, and copied sooner: the `RESTART` then holds
        // the writers only for what came in during the second.
        passive()?;
        // A poisoned writer is the store's to report; the passive checkpoints were made.
        let Ok(_writes_wait) = writer.lock() else {
            return Ok(());
        };
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}

/// The checkpointer of one store. Dropped with the store's last handle, it checkpoints once more
/// and is waited for: a process that writes and exits (`idgate sessions mint`) leaves its
/// writes in the file, not a log for the next process to copy.
pub struct Checkpointer {
    stop: Option<SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the checkpointer on `conn` (a connection of its own), following `writes`, the writes
/// of the store's `writer`. Passive checkpoints, never waiting for a reader or a writer, except
/// when a steady flow of writes left a long log behind one ([`run`]).
pub fn spawn(
    conn: Connection,
    writer: Arc<Mutex<Connection>>,
    writes: Arc<Writes>,
) -> Result<Checkpointer, StoreError> {
    spawn_with(conn, writer, writes, Policy::DEFAULT)
}

/// [`spawn`], checkpointing by `policy`.
pub fn spawn_with(
    conn: Connection,
    writer: Arc<Mutex<Connection>>,
    writes: Arc<Writes>,
    policy: Policy,
) -> Result<Checkpointer, StoreError> {
    conn.busy_timeout(RESTART_WAIT).map_err(unavailable)?;
    let (stop, stopped) = std::sync::mpsc::sync_channel::<()>(0);
    let thread = std::thread::Builder::new()
        .name("idgate-checkpoint".into())
        .spawn(move || {
            let (mut done, mut at) = (0, Instant::now());
            // Said once when checkpoints start failing (a full disk), once when they work again.
            let mut failing = false;
            loop {
                let last = matches!(
                    stopped.recv_timeout(policy.tick),
                    Err(RecvTimeoutError::Disconnected) | Ok(())
                );
                let count = writes.count();
                let pending = count - done;
                if !last
                    && !due(
                        pending,
                        writes.quiet_for(),
                        at.elapsed(),
                        policy.busy_writes,
                    )
                {
                    continue;
                }
                match run(&conn, &writer, policy.restart_frames) {
                    Ok(()) => {
                        (done, at) = (count, Instant::now());
                        if failing {
                            failing = false;
                            tracing::info!("embedded store: checkpoints work again");
                        }
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "embedded store: checkpoint failed; retried");
                    }
                    Err(_) => {}
                }
                if last {
                    return;
                }
            }
        })
        .map_err(|e| unavailable(format!("cannot start the checkpointer: {e}")))?;
    Ok(Checkpointer {
        stop: Some(stop),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under a steady flow of writes a passive checkpoint never copies the whole log, and SQLite
    /// starts a log over only once it has: the checkpoint that follows lets it, so the log is
    /// written again from its start instead of growing with every write. Nothing written is
    /// lost.
    #[test]
    fn a_steady_flow_of_writes_starts_the_log_over() {
        const AT_MOST: u64 = 200_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        // Connections as the store opens them (`EmbeddedStore::open`).
        let open = || {
            let c = Connection::open(&path).unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
            c.pragma_update(None, "synchronous", "NORMAL").unwrap();
            c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
            c
        };
        let writer = Arc::new(Mutex::new(open()));
        writer
            .lock()
            .unwrap()
            .execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
            .unwrap();
        let writes = Arc::new(Writes::new());
        let policy = Policy {
            busy_writes: 20,
            restart_frames: 64,
            tick: Duration::from_millis(1),
        };
        let checkpointer = spawn_with(open(), writer.clone(), writes.clone(), policy).unwrap();
        // The log's header counts the times it started over (its "checkpoint sequence
        // number", bytes 12-15, big-endian), rewritten at each new start.
        let log = dir.path().join("s.db-wal");
        let starts = || {
            let mut header = [0u8; 16];
            std::io::Read::read_exact(&mut std::fs::File::open(&log).unwrap(), &mut header)
                .unwrap();
            u32::from_be_bytes([header[12], header[13], header[14], header[15]])
        };
        // Writes go on until the log has started over three times: dozens of checkpoints,
        // none of which catches up by itself (each takes milliseconds, its fsync, against a
        // fraction of one for a write). How many writes that takes depends on how the
        // checkpointer's thread is scheduled beside them (a few thousand on a quiet machine);
        // a log that never starts over runs into the bound instead.
        let write = |i: u64| {
            // Keys spread over the table, as login states' random ids are.
            let key = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            writer
                .lock()
                .unwrap()
                .execute("INSERT INTO t VALUES (?1, randomblob(300))", [key])
                .unwrap();
            writes.wrote();
        };
        write(0);
        let first = starts();
        let mut written = 1;
        while starts() - first < 3 {
            assert!(
                written < AT_MOST,
                "the log started over {} times in {written} writes",
                starts() - first
            );
            for _ in 0..100 {
                write(written);
                written += 1;
            }
        }
        drop(checkpointer);
        let rows: u64 = writer
            .lock()
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, written);
    }

    #[test]
    fn a_checkpoint_waits_for_quiet_unless_the_log_has_grown_or_aged() {
        let ms = Duration::from_millis;
        // Nothing written: nothing to do, however long it has been.
        let busy = BUSY_WRITES;
        assert!(!due(0, QUIET * 10, LONGEST * 10, busy));
        // Writes going on (the last one just now): wait.
        assert!(!due(10, ms(20), ms(500), busy));
        assert!(!due(BUSY_WRITES - 1, ms(20), LONGEST - ms(1), busy));
        // Quiet long enough, the log grown, or a write waiting too long: now.
        assert!(due(1, QUIET, ms(10), busy));
        assert!(due(BUSY_WRITES, ms(0), ms(10), busy));
        assert!(due(1, ms(0), LONGEST, busy));
    }
}
