//! The checkpointer: a thread that copies the write-ahead log back into the file, so that no
//! request does (see the module doc of `embedded`).
//!
//! A checkpoint ends with `fsync`s, and a write made while they run waits for them on ext4
//! (milliseconds on a virtual disk). Left to SQLite, every thousandth page written made one
//! login pay for them. Here a checkpoint runs when the store has been quiet for
//! [`QUIET`] (nobody is writing to be held up), or, under a steady flow of writes, once
//! [`BUSY_WRITES`] transactions have gone into the log or [`LONGEST`] has passed, which bounds
//! the log's size: a steady flow of logins meets a checkpoint once in a few hundred, not once in
//! a few dozen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender};
use std::sync::Arc;
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
/// `quiet` ago, the last checkpoint `since` ago.
pub fn due(pending: u64, quiet: Duration, since: Duration) -> bool {
    pending > 0 && (quiet >= QUIET || pending >= BUSY_WRITES || since >= LONGEST)
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

/// Starts the checkpointer on `conn` (a connection of its own), following `writes`. Passive
/// checkpoints: it never waits for a reader or a writer.
pub fn spawn(conn: Connection, writes: Arc<Writes>) -> Result<Checkpointer, StoreError> {
    let (stop, stopped) = std::sync::mpsc::sync_channel::<()>(0);
    let thread = std::thread::Builder::new()
        .name("idgate-checkpoint".into())
        .spawn(move || {
            let (mut done, mut at) = (0, Instant::now());
            // Said once when checkpoints start failing (a full disk), once when they work again.
            let mut failing = false;
            loop {
                let last = matches!(
                    stopped.recv_timeout(TICK),
                    Err(RecvTimeoutError::Disconnected) | Ok(())
                );
                let count = writes.count();
                if !last && !due(count - done, writes.quiet_for(), at.elapsed()) {
                    continue;
                }
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
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

    #[test]
    fn a_checkpoint_waits_for_quiet_unless_the_log_has_grown_or_aged() {
        let ms = Duration::from_millis;
        // Nothing written: nothing to do, however long it has been.
        assert!(!due(0, QUIET * 10, LONGEST * 10));
        // Writes going on (the last one just now): wait.
        assert!(!due(10, ms(20), ms(500)));
        assert!(!due(BUSY_WRITES - 1, ms(20), LONGEST - ms(1)));
        // Quiet long enough, the log grown, or a write waiting too long: now.
        assert!(due(1, QUIET, ms(10)));
        assert!(due(BUSY_WRITES, ms(0), ms(10)));
        assert!(due(1, ms(0), LONGEST));
    }
}
