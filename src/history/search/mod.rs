//! Searching a stream's whole history: its own generations and every rotated file.
//!
//! The scan reads big blocks, not lines (GNU grep's and ripgrep's way): a *prefilter* (the
//! query's longest word with `memmem` or ASCII case folding, or its regex with `^`/`$` per
//! line) runs over a whole block; only around a hit is the line found (`memrchr`/`memchr`),
//! turned into the entry `/lines` would serve, and tested with the whole query (the same
//! `q` grammar and evaluator as the filter, so search and filter agree). A query with no
//! positive word or regex (only `-word`, fields or `level>=`) tests every line.
//!
//! Newest first, plain files are read backwards in [`BLOCK`]s and each block is searched
//! forwards, its matches emitted in reverse. A `.gz` is decoded once, forwards (which also
//! builds its checkpoints); newest first, its matches are kept (at most the number still
//! wanted) and emitted reversed at its end.
//!
//! Nothing here knows HTTP: [`run`] reports through a callback that says whether the
//! receiver is still there, and checks a cancellation token once per block, so a search stops
//! within one block of its client going away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::{memchr, memrchr};
use tokio_util::sync::CancellationToken;

use super::{Chain, chain};
use crate::query::{self, Record};
use crate::stream::disk::ReadAt;
use crate::stream::{Cursor, Entry, Stream};
use crate::tail::{Generation, Notice, NoticeKind, RawLine};

mod prefilter;
mod read;

use prefilter::Prefilter;

/// Bytes read per block.
pub const BLOCK: usize = 1 << 20;
/// Longest line the scanner grows a block for. A longer line is not searched: it is passed
/// over, and a `gap` notice in the matches (which counts as no match) marks where it is.
const MAX_LINE_SCAN: usize = 64 << 20;
/// Progress is reported at least this often while the scan runs.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Which end first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The latest matches first (scanning backwards).
    Newest,
    /// The oldest first.
    Oldest,
}

/// What a search reports.
#[derive(Debug)]
pub enum Event {
    /// Matches, in search order.
    Entries(Vec<Entry>),
    /// Bytes examined so far, of the total.
    Progress {
        /// Bytes examined.
        scanned: u64,
        /// Bytes to examine (text bytes; a `.gz` counts as its compressed size until it
        /// has been decoded once).
        total: u64,
    },
    /// The end: how many matched, and where to continue (`None`: the range is done).
    Done {
        /// Matches reported.
        matches: usize,
        /// Bytes examined.
        scanned: u64,
        /// Pass as `before` (newest first) or `after` (oldest first) to go on.
        next: Option<Cursor>,
    },
}

/// A search, validated.
#[derive(Debug)]
pub struct Request {
    /// The query (non-empty).
    pub query: Arc<query::Query>,
    /// Which end first.
    pub order: Order,
    /// Most matches reported.
    pub limit: usize,
    /// Only entries before this cursor.
    pub before: Option<Cursor>,
    /// Only entries after this cursor.
    pub after: Option<Cursor>,
}

/// Why a search could not start.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A bound names no position of this stream's history.
    #[error("the `{0}` cursor does not point into this stream's history")]
    Cursor(&'static str),
}

/// One file of the history, as the scan sees it.
struct Unit {
    reader: Arc<dyn ReadAt + Send + Sync>,
    generation: Arc<Generation>,
    /// The `life` its cursors carry.
    life: u32,
    /// Its text bytes, `[0, len)`.
    len: u64,
    /// A `.gz` member: decoded in one forward pass.
    member: Option<Arc<super::Member>>,
    /// Bytes counted for progress.
    weight: u64,
    /// The file's name, for marks.
    name: String,
}

/// The search's state: counters, the callback, the clock.
struct Scan<'a> {
    stream: &'a Stream,
    query: &'a query::Query,
    prefilter: Prefilter,
    cancel: &'a CancellationToken,
    emit: &'a mut dyn FnMut(Event) -> bool,
    remaining: usize,
    matches: usize,
    scanned: u64,
    total: u64,
    last_progress: Instant,
    /// The last match reported (the continuation when the limit stops the scan).
    last: Option<Cursor>,
    stopped: bool,
}

/// Runs a search over `stream`'s history and reports through `emit`, which returns false
/// when nobody listens any more. Blocking: run it on a blocking thread.
///
/// # Errors
/// A bound that does not resolve.
pub fn run(
    stream: &Stream,
    request: &Request,
    cancel: &CancellationToken,
    emit: &mut dyn FnMut(Event) -> bool,
) -> Result<(), SearchError> {
    let chain = chain(stream);
    let mut units = units(stream, &chain);
    // Bounds: `[lo, hi)` over (unit, offset) in history order.
    let hi = match request.before {
        Some(c) => locate(&units, &c).ok_or(SearchError::Cursor("before"))?,
        None => (units.len(), 0),
    };
    // `after` C: lines that start at or past C's point; `before` C: lines that start before
    // C's point less one (see `stream/cursor.rs`).
    let lo = match request.after {
        Some(c) => {
            let (i, at) = locate(&units, &c).ok_or(SearchError::Cursor("after"))?;
            (i, at + 1)
        }
        None => (0, 0),
    };
    units.truncate(hi.0 + 1);
    let total = units.iter().map(|u| u.weight).sum();
    let mut scan = Scan {
        stream,
        query: &request.query,
        prefilter: Prefilter::of(&request.query),
        cancel,
        emit,
        remaining: request.limit,
        matches: 0,
        scanned: 0,
        total,
        last_progress: Instant::now(),
        last: None,
        stopped: false,
    };
    if !(scan.emit)(Event::Progress { scanned: 0, total }) {
        return Ok(());
    }
    let span = |i: usize, u: &Unit| {
        let from = if i == lo.0 { lo.1 } else { 0 };
        let to = if i == hi.0 { hi.1.min(u.len) } else { u.len };
        (from, to)
    };
    let mut order: Vec<usize> = (lo.0..units.len()).collect();
    if request.order == Order::Newest {
        order.reverse();
    }
    for i in order {
        let unit = &units[i];
        let (from, to) = span(i, unit);
        let counted = scan.scanned;
        let result = if from >= to {
            Ok(())
        } else if unit.member.as_ref().is_some_and(|m| m.gzip().is_some()) {
            scan.gzip(unit, from, to, request.order)
        } else if request.order == Order::Newest {
            scan.backward(unit, from, to)
        } else {
            scan.forward(unit, from, to)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "search: a file could not be read; it is skipped");
        }
        scan.scanned = counted + unit.weight;
        if scan.stopped || !scan.progress(true) {
            break;
        }
    }
    let next = if scan.remaining == 0 { scan.last } else { None };
    if !scan.cancel.is_cancelled() {
        (scan.emit)(Event::Done {
            matches: scan.matches,
            scanned: scan.scanned,
            next,
        });
    }
    Ok(())
}

/// The history's files, oldest first: rotated members, then the stream's own generations
/// that it can read.
fn units(stream: &Stream, chain: &Chain) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for link in &chain.links {
        let m = &link.member;
        // A `.gz`'s length is known only once it has been decoded; until then its
        // compressed size stands in (the scan decodes it in one pass anyway).
        let len = if m.compressed() {
            u64::MAX
        } else {
            m.len().unwrap_or(0)
        };
        units.push(Unit {
            reader: m.clone(),
            generation: m.generation.clone(),
            life: crate::stream::FOREIGN_LIFE,
            len,
            member: Some(m.clone()),
            weight: m.disk_len(),
            name: link.name.clone(),
        });
    }
    let life = stream.life();
    // A generation the stream let go is searched where its own reads find it again (the
    // same inode under another name); once compressed, it is a rotated file above.
    for (g, file) in stream.readable_generations() {
        units.push(Unit {
            reader: file,
            len: g.end(),
            weight: g.end(),
            generation: g,
            life,
            member: None,
            name: stream.name().to_owned(),
        });
    }
    units
}

/// Where `c` lies: (unit, byte offset of the first line at or after it).
fn locate(units: &[Unit], c: &Cursor) -> Option<(usize, u64)> {
    let mut hits = units.iter().enumerate().filter(|(_, u)| {
        u.life == c.life
            && u.generation.ident == c.ident
            && (c.life != crate::stream::FOREIGN_LIFE
                || u.generation.check(c.point) == Some(c.check))
            && (c.life == crate::stream::FOREIGN_LIFE || u.generation.seq == c.seq)
    });
    let (i, _) = hits.next()?;
    if hits.next().is_some() {
        return None;
    }
    Some((i, c.point.saturating_sub(1)))
}

impl Scan<'_> {
    /// Reports progress when due (or `force`); false when the receiver is gone or the
    /// search is cancelled.
    fn progress(&mut self, force: bool) -> bool {
        if self.cancel.is_cancelled() {
            self.stopped = true;
            return false;
        }
        if force || self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.last_progress = Instant::now();
            let ok = (self.emit)(Event::Progress {
                scanned: self.scanned,
                total: self.total,
            });
            if !ok {
                self.stopped = true;
                self.cancel.cancel();
            }
            return ok;
        }
        true
    }

    /// Reports matches (already in search order); stops at the limit. Marks (notices of
    /// lines too long to search) ride along and count for nothing.
    fn report(&mut self, found: Vec<Entry>) {
        let mut out = Vec::with_capacity(found.len());
        for e in found {
            if !e.notice {
                if self.remaining == 0 {
                    break;
                }
                self.remaining -= 1;
                self.matches += 1;
                self.last = Some(e.cursor);
            }
            out.push(e);
        }
        if out.is_empty() {
            return;
        }
        if !(self.emit)(Event::Entries(out)) {
            self.stopped = true;
            self.cancel.cancel();
        }
        if self.remaining == 0 {
            self.stopped = true;
        }
    }

    /// The mark of a line longer than [`MAX_LINE_SCAN`] that the scan passes over, at
    /// `point` of `unit` (its start when known, else where the scan gave up on it).
    fn long_line(&self, unit: &Unit, point: u64) -> Entry {
        let detail = format!(
            "a line of {} longer than {} MiB was not searched (near byte {}): matches in it are \
             not shown",
            unit.name,
            MAX_LINE_SCAN >> 20,
            point.saturating_sub(1)
        );
        self.stream.notice_of(
            unit.life,
            &unit.generation,
            point,
            &Notice {
                kind: NoticeKind::Gap,
                detail,
            },
        )
    }

    /// Matching lines of `region` (whole lines, starting at file offset `base`), in order,
    /// each with the offset where its text ends.
    fn matches_in(&mut self, unit: &Unit, region: &[u8], base: u64, out: &mut Vec<(u64, Entry)>) {
        let max = self.stream.max_line_bytes();
        let mut pos = 0;
        let mut tested = 0u32;
        while let Some(hit) = self.prefilter.find(region, pos) {
            tested = tested.wrapping_add(1);
            // Many candidates (a query without a prefilter) make a block slow: keep the
            // progress cadence and notice a cancellation between blocks too.
            if tested % 1024 == 0 && !self.progress(false) {
                break;
            }
            let start = memrchr(b'\n', &region[..hit]).map_or(0, |i| i + 1).max(pos);
            let end = memchr(b'\n', &region[hit..]).map_or(region.len(), |i| hit + i);
            let bytes = &region[start..end];
            let line = RawLine {
                start: base + start as u64,
                len: bytes.len() as u64,
                head: bytes[..bytes.len().min(max + 1)].to_vec(),
            };
            let entry = self.stream.entry_of(unit.life, &unit.generation, &line);
            let keep = entry.text().is_some_and(|text| {
                self.query.matches(&Record {
                    text,
                    level: entry.facts.level,
                })
            });
            if keep {
                out.push((base + end as u64, entry));
            }
            pos = end + 1;
            if pos >= region.len() {
                break;
            }
        }
    }
}
