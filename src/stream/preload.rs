//! The cache's first fill: when a stream's first file is opened at its end, its last lines are
//! read from disk so that first loads (`last=N`) are answered from memory.
//!
//! Reading them is file I/O, up to [`RECENT_BYTES`], so it happens in
//! [`Stream::prepare`] on the follower's blocking thread, before the stream's lock is taken;
//! [`Stream::apply`] then only moves the encoded entries into the cache.

use std::sync::Arc;

use super::disk;
use super::{Entry, Stream};
use crate::tail::{Event, Generation, RawLine};

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

/// The last lines before a first generation's live start, encoded.
#[derive(Debug)]
pub(super) struct Preload {
    /// The generation they belong to.
    pub(super) seq: u64,
    /// The point of the line just before the first cached one: it only marks `cache_floor`.
    pub(super) floor: Option<u64>,
    /// The cached entries, in file order.
    pub(super) entries: Vec<Entry>,
}

impl Stream {
    /// Makes a follower's events ready to [`apply`](Stream::apply). When they open the
    /// stream's first generation, this reads its last lines (at most 1,000 lines,
    /// 1 MiB) from disk and encodes them. May block on file I/O: call it off
    /// the async workers.
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
        let mut recent = recent_lines(generation, from, max).into_iter();
        let floor = recent.next().map(|l| l.start + 1);
        let entries = recent
            .map(|line| Entry::line(life, generation, &line, max, None, &self.parser))
            .collect();
        Preload {
            seq: generation.seq,
            floor,
            entries,
        }
    }
}

/// How many of a file's last lines are put in the cache when it is first opened at its end,
/// and how many bytes of them at most.
pub(super) const RECENT_LINES: usize = 1000;
pub(super) const RECENT_BYTES: usize = 1 << 20;

/// The last complete lines before byte `from` of a generation, in file order (read once,
/// when the file is first opened at its end, on the follower's blocking thread). The first
/// of them only marks `cache_floor`; the others are cached.
fn recent_lines(generation: &Generation, from: u64, max_line_bytes: usize) -> Vec<RawLine> {
    let Some(file) = generation.file() else {
        return Vec::new();
    };
    let extent = disk::Extent {
        end: from,
        unterminated_ok: false,
    };
    let mut out: Vec<RawLine> = Vec::new();
    let mut before = from;
    let mut bytes = 0;
    while out.len() <= RECENT_LINES && bytes < RECENT_BYTES {
        let Ok((mut lines, at_start)) =
            disk::lines_before(&file, before, extent, max_line_bytes, 64)
        else {
            break;
        };
        bytes += lines.iter().map(|l| l.head.len()).sum::<usize>();
        let Some(first) = lines.first() else { break };
        before = first.start;
        lines.append(&mut out);
        out = lines;
        if at_start {
            break;
        }
    }
    let excess = out.len().saturating_sub(RECENT_LINES + 1);
    out.drain(..excess);
    out
}
