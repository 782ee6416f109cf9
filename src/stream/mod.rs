//! A followed source as readers see it: entries, cursors, history and waiting.
//!
//! A [`Stream`] is fed by its follower's events and answers one question for every reader
//! (long poll, SSE, plain text, history, a first load): "the entries after — or before — this
//! position". Recent entries are kept in memory, encoded once, for fan-out; everything older is
//! read back from the file on disk, which is the history. Readers never subscribe to a
//! broadcast: they read from their own cursor and, when nothing is new, wait on a `watch`
//! channel that the stream bumps on every change. So a slow reader costs nothing while it does
//! not read, and a reconnect is just another read.
//!
//! Invariant (`cache_from`): every entry whose position is after `cache_from` is in the cache,
//! in order, with no holes; entries at or before it are read from disk (or are gone).

mod budget;
mod cursor;
pub(crate) mod disk;
mod entry;
mod foreign;
mod gap;
mod preload;
mod read;
mod records;
mod resolve;
mod seek;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::parse::detect::Detector;
use crate::parse::records::Caps;
use crate::parse::{Parser, Zone};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;

use crate::tail::{Event, FileState, Generation};

pub use budget::MemoryBudget;
pub use cursor::{Cursor, CursorError};
use entry::cursor_for;
pub use entry::{Entry, Facts};
pub(crate) use foreign::FOREIGN_LIFE;
pub use foreign::Rotated;
pub use preload::Update;
pub use read::{Page, Query};
pub use records::CLOSE_AFTER;
use records::{Closed, Line, Live, Splits};
pub use seek::TimeSeek;
pub use stats::{Stats, StatsSnapshot};

/// How many generations a stream remembers (older cursors get a `gap`).
const MAX_GENERATIONS: usize = 64;

/// A stream's URL-safe identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    /// An id derived from a file name: characters outside `[A-Za-z0-9._-]` become `_`.
    pub fn from_name(name: &str) -> Self {
        let id: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // "." and ".." would be read as path segments by clients; keep ids plain.
        if id.is_empty() || id.chars().all(|c| c == '.') {
            Self(format!("stream{id}"))
        } else {
            Self(id)
        }
    }

    /// `self` with a numeric suffix, to make a colliding id unique.
    pub fn with_suffix(&self, n: usize) -> Self {
        Self(format!("{}-{n}", self.0))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Limits of one stream; each bounds memory a stream holds.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Bytes of recent entries kept in memory (as allocated). Older entries are served from
    /// disk; at the limit the oldest cached entries are dropped. The [`MemoryBudget`] shared
    /// by all streams may hold a stream to less.
    pub cache_bytes: usize,
    /// Longest line kept whole (the follower's setting, needed to read history alike); also
    /// the most bytes of one multi-line record.
    pub max_line_bytes: usize,
    /// Most lines of one multi-line record (`--records off`: 1, every line its own entry).
    pub record_lines: usize,
}

impl StreamLimits {
    /// The bounds on one record.
    fn caps(&self) -> Caps {
        Caps {
            lines: self.record_lines.max(1),
            bytes: self.max_line_bytes as u64,
        }
    }
}

/// The cursor that lies before everything, handed out while a stream has no file yet.
pub const ORIGIN: Cursor = Cursor {
    ident: 0,
    check: 0,
    life: 0,
    seq: 0,
    point: 0,
};

/// A generation as the stream remembers it.
#[derive(Debug, Clone)]
struct GenRecord {
    generation: Arc<Generation>,
    /// The notice that opens it, at point 0.
    opening: Option<Entry>,
    /// Where the live timer split records (history honours them).
    splits: Arc<Splits>,
}

#[derive(Debug)]
struct Inner {
    gens: VecDeque<GenRecord>,
    cache: VecDeque<Entry>,
    cache_weight: usize,
    /// See the module invariant. `None` until the first generation opens.
    cache_from: Option<(u64, u64)>,
    /// The position of the last entry at or before `cache_from`, when known: a reader there
    /// has nothing left to read on disk, even once the file is gone.
    cache_floor: Option<(u64, u64)>,
    /// This stream's run (see `cursor.rs`): cursors it issued name generations exactly.
    life: u32,
    state: FileState,
    phase: Phase,
    /// The record being built from live lines, not yet an entry (not in the cache).
    live: Live,
    /// Names the format of the current generation's lines, for `/api/streams`.
    detector: Detector,
    /// A command stream's process while it is not running: the state and reason shown
    /// instead of the spool's (see [`Stream::set_process`]).
    process: Option<(&'static str, String)>,
}

/// Where a stream is in its own life, beyond the state of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fed by its follower.
    Live,
    /// Its input ended (standard input reached its end): nothing more will come.
    Ended,
    /// Its file is gone with its history (a deleted glob match); the stream is dropped soon.
    Gone,
}

/// A followed source; see the module documentation.
#[derive(Debug)]
pub struct Stream {
    id: StreamId,
    name: String,
    limits: StreamLimits,
    /// Reads `ts` and `level` off lines, live and from history alike.
    parser: Parser,
    budget: Arc<MemoryBudget>,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    /// The last answer encoded for a reader, shared with every reader that asks the same
    /// question at the same version (see [`Stream::shared_answer`]).
    shared: Mutex<Option<SharedAnswer>>,
    /// What it has taken in, for `/metrics`.
    stats: Stats,
    /// Where history continues beyond its own generations (`foreign.rs`).
    rotated: std::sync::OnceLock<Rotated>,
}

/// An encoded answer to "entries after `after`", valid for readers at `version` or later.
#[derive(Debug, Clone)]
struct SharedAnswer {
    after: Cursor,
    version: u64,
    answer: Answer,
}

/// An encoded answer shared by readers at the same cursor (see [`Stream::shared_answer`]).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The encoded event.
    pub bytes: Bytes,
    /// The cursor after its last entry.
    pub next: Cursor,
    /// Whether nothing followed `next` when it was encoded: a reader that sent it needs no
    /// further read until the version moves.
    pub complete: bool,
}

/// What `GET /api/streams` says of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The stream's id.
    pub id: String,
    /// The path as given.
    pub name: String,
    /// `following`, `waiting`, `error`, `ended` (its input ended), `gone` (its file and
    /// history are gone; the stream is dropped soon) or, for a command, `exited`.
    pub state: &'static str,
    /// Why it is waiting or in error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The layout most of its lines have (`iso`, `json`, `logfmt`, `syslog`, …; see
    /// `parse::Shape`), once detected from the first lines of its current file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    /// Whether any of its lines carried an event time (so `at=` can find something).
    pub timed: bool,
}

impl Stream {
    /// A stream with no file yet, whose cache counts against `budget`.
    pub fn new(
        id: StreamId,
        name: String,
        limits: StreamLimits,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        budget.join();
        Self {
            id,
            name,
            limits,
            parser: Parser::new(Zone::system()),
            budget,
            inner: Mutex::new(Inner {
                gens: VecDeque::new(),
                cache: VecDeque::new(),
                cache_weight: 0,
                cache_from: None,
                cache_floor: None,
                life: cursor::life(),
                state: FileState::Waiting("not looked at yet".into()),
                phase: Phase::Live,
                live: Live::new(limits.caps()),
                detector: Detector::new(),
                process: None,
            }),
            changed: watch::Sender::new(0),
            shared: Mutex::new(None),
            stats: Stats::default(),
            rotated: std::sync::OnceLock::new(),
        }
    }

    /// The stream with stamps that carry no zone read in `zone` (`--timezone`; the
    /// server's own zone by default).
    #[must_use]
    pub fn with_zone(mut self, zone: Zone) -> Self {
        self.parser = Parser::new(zone);
        self
    }

    /// The stream's id.
    pub fn id(&self) -> &StreamId {
        &self.id
    }

    /// The path as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An answer another reader already encoded for "entries after `after`" at `version`
    /// (the value its `subscribe` receiver saw), and its `next`.
    ///
    /// When a line is appended, every reader waiting at the newest cursor asks the same
    /// question; the first encodes the answer and the rest send the same bytes, so a batch is
    /// encoded once however many clients follow the stream. Entries never change once
    /// appended, so an answer computed at one version is still a correct (prefix) answer at any
    /// later version; the version in the key only makes readers that saw newer entries compute
    /// a fresher answer.
    pub fn shared_answer(&self, after: Cursor, version: u64) -> Option<Answer> {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared
            .as_ref()
            .filter(|s| s.after == after && s.version == version)
            .map(|s| s.answer.clone())
    }

    /// Offers an encoded answer to readers asking the same question; see
    /// [`Stream::shared_answer`].
    pub fn share_answer(&self, after: Cursor, version: u64, answer: Answer) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.as_ref().is_none_or(|s| s.version <= version) {
            *shared = Some(SharedAnswer {
                after,
                version,
                answer,
            });
        }
    }

    /// A receiver that is marked changed whenever entries are appended or the state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The stream's state and name, for listings.
    pub fn summary(&self) -> Summary {
        let inner = self.lock();
        let (state, reason) = match (inner.phase, &inner.state, &inner.process) {
            (Phase::Ended, ..) => ("ended", Some("the input ended".to_owned())),
            (Phase::Gone, ..) => ("gone", Some("the file was deleted".to_owned())),
            (Phase::Live, _, Some((state, reason))) => (*state, Some(reason.clone())),
            (Phase::Live, FileState::Following, None) => ("following", None),
            (Phase::Live, FileState::Waiting(r), None) => ("waiting", Some(r.clone())),
            (Phase::Live, FileState::Error(r), None) => ("error", Some(r.clone())),
        };
        Summary {
            id: self.id.to_string(),
            name: self.name.clone(),
            state,
            reason,
            format: inner.detector.shape().map(crate::parse::Shape::as_str),
            timed: inner.detector.timed(),
        }
    }

    /// What it has taken in since the start (lines, bytes, notices).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Whether a file is open and followed.
    pub fn is_following(&self) -> bool {
        self.lock().state == FileState::Following
    }

    /// Shows a command's process as the stream's state: `Some((state, reason))` while it is
    /// not running (`exited`, `error`), `None` once it runs; wakes readers on a change.
    pub fn set_process(&self, process: Option<(&'static str, String)>) {
        let changed = {
            let mut inner = self.lock();
            let changed = inner.process != process;
            inner.process = process;
            changed
        };
        if changed {
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// Moves the stream to `phase` and wakes its readers (who may be showing its state).
    pub fn set_phase(&self, phase: Phase) {
        let changed = {
            let mut inner = self.lock();
            std::mem::replace(&mut inner.phase, phase) != phase
        };
        if changed {
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// Whether nothing of the stream's history can be read from disk any more: every
    /// generation's file was let go (or none was ever opened), and no file is followed.
    pub fn history_gone(&self) -> bool {
        let inner = self.lock();
        inner.state != FileState::Following
            && inner.gens.iter().all(|r| r.generation.file().is_none())
    }

    /// Whether a generation's file can still be read: held, or let go but still in the
    /// stream's directory under another name (found by identity, as history readers do). May
    /// block on file I/O (it reads the directory): call it off the async workers.
    pub fn history_on_disk(&self) -> bool {
        let candidates: Vec<Arc<Generation>> = {
            let inner = self.lock();
            inner
                .gens
                .iter()
                .filter(|r| resolve::reusable(&inner.gens, &r.generation))
                .map(|r| r.generation.clone())
                .collect()
        };
        candidates
            .iter()
            .any(|g| g.file().is_some() || resolve::reopen(&self.name, g).is_some())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way that
        // matters more than stopping the whole stream would, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a follower's events (made ready by [`Stream::prepare`]), in order, and wakes
    /// waiting readers once. Takes the stream's lock, but does no I/O. Lines join the open
    /// multi-line record or close it (`records.rs`); a record is an entry once closed, so
    /// also call this (with no events) by [`Stream::record_deadline`].
    pub fn apply(&self, update: Update) {
        self.stats.record(update.events());
        let Update {
            events,
            mut preload,
        } = update;
        let now = Instant::now();
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut inner = self.lock();
        let before = inner.weight();
        if events.is_empty() && inner.live.deadline().is_none_or(|d| d > now) {
            return;
        }
        let mut closed: Vec<Closed> = Vec::new();
        let first_look = preload.is_some();
        for event in events {
            match event {
                Event::Opened {
                    generation,
                    notice,
                    from,
                } => {
                    closed.extend(inner.live.restart());
                    inner.detector.reset();
                    inner.push_closed(&mut closed, self.limits.max_line_bytes);
                    let opening = notice
                        .as_ref()
                        .map(|n| Entry::notice(inner.life, &generation, 0, n));
                    if inner.cache_from.is_none() {
                        inner.cache_from = Some((generation.seq, from));
                        // The first look starts at the end of the file: its last records go
                        // into the cache at once (read by `prepare`), so first loads (`last=N`)
                        // are answered from memory. The very last one stays open, so that the
                        // first live lines may still join it.
                        let recent = preload.take().filter(|p| p.seq == generation.seq);
                        if let Some(floor) = recent.as_ref().and_then(|p| p.floor) {
                            inner.cache_floor = Some((generation.seq, floor));
                        }
                        if let Some(first) = recent.as_ref().and_then(preload::Preload::first) {
                            inner.cache_from = Some((generation.seq, first));
                        }
                        if let Some(p) = recent {
                            inner.detector = p.detector;
                            for entry in p.entries {
                                inner.push(entry);
                            }
                            if let Some(open) = p.open {
                                inner.live.hold(generation.clone(), open, now);
                            }
                        }
                    }
                    if let Some(entry) = &opening {
                        inner.push(entry.clone());
                    }
                    inner.gens.push_back(GenRecord {
                        generation,
                        opening,
                        splits: Arc::default(),
                    });
                    while inner.gens.len() > MAX_GENERATIONS {
                        inner.forget_oldest_generation();
                    }
                }
                Event::Lines { generation, lines } => {
                    let splits = inner
                        .gens
                        .iter()
                        .rev()
                        .find(|r| r.generation.seq == generation.seq)
                        .map_or_else(Arc::default, |r| r.splits.clone());
                    for raw in lines {
                        let line = Line::read(
                            raw,
                            &self.parser,
                            i64::try_from(time).unwrap_or(i64::MAX),
                            self.limits.max_line_bytes,
                            &Splits::default(),
                        );
                        inner.detector.observe(&line.facts, line.raw.len == 0);
                        inner
                            .live
                            .push(&generation, line, (&splits, time, now), &mut closed);
                    }
                    inner.push_closed(&mut closed, self.limits.max_line_bytes);
                }
                Event::State(state) => inner.state = state,
            }
        }
        if first_look {
            // The file's last record was written before we looked: it is complete unless a
            // writer is in the middle of it, and then its next lines are recorded as a split.
            closed.extend(inner.live.close_now());
        }
        // The open record closes once a look at the file, at or after its deadline, found no
        // line for it. Lines found by a late look still join: the delay was ours, not the
        // writer's.
        closed.extend(inner.live.close_due(now));
        inner.push_closed(&mut closed, self.limits.max_line_bytes);
        // Account the growth first, so that the budget's verdict includes this batch.
        let grown = inner.weight();
        self.budget.settle(before, grown);
        inner.trim(self.budget.target(self.limits.cache_bytes));
        self.budget.settle(grown, inner.weight());
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
    }

    /// When the open multi-line record closes unless a line comes first: the follower task
    /// calls [`Stream::apply`] by then.
    pub fn record_deadline(&self) -> Option<Instant> {
        self.lock().live.deadline()
    }

    /// Closes the open multi-line record now (the input ended: no line can join it).
    pub fn close_record(&self) {
        let mut inner = self.lock();
        let before = inner.weight();
        let mut closed: Vec<Closed> = inner.live.close_now().into_iter().collect();
        if closed.is_empty() {
            return;
        }
        inner.push_closed(&mut closed, self.limits.max_line_bytes);
        self.budget.settle(before, inner.weight());
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
    }

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

impl Drop for Stream {
    fn drop(&mut self) {
        let weight = self.lock().weight();
        self.budget.leave(weight);
    }
}

impl Inner {
    /// The memory the cache holds: its entries, and the cache's spare slots.
    fn weight(&self) -> usize {
        self.cache_weight
            + (self.cache.capacity() - self.cache.len()) * std::mem::size_of::<Entry>()
    }

    fn push(&mut self, entry: Entry) {
        self.cache_weight += entry.weight();
        self.cache.push_back(entry);
    }

    /// Turns closed records into cached entries, in order.
    fn push_closed(&mut self, closed: &mut Vec<Closed>, max_line_bytes: usize) {
        for c in closed.drain(..) {
            let entry = Entry::record(self.life, &c.generation, &c.record, max_line_bytes, c.time);
            self.push(entry);
        }
    }

    /// Drops the oldest cached entries beyond the budget, moving `cache_from` past them.
    fn trim(&mut self, budget: usize) {
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
    fn forget_oldest_generation(&mut self) {
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
