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

/// Registers the handlers of SIGTERM and SIGINT now, and returns what resolves when one of them
/// arrives (SIGTERM → [`Stop::Drain`], SIGINT → [`Stop::Fast`]). Until this is called, either
/// signal ends the process (its default action): call it before the daemon says it is ready or
/// accepts a connection, since systemd may send SIGTERM the moment it hears `READY=1`. A signal
/// that arrives between this call and the first poll is kept, not lost. Needs a runtime.
pub fn shutdown() -> impl std::future::Future<Output = Stop> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match handlers {
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
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            Stop::Fast
        }
    }
}
