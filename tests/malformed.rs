//! Malformed and hostile HTTP traffic, straight to idgate and through Nginx (issue 12, item 5):
//! 10 000 requests that no well-behaved client sends — broken request lines, oversized and
//! duplicated headers, invalid UTF-8, truncated bodies, chunked garbage, pipelined garbage,
//! slow senders, plain noise — with a well-formed request interleaved after every 50. idgate
//! must not panic or stop, must answer every well-formed request as usual (no 5xx), and must
//! give back its connections and, within a margin, its memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// How many hostile requests, in all (half to idgate, half through Nginx).
const HOSTILE: usize = 10_000;
/// A well-formed request after every this many hostile ones.
const EVERY: usize = 50;
/// Sending threads.
const THREADS: usize = 4;

/// A small deterministic generator (xorshift), so a failure replays the same traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next() % from.len()]
    }
}

const PATHS: &[&str] = &[
    "/auth",
    "/authorize?appId=web&providerId=dev",
    "/oauth/token",
    "/refreshtoken",
    "/userinfo",
    "/logout",
    "/web-login",
    "/-/healthz",
    "/sessions/x",
    "/still-mine",
];

/// One hostile request, as bytes, and whether to send it slowly (a few bytes at a time).
fn hostile(rng: &mut Rng) -> (Vec<u8>, bool) {
    let path = rng.pick(PATHS);
    let head = |extra: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    let bytes: Vec<u8> = match rng.next() % 16 {
        // Broken request lines.
        0 => rng
            .pick(&[
                "GET\r\n\r\n",
                "GET /\r\n\r\n",
                "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                " / HTTP/1.1\r\n\r\n",
                "G\0T / HTTP/1.1\r\n\r\n",
                "GET  /  HTTP/1.1\r\n\r\n",
                "GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
                "CONNECT evil.example:443 HTTP/1.1\r\n\r\n",
                "get / http/1.1\r\n\r\n",
                "GET / HTTP/1.1\n\n",
                "\r\n\r\n\r\n",
            ])
            .into(),
        // Oversized headers and request lines.
        1 => {
            let n = [9_000, 70_000, 200_000][rng.next() % 3];
            head(&format!("X-Big: {}\r\n", "a".repeat(n))).into_bytes()
        }
        2 => format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "b".repeat(70_000)).into_bytes(),
        3 => head(&"X-Many: 1\r\n".repeat(2_000)).into_bytes(),
        // Duplicated and conflicting headers.
        4 => format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 5\r\n\
             Content-Length: 50\r\n\r\nhello"
        )
        .into_bytes(),
        5 => format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\
             Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /-/metrics HTTP/1.1\r\n\r\n"
        )
        .into_bytes(),
        6 => head(&"Cookie: sid=x; sid=y; idgate_login=z\r\n".repeat(100)).into_bytes(),
        // Invalid UTF-8 in the path, in header values, in the body.
        7 => {
            let mut b =
                b"GET /a\xff\xfe/../auth HTTP/1.1\r\nHost: x\r\nCookie: sid=\xc3\x28\r\n".to_vec();
            b.extend_from_slice(b"Original-Request-Uri: /\xc0\xaf\r\n\r\n");
            b
        }
        8 => {
            let mut b =
                b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: 12\r\n\r\n"
                    .to_vec();
            b.extend_from_slice(b"{\"code\":\"\xff\"}");
            b
        }
        // Truncated bodies (the connection ends before the body does).
        9 => format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\n\r\n{{\"refreshToken\":"
        )
        .into_bytes(),
        // Chunked garbage.
        10 => format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n\
             ffffffffffffffffff\r\n"
        )
        .into_bytes(),
        // Pipelined garbage after a valid request.
        11 => {
            let mut b = b"GET /-/healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
            b.extend((0..200).map(|_| (rng.next() % 256) as u8));
            b
        }
        // Header lines that are not header lines.
        12 => head(rng.pick(&[
            "NoColon\r\n",
            "Host : x\r\n",
            "X: a\r\n folded\r\n",
            ": empty-name\r\n",
            "X-\x01: ctl\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 99999999999999999999\r\n",
        ]))
        .into_bytes(),
        // Forged decision inputs on internal paths.
        13 => format!(
            "GET /auth/{} HTTP/1.1\r\nHost: x\r\nOriginal-Request-Uri: /%2e%2e/admin\r\n\
             Original-Request-Method: DELETE\r\nAuthorization: Bearer {}\r\n\r\n",
            "(".repeat(rng.next() % 5_000),
            "e".repeat(rng.next() % 9_000)
        )
        .into_bytes(),
        // Noise.
        _ => (0..1 + rng.next() % 2_000)
            .map(|_| (rng.next() % 256) as u8)
            .collect(),
    };
    (bytes, rng.next().is_multiple_of(200))
}

/// Sends `bytes` on a new connection (slowly: in small pieces with pauses), closes the sending
/// half and reads whatever comes back; the status, if an HTTP answer came.
fn fire(port: u16, bytes: &[u8], slow: bool) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(15))).ok()?;
    if slow {
        for piece in bytes.chunks(16).take(20) {
            if s.write_all(piece).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    } else {
        let _ = s.write_all(bytes);
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_traffic_neither_stops_nor_degrades_idgate() {
    let mut stack = Stack::start();
    let site = stack.site();
    let alice = Browser::new();
    assert_eq!(login(&stack, &alice, "/", "alice").await.status(), 200);
    let sid = alice.cookie(&site, "sid").unwrap();
    let (nginx, direct) = (stack.nginx.port, stack.idgate.addr.port());

    // A well-formed request: the session's page through Nginx, or `/auth` straight at idgate
    // (the test is a trusted peer), alternately.
    let cookie = format!("sid={sid}");
    let well_formed = move |n: usize| -> (u16, String) {
        let r = if n.is_multiple_of(2) {
            raw::send(
                nginx,
                "GET",
                "/still-mine",
                &[("cookie", &cookie), ("accept", "application/json")],
            )
        } else {
            raw::send(
                direct,
                "GET",
                "/auth",
                &[("cookie", &cookie), ("original-request-uri", "/still-mine")],
            )
        };
        (r.status, format!("{:?}", r.headers))
    };
    // Warm up, then the baseline.
    for n in 0..400 {
        assert_eq!(well_formed(n).0, 200);
    }
    let (rss_before, fds_before) = (stack.idgate.proc.rss_kib(), stack.idgate.proc.open_fds());

    let sent = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (sent, answered, well_formed) =
                (sent.clone(), answered.clone(), well_formed.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ ((t as u64 + 1) * 0x9E37_79B9));
                let mut checked = Vec::new();
                for i in 0..HOSTILE / THREADS {
                    let (bytes, slow) = hostile(&mut rng);
                    let port = if i.is_multiple_of(2) { direct } else { nginx };
                    if fire(port, &bytes, slow).is_some() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    if i % EVERY == EVERY - 1 {
                        checked.push((i, well_formed(i / EVERY)));
                    }
                }
                checked
            })
        })
        .collect();
    let mut well = 0;
    for w in workers {
        for (i, (status, headers)) in w.join().expect("a sending thread") {
            assert_eq!(
                status, 200,
                "well-formed request after hostile #{i}: {headers}"
            );
            well += 1;
        }
    }
    let sent = sent.load(Ordering::Relaxed);
    assert_eq!(sent, HOSTILE);
    eprintln!(
        "malformed: {sent} hostile requests ({} answered over HTTP) and {well} well-formed ones \
         in {:.1} s",
        answered.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );

    // Still serving, and nothing in the log says a task panicked.
    assert!(stack.idgate.proc.is_running(), "idgate stopped");
    assert_eq!(well_formed(0).0, 200);
    let log = stack.idgate.log_caught_up().await;
    assert!(!log.contains("panicked"), "a panic in idgate's log");

    // Its connections are given back; its memory comes back within a margin.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.idgate.proc.open_fds() > fds_before + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (rss_after, fds_after) = (stack.idgate.proc.rss_kib(), stack.idgate.proc.open_fds());
    eprintln!(
        "malformed: idgate RSS {rss_before} KiB before, {rss_after} KiB after; open fds \
         {fds_before} before, {fds_after} after"
    );
    assert!(fds_after <= fds_before + 2, "file descriptors leaked");
    assert!(
        rss_after <= rss_before + 16 * 1024,
        "memory grew by {} KiB",
        rss_after - rss_before
    );
}
