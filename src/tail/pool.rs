//! Stepping followers off the async workers, a bounded number at a time.
//!
//! A step does blocking file I/O (`fstat`, `pread`), so it runs on tokio's blocking pool. Each
//! step holds one of a fixed number of permits while it runs, so however many files are
//! followed (and however many wake at once) at most that many blocking threads step them; the
//! others wait their turn on the async side, which costs no thread.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Most followers stepped at once, process-wide. A few more than the cores: a step that
/// waits on a slow disk should not hold up every other stream.
pub(crate) const STEP_THREADS: usize = 8;

/// The process's permits to step a follower; cheap to clone.
#[derive(Debug, Clone)]
pub struct StepPool {
    permits: Arc<Semaphore>,
}

impl Default for StepPool {
    fn default() -> Self {
        Self::new(STEP_THREADS)
    }
}

impl StepPool {
    /// A pool stepping at most `threads` followers at once (at least one).
    pub fn new(threads: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(threads.max(1))),
        }
    }

    /// Runs `work` (a follower's step and what goes with it) on a blocking thread once a
    /// permit is free. `None` when it panicked.
    pub async fn run<T, F>(&self, work: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let done = work();
            drop(permit);
            done
        })
        .await
        .ok()
    }
}
