//! One stream's follower, stepped on a step thread by whoever wakes it.
//!
//! A file event wakes the [`Runner`] itself (it is the watcher's [`Wake`]): the watcher's
//! event thread queues one step on the [`StepPool`], and that step thread reads the file,
//! applies the lines to the stream (which wakes its readers) and registers the follower's
//! watches again when they changed. No async task runs between the event and the delivery:
//! a line costs one hand-over (event thread to step thread) instead of three (event thread
//! to async worker to step thread and back), and wakes that arrive while a step is queued
//! are coalesced into it.
//!
//! The stream's async task (`task.rs`) keeps what needs time: the ticks (poll, drain,
//! safety), the end of standard input, and retiring deleted glob matches. A step pokes it
//! ([`Runner::attention`]) only when the outcome matters to it: a state change, the start or
//! end of draining, a multi-line record opened or closed, or any step of the stdin stream.
//!
//! Invariant: at most one step of a follower runs at a time (the follower is behind a lock),
//! and at most one more is queued (`queued`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use tokio::sync::Notify;

use super::Sources;
use super::spool::SpoolProgress;
use crate::stream::Stream;
use crate::tail::{Also, Event, Follower, StepPool, Wake};

/// A follower and the stream it feeds; see the module documentation.
pub(super) struct Runner {
    pub(super) stream: Arc<Stream>,
    pub(super) spool: Option<Arc<SpoolProgress>>,
    /// Weak: the watcher's routes hold the runner, and the sources hold the watcher.
    sources: Weak<Sources>,
    pool: StepPool,
    run: Mutex<Run>,
    /// A step is queued and has not started yet: further wakes add nothing.
    queued: AtomicBool,
    /// A step panicked (or none could be queued): the follower is lost. Apart from the lock,
    /// which the watcher's event thread must never wait for.
    failed: AtomicBool,
    /// Woken when the stream's task should look at [`Runner::outcome`] again.
    pub(super) attention: Notify,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("stream", &self.stream.id())
            .finish_non_exhaustive()
    }
}

/// What the lock guards: the follower and what its watches were last registered for.
struct Run {
    follower: Follower,
    also: Also,
    /// Whether the last registration was covered by file events (otherwise the task polls).
    watched: bool,
    /// The watches must be registered at the next step (the first, or the paths changed).
    rewatch: bool,
    outcome: Outcome,
}

/// What the last step left for the stream's task to act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Outcome {
    /// A replaced or deleted file is being drained: look again soon.
    pub(super) draining: bool,
    /// The follower's files are covered by file events.
    pub(super) watched: bool,
    /// Standard input had ended before the step, and the step read all there was.
    pub(super) ended: bool,
    /// A multi-line record is open: the task must wake by its deadline to close it.
    pub(super) record_open: bool,
}

impl Runner {
    pub(super) fn new(
        sources: &Arc<Sources>,
        follower: Follower,
        stream: Arc<Stream>,
        spool: Option<Arc<SpoolProgress>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            stream,
            spool,
            sources: Arc::downgrade(sources),
            pool: sources.steps.clone(),
            run: Mutex::new(Run {
                follower,
                also: Also::default(),
                watched: false,
                rewatch: true,
                outcome: Outcome::default(),
            }),
            queued: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            attention: Notify::new(),
        })
    }

    /// What the last step found; `None` once the follower is lost.
    pub(super) fn outcome(&self) -> Option<Outcome> {
        if self.failed.load(Ordering::Acquire) {
            return None;
        }
        Some(self.lock().outcome)
    }

    /// Queues a step on the step threads, unless one is queued already.
    pub(super) fn schedule(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        let queued = self.pool.spawn(move || {
            this.queued.store(false, Ordering::Release);
            this.step_guarded();
        });
        if !queued {
            self.fail();
        }
    }

    /// Steps the follower once, on the calling (blocking) thread; a panic marks the runner
    /// failed instead of unwinding.
    pub(super) fn step_guarded(self: &Arc<Self>) {
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step()));
        if stepped.is_err() {
            self.fail();
        }
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        self.attention.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, Run> {
        // A poisoned lock means a step panicked; `fail` has been or is being recorded.
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One step: read, apply to the stream, keep the watches up to date.
    fn step(self: &Arc<Self>) {
        let Some(sources) = self.sources.upgrade() else {
            return;
        };
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        let mut run = self.lock();
        // Read before the step: if input had ended by then, a step that leaves nothing more
        // to read has read all of it.
        let input_ended = self.spool.as_ref().is_some_and(|s| s.input_ended());
        let step = run.follower.step(Instant::now());
        let update = self.stream.prepare(step.events);
        let events = update.events();
        let changed = events.iter().any(|e| !matches!(e, Event::Lines { .. }));
        if let Some(spool) = &self.spool {
            spool.report(events);
        }
        self.stream.apply(update);
        let also = Also {
            // The renamed file being drained, or the rotated one while late lines may come.
            draining: run.follower.late_watch(Instant::now()),
            retaining: run.follower.retained().is_some(),
        };
        // A watch newly set up after this step's read: what was written in between woke no
        // one, so one more step looks (else it waited for the safety tick, 10 s). Not when
        // the same watch is merely renewed, so a step that always reports a change cannot
        // reschedule itself for ever.
        let mut watched_now = false;
        if changed || run.rewatch || !run.watched || also != run.also {
            let new_watch = run.rewatch || !run.watched || also != run.also;
            run.also = also;
            run.rewatch = false;
            run.watched = sources.watcher.watch_more(run.follower.path(), also, self);
            watched_now = new_watch && run.watched;
        }
        let outcome = Outcome {
            draining: step.draining,
            watched: run.watched,
            ended: input_ended && !step.more && !step.draining,
            record_open: self.stream.record_deadline().is_some(),
        };
        let poke = changed || self.spool.is_some() || outcome != run.outcome;
        run.outcome = outcome;
        drop(run);
        if (step.more || watched_now) && !sources.cancel.is_cancelled() {
            // A step reads a bounded amount: the rest is read by a step queued behind the
            // others, so that one busy file does not hold a step thread for itself.
            self.schedule();
        }
        if poke {
            self.attention.notify_one();
        }
    }
}

impl Wake for Runner {
    fn wake(self: Arc<Self>) {
        self.schedule();
    }
}
