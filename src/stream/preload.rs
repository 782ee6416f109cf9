//! The cache's first fill: when a stream's first file is opened at its end, its last records
//! are read from disk so that first loads (`last=N`) are answered from memory.
//!
//! Reading them is file I/O, up to [`RECENT_BYTES`], so it happens in
//! [`Stream::prepare`] on the follower's blocking thread, before the stream's lock is taken;
//! [`Stream::apply`] then only moves the encoded entries into the cache.

use std::sync::Arc;

use super::disk;
use super::entry::now_ms;
use super::records::{Reading, Record, Splits, records_before};
use super::{Entry, Stream};
use crate::parse::detect::Detector;
use crate::tail::{Event, Generation};

/// A follower's events, with what applying them needs from disk already read; made by
/// [`Stream::prepare`], consumed by [`Stream::apply`].
#[derive(Debug)]
pub struct Update {
    pub(super) events: Vec<Event>,
    pub(super) preload: Option<Preload>,
}

impl Update {
    /// The follower's events, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}

/// The last records before a first generation's live start, encoded.
#[derive(Debug)]
pub(super) struct Preload {
    /// The generation they belong to.
    pub(super) seq: u64,
    /// The point of the record just before the first cached one: it only marks
    /// `cache_floor`.
    pub(super) floor: Option<u64>,
    /// The cached entries, in file order.
    pub(super) entries: Vec<Entry>,
    /// The last record, held open so the first live lines can join it.
    pub(super) open: Option<Record>,
    /// The format detector, having seen the lines read.
    pub(super) detector: Detector,
}

impl Preload {
    /// Where the first of its records starts.
    pub(super) fn first(&self) -> Option<u64> {
        self.entries
            .first()
            .map(|e| e.point - 1)
            .or_else(|| self.open.as_ref().map(Record::start))
    }
}

impl Stream {
    /// Makes a follower's events ready to [`apply`](Stream::apply). When they open the
    /// stream's first generation, this reads its last records (at most 1,000, 1 MiB) from
    /// disk and encodes them. May block on file I/O: call it off the async workers.
    pub fn prepare(&self, events: Vec<Event>) -> Update {
        let (first, life) = {
            let inner = self.lock();
            (inner.cache_from.is_none(), inner.life)
        };
        let opened = events.iter().find_map(|e| match e {
            Event::Opened {
                generation, from, ..
            } => Some((generation, *from)),
            _ => None,
        });
        let preload = opened
            .filter(|_| first)
            .map(|(generation, from)| self.preload(life, generation, from));
        Update { events, preload }
    }

    fn preload(&self, life: u32, generation: &Arc<Generation>, from: u64) -> Preload {
        let max = self.limits.max_line_bytes;
        let splits = Splits::default();
        let how = Reading {
            parser: &self.parser,
            splits: &splits,
            caps: self.limits.caps(),
            max_line_bytes: max,
            reference_ms: now_ms(),
        };
        let mut recent = recent_records(generation, from, how).into_iter();
        let floor = recent.next().map(|r| r.start() + 1);
        let mut records: Vec<Record> = recent.collect();
        let mut detector = Detector::new();
        for line in records.iter().flat_map(|r| &r.lines) {
            detector.observe(&line.facts, line.raw.len == 0);
        }
        let open = records.pop();
        let entries = records
            .iter()
            .map(|r| Entry::record(life, generation, r, max, None))
            .collect();
        Preload {
            seq: generation.seq,
            floor,
            entries,
            open,
            detector,
        }
    }
}

/// How many of a file's last records are put in the cache when it is first opened at its
/// end, and how many bytes of them at most.
pub(super) const RECENT_LINES: usize = 1000;
pub(super) const RECENT_BYTES: usize = 1 << 20;

/// The last complete records before byte `from` of a generation, in file order (read once,
/// when the file is first opened at its end, on the follower's blocking thread). The first
/// of them only marks `cache_floor`; the others are cached.
fn recent_records(generation: &Generation, from: u64, how: Reading<'_>) -> Vec<Record> {
    let Some(file) = generation.file() else {
        return Vec::new();
    };
    let extent = disk::Extent {
        end: from,
        unterminated_ok: false,
    };
    let mut out: Vec<Record> = Vec::new();
    let mut before = from;
    let mut bytes = 0;
    while out.len() <= RECENT_LINES && bytes < RECENT_BYTES {
        let Ok((mut records, top)) = records_before(&file, before, extent, how, 64) else {
            break;
        };
        bytes += records
            .iter()
            .flat_map(|r| &r.lines)
            .map(|l| l.raw.head.len())
            .sum::<usize>();
        let Some(first) = records.first() else { break };
        before = first.start();
        records.append(&mut out);
        out = records;
        if top != disk::Top::More {
            break;
        }
    }
    let excess = out.len().saturating_sub(RECENT_LINES + 1);
    out.drain(..excess);
    out
}
