//! The per-hub cache and fan-out: one engine reader per hub per file or view being read,
//! however many viewers read it.
//!
//! A [`View`] is created on a target's first live read. Its tail task is the only code that
//! reads the target's new entries from the engine: it primes the cache with the newest
//! [`PRIME`] entries, then, each time the hub's wake-up fires, reads "after my position" once
//! and appends what came. Viewers whose cursor lies inside the cache are answered from it
//! ([`Cache::answer`]) and wait on the view's own watch channel, which is bumped only when
//! entries were appended; a cursor older than the cache, from another engine log, or ahead of
//! this hub's tail (minted by a fresher hub) is read from the engine as before (a cold read),
//! so the answer is the same either way. Engine reads thus grow with hubs x views, not with
//! viewers. A reader that *waits* for new entries ([`Hub::read_waiting`]) and whose cursor
//! is ahead of the tail (a `last=0` start names the next sequence; a cold read may have run
//! ahead) or arrives before the prime waits for the tail rather than reading the engine on
//! every wake-up: at 1,000 viewers such cold reads had slowed the tail until the viewers
//! outran it for good. One-shot reads (a first page) keep the cold path.
//!
//! Invariant: the cache holds every entry of its target with a position in `(lo, next]`,
//! in position order, where a position is `(seq, point)` of the entry's cursor; `lo` is the
//! position of its first entry (or of `next` when empty). A view unused for [`IDLE`] with no
//! waiting viewer is dropped (its task ends); the map's lock orders that against a viewer
//! subscribing, so no viewer waits on a dropped view.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Hub;
use crate::engine::names::Target;
use crate::stream::{Cursor, Entry, Page};

/// Entries a new view starts with (the newest of its target).
pub(super) const PRIME: usize = 1_000;

/// Most entries a view's cache keeps; older ones are read from the engine again.
pub(super) const MAX_ENTRIES: usize = 10_000;

/// Most heap bytes a view's cache keeps (the oldest entries go first past it).
pub(super) const MAX_BYTES: usize = 8 << 20;

/// How long a view with no waiting viewer and no read lives on.
pub(super) const IDLE: Duration = Duration::from_secs(60);

/// Entries the tail reads from the engine per request.
const STEP: usize = 1_000;

/// How soon a tail whose read failed tries again.
const RETRY: Duration = Duration::from_millis(500);

/// A file or view that someone reads live, with its cache.
#[derive(Debug)]
pub struct View {
    target: Target,
    cache: Mutex<Cache>,
    /// Bumped when entries were appended (or the view was dropped).
    changed: watch::Sender<u64>,
    /// When a viewer last asked for this view.
    used: Mutex<Instant>,
}

impl View {
    /// Entries after `after` from the cache, or `None` when the cache cannot answer (also
    /// when `after`'s batch lies before `first`: retention removed it from the engine, and
    /// the engine's answer, a `gap`, is the one every hub gives).
    pub(super) fn answer(&self, after: Cursor, limit: usize, first: u64) -> Option<Page> {
        if after.seq < first {
            return None;
        }
        lock(&self.cache).answer(after, limit)
    }

    /// For a reader waiting for new entries: [`View::answer`], except that a cursor ahead
    /// of the tail (or any cursor of this log before the first prime) gets an empty page. The
    /// tail reads every new entry in order and wakes its viewers when it has, so such a
    /// reader waits for it instead of asking the engine on every wake-up. `None` (a cold
    /// read) for a cursor older than the cache.
    fn answer_waiting(&self, after: Cursor, limit: usize) -> Option<Page> {
        let cache = lock(&self.cache);
        if let Some(page) = cache.answer(after, limit) {
            return Some(page);
        }
        cache.ahead(after).then(|| Page {
            entries: Vec::new(),
            next: after,
            prev: None,
        })
    }

    /// The file or view.
    pub fn target(&self) -> &Target {
        &self.target
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A position in engine order.
fn pos(c: &Cursor) -> (u64, u64) {
    (c.seq, c.point)
}

/// The recent entries of one target; see the module documentation for its invariant.
#[derive(Debug, Default)]
pub(super) struct Cache {
    /// The engine log the entries' cursors belong to; 0 before the first fill.
    ident: u64,
    entries: VecDeque<Entry>,
    /// The tail's position: every entry up to it is in the cache (or was evicted).
    next: Option<Cursor>,
    bytes: usize,
    /// Whether the cache holds its target's whole history (primed from a page that reached
    /// the start, nothing evicted since): then a cursor before its first entry, such as the
    /// `next` of a page read while the target was still empty, is answered from it too.
    whole: bool,
}

impl Cache {
    fn lo(&self) -> Option<(u64, u64)> {
        if self.whole {
            return Some((0, 0));
        }
        self.entries
            .front()
            .map(|e| pos(&e.cursor))
            .or(self.next.as_ref().map(pos))
    }

    /// Starts again from `page` (a first fill, or a stream that was recreated); `whole`
    /// when `page` is a backward read that reached the start of the target's history.
    fn reset(&mut self, ident: u64, page: Page, whole: bool) {
        *self = Self {
            ident,
            ..Self::default()
        };
        // A back read can begin with a notice placed out of order (a cut chain's gap): the
        // cache starts after the last entry that breaks position order.
        let entries = page.entries;
        let keep = entries
            .windows(2)
            .rposition(|w| pos(&w[0].cursor) >= pos(&w[1].cursor))
            .map_or(0, |i| i + 1);
        // A gap notice (position `(seq, 0)`) first means older entries are gone.
        self.whole = whole && keep == 0 && entries.first().is_none_or(|e| e.point > 0);
        self.next = Some(page.next);
        self.push(entries.into_iter().skip(keep));
    }

    /// Appends a forward page read from the tail's position (a page of another engine log,
    /// after the stream was recreated, starts the cache again).
    fn extend(&mut self, page: Page) {
        let ident = page.next.ident;
        if ident != self.ident || self.next.is_none() {
            self.reset(ident, page, false);
            return;
        }
        self.next = Some(page.next);
        self.push(page.entries.into_iter());
    }

    /// Drops the entries of batches before `first` (removed from the engine by retention).
    fn forget_before(&mut self, first: u64) {
        while self.entries.front().is_some_and(|e| e.cursor.seq < first) {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.alloc;
                self.whole = false;
            }
        }
    }

    fn push(&mut self, entries: impl Iterator<Item = Entry>) {
        for e in entries {
            self.bytes += e.alloc;
            self.entries.push_back(e);
        }
        while self.entries.len() > 1 && (self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.alloc;
                self.whole = false;
            }
        }
    }

    /// Whether the tail has yet to reach `after` (a cursor of the hub's current log): the
    /// cache is not primed, holds an older log (the tail starts it again on its next read),
    /// or ends before `after`.
    fn ahead(&self, after: Cursor) -> bool {
        match self.next {
            None => true,
            Some(next) => self.ident != after.ident || pos(&after) > pos(&next),
        }
    }

    /// At most `limit` entries after `after`, or `None` when `after` is not inside the
    /// cache (older, of another log, ahead of the tail, or not an entry of this target).
    pub(super) fn answer(&self, after: Cursor, limit: usize) -> Option<Page> {
        let next = self.next?;
        if after.ident != self.ident || self.ident == 0 {
            return None;
        }
        let at = pos(&after);
        if at < self.lo()? || at > pos(&next) {
            return None;
        }
        let start = self.entries.partition_point(|e| pos(&e.cursor) <= at);
        if after.point > 0 && after != next {
            // A cursor naming an entry must name one of these entries exactly (its batch's
            // checksum included); anything else is for the engine to judge.
            let named = start.checked_sub(1).and_then(|i| self.entries.get(i))?;
            if named.cursor != after {
                return None;
            }
        }
        let entries: Vec<Entry> = self.entries.range(start..).take(limit).cloned().collect();
        Some(Page {
            prev: entries.first().map(|e| e.cursor),
            next: entries.last().map_or(after, |e| e.cursor),
            entries,
        })
    }
}

impl Hub {
    /// The view of `target` (created, with its tail task, on first use) and a receiver its
    /// appends wake. Both are taken under the map's lock, so the view cannot be dropped while
    /// the receiver lives.
    pub fn view(self: &Arc<Self>, target: &Target) -> (Arc<View>, watch::Receiver<u64>) {
        let key = target.filter(self.prefix());
        let mut views = lock(&self.views);
        if let Some(view) = views.get(&key) {
            *lock(&view.used) = Instant::now();
            let rx = view.changed.subscribe();
            return (view.clone(), rx);
        }
        let view = Arc::new(View {
            target: target.clone(),
            cache: Mutex::default(),
            changed: watch::Sender::new(0),
            used: Mutex::new(Instant::now()),
        });
        let rx = view.changed.subscribe();
        views.insert(key.clone(), view.clone());
        self.tracker
            .spawn(tail(self.clone(), view.clone(), key, self.shutdown.clone()));
        (view, rx)
    }

    /// Entries after `after` in `view`: from its cache when it covers `after`, else from
    /// the engine.
    ///
    /// # Errors
    /// A cold read the engine did not answer.
    pub async fn read_after(
        &self,
        view: &View,
        after: Cursor,
        limit: usize,
    ) -> Result<Page, super::ReadError> {
        match view.answer(after, limit, self.first()) {
            Some(page) => Ok(page),
            None => {
                self.stats
                    .cold_reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.after(&view.target, after, limit).await
            }
        }
    }

    /// [`Hub::read_after`] for a reader that waits for new entries (a long poll, SSE, a
    /// followed `/raw`): a cursor of this log ahead of the view's tail waits for the tail
    /// (an empty page) instead of reading the engine, so waiting viewers cost the engine
    /// nothing however many there are and whatever their cursors.
    ///
    /// # Errors
    /// A cold read the engine did not answer.
    pub async fn read_waiting(
        &self,
        view: &View,
        after: Cursor,
        limit: usize,
    ) -> Result<Page, super::ReadError> {
        if after.ident == self.ident() && after.seq >= self.first() {
            if let Some(page) = view.answer_waiting(after, limit) {
                return Ok(page);
            }
        }
        self.read_after(view, after, limit).await
    }

    /// How many views have a tail reading the engine now.
    pub fn views_read(&self) -> usize {
        lock(&self.views).len()
    }
}

/// A view's tail: the one reader of its target's new entries on this hub.
async fn tail(
    hub: Arc<Hub>,
    view: Arc<View>,
    key: String,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut wake = hub.subscribe();
    let mut primed = false;
    let mut failed;
    loop {
        wake.borrow_and_update();
        let next = lock(&view.cache).next;
        let forward = primed && next.is_some();
        let read = match next {
            Some(c) if forward => hub.after(&view.target, c, STEP).await,
            _ => hub.before(&view.target, None, PRIME).await,
        };
        failed = read.is_err();
        match read {
            Ok(page) => {
                let full = page.entries.len() >= STEP;
                let grew = !page.entries.is_empty() || !primed;
                {
                    let mut cache = lock(&view.cache);
                    if forward {
                        cache.extend(page);
                    } else {
                        // A (new) prime holds the newest entries, some of which the cache
                        // may hold already: it starts the cache again.
                        let whole = page.prev.is_none();
                        cache.reset(page.next.ident, page, whole);
                    }
                    cache.forget_before(hub.first());
                }
                primed = true;
                if grew {
                    view.changed.send_modify(|v| *v += 1);
                }
                if full {
                    continue;
                }
            }
            // Viewers answered from the cache see no new entries until the engine answers
            // again (the read is retried after RETRY, from a fresh prime: a position the
            // engine refuses must not hold the view for good); cold reads report the
            // failure to their own clients.
            Err(e) => {
                tracing::debug!("a view's tail could not read the engine: {e}");
                primed = false;
            }
        }
        let retry = async {
            if failed {
                tokio::time::sleep(RETRY).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let idle = async {
            loop {
                tokio::time::sleep(IDLE / 4).await;
                let mut views = lock(&hub.views);
                if view.changed.receiver_count() == 0 && lock(&view.used).elapsed() >= IDLE {
                    if views.get(&key).is_some_and(|v| Arc::ptr_eq(v, &view)) {
                        views.remove(&key);
                    }
                    return;
                }
            }
        };
        tokio::select! {
            res = wake.changed() => if res.is_err() { return },
            () = retry => {}
            () = idle => return,
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::stream::Facts;

    fn at(seq: u64, point: u64) -> Cursor {
        super::super::cursor::at(7, seq, point, seq as u32)
    }

    fn entry(seq: u64, point: u64) -> Entry {
        Entry {
            gen_seq: seq,
            point,
            cursor: at(seq, point),
            json: Bytes::new(),
            line: Bytes::from(format!("{seq}.{point}")),
            notice: false,
            facts: Facts::default(),
            arrival: None,
            alloc: 10,
        }
    }

    fn page(entries: Vec<Entry>, next: Cursor) -> Page {
        Page {
            prev: None,
            entries,
            next,
        }
    }

    fn lines(p: &Page) -> Vec<String> {
        p.entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.line).into_owned())
            .collect()
    }

    #[test]
    fn cursors_inside_the_cache_are_answered_and_others_go_to_the_engine() {
        let mut cache = Cache::default();
        cache.extend(page(vec![entry(3, 1), entry(3, 2)], at(3, 2)));
        cache.extend(page(vec![entry(5, 1)], at(5, 1)));
        assert_eq!(lines(&cache.answer(at(3, 1), 10).unwrap()), ["3.2", "5.1"]);
        assert_eq!(lines(&cache.answer(at(3, 2), 1).unwrap()), ["5.1"]);
        // At the tail: nothing yet, same cursor.
        let end = cache.answer(at(5, 1), 10).unwrap();
        assert!(end.entries.is_empty() && end.next == at(5, 1));
        // Before a batch (a gap's or a `last=0` cursor) inside the range.
        assert_eq!(lines(&cache.answer(at(5, 0), 10).unwrap()), ["5.1"]);
        // Older than the cache, ahead of the tail, another log, another batch's checksum.
        assert!(cache.answer(at(2, 9), 10).is_none());
        assert!(cache.answer(at(6, 1), 10).is_none());
        assert!(
            cache
                .answer(
                    Cursor {
                        ident: 8,
                        ..at(3, 1)
                    },
                    10
                )
                .is_none()
        );
        assert!(
            cache
                .answer(
                    Cursor {
                        check: 1,
                        ..at(3, 1)
                    },
                    10
                )
                .is_none()
        );
        // An entry of another subject between cached ones.
        assert!(cache.answer(at(4, 1), 10).is_none());
    }

    #[test]
    fn a_cache_primed_with_the_whole_history_answers_cursors_before_its_first_entry() {
        // Viewers that started on an empty target hold its `next`, (1, 0): once entries
        // come, the cache must still answer them, or each would read the engine itself.
        let mut whole = Cache::default();
        whole.reset(7, page(vec![], at(1, 0)), true);
        whole.extend(page(vec![entry(1, 1), entry(2, 1)], at(2, 1)));
        assert_eq!(lines(&whole.answer(at(1, 0), 10).unwrap()), ["1.1", "2.1"]);
        // Not so for a cache primed from the newest entries only, nor once one is evicted.
        let mut part = Cache::default();
        part.reset(7, page(vec![entry(3, 1)], at(3, 1)), false);
        assert!(part.answer(at(1, 0), 10).is_none());
        whole.forget_before(2);
        assert!(whole.answer(at(1, 0), 10).is_none());
    }

    #[test]
    fn a_primed_page_starts_after_an_out_of_order_notice_and_old_entries_are_evicted() {
        let mut cache = Cache::default();
        cache.extend(page(vec![entry(9, 0), entry(2, 1), entry(4, 1)], at(4, 1)));
        assert!(cache.answer(at(9, 0), 10).is_none());
        assert_eq!(lines(&cache.answer(at(2, 1), 10).unwrap()), ["4.1"]);
        let many: Vec<Entry> = (1..=MAX_ENTRIES as u64 + 5).map(|p| entry(10, p)).collect();
        let last = at(10, MAX_ENTRIES as u64 + 5);
        cache.extend(page(many, last));
        assert_eq!(cache.entries.len(), MAX_ENTRIES);
        assert!(cache.answer(at(4, 1), 10).is_none(), "evicted");
        assert_eq!(cache.answer(at(10, 6), 1).unwrap().entries.len(), 1);
        // Batches retention removed from the engine leave the cache, and a cursor into one
        // is for the engine to answer (with a gap).
        cache.forget_before(11);
        assert!(cache.entries.is_empty() && cache.bytes == 0);
        // A recreated stream (another ident) starts the cache again.
        cache.extend(page(
            vec![],
            Cursor {
                ident: 8,
                ..at(1, 0)
            },
        ));
        assert!(cache.entries.is_empty());
    }
}
