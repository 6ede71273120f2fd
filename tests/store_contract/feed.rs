//! The revocation feed (`Sessions::follow_revocations`): how `/auth` stays free of I/O yet
//! honours a logout made through any instance. Waits are bounded by a generous deadline that
//! only turns a hang into a failure; nothing here measures how fast an event comes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use idgate::now_secs;
use idgate::store::{FeedEvent, Sessions};

use crate::backends::SessionsFixture;
use crate::sessions::session;

/// How long an expected event may take before the check fails: far above any real delay.
const DEADLINE: Duration = Duration::from_secs(30);

/// The events a store's feed reported, in order; the feed stops when this drops.
struct Feed {
    events: Arc<Mutex<Vec<FeedEvent>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Feed {
    fn follow(sessions: &Arc<dyn Sessions>) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let sessions = sessions.clone();
        let task = tokio::spawn(async move {
            sessions
                .follow_revocations(Arc::new(move |e| sink.lock().unwrap().push(e)))
                .await;
        });
        Self { events, task }
    }

    /// How many events have come so far: a mark for [`Feed::wait`].
    fn mark(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// Waits for `want` among the events after `mark`.
    async fn wait(&self, mark: usize, want: &FeedEvent) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            {
                let events = self.events.lock().unwrap();
                if events[mark..].contains(want) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "{want:?} never came; the feed reported {:?}",
                    &events[mark..]
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn revoked(sid: &str) -> FeedEvent {
    FeedEvent::Revoked(sid.into())
}

/// Once a handle's feed is current, every revocation made through another handle reaches it:
/// one session, all of a user's, and the oldest evicted by the cap.
pub async fn revocation_feed(f: &SessionsFixture) {
    let feed = Feed::follow(&f.other);
    feed.wait(0, &FeedEvent::Healthy).await;
    let s = f.sessions.as_ref();
    let now = now_secs();
    for sid in ["a1", "a2", "a3"] {
        s.create_session(&session(sid, "alice", now), 10)
            .await
            .unwrap();
    }
    let mark = feed.mark();
    assert!(s.revoke_session("a1").await.unwrap());
    feed.wait(mark, &revoked("a1")).await;

    let mark = feed.mark();
    assert_eq!(s.revoke_user_sessions("alice").await.unwrap().len(), 2);
    feed.wait(mark, &revoked("a2")).await;
    feed.wait(mark, &revoked("a3")).await;

    s.create_session(&session("c0", "carol", now), 1)
        .await
        .unwrap();
    let mark = feed.mark();
    let evicted = s
        .create_session(&session("c1", "carol", now), 1)
        .await
        .unwrap();
    assert_eq!(evicted, vec!["c0".to_string()]);
    feed.wait(mark, &revoked("c0")).await;
    // And it stays current.
    let mark = feed.mark();
    feed.wait(mark, &FeedEvent::Healthy).await;
}
