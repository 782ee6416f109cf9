//! Answering "entries after / before this position" from the cache and from disk.
//!
//! Positions are `(generation seq, point)` pairs ordered lexicographically; see `cursor.rs`
//! for points. The lock is never held across disk I/O: a read snapshots what it needs, reads the
//! file, then takes the lock again, so a read that crosses from disk into the cache still sees
//! a consistent, gapless sequence even while the follower appends and the cache is trimmed.

mod before;
mod rotated;

use std::sync::Arc;

use std::fs::File;

use super::disk::{Extent, Top};
use super::entry::now_ms;
use super::entry::record_cursor;
use super::gap::{gap, history_gap, long_line_gap};
use super::records::{Reading, Record, records_before, records_from};
use super::resolve::{Pos, Resolved, oldest_available, reopen, resolve, reusable};
use super::sieve::{Sieve, Sifted, sift_before, sift_from};
use super::{Cursor, Entry, GenRecord, Inner, ORIGIN, Stream, cursor_for};
use crate::tail::Generation;

/// Upper bound on the encoded size of one page, so that `limit` bounds bytes as well as
/// entries. A page always holds at least one entry, however large.
const PAGE_BYTES: usize = 4 << 20;

/// What a reader asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// The entries after a cursor, oldest first.
    After(Cursor),
    /// The entries before a cursor, in stream order.
    Before(Cursor),
    /// The last N entries.
    Last(usize),
}

/// One answer: entries in stream order and where to go from here.
#[derive(Debug, Clone)]
pub struct Page {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Pass as `after` to continue.
    pub next: Cursor,
    /// Pass as `before` to page further back; `None` at the start of the history.
    pub prev: Option<Cursor>,
}

/// Collects entries up to a count and a byte budget.
struct Budget {
    limit: usize,
    bytes: usize,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Self { limit, bytes: 0 }
    }

    /// Whether one more entry of `len` bytes fits after `taken` entries.
    fn fits(&self, taken: usize, len: usize) -> bool {
        taken < self.limit && (taken == 0 || self.bytes + len <= PAGE_BYTES)
    }

    fn take(&mut self, len: usize) {
        self.bytes += len;
    }
}

impl Stream {
    /// Answers from memory alone, or `None` when the answer needs the disk.
    pub fn read_cached(&self, query: &Query, limit: usize) -> Option<Page> {
        self.read_inner(query, limit, false)
    }

    /// How many entries come after `c`, counted in the cache without reading it, for
    /// `/metrics`' client lag: `(n, true)` when `c` lies before the cache (or does not resolve),
    /// so that at least `n` entries (all the cached ones) come after it.
    pub fn entries_after(&self, c: Cursor) -> (usize, bool) {
        let inner = self.lock();
        let Some(cf) = inner.cache_from else {
            return (0, false);
        };
        match resolve(&inner, c) {
            Resolved::At(pos)
                if pos >= cf || inner.cache_floor.is_some_and(|f| f.0 == pos.0 && pos >= f) =>
            {
                let first = inner.cache.partition_point(|e| e.key() <= pos);
                (inner.cache.len() - first, false)
            }
            _ => (inner.cache.len(), true),
        }
    }

    /// Answers, reading history from disk where needed. May block on file I/O: call it off the
    /// async workers.
    pub fn read(&self, query: &Query, limit: usize) -> Page {
        self.read_inner(query, limit, true)
            .expect("reads allowed to use the disk always answer")
    }

    /// The entries after `c` that pass `sieve`, at most `limit` of them (notices always
    /// pass), read until then, the end of what exists, or the sieve's budget. `next` is after
    /// the last entry *examined*, `prev` before the first. With `disk` false, `None` when the
    /// answer needs the disk; with it, may block on file I/O: call it off the async workers.
    pub fn read_sifted(
        &self,
        c: Cursor,
        limit: usize,
        sieve: &mut Sieve<'_>,
        disk: bool,
    ) -> Option<Page> {
        self.read_after(c, limit, disk, Some(sieve))
    }

    /// The entries before `c` (`None`: the end of the stream) that pass `sieve`, at most
    /// `limit` of them (notices always pass), read back until then, the start of the
    /// stream's history, or the sieve's budget. `prev` is before the oldest entry *examined*,
    /// `None` at the start; the second value is that oldest position examined, also at the
    /// start (where the rotated files' history goes on). With `disk` false, `None` when the
    /// answer needs the disk; with it, may block on file I/O: call it off the async workers.
    pub fn read_sifted_before(
        &self,
        c: Option<Cursor>,
        limit: usize,
        sieve: &mut Sieve<'_>,
        disk: bool,
    ) -> Option<(Page, Option<Cursor>)> {
        let Some(c) = c else {
            return self.read_back(None, limit, disk, Some(sieve));
        };
        let resolved = resolve(&self.lock(), c);
        let Resolved::At(end) = resolved else {
            let page = self.unresolved_before(resolved);
            let oldest = page.entries.first().map(|e| e.cursor);
            return Some((page, oldest));
        };
        let (mut page, oldest) = self.read_back(Some(end), limit, disk, Some(sieve))?;
        if page.entries.is_empty() {
            page.next = c;
        }
        Some((page, oldest))
    }

    fn read_inner(&self, query: &Query, limit: usize, disk: bool) -> Option<Page> {
        match *query {
            Query::After(c) => self.read_after(c, limit, disk, None),
            Query::Before(c) => {
                let resolved = resolve(&self.lock(), c);
                let Resolved::At(end) = resolved else {
                    return Some(self.unresolved_before(resolved));
                };
                let mut page = self.read_before(Some(end), limit, disk)?;
                if page.entries.is_empty() {
                    page.next = c;
                }
                Some(page)
            }
            Query::Last(n) => self.read_before(None, n, disk),
        }
    }

    /// `before=` a cursor that does not resolve: a `gap`, never a silent empty page. Past the
    /// end of its generation, paging goes on from that generation's end; for a cursor nobody
    /// here issued, the gap stands at the oldest readable position and nothing lies before.
    fn unresolved_before(&self, resolved: Resolved) -> Page {
        let inner = self.lock();
        let Some(cf) = inner.cache_from else {
            return Page {
                entries: Vec::new(),
                next: ORIGIN,
                prev: None,
            };
        };
        let (at, detail, more) = match resolved {
            Resolved::PastEnd(seq) => {
                let end = generation(&inner, seq).map_or(0, |g| g.end());
                (
                    (seq, end + 1),
                    "the cursor points past the end of its file (the file is shorter than it \
                     was: truncated while cometail was not reading it)",
                    true,
                )
            }
            _ => (
                oldest_available(&inner, cf),
                "the cursor does not belong to this stream, or names a file generation that is \
                 no longer known",
                false,
            ),
        };
        let notice = gap(&inner, at, detail.to_owned());
        let cursor = notice.cursor;
        Page {
            entries: vec![notice],
            next: cursor,
            prev: more.then_some(cursor),
        }
    }

    /// How history reads lines into records, in a generation with these splits.
    fn reading<'a>(&'a self, splits: &'a super::Splits) -> Reading<'a> {
        Reading {
            parser: &self.parser,
            splits,
            caps: self.limits.caps(),
            max_line_bytes: self.limits.max_line_bytes,
            reference_ms: now_ms(),
        }
    }

    /// The file of a generation, held or found again by identity ([`reopen`]). Blocking.
    fn file_of(&self, generation: &Generation, reusable: bool) -> Option<std::sync::Arc<File>> {
        generation
            .file()
            .or_else(|| reusable.then(|| reopen(&self.name, generation)).flatten())
    }

    fn read_after(
        &self,
        c: Cursor,
        limit: usize,
        disk: bool,
        mut sieve: Option<&mut Sieve<'_>>,
    ) -> Option<Page> {
        let mut out: Vec<Entry> = Vec::new();
        // With a sieve: the first and the last entry examined, matched or not.
        let mut examined: Option<(Cursor, Cursor)> = None;
        let mut saw = |c: Cursor| {
            examined = Some(examined.map_or((c, c), |(first, _)| (first, c)));
        };
        let mut budget = Budget::new(limit);
        let mut inner = self.lock();
        let Some(mut cf) = inner.cache_from else {
            return Some(Page {
                entries: out,
                next: c,
                prev: None,
            });
        };
        // Whether the next read starts where the reader's last entry ended (its cursor carries
        // the entry's length), so that a record grown past it is continued, not skipped.
        // Holds the point of that entry's first line, from which the read starts.
        let mut cut: Option<u64> = None;
        let mut pos = match resolve(&inner, c) {
            Resolved::At(pos) => {
                let at = c.resume_at();
                let within = generation(&inner, pos.0)
                    .is_some_and(|g| at <= g.end() + 1 || (!g.finished() && at <= g.seen() + 1));
                if at > pos.1 && within {
                    cut = Some(pos.1);
                    (pos.0, at)
                } else {
                    pos
                }
            }
            Resolved::PastEnd(seq) => {
                // The file was cut short while nobody read it: what the reader has not seen
                // starts somewhere before its cursor, so it gets the generation again from
                // its first byte, after a gap that says why.
                let resume = (seq, generation(&inner, seq).map_or(0, |g| g.start()));
                let detail = "the cursor points past the end of its file (the file is shorter \
                              than it was: truncated while cometail was not reading it); \
                              reading it again from its start"
                    .to_owned();
                let notice = gap(&inner, resume, detail);
                saw(notice.cursor);
                out.push(notice);
                resume
            }
            Resolved::Unknown => {
                let resume = oldest_available(&inner, cf);
                let detail =
                    "the cursor names a file generation that is no longer available".to_owned();
                let notice = gap(&inner, resume, detail);
                saw(notice.cursor);
                out.push(notice);
                resume
            }
        };
        loop {
            // At or past the last entry before `cache_from`, nothing is left on disk.
            let at_floor = inner.cache_floor.is_some_and(|f| f.0 == pos.0 && pos >= f);
            // A cached record that runs past where the reader stopped: its rest comes from disk.
            let span = cut.and_then(|own| spanning(&inner, pos).map(|(p, end)| (p.min(own), end)));
            let span_end = span.map(|s| s.1);
            if (pos >= cf || at_floor) && span_end.is_none() {
                let first = inner.cache.partition_point(|e| e.key() <= pos);
                for e in inner.cache.iter().skip(first) {
                    if let Some(s) = sieve.as_deref_mut() {
                        if s.spent() || out.len() >= limit {
                            break;
                        }
                        if !s.entry(e) {
                            saw(e.cursor);
                            continue;
                        }
                    }
                    if !budget.fits(out.len(), e.json.len()) {
                        break;
                    }
                    budget.take(e.json.len());
                    saw(e.cursor);
                    out.push(e.clone());
                }
                break;
            }
            if !disk {
                return None;
            }
            let rec = inner
                .gens
                .iter()
                .find(|r| r.generation.seq == pos.0)
                .cloned();
            let following = inner
                .gens
                .iter()
                .find(|r| r.generation.seq > pos.0)
                .cloned();
            let own = rec
                .as_ref()
                .is_some_and(|r| reusable(&inner.gens, &r.generation));
            drop(inner);

            let in_cache_gen = cf.0 == pos.0;
            let stop = match (&rec, span_end) {
                (_, Some(end)) => end,
                (Some(r), None) if !in_cache_gen => r.generation.end(),
                _ => cf.1,
            };
            let records = rec.as_ref().and_then(|r| {
                let file = self.file_of(&r.generation, own)?;
                let extent = Extent {
                    end: stop,
                    unterminated_ok: span_end.is_none() && !in_cache_gen && r.generation.finished(),
                };
                let room = limit.saturating_sub(out.len());
                // A segment's bytes before its start are an earlier generation's; a cut read
                // starts at the reader's own record (or the cached one holding its end).
                let own = span.map(|s| s.0).or(cut).unwrap_or(pos.1);
                let from = own.max(r.generation.start());
                let resume = cut.map(|_| pos.1);
                let how = self.reading(&r.splits);
                match sieve.as_deref_mut() {
                    Some(s) => sift_from(&file, from, extent, how, (room, resume), s).ok(),
                    None => records_from(&file, from, extent, how, (room, resume))
                        .ok()
                        .map(|records| Sifted {
                            records,
                            last: None,
                            end: true,
                        }),
                }
            });
            cut = None;
            inner = self.lock();
            match (rec, records) {
                (Some(r), Some(sifted)) => {
                    let mut full = false;
                    for record in &sifted.records {
                        let e = Entry::record(
                            inner.life,
                            &r.generation,
                            record,
                            self.limits.max_line_bytes,
                            None,
                        );
                        if !budget.fits(out.len(), e.json.len()) {
                            full = true;
                            break;
                        }
                        budget.take(e.json.len());
                        pos = e.key();
                        saw(e.cursor);
                        out.push(e);
                    }
                    if full {
                        break;
                    }
                    if let Some((start, end)) = sifted.last {
                        // Past the last match: the sieve examined up to this record.
                        saw(record_cursor(inner.life, &r.generation, start, end));
                    }
                    if out.len() >= limit || !sifted.end {
                        break;
                    }
                    if span_end.is_some() {
                        // The rest of the stream comes from the cache, after that record.
                        cf = inner.cache_from.unwrap_or(cf);
                        continue;
                    }
                }
                (_, _) if span_end.is_some() => {
                    // The rest of that cached record cannot be read back: go on after it by the
                    // point rule, as a cursor without a length would (never back before `pos`).
                    cf = inner.cache_from.unwrap_or(cf);
                    continue;
                }
                (_, _) => {
                    // The bytes between `pos` and `stop` cannot be read any more.
                    let resume = if in_cache_gen {
                        cf
                    } else {
                        following
                            .as_ref()
                            .map_or(cf, |f| (f.generation.seq, f.generation.start()))
                    };
                    let detail = if in_cache_gen {
                        format!(
                            "{} bytes of an earlier file generation are no longer available",
                            stop.saturating_sub(pos.1)
                        )
                    } else {
                        "entries of an earlier file generation are no longer available".to_owned()
                    };
                    let notice = gap(&inner, resume, detail);
                    saw(notice.cursor);
                    out.push(notice);
                    pos = resume;
                    cf = inner.cache_from.unwrap_or(cf);
                    continue;
                }
            }
            // Everything before `stop` in this generation has been read.
            if in_cache_gen {
                pos = pos.max(cf);
            } else if let Some(f) = following {
                if let Some(opening) = &f.opening {
                    saw(opening.cursor);
                    out.push(opening.clone());
                }
                pos = (f.generation.seq, f.generation.start());
            } else {
                break;
            }
            cf = inner.cache_from.unwrap_or(cf);
        }
        let (first, last) = match (sieve, examined) {
            (Some(_), Some((first, last))) => (Some(first), Some(last)),
            (Some(_), None) => (None, None),
            (None, _) => (out.first().map(|e| e.cursor), out.last().map(|e| e.cursor)),
        };
        let next = last.unwrap_or(c);
        // Nothing new: paging back starts at the reader's own cursor.
        let prev = first.or((c != ORIGIN).then_some(c));
        Some(Page {
            entries: out,
            next,
            prev,
        })
    }
}

/// The cached entry that holds position `pos` strictly inside it (a record that grew past a
/// reader's last entry, after a restart forgot a split), as its point and where it ends.
fn spanning(inner: &Inner, pos: super::resolve::Pos) -> Option<(u64, u64)> {
    let i = inner.cache.partition_point(|e| e.key() <= pos);
    let e = inner.cache.get(i.checked_sub(1)?)?;
    let end = e.point.checked_sub(1)? + u64::from(e.cursor.len);
    (e.gen_seq == pos.0 && !e.notice && e.cursor.len > 0 && end > pos.1).then_some((e.point, end))
}

pub(super) fn generation(inner: &Inner, seq: u64) -> Option<&Arc<Generation>> {
    inner
        .gens
        .iter()
        .find(|r| r.generation.seq == seq)
        .map(|r| &r.generation)
}

fn position_cursor(inner: &Inner, pos: Pos) -> Cursor {
    generation(inner, pos.0).map_or(ORIGIN, |g| cursor_for(inner.life, g, pos.1))
}
