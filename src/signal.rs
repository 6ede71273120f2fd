//! Shutdown signals: SIGTERM drains in-flight requests for `server.shutdown_grace` (what
//! `systemctl stop` sends); SIGINT (Ctrl-C) stops accepting and exits at once, without waiting
//! for open requests. A second signal is not waited for.
//!
//! SIGHUP reloads the configuration (see `reload`); it is not a shutdown signal.

/// How the server should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Let in-flight requests finish, for up to `server.shutdown_grace`.
    Drain,
    /// Close everything now.
    Fast,
}

/// Resolves when SIGTERM (→ [`Stop::Drain`]) or SIGINT (→ [`Stop::Fast`]) arrives.
pub async fn shutdown() -> Stop {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM received, draining");
                    Stop::Drain
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT received, stopping now");
                    Stop::Fast
                }
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                Stop::Fast
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Stop::Fast
    }
}
