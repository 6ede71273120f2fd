//! Session activity on its way to the store, in batches.
//!
//! `/auth` reports a session's use at most once a minute per session (see
//! [`super::ACTIVITY_EVERY_SECS`]), but a process that has just started, or lost its revocation
//! feed, sees thousands of sessions for the first time within seconds, and each is reported at
//! once. One write each made the cold path of `/auth` pay for a store write (the embedded store
//! serialises them behind one lock) and a million-session store pay for ten thousand
//! transactions. Here reports wait in a map while a write is under way and go in the next one,
//! all together: a quiet process writes each report at once, a busy one writes what came in
//! while the last write ran (group commit). The map holds one entry per session, the latest
//! time, so it is bounded by the sessions in use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::Sessions;
use crate::AtMostEvery;

/// The most touches one store call carries (a transaction, or a burst of pipelined commands).
pub const MAX_BATCH: usize = 2048;

/// Least seconds between two warnings about failed writes (a store that is down fails every
/// batch: one line says so, the next says how many failed since).
const WARN_EVERY_SECS: i64 = 10;

pub struct Activity {
    sessions: Arc<dyn Sessions>,
    pending: Mutex<HashMap<Arc<str>, i64>>,
    /// A task is writing (or about to): reports only add to `pending`.
    flushing: AtomicBool,
    /// When failed writes were last warned about, and how many failed since.
    warned_at: AtMostEvery,
    failed: AtomicI64,
}

impl Activity {
    pub fn new(sessions: Arc<dyn Sessions>) -> Arc<Self> {
        Arc::new(Self {
            sessions,
            pending: Mutex::new(HashMap::new()),
            flushing: AtomicBool::new(false),
            warned_at: AtMostEvery::new(WARN_EVERY_SECS),
            failed: AtomicI64::new(0),
        })
    }

    /// Reports that session `sid` was used at `at`; written in the background (the request does
    /// not wait), with whatever else is reported meanwhile.
    pub fn report(self: &Arc<Self>, sid: &Arc<str>, at: i64) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let latest = pending.entry(sid.clone()).or_insert(at);
        *latest = (*latest).max(at);
        drop(pending);
        if !self.flushing.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            tokio::spawn(async move { me.flush().await });
        }
    }

    /// Writes what is pending, batch after batch, until nothing is.
    async fn flush(&self) {
        loop {
            let batch: Vec<(String, i64)> = match self.pending.lock() {
                Ok(mut pending) => std::mem::take(&mut *pending)
                    .into_iter()
                    .map(|(sid, at)| (sid.to_string(), at))
                    .collect(),
                Err(_) => Vec::new(),
            };
            if batch.is_empty() {
                self.flushing.store(false, Ordering::Release);
                // A report between the take and the store above saw `flushing` set and left
                // its entry to this task: take it, unless a new task already has.
                let more = self.pending.lock().is_ok_and(|p| !p.is_empty());
                if !more || self.flushing.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            for chunk in batch.chunks(MAX_BATCH) {
                if let Err(e) = self.sessions.touch_sessions(chunk).await {
                    self.warn(chunk.len(), &e);
                }
            }
        }
    }

    fn warn(&self, lost: usize, e: &crate::store::StoreError) {
        let failed = self.failed.fetch_add(lost as i64, Ordering::Relaxed) + lost as i64;
        if self.warned_at.due(crate::now_secs()) {
            self.failed.store(0, Ordering::Relaxed);
            tracing::warn!(error = %e, sessions = failed, "cannot record session activity");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    /// A burst of reports goes to the store in one write, and every session's latest time is
    /// what the store keeps.
    #[tokio::test]
    async fn a_burst_of_reports_is_one_write_with_each_session_s_latest_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("a.db")).unwrap());
        let activity = Activity::new(store.clone());
        let sids: Vec<Arc<str>> = (0..1000).map(|i| Arc::from(format!("s{i}"))).collect();
        let before = store.write_count();
        // No await between them: the task that writes starts after the last report.
        for (i, sid) in sids.iter().enumerate() {
            activity.report(sid, 1_000 + i as i64);
            activity.report(sid, 500);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while activity.flushing.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the reports were never written"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for (i, sid) in sids.iter().enumerate() {
            assert_eq!(
                store.last_activity(sid).await.unwrap(),
                Some(1_000 + i as i64),
                "{sid}: the latest report is kept, never an older one"
            );
        }
        assert_eq!(
            store.write_count() - before,
            1,
            "1000 reports, one transaction"
        );
        // Reported again later: written again, at once.
        activity.report(&sids[0], 5_000);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while store.last_activity(&sids[0]).await.unwrap() != Some(5_000) {
            assert!(
                std::time::Instant::now() < deadline,
                "a later report was never written"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
