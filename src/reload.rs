//! SIGHUP reloads the configuration, the keys and the rule files, atomically (and first has the
//! audit writer open its file again, for logrotate, even when the reload is refused): the new
//! configuration is read and validated and a complete new state is built (stores opened,
//! keys loaded, rules parsed) before it replaces the old one in a single swap. A configuration
//! that does not validate is refused with a log line, and the previous one keeps serving.
//!
//! Requests in flight finish with the state they started with. Listen addresses and socket
//! permissions are bound at start, and so is `[telemetry]`: changing them needs a restart (a
//! reload says so). The new
//! state starts with an empty token cache, so each session is verified once more.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::server::SharedState;
use crate::state::AppState;

/// Registers the handler of SIGHUP now and returns the task that reloads on every SIGHUP, until
/// the process ends. `background` are the running state's tasks. Until this is called, SIGHUP
/// ends the process (its default action): call it before the daemon says it is ready, since
/// `systemctl reload` may follow `READY=1` at once. A SIGHUP that arrives before the task first
/// runs is kept, not lost. Needs a runtime.
pub fn on_sighup(
    path: PathBuf,
    shared: SharedState,
    mut background: Vec<tokio::task::JoinHandle<()>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        #[cfg(unix)]
        {
            let Ok(mut hup) = hup else {
                tracing::warn!("cannot listen for SIGHUP: reloading is off");
                return;
            };
            while hup.recv().await.is_some() {
                // First, whatever becomes of the reload: logrotate renamed the audit file.
                shared.load().audit.reopen();
                match reload(&path, &shared).await {
                    Ok(tasks) => {
                        for old in std::mem::replace(&mut background, tasks) {
                            old.abort();
                        }
                        tracing::info!(config = %path.display(), "configuration reloaded");
                    }
                    Err(e) => tracing::error!(
                        config = %path.display(),
                        error = %format!("{e:#}"),
                        "reload refused; the previous configuration keeps serving"
                    ),
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (path, shared, &mut background);
        }
    }
}

async fn reload(
    path: &std::path::Path,
    shared: &SharedState,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let config = Config::load(path)?;
    config.notices.log();
    let current = shared.load();
    if config.server.listen != current.config.server.listen {
        tracing::warn!("server.listen changed: listeners are kept until a restart");
    }
    if config.telemetry != current.config.telemetry {
        tracing::warn!(
            "[telemetry] changed: traces keep the settings of the start until a restart"
        );
    }
    let next = AppState::build(config).await?;
    let tasks = next.spawn_background();
    shared.store(Arc::clone(&next));
    Ok(tasks)
}
