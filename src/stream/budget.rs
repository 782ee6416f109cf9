//! The memory budget that all streams' caches share (`--memory`).
//!
//! Each stream keeps its recent entries in memory, up to `--cache-bytes`. Together they may use
//! at most the budget's limit: while the total is over it, every stream trims its cache to its
//! share (the limit divided by the number of streams) the next time it applies events or the
//! registry's sweep looks at it (every second), so the total comes back under the limit within
//! a second of a burst. Trimmed entries are not lost: they are read back from disk.
//!
//! Weights count what is really allocated: an entry's buffer capacity, the allocator's
//! overhead, `Bytes`' shared header, and the entry's slot in the cache (see `entry.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Memory shared by every stream's cache; see the module documentation.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    /// Sum of every live stream's cache weight.
    used: AtomicUsize,
    /// Streams alive; each is entitled to `limit / streams`.
    streams: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
        }
    }

    /// Bytes used by all caches together.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether the caches together use more than the limit.
    pub fn is_over(&self) -> bool {
        self.used() > self.limit
    }

    /// What one stream may keep while the budget is over its limit.
    pub(super) fn share(&self) -> usize {
        self.limit / self.streams.load(Ordering::Relaxed).max(1)
    }

    /// How many bytes a cache whose own limit is `cache_bytes` should be trimmed to now.
    pub(super) fn target(&self, cache_bytes: usize) -> usize {
        if self.is_over() {
            cache_bytes.min(self.share())
        } else {
            cache_bytes
        }
    }

    pub(super) fn join(&self) {
        self.streams.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn leave(&self, weight: usize) {
        self.streams.fetch_sub(1, Ordering::Relaxed);
        self.used.fetch_sub(weight, Ordering::Relaxed);
    }

    /// Accounts a cache's change of weight from `before` to `after`.
    pub(super) fn settle(&self, before: usize, after: usize) {
        if after >= before {
            self.used.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(before - after, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_applies_only_over_the_limit() {
        let b = MemoryBudget::new(1000);
        for _ in 0..4 {
            b.join();
        }
        b.settle(0, 900);
        assert_eq!(b.target(600), 600);
        b.settle(900, 1200);
        assert_eq!(b.target(600), 250);
        assert_eq!(b.target(100), 100);
        b.leave(1200);
        assert_eq!(b.used(), 0);
        assert!(!b.is_over());
    }
}
