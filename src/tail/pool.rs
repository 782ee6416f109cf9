//! Stepping followers off the async workers, on a fixed set of threads.
//!
//! A step does blocking file I/O (`fstat`, `pread`), so it must not run on an async worker.
//! tokio's blocking pool would do, but it starts a thread whenever none is idle at the moment
//! a task is handed over, so thousands of followers woken in turn keep it at hundreds of
//! threads, started and ended all the time. The pool here has a fixed number of threads fed
//! by one queue, so however many files are followed (and however many wake at once) at most
//! that many threads step them; the others wait in the queue, which costs no thread.
//!
//! A step stuck in the kernel (a dead network mount) holds one thread; the others go on.
//! The threads end when the last handle to the pool is dropped (after the jobs queued).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Threads that step followers, process-wide. A few more than the cores: a step that waits on
/// a slow disk should not hold up every other stream.
pub(crate) const STEP_THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// The threads that step followers; cheap to clone.
#[derive(Debug, Clone)]
pub struct StepPool {
    queue: Arc<Queue>,
    _closer: Arc<Closer>,
}

/// The jobs waiting for a thread. A job queued wakes at most one idle thread (none when all
/// are busy: a thread that finishes a step takes the next job without sleeping), so a step
/// costs one thread wake-up at most. (A `Mutex<mpsc::Receiver>` cost two: the thread waiting
/// in `recv` took the job, and letting go of the lock woke the next one to wait in `recv`.)
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Threads running; the pool is closed when none is left or all handles are gone.
    threads: usize,
    closed: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`; `false` when no thread will ever run it.
    fn push(&self, job: Job) -> bool {
        let mut state = self.lock();
        if state.closed || state.threads == 0 {
            return false;
        }
        state.jobs.push_back(job);
        let wake = state.idle > 0;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        true
    }

    /// The next job, waiting for one; `None` once the pool is closed.
    fn next(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state.idle += 1;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.idle -= 1;
        }
    }
}

/// Closes the queue when the last [`StepPool`] handle is dropped (the threads hold the
/// queue, not a handle), so that the threads end.
#[derive(Debug)]
struct Closer(Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

impl Default for StepPool {
    fn default() -> Self {
        Self::new(STEP_THREADS)
    }
}

impl StepPool {
    /// A pool of `threads` threads (at least one).
    pub fn new(threads: usize) -> Self {
        let queue = Arc::new(Queue::default());
        for i in 0..threads.max(1) {
            let worker = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("step-{i}"))
                .spawn(move || {
                    while let Some(job) = worker.next() {
                        job();
                    }
                });
            match spawned {
                Ok(_) => queue.lock().threads += 1,
                // Fewer threads: the queue still drains as long as one runs.
                Err(e) => tracing::error!("cannot start a step thread: {e}"),
            }
        }
        Self {
            _closer: Arc::new(Closer(queue.clone())),
            queue,
        }
    }

    /// Queues `work` for one of the pool's threads without waiting for it; a panic in it is
    /// contained. Returns `false` when no step thread runs.
    pub fn spawn(&self, work: impl FnOnce() + Send + 'static) -> bool {
        let job: Job = Box::new(move || {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(work));
        });
        self.queue.push(job)
    }

    /// Runs `work` (a follower's step and what goes with it) on one of the pool's threads.
    /// `None` when it panicked (or no step thread could be started).
    pub async fn run<T, F>(&self, work: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A panicking step loses its follower (the caller stops the stream), not the thread.
            let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(work)).ok());
        });
        if !self.queue.push(job) {
            return None;
        }
        result.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_pool_threads_and_a_panic_is_contained() {
        let pool = StepPool::new(2);
        let mut names = std::collections::HashSet::new();
        for _ in 0..50 {
            let name = pool
                .run(|| std::thread::current().name().map(str::to_owned))
                .await
                .flatten()
                .expect("a named step thread");
            names.insert(name);
        }
        assert!(
            names.iter().all(|n| n == "step-0" || n == "step-1"),
            "{names:?}"
        );
        assert_eq!(pool.run(|| -> u8 { panic!("a step panics") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7), "the pool goes on");
    }
}
