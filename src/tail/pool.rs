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
//! The threads end when the last handle to the pool is dropped.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

/// Threads that step followers, process-wide. A few more than the cores: a step that waits on
/// a slow disk should not hold up every other stream.
pub(crate) const STEP_THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// The threads that step followers; cheap to clone.
#[derive(Debug, Clone)]
pub struct StepPool {
    jobs: mpsc::Sender<Job>,
}

impl Default for StepPool {
    fn default() -> Self {
        Self::new(STEP_THREADS)
    }
}

impl StepPool {
    /// A pool of `threads` threads (at least one).
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("step-{i}"))
                .spawn(move || {
                    loop {
                        // One thread waits in `recv`, the others for the lock: a job goes to
                        // whichever is free first.
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(),
                            Err(mpsc::RecvError) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                // Fewer threads: the queue still drains as long as one runs.
                tracing::error!("cannot start a step thread: {e}");
            }
        }
        Self { jobs }
    }

    /// Queues `work` for one of the pool's threads without waiting for it; a panic in it is
    /// contained. Returns `false` when no step thread runs.
    pub fn spawn(&self, work: impl FnOnce() + Send + 'static) -> bool {
        let job: Job = Box::new(move || {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(work));
        });
        self.jobs.send(job).is_ok()
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
        self.jobs.send(job).ok()?;
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
