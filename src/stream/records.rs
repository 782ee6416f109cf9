//! Multi-line records as a stream builds them: live (the open record, closed by the next
//! record's start, a cap or 200 ms without a line) and from disk (forwards and backwards), by
//! the one rule of [`crate::parse::records`].
//!
//! What a line is (a record start or not) comes from [`Parser::facts`], a pure function of its
//! bytes; whether it joins the record before it from the caps, counted from that record's
//! first line. The only decision not written in the bytes is the live close after
//! [`CLOSE_AFTER`]: when a line arrives that would have joined a record the timer already
//! closed, its offset goes into the generation's [`Splits`], and disk readers treat it as the
//! start of a headless record (`"cont": true`) too. So within a run, history reproduces the
//! live boundaries exactly; a restart forgets the splits and may join such records.
//!
//! Disk readers never split a record: forwards they read past a page's last record until the
//! next record starts (or the readable end), backwards they look back at most one cap
//! ([`owner_within`]) for the record's first line.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::disk::{self, Extent, ReadAt, Top};
use crate::parse::records::{Caps, Grouper, LineKind, Role, owner_within};
use crate::parse::{Facts, Parser};
use crate::tail::{Generation, RawLine, line_text};

/// How long a live record stays open without a new line.
pub const CLOSE_AFTER: Duration = Duration::from_millis(200);

/// Most recorded splits per generation; past it, history may join records the live view
/// showed apart (nothing is lost or doubled: cursors stay first lines).
const MAX_SPLITS: usize = 65_536;

/// Offsets of lines that opened a headless record because the live timer had closed the
/// record they would have joined. Sorted (the follower delivers lines in order).
#[derive(Debug, Default)]
pub(crate) struct Splits(Mutex<Vec<u64>>);

impl Splits {
    pub(crate) fn record(&self, offset: u64) {
        let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if v.len() < MAX_SPLITS && v.last().is_none_or(|&l| l < offset) {
            v.push(offset);
        }
    }

    pub(crate) fn contains(&self, offset: u64) -> bool {
        let v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        v.binary_search(&offset).is_ok()
    }
}

/// One line with what grouping needs.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) raw: RawLine,
    /// The line's facts (read once; the record's entry takes its first line's).
    pub(crate) facts: Facts,
    /// Whether it is a recorded split.
    pub(crate) split: bool,
}

impl Line {
    pub(crate) fn read(
        raw: RawLine,
        parser: &Parser,
        reference_ms: i64,
        max_line_bytes: usize,
        splits: &Splits,
    ) -> Self {
        let (text, _) = line_text(&raw.head, raw.len, max_line_bytes);
        let facts = parser.facts(text.as_bytes(), reference_ms);
        let split = !facts.start && splits.contains(raw.start);
        Self { raw, facts, split }
    }

    fn kind(&self) -> LineKind {
        LineKind {
            start: self.facts.start,
            split: self.split,
            len: self.raw.len,
        }
    }
}

/// A record's lines, ready to become one entry.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// At least one line, in file order.
    pub(crate) lines: Vec<Line>,
    /// Whether it opens with a line that continues a record closed by the live timer.
    pub(crate) headless: bool,
}

impl Record {
    pub(super) fn one(line: Line, headless: bool) -> Self {
        Self {
            lines: vec![line],
            headless,
        }
    }

    /// Its first line's start: its position in the stream.
    pub(crate) fn start(&self) -> u64 {
        self.lines[0].raw.start
    }

    /// Just past its last line's `\n`.
    pub(crate) fn end(&self) -> u64 {
        self.lines.last().map_or(self.start(), |l| l.raw.end())
    }
}

/// The role of `line` for `grouper`; a recorded split opens a headless record.
pub(crate) fn role(grouper: &mut Grouper, line: &Line) -> Role {
    if line.split {
        grouper.push_split(line.raw.len)
    } else {
        grouper.push(line.facts.start, line.raw.len)
    }
}

/// How to read lines for records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading<'a> {
    pub(crate) parser: &'a Parser,
    pub(crate) splits: &'a Splits,
    pub(crate) caps: Caps,
    pub(crate) max_line_bytes: usize,
    /// Dates yearless stamps (history has no arrival time: the present).
    pub(crate) reference_ms: i64,
}

impl Reading<'_> {
    fn line(&self, raw: RawLine) -> Line {
        Line::read(
            raw,
            self.parser,
            self.reference_ms,
            self.max_line_bytes,
            self.splits,
        )
    }
}

/// Most lines read per refill while reading records forwards (the first refill reads about
/// as many as the page needs, each next one twice as many).
const CHUNK: usize = 4096;

/// The records that start at or after byte `from` and before `extent.end`, at most `limit`.
/// Reading starts at the line holding byte `from - 1` when that line starts there (the reader's
/// own last record, read again only to know where it ends), so a cursor's record is never
/// handed out in part.
///
/// With `cut: Some(at)`, `at` is where the reader's last entry ended (a cursor's
/// [`resume_at`]; `from` is that entry's point): only records from `at` on are handed out, and
/// lines from `at` on that would join a record starting before it open a headless one, as a
/// recorded split would. So when the grouping changed under a cursor (a restart forgot a
/// split), the reader gets the rest of its record, and nothing twice.
///
/// [`resume_at`]: super::Cursor::resume_at
pub(crate) fn records_from(
    file: &(impl ReadAt + ?Sized),
    from: u64,
    extent: Extent,
    how: Reading<'_>,
    (limit, cut): (usize, Option<u64>),
) -> io::Result<Vec<Record>> {
    let from_out = cut.unwrap_or(from).max(from);
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut grouper = Grouper::new(how.caps);
    let mut open: Option<Record> = None;
    let mut offset = from.saturating_sub(1);
    // The reader's own record, the page, and the next record's first line.
    let mut chunk = limit.saturating_add(2).min(CHUNK);
    loop {
        let lines = disk::lines_from(file, offset, extent, how.max_line_bytes, chunk)?;
        let at_end = lines.len() < chunk;
        chunk = chunk.saturating_mul(2).min(CHUNK);
        for raw in lines {
            offset = raw.end();
            let line = how.line(raw);
            let role = match (role(&mut grouper, &line), open.as_ref()) {
                (Role::Join, Some(r))
                    if cut.is_some() && r.start() < from_out && line.raw.start >= from_out =>
                {
                    Role::Headless
                }
                (role, _) => role,
            };
            match (role, open.as_mut()) {
                (Role::Join, Some(r)) => r.lines.push(line),
                (role, _) => {
                    if let Some(r) = open.take().filter(|r| r.start() >= from_out) {
                        out.push(r);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                    open = Some(Record::one(line, role == Role::Headless));
                }
            }
        }
        if at_end {
            break;
        }
    }
    // The readable end is a record boundary (a closed record's end, or the generation's).
    out.extend(open.filter(|r| r.start() >= from_out));
    Ok(out)
}

/// The last `limit` records that start before byte `before` (a record boundary), in file
/// order, and what lies above the first of them.
pub(crate) fn records_before(
    file: &(impl ReadAt + ?Sized),
    before: u64,
    extent: Extent,
    how: Reading<'_>,
    limit: usize,
) -> io::Result<(Vec<Record>, Top)> {
    if limit == 0 {
        return Ok((Vec::new(), Top::More));
    }
    let mut lines: Vec<Line> = Vec::new();
    let mut above = before;
    let mut chunk = limit.saturating_add(16).min(4096);
    loop {
        let (raw, top) =
            disk::lines_before_bounded(file, above, extent, how.max_line_bytes, chunk)?;
        if let Some(first) = raw.first() {
            above = first.start;
        }
        let mut read: Vec<Line> = raw.into_iter().map(|r| how.line(r)).collect();
        read.append(&mut lines);
        lines = read;
        let complete = top != Top::More;
        let kinds: Vec<LineKind> = lines.iter().map(Line::kind).collect();
        let mut bounds = Vec::new(); // (first, last) line index of each record, newest first
        let mut decided = true;
        let mut i = lines.len();
        while i > 0 && bounds.len() < limit {
            let Some(o) = owner_within(&kinds, i - 1, how.caps, complete) else {
                decided = false;
                break;
            };
            bounds.push((o, i - 1));
            i = o;
        }
        if decided || complete {
            let top = if i > 0 || (!decided && !complete) {
                Top::More
            } else {
                top
            };
            let mut out = Vec::with_capacity(bounds.len());
            let mut rest = lines;
            for &(o, _) in &bounds {
                let tail = rest.split_off(o);
                let headless = tail[0].split;
                out.push(Record {
                    lines: tail,
                    headless,
                });
            }
            out.reverse();
            return Ok((out, top));
        }
        chunk = chunk.saturating_mul(2).min(1 << 16);
    }
}

/// A record the live side closed, with where it belongs.
#[derive(Debug)]
pub(crate) struct Closed {
    pub(crate) generation: Arc<Generation>,
    pub(crate) record: Record,
    /// Arrival time of its first line (ms since the epoch); none for a preloaded record.
    pub(crate) time: Option<u64>,
}

/// The live side: the record being built from the follower's lines, held until the next
/// record starts, a cap is reached or [`CLOSE_AFTER`] passes without a line.
#[derive(Debug)]
pub(crate) struct Live {
    grouper: Grouper,
    caps: Caps,
    open: Option<Held>,
    /// The last record was closed by the timer (or at the first look) while it could still
    /// grow: a line that would have joined it opens a headless record, recorded as a split.
    timer_closed: bool,
}

#[derive(Debug)]
struct Held {
    closed: Closed,
    last: Instant,
}

impl Live {
    pub(crate) fn new(caps: Caps) -> Self {
        Self {
            grouper: Grouper::new(caps),
            caps,
            open: None,
            timer_closed: false,
        }
    }

    /// A new generation starts: the open record (complete: its generation ended) is closed.
    pub(crate) fn restart(&mut self) -> Option<Closed> {
        self.grouper = Grouper::new(self.caps);
        self.timer_closed = false;
        self.open.take().map(|h| h.closed)
    }

    /// When the open record closes unless a line comes first.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.open.as_ref().map(|h| h.last + CLOSE_AFTER)
    }

    /// Closes the open record if its time is up.
    pub(crate) fn close_due(&mut self, now: Instant) -> Option<Closed> {
        if self.deadline().is_some_and(|d| d <= now) {
            self.close_now()
        } else {
            None
        }
    }

    /// Closes the open record now, as the timer would.
    pub(crate) fn close_now(&mut self) -> Option<Closed> {
        let held = self.open.take()?;
        self.timer_closed = self.grouper.is_open();
        Some(held.closed)
    }

    /// Holds a record read from disk as the open one (the file's last record at the first
    /// look), so the first live lines can still join it.
    pub(crate) fn hold(&mut self, generation: Arc<Generation>, record: Record, now: Instant) {
        self.grouper = Grouper::new(self.caps);
        for line in &record.lines {
            role(&mut self.grouper, line);
        }
        self.timer_closed = false;
        self.open = Some(Held {
            closed: Closed {
                generation,
                record,
                time: None,
            },
            last: now,
        });
    }

    /// Takes the next line of `generation`; records it closes go to `out`, in order.
    pub(crate) fn push(
        &mut self,
        generation: &Arc<Generation>,
        mut line: Line,
        (splits, time, now): (&Splits, u64, Instant),
        out: &mut Vec<Closed>,
    ) {
        let would_join = || self.grouper.clone().push(false, line.raw.len) == Role::Join;
        let role =
            if self.timer_closed && !line.facts.start && self.grouper.is_open() && would_join() {
                splits.record(line.raw.start);
                line.split = true;
                self.grouper.push_split(line.raw.len)
            } else {
                role(&mut self.grouper, &line)
            };
        self.timer_closed = false;
        if role == Role::Join {
            if let Some(h) = self.open.as_mut() {
                h.closed.record.lines.push(line);
                h.last = now;
                if h.closed.record.lines.len() >= self.caps.lines {
                    out.extend(self.open.take().map(|h| h.closed));
                }
                return;
            }
        }
        out.extend(self.open.take().map(|h| h.closed));
        let closed = Closed {
            generation: generation.clone(),
            record: Record::one(line, role == Role::Headless),
            time: Some(time),
        };
        if role == Role::Alone || self.caps.lines <= 1 {
            out.push(closed);
        } else {
            self.open = Some(Held { closed, last: now });
        }
    }
}

#[cfg(test)]
mod tests;
