//! Graceful shutdown: a watch channel that turns true once, on SIGTERM or SIGINT (Ctrl-C). Every loop
//! that receives work selects on it and stops taking new work when it flips.

use tokio::sync::watch;

/// A receiver that turns true on SIGTERM or SIGINT. Must be called inside a Tokio runtime.
pub fn on_signal() -> std::io::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        #[cfg(unix)]
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        };
        #[cfg(not(unix))]
        let name = {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        };
        tracing::info!(signal = name, "shutting down");
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// A shutdown switch for tests and embedded hosts: flip it with `send(true)`.
pub fn manual() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}
