//! Listeners and connections: binds TCP addresses and unix sockets (or takes those systemd
//! passed, socket activation), serves HTTP/1.1 keep-alive with hyper, and on shutdown stops
//! accepting, lets in-flight requests finish for the grace period, then returns.
//!
//! `run` takes already-bound listeners and a shutdown future, so tests bind port 0 and stop the
//! server by resolving the future; `run_until` also lets the future say whether to drain
//! (SIGTERM) or stop at once (SIGINT).

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::config::{ListenAddr, SocketPerms};
use crate::routes::{self, Peer};
use crate::signal::Stop;
use crate::state::AppState;

mod head_deadline;

/// A bound listener.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Where it listens, for the startup log line.
    pub fn describe(&self) -> String {
        match self {
            Self::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Self::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}

/// Binds every configured address, unix sockets with the default permissions (0660, the
/// process's group).
pub async fn bind(addrs: &[ListenAddr]) -> std::io::Result<Vec<Listener>> {
    bind_with(addrs, &SocketPerms::default()).await
}

/// Binds every configured address. A stale unix socket file is replaced; the new one gets
/// `perms` (`server.socket_mode` / `server.socket_group`, so Nginx's user can connect).
pub async fn bind_with(
    addrs: &[ListenAddr],
    perms: &SocketPerms,
) -> std::io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for addr in addrs {
        match addr {
            ListenAddr::Tcp(a) => {
                out.push(Listener::Tcp(TcpListener::bind(a).await.map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot listen on {a}: {e}"))
                })?))
            }
            ListenAddr::Unix(path) => {
                if path.exists() {
                    std::fs::remove_file(path)?;
                }
                let l = UnixListener::bind(path).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot listen on {}: {e}", path.display()),
                    )
                })?;
                use std::os::unix::fs::PermissionsExt;
                if let Some(gid) = perms.gid {
                    std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot give {} to group {gid}: {e}", path.display()),
                        )
                    })?;
                }
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(perms.mode))?;
                out.push(Listener::Unix(l, path.clone()));
            }
        }
    }
    Ok(out)
}

/// A listening socket systemd passed (socket activation: `idgate.socket`), not yet handed to
/// the runtime.
#[derive(Debug)]
pub enum Inherited {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// The listening sockets systemd passed (`LISTEN_FDS`, see sd_listen_fds(3)), in order; none
/// outside socket activation. Call it before any other thread starts: it clears the variables,
/// as the protocol asks, so no child inherits them. A descriptor that is not a listening TCP
/// or unix stream socket is an error, not a listener that would fail every accept.
pub fn inherited() -> std::io::Result<Vec<Inherited>> {
    let mut fds = listenfd::ListenFd::from_env();
    (0..fds.len())
        .map(|i| {
            let taken = match fds.take_tcp_listener(i) {
                Ok(Some(l)) => Some(Inherited::Tcp(l)),
                _ => fds
                    .take_unix_listener(i)
                    .ok()
                    .flatten()
                    .map(Inherited::Unix),
            };
            let listening = match &taken {
                Some(Inherited::Tcp(l)) => socket2::SockRef::from(l).is_listener(),
                Some(Inherited::Unix(l)) => socket2::SockRef::from(l).is_listener(),
                None => Ok(false),
            };
            match (taken, listening) {
                (Some(l), Ok(true)) => Ok(l),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "socket {} passed by systemd (LISTEN_FDS) is not a listening TCP or unix \
                         stream socket",
                        i + 1
                    ),
                )),
            }
        })
        .collect()
}

impl Inherited {
    /// The listener on the runtime (call it inside one).
    pub fn into_listener(self) -> std::io::Result<Listener> {
        match self {
            Self::Tcp(l) => {
                l.set_nonblocking(true)?;
                Ok(Listener::Tcp(TcpListener::from_std(l)?))
            }
            Self::Unix(l) => {
                l.set_nonblocking(true)?;
                let path = l
                    .local_addr()?
                    .as_pathname()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default();
                Ok(Listener::Unix(UnixListener::from_std(l)?, path))
            }
        }
    }
}

/// Serves until `shutdown` resolves, then drains for `server.shutdown_grace`.
pub async fn run(
    listeners: Vec<Listener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    run_until(listeners, state, async {
        shutdown.await;
        Stop::Drain
    })
    .await
}

/// The state requests are served with, swapped whole by a reload (SIGHUP): each request takes
/// the current one with a single atomic load.
pub type SharedState = Arc<arc_swap::ArcSwap<AppState>>;

/// Serves until `shutdown` resolves; then drains for `server.shutdown_grace`
/// ([`Stop::Drain`]) or closes every connection at once ([`Stop::Fast`]).
pub async fn run_until(
    listeners: Vec<Listener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = Stop>,
) {
    run_shared(listeners, Arc::new(arc_swap::ArcSwap::new(state)), shutdown).await
}

/// [`run_until`] with a state that can be replaced while serving (see `reload`).
pub async fn run_shared(
    listeners: Vec<Listener>,
    state: SharedState,
    shutdown: impl Future<Output = Stop>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // One cap for every listener: `server.max_connections` served at once, the rest wait in
    // the kernel's listen backlog (a reload does not change it).
    let slots = Arc::new(Semaphore::new(state.load().config.server.max_connections));
    // Every connection task holds a clone of `alive_tx`; when the last one ends, `recv` on
    // `alive_rx` returns `None`: the drain is complete.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        tracing::info!(listen = %listener.describe(), "listening");
        let (state, stop, alive) = (state.clone(), stop_rx.clone(), alive_tx.clone());
        let slots = slots.clone();
        accept_tasks.push(tokio::spawn(accept_loop(
            listener, state, stop, alive, slots,
        )));
    }
    drop(alive_tx);
    let how = shutdown.await;
    let _ = stop_tx.send(true);
    for t in accept_tasks {
        let _ = t.await;
    }
    let grace = match how {
        Stop::Drain => state.load().config.server.shutdown_grace,
        Stop::Fast => Duration::ZERO,
    };
    if tokio::time::timeout(grace, alive_rx.recv()).await.is_err() && how == Stop::Drain {
        tracing::warn!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
    tracing::info!("stopped");
}

async fn accept_loop(
    listener: Listener,
    state: SharedState,
    mut stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
    slots: Arc<Semaphore>,
) {
    let mut last_full_warning: Option<Instant> = None;
    loop {
        if slots.available_permits() == 0
            && last_full_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10))
        {
            tracing::warn!("server.max_connections reached: new connections wait until one closes");
            last_full_warning = Some(Instant::now());
        }
        let slot = tokio::select! {
            _ = stop.changed() => return,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = accept(&listener, &state) => a,
        };
        let held = (alive.clone(), slot);
        match accepted {
            Ok(Accepted::Tcp(stream, peer)) => {
                let _ = stream.set_nodelay(true);
                spawn_connection(stream, peer, state.clone(), stop.clone(), held);
            }
            Ok(Accepted::Unix(stream)) => {
                let peer = Peer {
                    addr: None,
                    trusted: true,
                    admin: false,
                };
                spawn_connection(stream, peer, state.clone(), stop.clone(), held);
            }
            Err(e) => {
                // Usually descriptor exhaustion: back off instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream, Peer),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener, state: &SharedState) -> std::io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, addr) = l.accept().await?;
            // The peer lists in force when the connection is accepted.
            let state = state.load();
            let ip = addr.ip().to_canonical();
            let server = &state.config.server;
            Ok(Accepted::Tcp(
                stream,
                Peer {
                    addr: Some(addr),
                    trusted: server.trusted_peers.iter().any(|n| n.contains(&ip)),
                    admin: server.admin_peers.iter().any(|n| n.contains(&ip)),
                },
            ))
        }
        Listener::Unix(l, _) => Ok(Accepted::Unix(l.accept().await?.0)),
    }
}

/// Serves one connection. `held` is dropped when it ends: the drain's liveness token and the
/// connection's slot under `server.max_connections`.
fn spawn_connection<S>(
    stream: S,
    peer: Peer,
    state: SharedState,
    mut stop: watch::Receiver<bool>,
    held: (mpsc::Sender<()>, OwnedSemaphorePermit),
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = Arc::new(peer);
    let peer_addr = peer.addr;
    // The head's deadline in force when the connection is accepted.
    let header_timeout = state.load().config.server.header_timeout;
    let clock = head_deadline::HeadClock::start();
    tokio::spawn(async move {
        let _held = held;
        let answers = clock.clone();
        let service = service_fn(move |req| {
            let (state, peer) = (state.load_full(), peer.clone());
            let answering = answers.clone().answering();
            async move {
                let resp = serve(state, peer, req).await;
                drop(answering);
                Ok::<_, Infallible>(resp)
            }
        });
        // No hyper timer: the head's deadline is `clock`'s (see `head_deadline`).
        let conn = http1::Builder::new()
            .header_read_timeout(None)
            .max_header_size(crate::http::MAX_HEAD)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let overdue = clock.overdue(header_timeout);
        tokio::pin!(overdue);
        // `None`: the head's time ran out first; the connection is dropped, which closes it.
        let result = tokio::select! {
            r = conn.as_mut() => Some(r),
            () = overdue.as_mut() => None,
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                tokio::select! {
                    r = conn.as_mut() => Some(r),
                    () = overdue => None,
                }
            }
        };
        let Some(result) = result else {
            tracing::debug!(peer = ?peer_addr, "connection closed: no request head within server.header_timeout");
            return;
        };
        match result {
            // hyper answered 400 or 431 itself (a malformed or oversized request head): the
            // request never reached a route, so this is its log line.
            Err(e) if e.is_parse() || e.is_parse_too_large() => {
                tracing::warn!(peer = ?peer_addr, error = %e, "request refused before routing: malformed or larger than 64 KiB");
            }
            Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
            Ok(()) => {}
        }
    });
}

/// One request, logged: login traffic at info, the high-volume `/auth` at debug. Every line
/// has the request id (Nginx's `X-Request-Id` when it sends one, else a process-wide counter),
/// method, path, status and latency; `/auth` lines add the decision and the user id. No header
/// value that could hold a secret (cookies, tokens) is ever logged.
async fn serve(
    state: Arc<AppState>,
    peer: Arc<Peer>,
    req: crate::http::Request,
) -> crate::http::Response {
    let path = req.uri().path();
    // `/forward-auth` is the same decision for other gateways: counted and logged as one.
    let is_auth = path == "/auth" || path.starts_with("/auth/") || path == "/forward-auth";
    if is_auth {
        // Only what the debug line needs, the clock read included, and only when it is on: the
        // hot path stays as it was.
        let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            (
                Instant::now(),
                request_id(&req),
                shortened(req.uri().path()),
            )
        });
        let resp = routes::handle(state.clone(), peer, req).await;
        let status = resp.status().as_u16();
        state.metrics.request("/auth", status);
        if let Some((start, request_id, path)) = logged {
            let user_id = resp
                .headers()
                .get(crate::headers::MIA_USERID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::debug!(
                %request_id,
                method = "AUTH",
                %path,
                status,
                latency_us = start.elapsed().as_micros() as u64,
                user_id,
                decision = crate::metrics::decision(status),
                "/auth"
            );
        }
        return resp;
    }
    let start = Instant::now();
    let request_id = request_id(&req);
    let method = req.method().clone();
    let path = shortened(req.uri().path());
    let resp = routes::handle(state.clone(), peer, req).await;
    state.metrics.request(&path, resp.status().as_u16());
    tracing::info!(
        %request_id,
        %method,
        %path,
        status = resp.status().as_u16(),
        latency_ms = start.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

/// A request path for a log line: at most 200 bytes (hyper allows only visible ASCII in it, so
/// it needs no escaping), with the length when it was cut.
fn shortened(path: &str) -> String {
    match path.get(..200) {
        Some(head) if path.len() > 200 => format!("{head}…({} bytes)", path.len()),
        _ => path.to_owned(),
    }
}

fn request_id(req: &crate::http::Request) -> String {
    crate::http::client::request_id(req.headers())
}
