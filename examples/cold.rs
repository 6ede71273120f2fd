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
//! - **cold**: the whole cold path, every token once, with the token cache emptied between
//!   rounds.
//!
//! Rounds alternate the order of the two. It prints one line per round and the medians:
//! microseconds per token (wall time of the whole set over its size, both cores busy), the
//! process's CPU per token, and `cold / verify - 1`, what the store read and the rest add on
//! top of the verification (goal: at most 25 %).
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
                "cold: {e}\nusage: cold --config PATH [--tokens PATH] [--sessions N] [--concurrency C] [--rounds R] [--age SECS] [--idp-tokens BYTES]"
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
    let tokens = Arc::new(tokens);

    let mut verify = Vec::new();
    let mut cold = Vec::new();
    for round in 0..args.rounds {
        for phase in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let m = measure(&state, &tokens, args.concurrency, phase == 1).await?;
            if phase == 0 {
                verify.push(m);
            } else {
                cold.push(m);
            }
        }
        let (v, c) = (verify[round], cold[round]);
        println!(
            "round {}: verify {:.1} us (cpu {:.1}), cold {:.1} us (cpu {:.1}), on top {:+.0} %",
            round + 1,
            v.wall_us,
            v.cpu_us,
            c.wall_us,
            c.cpu_us,
            (c.wall_us / v.wall_us - 1.0) * 100.0
        );
    }
    let med = |v: &[Measure], f: fn(&Measure) -> f64| median(v.iter().map(f).collect());
    let tops: Vec<f64> = verify
        .iter()
        .zip(&cold)
        .map(|(v, c)| c.wall_us / v.wall_us - 1.0)
        .collect();
    println!(
        "median: verify {:.1} us (cpu {:.1}), cold {:.1} us (cpu {:.1}), on top {:+.0} %",
        med(&verify, |m| m.wall_us),
        med(&verify, |m| m.cpu_us),
        med(&cold, |m| m.wall_us),
        med(&cold, |m| m.cpu_us),
        median(tops) * 100.0
    );
    Ok(())
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

#[derive(Clone, Copy)]
struct Measure {
    /// Wall time of the whole set over its size.
    wall_us: f64,
    /// The process's CPU time over the set's size.
    cpu_us: f64,
}

/// Runs every token once through the cold path (`cold`) or the verification alone.
async fn measure(
    state: &Arc<AppState>,
    tokens: &Arc<Vec<String>>,
    concurrency: usize,
    cold: bool,
) -> anyhow::Result<Measure> {
    if cold {
        // Every token's first request again: nothing cached.
        for token in tokens.iter() {
            state.auth.forget_token(token);
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_time()?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (state, tokens, next) = (state.clone(), tokens.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(i) else {
                    return anyhow::Ok(());
                };
                if cold {
                    state
                        .auth
                        .authenticate(token)
                        .await
                        .map_err(|e| anyhow::anyhow!("a minted session was refused: {e:?}"))?;
                } else {
                    state.auth.keys().verify(token)?;
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let wall = start.elapsed();
    let cpu = cpu_time()? - cpu0;
    let n = tokens.len() as f64;
    Ok(Measure {
        wall_us: wall.as_secs_f64() * 1e6 / n,
        cpu_us: cpu.as_secs_f64() * 1e6 / n,
    })
}

/// The process's CPU time so far (user + system), from /proc/self/stat.
fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The fields after the command name (which may hold spaces), from field 3 on.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, at 100 ticks per second on Linux.
    let ticks: u64 = fields
        .get(11..13)
        .ok_or_else(|| anyhow::anyhow!("short /proc/self/stat"))?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(Duration::from_millis(ticks * 10))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
