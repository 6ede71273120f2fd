//! The audit writer: the one task that formats events and writes them, a batch at a time, to
//! the file (appending; created `0640`) or to standard output. It ends when every sender is
//! gone and the queue is written out.
//!
//! A failed write loses its batch: the events are counted in `idgate_audit_dropped_total` and
//! an error is logged at most every `WARN_EVERY_SECS`. A reopen that fails keeps the file it had.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Notify};

use super::{Event, WARN_EVERY_SECS};
use crate::config::AuditTarget;

/// Events taken from the queue and written at once.
const BATCH: usize = 256;

/// Permissions of a file the writer creates: the trail names users and addresses.
const FILE_MODE: u32 = 0o640;

/// Where the lines go.
pub(super) enum Sink {
    File {
        path: PathBuf,
        file: tokio::fs::File,
    },
    Stdout(tokio::io::Stdout),
}

impl Sink {
    /// Opens the target (the file for appending, created when missing).
    pub(super) fn open(target: &AuditTarget) -> std::io::Result<Self> {
        Ok(match target {
            AuditTarget::Stdout => Self::Stdout(tokio::io::stdout()),
            AuditTarget::File(path) => Self::File {
                path: path.clone(),
                file: tokio::fs::File::from_std(open_std(path)?),
            },
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::File { file, .. } => {
                file.write_all(bytes).await?;
                file.flush().await
            }
            Self::Stdout(out) => {
                out.write_all(bytes).await?;
                out.flush().await
            }
        }
    }

    /// Opens the path again (logrotate renamed the file); standard output stays.
    async fn reopen(&mut self) {
        let Self::File { path, file } = self else {
            return;
        };
        let _ = file.flush().await;
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).append(true).mode(FILE_MODE);
        match options.open(&path).await {
            Ok(new) => {
                *file = new;
                tracing::info!(path = %path.display(), "audit file reopened");
            }
            Err(e) => tracing::error!(
                path = %path.display(),
                error = %e,
                "cannot reopen the audit file: writing on to the one open"
            ),
        }
    }
}

fn open_std(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("audit: cannot open {}: {e}", path.display()),
            )
        })
}

/// Writes what arrives on `rx` until every sender is gone; opens the file again on `reopen`.
pub(super) async fn run(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Event>,
    reopen: Arc<Notify>,
    lost: Counter,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut bytes = Vec::new();
    let mut warned_at = i64::MIN / 2;
    loop {
        tokio::select! {
            // A reopen first: the events waiting go to the new file.
            biased;
            () = reopen.notified() => sink.reopen().await,
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    // Closed, and nothing left.
                    return;
                }
                bytes.clear();
                for event in batch.drain(..) {
                    if let Some(line) = event.to_line() {
                        bytes.extend_from_slice(&line);
                    }
                }
                if let Err(e) = sink.write(&bytes).await {
                    lost.inc_by(n as u64);
                    let now = crate::now_secs();
                    if now - warned_at >= WARN_EVERY_SECS {
                        warned_at = now;
                        tracing::error!(error = %e, events = n, "cannot write the audit trail: events lost");
                    }
                }
            }
        }
    }
}
