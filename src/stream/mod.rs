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

mod answer;
mod apply;
mod budget;
mod cache;
mod cursor;
pub(crate) mod disk;
mod entry;
mod foreign;
mod gap;
mod id;
mod limits;
mod preload;
mod read;
mod records;
mod resolve;
mod seek;
mod sieve;
mod skim;
mod stats;
mod summary;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::parse::detect::Detector;
use crate::parse::{Parser, Zone};

use tokio::sync::watch;

use crate::tail::{FileState, Generation};

pub use answer::Answer;
use answer::SharedAnswer;
pub use budget::MemoryBudget;
pub use cursor::{Cursor, CursorError, CursorText};
use entry::cursor_for;
pub use entry::{Entry, Facts};
pub(crate) use foreign::FOREIGN_LIFE;
pub use foreign::Rotated;
pub use id::StreamId;
pub use limits::StreamLimits;
pub use preload::Update;
pub use read::{Page, Query};
pub use records::CLOSE_AFTER;
use records::{Live, Splits};
pub use seek::TimeSeek;
pub use sieve::Sieve;
pub use stats::{Stats, StatsSnapshot};
pub use summary::Summary;

/// How many generations a stream remembers (older cursors get a `gap`).
const MAX_GENERATIONS: usize = 64;

/// The cursor that lies before everything, handed out while a stream has no file yet.
pub const ORIGIN: Cursor = Cursor {
    ident: 0,
    check: 0,
    life: 0,
    seq: 0,
    point: 0,
    len: 0,
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
        self.parser = Parser::new(zone).with_pinned(self.parser.pinned());
        self
    }

    /// The stream with its lines read under the format the operator gave it (`format` in a
    /// `[[source]]` table; `None`: detected).
    #[must_use]
    pub fn with_pinned(mut self, pinned: Option<crate::parse::pinned::Pinned>) -> Self {
        self.parser = self.parser.clone().with_pinned(pinned);
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

    /// A receiver that is marked changed whenever entries are appended or the state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
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
}

impl Drop for Stream {
    fn drop(&mut self) {
        let weight = self.lock().weight();
        self.budget.leave(weight);
    }
}
