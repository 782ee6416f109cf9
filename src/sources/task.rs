//! The task of one stream: the ticks, the end of standard input, and retiring deleted glob
//! matches. The steps themselves run on the step threads ([`Runner`]): a file event queues
//! one directly, and the task queues one at each tick.
//!
//! All file I/O of a step happens on a step thread: the follower's reads, and the first fill
//! of the stream's cache from the file's last lines ([`Stream::prepare`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::runner::Runner;
use super::spool::StopOnDrop;
use super::{Kind, Sources};
use crate::stream::{Phase, Stream};
use crate::tail::{Follower, Watcher};

/// How often a stream whose directory is watched is looked at anyway, in case an event was
/// missed (a file changed through another mount). Events are routed to the one follower they
/// concern and a replaced directory is watched anew, so this is a last resort: with thousands
/// of quiet files, a one-second tick would cost more than their writes. (The stdin stream
/// keeps the poll interval: the end of input comes without a file event.)
const SAFETY_TICK: Duration = Duration::from_secs(10);
/// How often a file that is being drained after a rotation is looked at.
const DRAIN_TICK: Duration = Duration::from_millis(50);

/// Stops waking a follower when its task ends, however it ends.
struct Unwatch<'a>(&'a Watcher, Arc<Runner>);

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.0.forget(&self.1);
    }
}

impl Sources {
    /// Looks at `path` once, then starts the stream's task.
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
        let runner = Runner::new(self, follower, stream.clone(), kind.spool().cloned());
        let first = {
            let runner = runner.clone();
            self.steps.run(move || runner.step_guarded()).await
        };
        if first.is_none() || runner.outcome().is_none() {
            self.watcher.forget(&runner);
            if let Some(spool) = &runner.spool {
                spool.stop();
            }
            return;
        }
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
            .spawn(async move { this.follow(runner, kind).await });
    }

    /// The task of one stream. It ends on shutdown, when standard input has ended and been
    /// read to its end, or when a glob match has been gone for `--retire-after`.
    async fn follow(self: Arc<Self>, runner: Arc<Runner>, kind: Kind) {
        // However the task ends, the spool must not wait for it any more.
        let _stop = runner.spool.clone().map(StopOnDrop);
        let _unwatch = Unwatch(&self.watcher, runner.clone());
        let stream = runner.stream.clone();
        let mut retirement = Watch::default();
        loop {
            let Some(outcome) = runner.outcome() else {
                tracing::error!(stream = %stream.id(), "follower panicked; the stream stops");
                return;
            };
            if outcome.ended {
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
            let tick = if outcome.draining {
                // Never slower than the poll interval the user asked for.
                DRAIN_TICK.min(self.config.poll_interval)
            } else if outcome.watched && stream.is_following() && runner.spool.is_none() {
                SAFETY_TICK
            } else {
                self.config.poll_interval
            };
            let tick = retire_in.map_or(tick, |left: Duration| tick.min(left));
            tokio::select! {
                () = runner.attention.notified() => {}
                () = tokio::time::sleep(tick) => runner.schedule(),
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
