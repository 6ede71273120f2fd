//! The audit trail: one JSON line per security event (`[audit]`, see docs/operations.md "Audit
//! trail") — a login (success or failure, with the reason), a silent renewal, a refresh, a
//! logout, a revocation (and by whom), a 403 from `/auth` and a step-up.
//!
//! **Never blocks a request.** [`Audit::emit`] builds the event and hands it to one writer task
//! through a bounded channel with `try_send`: when the channel is full (the disk stalls), the
//! event is dropped, counted in `idgate_audit_dropped_total` and a warning is logged at most
//! every [`WARN_EVERY_SECS`]. Only the writer task formats and writes, a batch at a time.
//!
//! **Off costs nothing.** Without `[audit]` the handle is empty: [`Audit::emit`] takes a closure
//! and returns before calling it, so no event, address or string is ever made.
//!
//! **What a line holds.** Who (the user id), where (app, provider), which session (the first 16
//! hex digits of the SHA-256 of its id: [`session_hash`], never the id), from where (the client
//! address, user agent and request id of `http::client::ClientInfo`); never an e-mail, a name,
//! a token or a cookie. See [`event`].
//!
//! **Logrotate.** On SIGHUP (`reload` calls [`Audit::reopen`]) the writer closes the file and
//! opens the path again, creating it: logrotate's `create` mode (rename, then SIGHUP) works.

mod event;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, Notify};

pub use event::{session_hash, Event, Kind, Outcome, RevokedBy};

use crate::config::AuditConfig;
use crate::http::client::ClientInfo;

/// The least time between two warnings about dropped events (seconds).
pub const WARN_EVERY_SECS: i64 = 10;

/// The audit trail's handle, in `AppState`: empty when `[audit]` is absent.
#[derive(Default)]
pub struct Audit {
    inner: Option<Inner>,
}

struct Inner {
    /// To the writer task; bounded (`[audit] queue`).
    tx: mpsc::Sender<Event>,
    /// Tells the writer to open its file again (SIGHUP).
    reopen: Arc<Notify>,
    /// `idgate_audit_dropped_total`, shared with `metrics`.
    dropped: Counter,
    /// When a dropped event was last warned about (Unix seconds).
    warned_at: crate::AtMostEvery,
}

impl Audit {
    /// The trail `[audit]` describes (none: [`Audit::off`]), with its writer task started;
    /// `dropped` counts the events a full queue refuses or a failed write loses. Fails when the
    /// file cannot be opened (so startup, `check-config` and a reload say so). The task ends
    /// once every handle is dropped and the queue is written out: await it to know the last
    /// event is on disk.
    pub fn start(
        config: Option<&AuditConfig>,
        dropped: Counter,
    ) -> std::io::Result<(Self, Option<tokio::task::JoinHandle<()>>)> {
        let Some(config) = config else {
            return Ok((Self::off(), None));
        };
        let sink = writer::Sink::open(&config.target)?;
        let (tx, rx) = mpsc::channel(config.queue);
        let reopen = Arc::new(Notify::new());
        let task = tokio::spawn(writer::run(sink, rx, reopen.clone(), dropped.clone()));
        let inner = Inner {
            tx,
            reopen,
            dropped,
            warned_at: crate::AtMostEvery::new(WARN_EVERY_SECS),
        };
        Ok((Self { inner: Some(inner) }, Some(task)))
    }

    /// No trail.
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Whether events are recorded.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Records the event `build` makes, when the trail is on; never waits. A full queue drops
    /// it (counted, and warned about at most every [`WARN_EVERY_SECS`]).
    pub fn emit(&self, build: impl FnOnce() -> Event) {
        let Some(inner) = &self.inner else { return };
        if inner.tx.try_send(build()).is_err() {
            inner.dropped.inc();
            if inner.warned_at.due(crate::now_secs()) {
                tracing::warn!(
                    dropped_total = inner.dropped.get(),
                    "audit events dropped: the audit writer is behind (see idgate_audit_dropped_total)"
                );
            }
        }
    }

    /// Records `event`, waiting for room in the queue: for the command line, which may revoke
    /// more sessions at once than the queue holds. Never in a request.
    pub async fn record_waiting(&self, event: Event) {
        if let Some(inner) = &self.inner {
            if inner.tx.send(event).await.is_err() {
                inner.dropped.inc();
            }
        }
    }

    /// Has the writer close its file and open the path again (after logrotate renamed it).
    pub fn reopen(&self) {
        if let Some(inner) = &self.inner {
            inner.reopen.notify_one();
        }
    }
}

/// Where a request came from, kept as its parts until an event needs it: the
/// [`ClientInfo`] is made only when the trail is on and an event is built.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    /// The connection's peer (none on the unix socket).
    pub peer: Option<SocketAddr>,
    /// Whether the peer is a trusted proxy (its `X-Forwarded-For` is believed).
    pub trusted: bool,
    /// The request's headers.
    pub headers: &'a HeaderMap,
}

impl Origin<'_> {
    /// The sender of the request, as `http::client` tells it.
    pub fn client(&self) -> ClientInfo {
        ClientInfo::of(self.peer, self.trusted, self.headers)
    }
}

#[cfg(test)]
mod tests;
