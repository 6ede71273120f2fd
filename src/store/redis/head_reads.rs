//! The cold path's session reads, sent to Redis together: one pipeline for every read that
//! arrives while the one before is on its way.
//!
//! The first request of a session (its token in no cache) reads the session's record and
//! revocation flag. Sent one by one, each read cost a `writev` to Redis, a wake-up of Redis and
//! a `recvfrom` back: measured with `examples/cold.rs` (RS256, 10 000 sessions, 32 at a time),
//! one `writev` per read and about 31 µs of idgate's CPU on top of the verification, most of it
//! in the kernel's TCP path and its context switches. The multiplexed connection would send
//! queued commands together, but its driver is woken for each one before the next arrives.
//!
//! So the reads go through one task of their own ([`serve`]): it takes every read waiting in
//! its queue (at most [`MAX_BATCH`]), sends them as one pipeline of `HMGET`s, hands each caller
//! its answer, and takes the next. A lone read goes out at once, as before; reads that arrive
//! while a pipeline is on its way wait for its answer, then go out together. The pipeline goes
//! through `Backend::read`, so a connection that died since its last answer is retried once on
//! a checked one, as a single read is. Cluster mode keeps one read per command: a session's key
//! and another's may live on different nodes.
//!
//! Each read is answered within [`OP_TIMEOUT`] of its call, as every store operation is, and
//! the task keeps that bound, not a timer of each caller's: a read carries its deadline, and a
//! pipeline is given until the earliest deadline among its reads. Every read that waits behind
//! a pipeline has a later deadline than that pipeline's, so each is answered by its own, with
//! its record or with the timeout's error. One timer a pipeline instead of one a read: measured
//! with `examples/cold.rs` (EdDSA on Redis, 20 000 fresh sessions, alternating pairs of
//! processes), the read alone cost 0.7–0.8 µs less of idgate's CPU without the caller's timer;
//! the change in the whole first request was within the noise between processes.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::backend::Backend;
use super::{timed_out, unavailable, OP_TIMEOUT};
use crate::store::StoreError;

/// Reads sent in one pipeline at most.
const MAX_BATCH: usize = 128;

/// Reads waiting for the task at most; a caller beyond waits for room, until its deadline.
const QUEUE: usize = 4096;

/// A session's record (JSON) and whether it is flagged revoked; `None` when it has no key.
pub(super) type Stored = Option<(String, bool)>;

struct Request {
    key: String,
    /// When the caller stops waiting: the task answers it by then.
    deadline: Instant,
    reply: oneshot::Sender<Result<Stored, StoreError>>,
}

impl Request {
    /// A read of `key`, due [`OP_TIMEOUT`] from now, and where its answer will come.
    fn new(key: String) -> (Self, oneshot::Receiver<Result<Stored, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + OP_TIMEOUT;
        (
            Request {
                key,
                deadline,
                reply,
            },
            answer,
        )
    }
}

/// The queue of the reads' task, started on first use (in the runtime of that use) and again
/// if its runtime has gone (a store used across test runtimes).
pub(super) struct HeadReads {
    backend: Arc<Backend>,
    queue: Mutex<Option<mpsc::Sender<Request>>>,
    /// Pipelines sent so far (tests).
    #[cfg(test)]
    pipelines: Arc<std::sync::atomic::AtomicUsize>,
}

impl HeadReads {
    pub(super) fn new(backend: Arc<Backend>) -> Self {
        HeadReads {
            backend,
            queue: Mutex::new(None),
            #[cfg(test)]
            pipelines: Arc::default(),
        }
    }

    /// `HMGET key record revoked`, sent with the reads queued beside it; answered within
    /// [`OP_TIMEOUT`] (see the module's doc).
    pub(super) async fn read(&self, key: String) -> Result<Stored, StoreError> {
        let (mut request, answer) = Request::new(key);
        // Twice at most: a queue whose task has gone (its runtime ended) is replaced once.
        for _ in 0..2 {
            let queue = self.queue()?;
            match enqueue(&queue, request).await {
                // Answered by its deadline (see `serve`).
                Ok(()) => {
                    return answer
                        .await
                        .map_err(|_| unavailable("the read was dropped unanswered"))?;
                }
                Err(Unqueued::TimedOut) => return Err(timed_out()),
                // Its queue is closed now: `queue` starts another.
                Err(Unqueued::Gone(back)) => request = back,
            }
        }
        Err(unavailable("no task to send the read"))
    }

    /// The queue, its task started if there is none or its task has gone.
    fn queue(&self) -> Result<mpsc::Sender<Request>, StoreError> {
        let mut queue = self
            .queue
            .lock()
            .map_err(|_| unavailable("the read queue's lock is poisoned"))?;
        if let Some(sender) = queue.as_ref().filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        let (sender, requests) = mpsc::channel(QUEUE);
        let backend = self.backend.clone();
        tokio::spawn(serve(
            requests,
            async move |batch: &[Request]| send(&backend, batch).await,
            #[cfg(test)]
            self.pipelines.clone(),
        ));
        *queue = Some(sender.clone());
        Ok(sender)
    }

    #[cfg(test)]
    pub(super) fn pipelines(&self) -> usize {
        self.pipelines.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Why a read did not join the queue.
enum Unqueued {
    /// The queue's task has gone: the read, to queue elsewhere.
    Gone(Request),
    /// The queue stayed full until the read's deadline.
    TimedOut,
}

/// Puts `request` in `queue`, waiting for room until its deadline when the queue is full.
async fn enqueue(queue: &mpsc::Sender<Request>, request: Request) -> Result<(), Unqueued> {
    let request = match queue.try_send(request) {
        Ok(()) => return Ok(()),
        Err(mpsc::error::TrySendError::Closed(back)) => return Err(Unqueued::Gone(back)),
        Err(mpsc::error::TrySendError::Full(back)) => back,
    };
    match tokio::time::timeout_at(request.deadline, queue.send(request)).await {
        Ok(sent) => sent.map_err(|mpsc::error::SendError(back)| Unqueued::Gone(back)),
        Err(_) => Err(Unqueued::TimedOut),
    }
}

/// The reads' task: takes the queued reads in batches, sends each batch (`send`, one pipeline)
/// until the earliest deadline among its reads, and hands each read its answer. Ends when the
/// store (the queue's last sender) is dropped.
async fn serve(
    mut requests: mpsc::Receiver<Request>,
    send: impl AsyncFn(&[Request]) -> Result<Vec<Answer>, StoreError>,
    #[cfg(test)] pipelines: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Callers that gave up (their client gone) are not asked for.
        batch.retain(|r: &Request| !r.reply.is_closed());
        let Some(deadline) = batch.iter().map(|r| r.deadline).min() else {
            continue;
        };
        #[cfg(test)]
        pipelines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answers = match tokio::time::timeout_at(deadline, send(&batch)).await {
            Ok(Ok(answers)) if answers.len() == batch.len() => Ok(answers),
            Ok(Ok(answers)) => Err(unavailable(format!(
                "{} answers to {} reads",
                answers.len(),
                batch.len()
            ))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(timed_out()),
        };
        match answers {
            Ok(answers) => {
                for (request, (record, revoked)) in batch.drain(..).zip(answers) {
                    let stored = record.map(|record| (record, revoked.is_some()));
                    let _ = request.reply.send(Ok(stored));
                }
            }
            Err(e) => {
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

type Answer = (Option<String>, Option<String>);

/// One pipeline of `HMGET key record revoked`, one per read, answered in order.
async fn send(backend: &Backend, batch: &[Request]) -> Result<Vec<Answer>, StoreError> {
    let mut pipe = redis::pipe();
    for request in batch {
        pipe.cmd("HMGET")
            .arg(&request.key)
            .arg("record")
            .arg("revoked");
    }
    backend
        .read(|mut conn| {
            let pipe = &pipe;
            async move {
                let answers = pipe.query_async(&mut conn).await.map_err(unavailable);
                (answers, conn)
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

    use std::path::Path;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use crate::config::{RedisConfig, RedisMode};
    use crate::crypto::Secret;
    use crate::store::redis::RedisStore;
    use crate::store::{SessionRecord, Sessions};

    /// A `redis-server` on a unix socket in `dir`, killed when dropped.
    struct Server {
        child: Child,
        socket: String,
    }

    impl Server {
        fn start(dir: &Path) -> Self {
            let socket = dir.join("redis.sock").display().to_string();
            let log = dir.join("redis.log");
            let child = Command::new("redis-server")
                .args(["--port", "0", "--unixsocket", &socket, "--save", ""])
                .args([
                    "--appendonly",
                    "no",
                    "--logfile",
                    &log.display().to_string(),
                ])
                .spawn()
                .expect("redis-server not found (scripts/install-deps installs it)");
            let server = Server { child, socket };
            let start = Instant::now();
            while redis::Client::open(server.url())
                .and_then(|c| c.get_connection())
                .is_err()
            {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "redis-server did not answer within a minute; its log:\n{tail}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            server
        }

        fn url(&self) -> String {
            format!("redis+unix://{}", self.socket)
        }

        /// A store on this server: standalone, a pool of four connections.
        fn store(&self) -> RedisStore {
            RedisStore::new(&RedisConfig {
                mode: RedisMode::Standalone,
                urls: vec![Secret::new(self.url())],
                master_name: None,
                scope: "heads".into(),
                username: None,
                password: None,
                pool_size: 4,
            })
            .unwrap()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn session(sid: &str, revoked: bool) -> SessionRecord {
        SessionRecord {
            sid: sid.into(),
            user_id: format!("user-of-{sid}"),
            app_id: "web".into(),
            provider_id: "dev".into(),
            created_at: crate::now_secs(),
            expires_at: crate::now_secs() + 600,
            refresh_hash: format!("hash-of-{sid}"),
            idp_tokens: vec![1, 2, 3],
            revoked,
            context: Default::default(),
        }
    }

    /// The reads that arrive while a pipeline is on its way go out together in the next one,
    /// and each caller gets its own session's answer (a present, a revoked, a missing one).
    #[tokio::test]
    async fn reads_arriving_during_a_pipeline_go_out_together_each_answered_with_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path());
        let store = std::sync::Arc::new(server.store());
        for i in 0..60 {
            store
                .create_session(&session(&format!("s{i}"), i % 7 == 3), 100)
                .await
                .unwrap();
        }
        // Redis answers nothing for 300 ms (the client gives up after 500): the first pipeline stays
        // on its way.
        let mut admin = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(300)
            .arg("ALL")
            .query::<()>(&mut admin)
            .unwrap();
        let read = |sid: String| {
            let store = store.clone();
            tokio::spawn(async move { (store.session_head(&sid).await, sid) })
        };
        let first = read("s0".into());
        while store.heads.pipelines() == 0 {
            tokio::task::yield_now().await;
        }
        let mut rest: Vec<_> = (1..60).map(|i| read(format!("s{i}"))).collect();
        rest.push(read("missing".into()));
        for task in std::iter::once(first).chain(rest) {
            let (head, sid) = task.await.unwrap();
            let head = head.unwrap();
            if sid == "missing" {
                assert!(head.is_none(), "a session never stored was found");
                continue;
            }
            let head = head.unwrap_or_else(|| panic!("{sid} not found"));
            let i: usize = sid[1..].parse().unwrap();
            assert_eq!(
                head.user_id,
                format!("user-of-{sid}"),
                "{sid} got another's answer"
            );
            assert_eq!(head.revoked, i % 7 == 3, "{sid}'s revocation flag");
        }
        assert_eq!(
            store.heads.pipelines(),
            2,
            "one pipeline for the first read, one for the 60 that came while it was on its way"
        );
    }

    /// When the pipeline never comes back (a Redis that stopped answering), each read gets the
    /// timeout's error by its own deadline: the first at three seconds from its call; those
    /// that queued behind it at the earliest deadline of their own pipeline, not three seconds
    /// after it went out. A read whose caller gave up is not sent. (Virtual time: the clock
    /// moves on to the next timer whenever the runtime has nothing else to do.)
    #[tokio::test(start_paused = true)]
    async fn each_read_fails_by_its_own_deadline_when_its_pipeline_never_comes_back() {
        use super::{serve, Answer, Request, OP_TIMEOUT};
        use crate::store::StoreError;
        use std::sync::{Arc, Mutex};
        use tokio::time::Instant;

        let (queue, requests) = tokio::sync::mpsc::channel(16);
        let sent = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let seen = sent.clone();
        tokio::spawn(serve(
            requests,
            async move |batch: &[Request]| {
                let keys = batch.iter().map(|r| r.key.clone()).collect();
                seen.lock().unwrap().push(keys);
                std::future::pending::<Result<Vec<Answer>, StoreError>>().await
            },
            Arc::default(),
        ));
        let start = Instant::now();
        let read = |key: &str| {
            let (request, answer) = Request::new(key.into());
            assert!(queue.try_send(request).is_ok(), "the queue has room");
            answer
        };
        let a = read("a");
        while sent.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        // While "a" is on its way: "b" at 1 s (due at 4 s), a read whose caller gives up, and
        // "c" at 1.5 s (due at 4.5 s).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let b = read("b");
        drop(read("gone"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let c = read("c");
        for (name, answer, due) in [("a", a, 3000), ("b", b, 4000), ("c", c, 4000)] {
            let answer = tokio::time::timeout(Duration::from_secs(60), answer)
                .await
                .unwrap_or_else(|_| panic!("{name} was never answered"))
                .unwrap();
            let at = start.elapsed().as_millis();
            assert!(
                (due..due + 2).contains(&at),
                "{name} answered at {at} ms, due at {due} ms"
            );
            let e = answer.unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "redis is unavailable: no answer within {} s",
                    OP_TIMEOUT.as_secs()
                ),
                "{name}"
            );
        }
        assert_eq!(
            *sent.lock().unwrap(),
            [vec!["a"], vec!["b", "c"]],
            "a alone, then the two whose callers still wait"
        );
    }

    /// A pipeline answered with fewer answers than it had reads fails every read in it (no read
    /// gets another's answer, none is left waiting); and the task ends once the queue's last
    /// sender is dropped (the store gone).
    #[tokio::test(start_paused = true)]
    async fn a_short_answer_fails_the_whole_pipeline_and_the_task_ends_with_the_store() {
        use super::{serve, Answer, Request};
        use crate::store::StoreError;
        use std::sync::Arc;

        let (queue, requests) = tokio::sync::mpsc::channel(16);
        let (a, a_answer) = Request::new("a".into());
        let (b, b_answer) = Request::new("b".into());
        assert!(queue.try_send(a).is_ok() && queue.try_send(b).is_ok());
        let task = tokio::spawn(serve(
            requests,
            async |_: &[Request]| -> Result<Vec<Answer>, StoreError> {
                Ok(vec![(Some("{}".into()), None)])
            },
            Arc::default(),
        ));
        for answer in [a_answer, b_answer] {
            let e = answer.await.unwrap().unwrap_err().to_string();
            assert_eq!(e, "redis is unavailable: 1 answers to 2 reads");
        }
        drop(queue);
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the reads' task outlived its queue")
            .unwrap();
    }

    /// A read that finds the queue full waits for room until its deadline, then gets the
    /// timeout; with room it goes in; with the queue's task gone it comes back to be queued
    /// elsewhere.
    #[tokio::test(start_paused = true)]
    async fn a_read_that_finds_the_queue_full_waits_for_room_until_its_deadline() {
        use super::{enqueue, Request, Unqueued, OP_TIMEOUT};
        use tokio::time::Instant;

        let (queue, mut requests) = tokio::sync::mpsc::channel(1);
        let (first, _first) = Request::new("first".into());
        assert!(enqueue(&queue, first).await.is_ok());
        let start = Instant::now();
        let (second, _second) = Request::new("second".into());
        assert!(matches!(
            enqueue(&queue, second).await,
            Err(Unqueued::TimedOut)
        ));
        let waited = start.elapsed();
        assert!(
            waited >= OP_TIMEOUT && waited < OP_TIMEOUT + Duration::from_millis(2),
            "waited {waited:?} for room"
        );
        assert_eq!(requests.recv().await.unwrap().key, "first");
        let (third, _third) = Request::new("third".into());
        assert!(enqueue(&queue, third).await.is_ok());
        drop(requests);
        let (fourth, _fourth) = Request::new("fourth".into());
        assert!(matches!(
            enqueue(&queue, fourth).await,
            Err(Unqueued::Gone(back)) if back.key == "fourth"
        ));
    }

    /// Every read waiting on a pipeline gets the error of a Redis that is gone, naming it; the
    /// reads' task serves again once Redis is back.
    #[tokio::test]
    async fn a_failed_pipeline_fails_every_read_in_it_and_the_next_ones_go_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start(dir.path());
        let store = server.store();
        store
            .create_session(&session("s1", false), 10)
            .await
            .unwrap();
        assert!(store.session_head("s1").await.unwrap().is_some());
        drop(server);
        let reads = futures_util::future::join_all((0..5).map(|_| store.session_head("s1"))).await;
        for read in reads {
            let e = read.unwrap_err().to_string();
            assert!(
                e.starts_with("redis is unavailable: reading a session"),
                "{e}"
            );
        }
        server = Server::start(dir.path());
        store
            .create_session(&session("s2", false), 10)
            .await
            .unwrap();
        let head = store.session_head("s2").await.unwrap().unwrap();
        assert_eq!(head.user_id, "user-of-s2");
        drop(server);
    }
}
