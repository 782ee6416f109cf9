//! Turning SIGINT and SIGTERM into the cancellation token the whole server stops on, and the
//! deadlines that bound how long stopping takes.
//!
//! The whole exit takes under 2 s: open connections get up to 1.5 s (the HTTP server's
//! shutdown deadline), background tasks [`TASK_DEADLINE`] more, and threads
//! still blocked in file I/O after that ([`RUNTIME_DEADLINE`]) are left behind, since a `stat`
//! on a dead network mount may never return.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long [`crate::run`] waits for its background tasks (followers, the glob rescan, the
/// keep-alive ticker) once the connections are closed. They all end on the cancellation token
/// within a step; one still running after this is stuck in a blocking call.
pub const TASK_DEADLINE: Duration = Duration::from_millis(250);

/// How long the binary's runtime waits for blocking threads when it shuts down; a thread
/// still blocked after this is abandoned (the process exits without it).
pub const RUNTIME_DEADLINE: Duration = Duration::from_millis(100);

/// Closes `tracker` and waits for its tasks, at most `deadline`. Returns whether they all
/// ended; the ones that did not are left running (a task cannot be stopped inside a blocking
/// call), so the caller can go on exiting.
pub async fn wait_tasks(tracker: &TaskTracker, deadline: Duration) -> bool {
    tracker.close();
    tokio::time::timeout(deadline, tracker.wait()).await.is_ok()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_stuck_in_a_blocking_call_does_not_hold_up_the_wait() {
        let tracker = TaskTracker::new();
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        // Like a follower whose `stat` hangs on a dead network mount: its blocking call does
        // not return, whatever the token says.
        tracker.spawn(async move {
            let _ = tokio::task::spawn_blocking(move || stuck.recv()).await;
        });
        tracker.spawn(async {});
        let started = std::time::Instant::now();
        assert!(!wait_tasks(&tracker, Duration::from_millis(200)).await);
        assert!(started.elapsed() < Duration::from_secs(1));
        release.send(()).expect("the stuck task is still waiting");
        assert!(wait_tasks(&tracker, Duration::from_secs(10)).await);
    }
}
