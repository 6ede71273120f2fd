//! Shutdown signals: SIGTERM drains in-flight requests for `server.shutdown_grace`; SIGINT
//! (Ctrl-C) does the same, so both are safe; a second signal is not waited for.

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received, draining"),
                    _ = int.recv() => tracing::info!("SIGINT received, draining"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
