//! The follower task of one stream: step the follower off the async workers whenever the
//! watcher wakes it or its tick fires, and apply what it found to the stream.
//!
//! All file I/O of a step happens on a blocking thread: the follower's reads, and the first
//! fill of the stream's cache from the file's last lines ([`Stream::prepare`]); the task only
//! applies the prepared result under the stream's lock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::spool::{SpoolProgress, StopOnDrop};
use super::{Kind, Sources};
use crate::stream::{Stream, Update};
use crate::tail::{Event, Follower};

/// How often a stream whose directory is watched is looked at anyway, in case an event was
/// missed (a watch lost with its directory, a file changed through another mount).
const SAFETY_TICK: Duration = Duration::from_secs(1);
/// How often a file that is being drained after a rotation is looked at.
const DRAIN_TICK: Duration = Duration::from_millis(50);

/// One step's outcome, prepared for the stream on the blocking thread.
struct Stepped {
    follower: Follower,
    update: Update,
    more: bool,
    draining: bool,
}

/// Steps `follower` and prepares its events for `stream`, on a blocking thread.
async fn step(mut follower: Follower, stream: Arc<Stream>) -> Option<Stepped> {
    tokio::task::spawn_blocking(move || {
        let step = follower.step(Instant::now());
        Stepped {
            follower,
            update: stream.prepare(step.events),
            more: step.more,
            draining: step.draining,
        }
    })
    .await
    .ok()
}

impl Sources {
    /// Looks at `path` once, then starts the stream's follower task.
    ///
    /// The first look happens before the server answers anyone, so that the first reader
    /// already sees the file's state and history.
    pub(super) async fn start_task(
        self: &Arc<Self>,
        path: PathBuf,
        kind: Kind,
        stream: Arc<Stream>,
    ) {
        let follower = Follower::new(path, kind.follow_options(&self.config));
        let spool = kind.spool().cloned();
        let Some(first) = step(follower, stream.clone()).await else {
            if let Some(spool) = &spool {
                spool.stop();
            }
            return;
        };
        if let Some(spool) = &spool {
            spool.report(first.update.events());
        }
        stream.apply(first.update);
        // Like `tail -F`, say at start when a named file cannot be followed yet.
        let summary = stream.summary();
        if let Some(reason) = summary.reason.filter(|_| summary.state != "following") {
            tracing::warn!(
                "{}: {} ({reason}); following it when it appears",
                crate::logging::escape_for_log(&summary.name),
                summary.state
            );
        }
        let this = self.clone();
        self.tracker
            .spawn(async move { this.follow(stream, first.follower, spool).await });
    }

    /// The follower task of one stream.
    async fn follow(
        self: Arc<Self>,
        stream: Arc<Stream>,
        mut follower: Follower,
        spool: Option<Arc<SpoolProgress>>,
    ) {
        // However the task ends, the spool must not wait for it any more.
        let _stop = spool.clone().map(StopOnDrop);
        let wake = Arc::new(Notify::new());
        let mut watched = self.watcher.watch(follower.path(), &wake);
        loop {
            let Some(stepped) = step(follower, stream.clone()).await else {
                tracing::error!(stream = %stream.id(), "follower panicked; the stream stops");
                return;
            };
            follower = stepped.follower;
            let events = stepped.update.events();
            let rewatch = events.iter().any(|e| !matches!(e, Event::Lines { .. }));
            if let Some(spool) = &spool {
                spool.report(events);
            }
            stream.apply(stepped.update);
            if rewatch || !watched {
                watched = self.watcher.watch(follower.path(), &wake);
            }
            if stepped.more {
                if self.cancel.is_cancelled() {
                    return;
                }
                continue;
            }
            let tick = if stepped.draining {
                // Never slower than the poll interval the user asked for.
                DRAIN_TICK.min(self.config.poll_interval)
            } else if watched && stream.is_following() {
                SAFETY_TICK
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(tick) => {}
                () = self.cancel.cancelled() => return,
            }
        }
    }
}
