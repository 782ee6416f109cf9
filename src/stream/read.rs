//! Answering "entries after / before this position" from the cache and from disk.
//!
//! Positions are `(generation seq, point)` pairs ordered lexicographically; see `cursor.rs`
//! for points. The lock is never held across disk I/O: a read snapshots what it needs, reads the
//! file, then takes the lock again, so a read that crosses from disk into the cache still sees
//! a consistent, gapless sequence even while the follower appends and the cache is trimmed.

use std::sync::Arc;

use super::disk::{Extent, lines_before, lines_from};
use super::{Cursor, Entry, GenRecord, Inner, ORIGIN, Stream, cursor_for};
use crate::tail::{Generation, Notice, NoticeKind};

type Pos = (u64, u64);

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

    /// Answers, reading history from disk where needed. May block on file I/O: call it off the
    /// async workers.
    pub fn read(&self, query: &Query, limit: usize) -> Page {
        self.read_inner(query, limit, true)
            .expect("reads allowed to use the disk always answer")
    }

    fn read_inner(&self, query: &Query, limit: usize, disk: bool) -> Option<Page> {
        match *query {
            Query::After(c) => self.read_after(c, limit, disk),
            Query::Before(c) => {
                let end = self.resolve(c).unwrap_or((0, 0));
                let mut page = self.read_before(Some(end), limit, disk)?;
                if page.entries.is_empty() {
                    page.next = c;
                }
                Some(page)
            }
            Query::Last(n) => self.read_before(None, n, disk),
        }
    }

    fn resolve(&self, c: Cursor) -> Option<Pos> {
        resolve(&self.lock(), c)
    }

    fn read_after(&self, c: Cursor, limit: usize, disk: bool) -> Option<Page> {
        let mut out: Vec<Entry> = Vec::new();
        let mut budget = Budget::new(limit);
        let mut inner = self.lock();
        let Some(mut cf) = inner.cache_from else {
            return Some(Page {
                entries: out,
                next: c,
                prev: None,
            });
        };
        let mut pos = match resolve(&inner, c) {
            Some(pos) => pos,
            None => {
                let resume = oldest_available(&inner, cf);
                let detail =
                    "the cursor names a file generation that is no longer available".to_owned();
                out.push(gap(&inner, resume, detail));
                resume
            }
        };
        loop {
            // At or past the last entry before `cache_from`, nothing is left on disk.
            let at_floor = inner.cache_floor.is_some_and(|f| f.0 == pos.0 && pos >= f);
            if pos >= cf || at_floor {
                let first = inner.cache.partition_point(|e| e.key() <= pos);
                for e in inner.cache.iter().skip(first) {
                    if !budget.fits(out.len(), e.json.len()) {
                        break;
                    }
                    budget.take(e.json.len());
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
            drop(inner);

            let in_cache_gen = cf.0 == pos.0;
            let stop = match &rec {
                Some(r) if !in_cache_gen => r.generation.end(),
                _ => cf.1,
            };
            let lines = rec.as_ref().and_then(|r| {
                let file = r.generation.file()?;
                let extent = Extent {
                    end: stop,
                    unterminated_ok: !in_cache_gen && r.generation.finished(),
                };
                let room = limit.saturating_sub(out.len());
                lines_from(&file, pos.1, extent, self.limits.max_line_bytes, room).ok()
            });
            inner = self.lock();
            match (rec, lines) {
                (Some(r), Some(lines)) => {
                    let mut full = false;
                    for line in &lines {
                        let e = Entry::line(
                            inner.life,
                            &r.generation,
                            line,
                            self.limits.max_line_bytes,
                            None,
                            &self.parser,
                        );
                        if !budget.fits(out.len(), e.json.len()) {
                            full = true;
                            break;
                        }
                        budget.take(e.json.len());
                        pos = e.key();
                        out.push(e);
                    }
                    if full || out.len() >= limit {
                        break;
                    }
                }
                (_, _) => {
                    // The bytes between `pos` and `stop` cannot be read any more.
                    let resume = if in_cache_gen {
                        cf
                    } else {
                        following.as_ref().map_or(cf, |f| (f.generation.seq, 0))
                    };
                    let detail = if in_cache_gen {
                        format!(
                            "{} bytes of an earlier file generation are no longer available",
                            stop.saturating_sub(pos.1)
                        )
                    } else {
                        "entries of an earlier file generation are no longer available".to_owned()
                    };
                    out.push(gap(&inner, resume, detail));
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
                    out.push(opening.clone());
                }
                pos = (f.generation.seq, 0);
            } else {
                break;
            }
            cf = inner.cache_from.unwrap_or(cf);
        }
        let next = out.last().map_or(c, |e| e.cursor);
        // Nothing new: paging back starts at the reader's own cursor.
        let prev = out.first().map(|e| e.cursor).or((c != ORIGIN).then_some(c));
        Some(Page {
            entries: out,
            next,
            prev,
        })
    }

    /// The last `limit` entries before `end` (`None`: the end of the stream).
    fn read_before(&self, end: Option<Pos>, limit: usize, disk: bool) -> Option<Page> {
        let inner = self.lock();
        let Some(cf) = inner.cache_from else {
            return Some(Page {
                entries: Vec::new(),
                next: ORIGIN,
                prev: None,
            });
        };
        let head = inner.cache.back().map_or(cf, Entry::key);
        let next = position_cursor(&inner, head);
        let stop = inner
            .cache
            .partition_point(|e| end.is_none_or(|end| e.key() < end));
        let mut budget = Budget::new(limit);
        let mut first = stop;
        while first > 0 && budget.fits(stop - first, inner.cache[first - 1].json.len()) {
            first -= 1;
            budget.take(inner.cache[first].json.len());
        }
        let cached: Vec<Entry> = inner.cache.range(first..stop).cloned().collect();
        // Where the disk part would start: lines of generation `g` starting before byte
        // `before`, and `g`'s opening notice if it comes before `end`.
        let (mut g, mut before, mut with_opening) = match end {
            Some(end) if end <= cf => (end.0, end.1.saturating_sub(1), end.1 > 0),
            _ => (cf.0, cf.1, true),
        };
        let full = cached.len() >= limit || first > 0;
        if full || !history_before(&inner, g, before, with_opening) {
            let prev = match cached.first() {
                Some(first) if full => Some(first.cursor),
                // `last=0`: nothing returned, but history may lie before the end.
                None if limit == 0
                    && (!inner.cache.is_empty()
                        || history_before(&inner, g, before, with_opening)) =>
                {
                    // Just past the newest generation's last byte, so that `before` it
                    // includes the very last line.
                    match end {
                        Some(e) => Some(position_cursor(&inner, e)),
                        None => inner
                            .gens
                            .back()
                            .map(|r| cursor_for(inner.life, &r.generation, r.generation.end() + 1)),
                    }
                }
                _ => None,
            };
            let next = cached.last().map_or(next, |e| e.cursor);
            return Some(Page {
                entries: cached,
                next,
                prev,
            });
        }
        if !disk {
            return None;
        }
        let gens: Vec<GenRecord> = inner.gens.iter().cloned().collect();
        let life = inner.life;
        drop(inner);

        let mut older: Vec<Entry> = Vec::new(); // in reverse stream order
        let mut at_start = false;
        loop {
            let Some(rec) = gens.iter().find(|r| r.generation.seq == g) else {
                at_start = true;
                break;
            };
            let room = limit - cached.len() - older.len();
            if room == 0 {
                break;
            }
            let in_cache_gen = g == cf.0;
            let extent = Extent {
                end: if in_cache_gen {
                    cf.1
                } else {
                    rec.generation.end()
                },
                unterminated_ok: !in_cache_gen && rec.generation.finished(),
            };
            let Some(file) = rec.generation.file() else {
                if before > 0 {
                    older.push(history_gap(life, &rec.generation, before));
                }
                at_start = true;
                break;
            };
            let Ok((lines, reached_start)) =
                lines_before(&file, before, extent, self.limits.max_line_bytes, room)
            else {
                at_start = true;
                break;
            };
            for line in lines.iter().rev() {
                older.push(Entry::line(
                    life,
                    &rec.generation,
                    line,
                    self.limits.max_line_bytes,
                    None,
                    &self.parser,
                ));
            }
            if !reached_start || older.len() + cached.len() >= limit {
                break;
            }
            if with_opening {
                if let Some(opening) = &rec.opening {
                    older.push(opening.clone());
                }
            }
            // On to the previous generation, if it can still be read.
            match gens.iter().rev().find(|r| r.generation.seq < g) {
                Some(p) if p.generation.file().is_some() => {
                    g = p.generation.seq;
                    before = p.generation.end();
                    with_opening = true;
                }
                Some(p) => {
                    // Older history existed but its file is gone: say so at the top.
                    older.push(history_gap(life, &p.generation, p.generation.end() + 1));
                    at_start = true;
                    break;
                }
                None => {
                    at_start = true;
                    break;
                }
            }
        }
        older.reverse();
        let mut overflow = (older.len() + cached.len()).saturating_sub(limit);
        // History read from disk is bounded in bytes as well as entries (at least one entry).
        let mut bytes: usize = cached.iter().map(|e| e.json.len()).sum();
        let mut keep = 0;
        for e in older.iter().skip(overflow).rev() {
            if keep + cached.len() > 0 && bytes + e.json.len() > PAGE_BYTES {
                break;
            }
            bytes += e.json.len();
            keep += 1;
        }
        overflow = older.len() - keep;
        let mut entries: Vec<Entry> = older.into_iter().skip(overflow).collect();
        entries.extend(cached);
        let prev = if at_start && overflow == 0 {
            None
        } else {
            entries.first().map(|e| e.cursor)
        };
        let next = entries.last().map_or(next, |e| e.cursor);
        Some(Page {
            entries,
            next,
            prev,
        })
    }
}

/// A `gap` notice at the top of history: lines before `point` of `generation` were there but
/// cannot be read any more (the file was deleted, or overwritten by truncation).
fn history_gap(life: u32, generation: &Generation, point: u64) -> Entry {
    let detail = "earlier lines of this stream are no longer available".to_owned();
    Entry::notice(
        life,
        generation,
        point,
        &Notice {
            kind: NoticeKind::Gap,
            detail,
        },
    )
}

/// Whether anything can be read before byte `before` of generation `g` (counting its opening
/// notice when `with_opening`) or in an earlier generation.
fn history_before(inner: &Inner, g: u64, before: u64, with_opening: bool) -> bool {
    let rec = inner.gens.iter().find(|r| r.generation.seq == g);
    let here = rec.is_some_and(|r| {
        (before > 0 && r.generation.file().is_some()) || (with_opening && r.opening.is_some())
    });
    here || inner
        .gens
        .iter()
        .any(|r| r.generation.seq < g && r.generation.file().is_some())
}

/// The position a cursor names, if its generation is still known.
fn resolve(inner: &Inner, c: Cursor) -> Option<Pos> {
    if c == super::ORIGIN {
        return inner
            .gens
            .front()
            .filter(|r| r.generation.seq == 0)
            .map(|r| (r.generation.seq, 0));
    }
    let valid = |r: &GenRecord| !r.generation.finished() || c.point <= r.generation.end() + 1;
    if c.life == inner.life {
        // Issued by this run: the generation is named exactly, or it was forgotten.
        return inner
            .gens
            .iter()
            .find(|r| r.generation.seq == c.seq && r.generation.ident == c.ident)
            .filter(|r| valid(r))
            .map(|r| (r.generation.seq, c.point));
    }
    // From an earlier run: only the content can tell, newest generation first.
    inner
        .gens
        .iter()
        .rev()
        .filter(|r| r.generation.ident == c.ident)
        .find(|r| {
            r.generation.check(c.point) == Some(c.check)
                && (!r.generation.finished() || c.point <= r.generation.end() + 1)
        })
        .map(|r| (r.generation.seq, c.point))
}

/// The oldest position from which entries can still be served.
fn oldest_available(inner: &Inner, cf: Pos) -> Pos {
    inner
        .gens
        .iter()
        .find(|r| r.generation.file().is_some())
        .map_or(cf, |r| (r.generation.seq, 0))
        .min(cf)
}

fn generation(inner: &Inner, seq: u64) -> Option<&Arc<Generation>> {
    inner
        .gens
        .iter()
        .find(|r| r.generation.seq == seq)
        .map(|r| &r.generation)
}

fn position_cursor(inner: &Inner, pos: Pos) -> Cursor {
    generation(inner, pos.0).map_or(ORIGIN, |g| cursor_for(inner.life, g, pos.1))
}

fn gap(inner: &Inner, at: Pos, detail: String) -> Entry {
    match generation(inner, at.0) {
        Some(g) => Entry::notice(
            inner.life,
            g,
            at.1,
            &Notice {
                kind: NoticeKind::Gap,
                detail,
            },
        ),
        None => unreachable_gap(&detail),
    }
}

/// A gap at a position whose generation is unknown cannot be built from a generation; this
/// only happens when every generation was forgotten, and then there is nothing to resume from.
fn unreachable_gap(detail: &str) -> Entry {
    let json = serde_json::json!({"cursor": ORIGIN.to_string(), "notice": "gap", "detail": detail});
    Entry {
        gen_seq: 0,
        point: 0,
        cursor: ORIGIN,
        json: json.to_string().into(),
        line: format!("==> gap: {detail} <==").into(),
        notice: true,
        facts: super::Facts::default(),
    }
}
