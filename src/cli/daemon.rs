//! The daemon's commands: `serve` (the runtime, the listeners — its own or systemd's — SIGHUP
//! reloads, systemd's notifications and watchdog) and `check-config` (everything `serve` would load, then exit), and the logging
//! both set up.

use std::path::Path;
use std::sync::Arc;

use super::{block_on, Failure};
use crate::config::Config;
use crate::state::AppState;

/// Sets up logging from the config (`RUST_LOG` wins).
pub fn init_tracing(config: Option<&Config>) {
    let level = config
        .map(|c| c.log.level.clone())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if config.is_some_and(|c| c.log.json) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// `idgate serve`: the daemon, until SIGTERM or SIGINT; SIGHUP reloads the config.
pub fn serve(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path)?;
    init_tracing(Some(&config));
    config.notices.log();
    // Before the runtime's threads: taking systemd's sockets clears LISTEN_FDS.
    let inherited = crate::server::inherited().map_err(|e| Failure::Runtime(e.into()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    runtime.block_on(async move {
        let listeners = if inherited.is_empty() {
            crate::server::bind_with(&config.server.listen, &config.server.socket)
                .await
                .map_err(anyhow::Error::from)?
        } else {
            tracing::info!(
                sockets = inherited.len(),
                "serving the sockets systemd passed (socket activation); [server] listen is not used"
            );
            inherited
                .into_iter()
                .map(crate::server::Inherited::into_listener)
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(anyhow::Error::from)?
        };
        let state = AppState::build(config).await?;
        let background = state.spawn_background();
        let shared: crate::server::SharedState = Arc::new(arc_swap::ArcSwap::new(state));
        tokio::spawn(crate::reload::on_sighup(
            path.to_owned(),
            shared.clone(),
            background,
        ));
        crate::systemd::ready();
        let _watchdog = crate::systemd::spawn_watchdog();
        let stop = async {
            let how = crate::signal::shutdown().await;
            crate::systemd::stopping();
            how
        };
        crate::server::run_shared(listeners, shared, stop).await;
        Ok(())
    })
}

/// `idgate check-config`: loads the config and builds the state from it, as `serve` would (files,
/// keys, stores), prints its notes and warnings, and says `ok`.
pub fn check_config(path: &Path) -> Result<(), Failure> {
    let c = Config::load(path)?;
    for line in &c.notices.infos {
        eprintln!("note: {line}");
    }
    for line in &c.notices.warnings {
        eprintln!("warning: {line}");
    }
    block_on(async move {
        AppState::build(c)
            .await
            .map(|_| ())
            .map_err(Failure::Runtime)
    })?;
    println!("{}: ok", path.display());
    Ok(())
}
