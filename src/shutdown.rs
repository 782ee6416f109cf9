//! Turning SIGINT and SIGTERM into the cancellation token the whole server stops on.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGINT or SIGTERM (on a task of its own).
///
/// # Errors
/// Fails when the signal handlers cannot be installed.
pub fn on_signal(token: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("interrupted; shutting down"),
            _ = term.recv() => tracing::info!("terminated; shutting down"),
            () = token.cancelled() => return,
        }
        token.cancel();
    });
    Ok(())
}
