//! The `idgate` binary: parse the command line, run it, map the outcome to an exit code.
//! Everything else lives in the library (see `lib.rs`).

use std::process::ExitCode;

use clap::Parser;

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
