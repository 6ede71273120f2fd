//! The cold path of `/auth`, measured in process (`scripts/bench-cold` runs it per signing
//! algorithm and store).
//!
//! The first request of a session finds its token in no cache: idgate verifies the signature,
//! reads the session from the store, and builds the cached answer
//! (`session::Authenticator::authenticate`). This program mints `--sessions` sessions in the
//! configured store, then measures, on the same tokens and the same runtime (tokio, two worker
//! threads, `--concurrency` tasks taking the next token in turn):
//!
//! - **verify**: the signature and claims check alone (`JwtKeys::verify`), the floor;
//! - **read**: the store's read of each session alone (`Sessions::session_head`, the read the
//!   cold path makes), for the record;
//! - **cold**: the whole cold path, every token once, with the token cache emptied between
//!   rounds.
//!
//! Rounds alternate the order of the three. It prints one line per round and the medians:
//! microseconds per token (wall time of the whole set over its size, both cores busy), the
//! process's CPU per token, and `cold / verify - 1`, what the store read and the rest add on
//! top of the verification (goal: at most 25 %). Two more shares of the verification's CPU
//! tell where that goes: "read alone", the read's own CPU (this process's and, with
//! `--server-pid`, the store server's) with nothing else running, the least it adds when both
//! cores are busy; and "server", the store server's CPU in the cold path.
//!
//! With `--server-pid PID`, each pass also counts the CPU time of process PID (Redis, on the
//! same cores). With `--only verify|read|cold`, each round runs that pass alone and prints
//! nothing: for a profile of one of them.
//!
//! With `--age SECS`, the sessions are minted as if created that long ago. Older than the
//! interval at which `/auth` reports a session's activity (a minute), their first request
//! also reports it (a store write, batched): the first request of every live session after
//! idgate restarts.
//!
//! With `--idp-tokens BYTES`, each session keeps IdP tokens of about that many bytes in all (an
//! access, a refresh and an ID token, a third each, sealed as a login seals them), as a session
//! logged in through an IdP does; without it, none, as `idgate sessions mint` makes them.
//!
//! With `--tokens PATH`, the minted tokens are written to PATH, and a later run given the same
//! PATH (and the same store) reads them back instead of minting: `scripts/bench-cold` measures
//! each case in several processes on one set of sessions, since how fast the cold path runs
//! varies more between processes than between the rounds of one.
//!
//! ```text
//! cargo run --release --example cold -- --config idgate.toml --sessions 20000
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use idgate::config::Config;
use idgate::state::AppState;

/// The daemon's allocator (`src/main.rs`), so the cold path is measured as the daemon runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    config: String,
    /// Where the tokens are kept between runs (see the module doc).
    tokens: Option<std::path::PathBuf>,
    sessions: usize,
    concurrency: usize,
    rounds: usize,
    /// How long ago the minted sessions were created, in seconds.
    age: usize,
    /// The size of the IdP tokens each minted session keeps, in bytes (0: none).
    idp_tokens: usize,
    /// The store's server (Redis), whose CPU each pass counts too.
    server_pid: Option<u32>,
    /// Only this pass, the others skipped (to profile one of them).
    only: Option<Phase>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: String::new(),
        tokens: None,
        sessions: 20_000,
        concurrency: 32,
        rounds: 3,
        age: 0,
        idp_tokens: 0,
        server_pid: None,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--config" => args.config = value.clone(),
            "--tokens" => args.tokens = Some(value.clone().into()),
            "--sessions" => args.sessions = number()?.max(1),
            "--concurrency" => args.concurrency = number()?.max(1),
            "--rounds" => args.rounds = number()?.max(1),
            "--age" => args.age = number()?,
            "--idp-tokens" => args.idp_tokens = number()?,
            "--only" => {
                args.only = Some(match value.as_str() {
                    "verify" => Phase::Verify,
                    "read" => Phase::Read,
                    "cold" => Phase::Cold,
                    _ => return Err(format!("{flag}: verify, read or cold")),
                })
            }
            "--server-pid" => {
                args.server_pid = Some(u32::try_from(number()?).map_err(|e| e.to_string())?)
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.config.is_empty() {
        return Err("--config is required".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "cold: {e}\nusage: cold --config PATH [--tokens PATH] [--sessions N] [--concurrency C] [--rounds R] [--age SECS] [--idp-tokens BYTES] [--server-pid PID] [--only verify|read|cold]"
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cold: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cold: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(std::path::Path::new(&args.config))?;
    let app_id = config
        .apps
        .keys()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the config has no app"))?
        .clone();
    let state = AppState::build(config).await?;
    let tokens = match &args.tokens {
        Some(path) if path.exists() => std::fs::read_to_string(path)?
            .lines()
            .map(str::to_owned)
            .collect(),
        kept => {
            let tokens = mint(&state, &app_id, &args).await?;
            if let Some(path) = kept {
                std::fs::write(path, tokens.join("\n"))?;
            }
            tokens
        }
    };
    anyhow::ensure!(!tokens.is_empty(), "no tokens to measure");
    // The session each token names, for the reads alone.
    let sids = tokens
        .iter()
        .map(|token| Ok(state.auth.keys().verify(token)?.sid))
        .collect::<anyhow::Result<Vec<String>>>()?;
    let (tokens, sids) = (Arc::new(tokens), Arc::new(sids));

    let server = args.server_pid.map(ServerCpu::new).transpose()?;
    let [mut verify, mut read, mut cold] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        let mut phases = [Phase::Verify, Phase::Read, Phase::Cold];
        if round % 2 == 1 {
            phases.reverse();
        }
        for phase in phases {
            if args.only.is_some_and(|only| only != phase) {
                continue;
            }
            let on = Pass {
                state: &state,
                tokens: &tokens,
                sids: &sids,
                concurrency: args.concurrency,
                server: server.as_ref(),
            };
            let m = measure(on, phase).await?;
            match phase {
                Phase::Verify => verify.push(m),
                Phase::Read => read.push(m),
                Phase::Cold => cold.push(m),
            }
        }
        if args.only.is_none() {
            let label = format!("round {}", round + 1);
            report(&label, &[round], &verify, &read, &cold);
        }
    }
    if args.only.is_none() {
        let all: Vec<usize> = (0..args.rounds).collect();
        report("median", &all, &verify, &read, &cold);
    }
    Ok(())
}

/// Prints one line of figures, each the median over `rounds` (one round: its own figure).
fn report(label: &str, rounds: &[usize], verify: &[Measure], read: &[Measure], cold: &[Measure]) {
    let fig = |f: &dyn Fn(usize) -> f64| median(rounds.iter().map(|&i| f(i)).collect());
    println!(
        "{label}: verify {:.1} us (cpu {:.1}), read {:.1} us (cpu {:.1}, server {:.1}), read alone {:+.0} %, cold {:.1} us (cpu {:.1}, server {:.1}), server {:+.0} %, on top {:+.0} %",
        fig(&|i| verify[i].wall_us),
        fig(&|i| verify[i].cpu_us),
        fig(&|i| read[i].wall_us),
        fig(&|i| read[i].cpu_us),
        fig(&|i| read[i].server_us),
        // The read alone, costed as its CPU (idgate's and the store server's) over the
        // verification's: what it adds at the least when both cores are busy.
        fig(&|i| (read[i].cpu_us + read[i].server_us) / verify[i].cpu_us) * 100.0,
        fig(&|i| cold[i].wall_us),
        fig(&|i| cold[i].cpu_us),
        fig(&|i| cold[i].server_us),
        // The store server's own CPU in the cold path, over the verification's.
        fig(&|i| cold[i].server_us / verify[i].cpu_us) * 100.0,
        fig(&|i| cold[i].wall_us / verify[i].wall_us - 1.0) * 100.0
    );
}

/// `n` sessions of distinct users, minted as `idgate sessions mint` does.
async fn mint(state: &Arc<AppState>, app_id: &str, args: &Args) -> anyhow::Result<Vec<String>> {
    let created_at = idgate::now_secs() - i64::try_from(args.age)?;
    let idp_tokens = (args.idp_tokens > 0).then(|| {
        let third = "x".repeat(args.idp_tokens / 3);
        Arc::new(idgate::idp::IdpTokens {
            access_token: third.clone(),
            refresh_token: Some(third.clone()),
            id_token: Some(third),
            expires_at: Some(created_at + 300),
            asserted: Default::default(),
        })
    });
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (state, next, app_id) = (state.clone(), next.clone(), app_id.to_owned());
        let idp_tokens = idp_tokens.clone();
        let n = args.sessions;
        tasks.push(tokio::spawn(async move {
            let mut minted = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(minted);
                }
                let user = format!("cold-{i}");
                let token = idgate::cli::mint_at(
                    &state,
                    &app_id,
                    &user,
                    "users",
                    idp_tokens.as_deref(),
                    created_at,
                );
                minted.push(token.await?);
            }
        }));
    }
    let mut tokens = Vec::with_capacity(args.sessions);
    for task in tasks {
        tokens.extend(task.await??);
    }
    Ok(tokens)
}

/// What one pass over the tokens measures.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    /// The signature and claims check alone.
    Verify,
    /// The store's read of each session alone.
    Read,
    /// The whole first request of each session.
    Cold,
}

#[derive(Clone, Copy)]
struct Measure {
    /// Wall time of the whole set over its size.
    wall_us: f64,
    /// The process's CPU time over the set's size.
    cpu_us: f64,
    /// The store server's CPU time over the set's size (0 without `--server-pid`).
    server_us: f64,
}

/// What a pass runs on.
#[derive(Clone, Copy)]
struct Pass<'a> {
    state: &'a Arc<AppState>,
    tokens: &'a Arc<Vec<String>>,
    /// The session each token names.
    sids: &'a Arc<Vec<String>>,
    concurrency: usize,
    /// The store's server, whose CPU is counted too (Redis).
    server: Option<&'a ServerCpu>,
}

/// Runs every token once through the cold path, the verification alone, or its session's
/// store read alone (`phase`).
async fn measure(on: Pass<'_>, phase: Phase) -> anyhow::Result<Measure> {
    if matches!(phase, Phase::Cold) {
        // Every token's first request again: nothing cached.
        for token in on.tokens.iter() {
            on.state.auth.forget_token(token);
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let server0 = on.server.map(ServerCpu::used).transpose()?;
    let cpu0 = process_cpu();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..on.concurrency {
        let (state, tokens, sids) = (on.state.clone(), on.tokens.clone(), on.sids.clone());
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(token), Some(sid)) = (tokens.get(i), sids.get(i)) else {
                    return anyhow::Ok(());
                };
                match phase {
                    Phase::Verify => {
                        state.auth.keys().verify(token)?;
                    }
                    Phase::Read => {
                        state
                            .sessions
                            .session_head(sid)
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("a minted session is not stored"))?;
                    }
                    Phase::Cold => {
                        state
                            .auth
                            .authenticate(token)
                            .await
                            .map_err(|e| anyhow::anyhow!("a minted session was refused: {e:?}"))?;
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let wall = start.elapsed();
    let cpu = process_cpu() - cpu0;
    let server = match (on.server, server0) {
        // A thread of the server that ended during the pass takes its time with it.
        (Some(s), Some(s0)) => s.used()?.saturating_sub(s0),
        _ => Duration::ZERO,
    };
    let per_token = |d: Duration| d.as_secs_f64() * 1e6 / on.tokens.len() as f64;
    Ok(Measure {
        wall_us: per_token(wall),
        cpu_us: per_token(cpu),
        server_us: per_token(server),
    })
}

/// This process's CPU time so far, every thread's (user + system).
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec.unsigned_abs() as u32)
}

/// Another process's CPU time (the store's server), summed over its threads' scheduler
/// accounts (`/proc/PID/task/*/schedstat`, in nanoseconds; `/proc/PID/stat` counts in
/// hundredths of a second, too coarse for a pass).
struct ServerCpu {
    tasks: std::path::PathBuf,
}

impl ServerCpu {
    fn new(pid: u32) -> anyhow::Result<Self> {
        let server = ServerCpu {
            tasks: format!("/proc/{pid}/task").into(),
        };
        server
            .used()
            .with_context(|| format!("--server-pid {pid}: its CPU time cannot be read"))?;
        Ok(server)
    }

    fn used(&self) -> anyhow::Result<Duration> {
        let mut ns = 0u64;
        for task in std::fs::read_dir(&self.tasks)? {
            let stat = std::fs::read_to_string(task?.path().join("schedstat"))?;
            let on_cpu = stat
                .split_whitespace()
                .next()
                .ok_or_else(|| anyhow::anyhow!("empty schedstat"))?;
            ns += on_cpu.parse::<u64>()?;
        }
        Ok(Duration::from_nanos(ns))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
