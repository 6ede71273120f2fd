//! The benchmark's floor: the cheapest possible `/auth` answer on idgate's own HTTP stack.
//!
//! `scripts/bench` measures idgate against this server. It runs the same stack idgate runs
//! (tokio multi-thread runtime, hyper 1 HTTP/1.1 with keep-alive, `hyper-util`'s `TokioIo`) and
//! answers every request, whatever its method or path, with `200` and a fixed set of identity
//! headers and an empty body. It does no parsing, no token check, no allocation beyond
//! what hyper itself does: whatever idgate costs above this is idgate's own work. Behind Nginx
//! it is also the floor of *any* external auth daemon, since the proxied subrequest is paid in full.
//!
//! ```text
//! cargo run --release --example floor -- --listen 127.0.0.1:0
//! ```
//!
//! Prints `listening on ADDR` (the bound address, so port 0 works) on stdout once it accepts
//! connections, then serves until killed.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The daemon's allocator (`src/main.rs`): the floor differs from idgate in what it does, not
/// in how it allocates.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Used when `--listen` is not given: idgate's own default address.
const DEFAULT_LISTEN: &str = "127.0.0.1:4280";

/// The headers of idgate's 200, with a realistic size so the bytes on the wire match.
const IDENTITY_HEADERS: [(&str, &str); 4] = [
    ("mia-allowed", "1"),
    ("mia-userid", "bench-user"),
    ("mia-groups", "users,admins"),
    (
        "mia-userproperties",
        r#"{"name":"Bench User","email":"bench@example.test"}"#,
    ),
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = parse_listen(std::env::args().skip(1))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr))
}

/// Reads `--listen ADDR` (or `--listen=ADDR`); anything else is a usage error.
fn parse_listen(mut args: impl Iterator<Item = String>) -> Result<SocketAddr, String> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = args.next().ok_or("--listen needs an address")?;
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            listen = value.to_owned();
        } else {
            return Err(format!(
                "unknown argument {arg:?}; usage: floor [--listen IP:PORT]"
            ));
        }
    }
    listen
        .parse()
        .map_err(|e| format!("--listen {listen:?}: {e}"))
}

async fn serve(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr).await?;
    // Announce the real address (port 0 → the port the OS chose) and flush, so a harness
    // reading our stdout through a pipe sees it at once. A blocking write is fine here: it
    // happens once, before any connection is served (and tokio's `io-std` is not enabled).
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    drop(stdout);

    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            // Running out of file descriptors or a connection reset before accept must not
            // stop the server; the next accept may well succeed.
            Err(e) => {
                eprintln!("floor: accept: {e}");
                continue;
            }
        };
        // The response is one small write: send it at once rather than wait on Nagle.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // Errors here are a client going away mid-request; nothing to do about them.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(allow))
                .await;
        });
    }
}

/// Every request is allowed, as the same fixed user.
async fn allow(_req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let mut response = Response::new(Empty::new());
    let headers = response.headers_mut();
    for (name, value) in IDENTITY_HEADERS {
        headers.insert(name, hyper::header::HeaderValue::from_static(value));
    }
    Ok(response)
}
