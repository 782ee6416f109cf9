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

use super::spool::StopOnDrop;
use super::{Kind, Sources};
use crate::stream::{Phase, Stream, Update};
use crate::tail::{Also, Event, Follower, StepPool, Watcher};

/// How often a stream whose directory is watched is looked at anyway, in case an event was
/// missed (a file changed through another mount). Events are routed to the one follower they
/// concern and a replaced directory is watched anew, so this is a last resort: with thousands
/// of quiet files, a one-second tick would cost more than their writes. (The stdin stream
/// keeps the poll interval: the end of input comes without a file event.)
const SAFETY_TICK: Duration = Duration::from_secs(10);
/// How often a file that is being drained after a rotation is looked at.
const DRAIN_TICK: Duration = Duration::from_millis(50);

/// One step's outcome, prepared for the stream on the blocking thread.
struct Stepped {
    follower: Follower,
    update: Update,
    more: bool,
    draining: bool,
}

/// Steps `follower` and prepares its events for `stream`, on a thread of `pool`.
async fn step(pool: &StepPool, mut follower: Follower, stream: Arc<Stream>) -> Option<Stepped> {
    pool.run(move || {
        let step = follower.step(Instant::now());
        Stepped {
            follower,
            update: stream.prepare(step.events),
            more: step.more,
            draining: step.draining,
        }
    })
    .await
}

/// Stops waking a follower when its task ends, however it ends.
struct Unwatch<'a>(&'a Watcher, Arc<Notify>);

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.0.forget(&self.1);
    }
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
        let Some(first) = step(&self.steps, follower, stream.clone()).await else {
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
            .spawn(async move { this.follow(stream, first.follower, kind).await });
    }

    /// The follower task of one stream. It ends on shutdown, when standard input has ended
    /// and been read to its end, or when a glob match has been gone for `--retire-after`.
    async fn follow(self: Arc<Self>, stream: Arc<Stream>, mut follower: Follower, kind: Kind) {
        let spool = kind.spool().cloned();
        // However the task ends, the spool must not wait for it any more.
        let _stop = spool.clone().map(StopOnDrop);
        let wake = Arc::new(Notify::new());
        let _unwatch = Unwatch(&self.watcher, wake.clone());
        let mut watched = self.watcher.watch(follower.path(), &wake);
        // The follower's rotated files (drained, retained): their events wake it too.
        let mut also = Also::default();
        let mut retirement = Watch::default();
        loop {
            // Read before the step: if input had ended by then, a step that leaves nothing
            // more to read has read all of it.
            let input_ended = spool.as_ref().is_some_and(|s| s.input_ended());
            let Some(stepped) = step(&self.steps, follower, stream.clone()).await else {
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
            let now = Also {
                draining: stepped
                    .draining
                    .then(|| follower.current().map(|g| g.id.ino))
                    .flatten(),
                retaining: follower.retained().is_some(),
            };
            if rewatch || !watched || now != also {
                also = now;
                watched = self.watcher.watch_more(follower.path(), also, &wake);
            }
            if stepped.more {
                if self.cancel.is_cancelled() {
                    return;
                }
                continue;
            }
            if input_ended && !stepped.draining {
                stream.close_record();
                stream.set_phase(Phase::Ended);
                return;
            }
            let mut retire_in = None;
            if kind.retires() {
                retire_in = match retirement.look(&stream, self.config.retire_after).await {
                    Retirement::Due => {
                        tracing::info!(
                            "{}: deleted; its stream is dropped",
                            crate::logging::escape_for_log(stream.name())
                        );
                        self.retire(&stream);
                        return;
                    }
                    Retirement::LookAgainIn(left) => left,
                };
            }
            let tick = if stepped.draining {
                // Never slower than the poll interval the user asked for.
                DRAIN_TICK.min(self.config.poll_interval)
            } else if watched && stream.is_following() && spool.is_none() {
                SAFETY_TICK
            } else {
                self.config.poll_interval
            };
            let tick = retire_in.map_or(tick, |left: Duration| tick.min(left));
            // An open multi-line record closes on time even when no line comes: the next
            // round's `apply` closes it.
            let tick = stream.record_deadline().map_or(tick, |at| {
                tick.min(at.saturating_duration_since(Instant::now()))
            });
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(tick) => {}
                () = self.cancel.cancelled() => return,
            }
        }
    }
}

/// What a glob match's task should do about retiring its stream.
enum Retirement {
    /// Gone for a whole `--retire-after`: drop the stream.
    Due,
    /// Look again within this long (`None`: nothing to watch for).
    LookAgainIn(Option<Duration>),
}

/// Whether a glob match's file and history are gone, and for how long.
///
/// The cheap test (no file followed, every generation let go) runs at every wake; the costly
/// one (is a let-go generation's file still in its directory under another name, see
/// `Stream::history_on_disk`) at most once per `--retire-after`: when the cheap test first
/// says gone, and when the period is over. A stream is `gone` when both say so, and dropped
/// when they still say so a period later.
#[derive(Debug, Default)]
struct Watch {
    /// When the costly test last ran, while the cheap one said gone.
    checked: Option<Instant>,
    /// Whether the costly test said gone then.
    gone: bool,
}

impl Watch {
    async fn look(&mut self, stream: &Arc<Stream>, period: Duration) -> Retirement {
        if !stream.history_gone() {
            if self.checked.take().is_some() {
                self.gone = false;
                stream.set_phase(Phase::Live);
            }
            return Retirement::LookAgainIn(None);
        }
        if let Some(left) = self
            .checked
            .map(|at| period.saturating_sub(at.elapsed()))
            .filter(|left| !left.is_zero())
        {
            return Retirement::LookAgainIn(Some(left));
        }
        let s = stream.clone();
        let on_disk = tokio::task::spawn_blocking(move || s.history_on_disk())
            .await
            .unwrap_or(false);
        self.checked = Some(Instant::now());
        if on_disk {
            self.gone = false;
            stream.set_phase(Phase::Live);
        } else if self.gone {
            return Retirement::Due;
        } else {
            self.gone = true;
            stream.set_phase(Phase::Gone);
        }
        Retirement::LookAgainIn(Some(period))
    }
}
