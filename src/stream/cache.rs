//! The recent cache: entries pushed in order, trimmed to the stream's share of the memory
//! budget, and forgotten with their generation. Keeps the module invariant on `cache_from`.

use super::records::Closed;
use super::{Entry, Inner, Stream};

impl Stream {
    /// Trims the cache to its share while the budget is over its limit (the registry's sweep
    /// calls this for streams that are not appending).
    pub fn enforce_budget(&self) {
        if !self.budget.is_over() {
            return;
        }
        let mut inner = self.lock();
        let before = inner.weight();
        inner.trim(self.budget.target(self.limits.cache_bytes));
        self.budget.settle(before, inner.weight());
    }
}

impl Inner {
    /// The memory the cache holds: its entries, and the cache's spare slots.
    pub(super) fn weight(&self) -> usize {
        self.cache_weight
            + (self.cache.capacity() - self.cache.len()) * std::mem::size_of::<Entry>()
    }

    pub(super) fn push(&mut self, entry: Entry) {
        self.cache_weight += entry.weight();
        self.cache.push_back(entry);
    }

    /// Turns closed records into cached entries, in order.
    pub(super) fn push_closed(&mut self, closed: &mut Vec<Closed>, max_line_bytes: usize) {
        for c in closed.drain(..) {
            let entry = Entry::record(self.life, &c.generation, &c.record, max_line_bytes, c.time);
            self.push(entry);
        }
    }

    /// Drops the oldest cached entries beyond the budget, moving `cache_from` past them.
    pub(super) fn trim(&mut self, budget: usize) {
        // Spare slots count: dropping an entry frees more than the slot it leaves spare.
        while self.weight() > budget && self.cache.len() > 1 {
            let Some(old) = self.cache.pop_front() else {
                break;
            };
            self.cache_weight -= old.weight();
            // Entries up to the dropped one's end are now on disk only. Its end is where the
            // next cached entry of the same generation starts, or the generation's end.
            let end = match self.cache.front() {
                Some(next) if next.gen_seq == old.gen_seq => next.point - 1,
                _ => self
                    .gens
                    .iter()
                    .find(|r| r.generation.seq == old.gen_seq)
                    .map_or(old.point, |r| r.generation.end()),
            };
            self.cache_from = Some((old.gen_seq, end.max(old.point.saturating_sub(1))));
            self.cache_floor = Some(old.key());
        }
        // A cache squeezed to a small share gives back the slots it no longer needs.
        if self.cache.capacity() > 4 * self.cache.len().max(64) {
            self.cache.shrink_to(2 * self.cache.len());
        }
    }

    /// Forgets the oldest generation, and any of its entries still cached: a cursor into it
    /// can no longer be resolved, so serving its entries could only send them twice.
    pub(super) fn forget_oldest_generation(&mut self) {
        let Some(old) = self.gens.pop_front() else {
            return;
        };
        let seq = old.generation.seq;
        while self.cache.front().is_some_and(|e| e.gen_seq <= seq) {
            if let Some(e) = self.cache.pop_front() {
                self.cache_weight -= e.weight();
            }
        }
        if self.cache_from.is_some_and(|cf| cf.0 <= seq) {
            // Everything of later generations is cached; nothing of this one is readable.
            self.cache_from = Some((seq, u64::MAX));
            self.cache_floor = None;
        }
    }
}
