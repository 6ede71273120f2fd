//! The `idgate` binary: parse the command line, run it, map the outcome to an exit code.
//! Everything else lives in the library (see `lib.rs`).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: under bursts of connections glibc keeps the peak's
/// memory for good (the soak's RSS grew by each burst), mimalloc returns freed pages within
/// milliseconds; its small-object size classes also make a cached session smaller.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = idgate::cli::Cli::parse();
    match idgate::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("idgate: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
