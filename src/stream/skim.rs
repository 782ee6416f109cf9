//! The prefiltered part of a filtered forward read: whole blocks of the file are searched
//! for the query's line prefilter ([`LinePrefilter`]); only the records holding a hit are
//! read into lines, grouped and tested, and the stretches between them are passed over
//! without parsing a line.
//!
//! Grouping stays exact without reading the lines passed over, because the record rule is
//! local ([`crate::parse::records`]): from a *boundary* (a line that opens a record or stands
//! alone) on, records group as if the file started there. A skim starts at a boundary (the
//! end of a record the exact reader examined) and only ever stops at boundaries: the start of
//! the last record that begins in a block (found by looking back from the block's last
//! line, at most one cap), or the end of a record it tested. For a hit, the record holding it
//! starts at the line [`Block::owner`] finds by the same bounded look-back as
//! [`owner_within`], never further back than the last boundary; the record is then read
//! forwards from there with a fresh [`Grouper`], as [`super::records::records_from`] would.
//!
//! A line or record longer than the largest block cannot be searched in memory: the skim
//! stops at its boundary and the exact reader takes that record.

use std::io;

use memchr::{memchr, memrchr};

use super::disk::{Extent, ReadAt};
use super::records::{Line, Reading, Record, role};
use super::sieve::{Sieve, Sifted};
use crate::parse::records::{Grouper, Role};
use crate::query::LinePrefilter;
use crate::tail::{RawLine, line_text};

/// Bytes read per block.
#[cfg(not(test))]
const BLOCK: usize = 1 << 20;
/// Largest block: a block holding a single record grows up to this.
#[cfg(not(test))]
const MAX_BLOCK: usize = 16 << 20;
/// Small blocks in unit tests, so that growing blocks and records too long for one are met.
#[cfg(test)]
const BLOCK: usize = 256;
#[cfg(test)]
const MAX_BLOCK: usize = 1024;

/// Examines the records from byte `k` (a boundary, the end of the record `sifted.last`
/// names) on, searching blocks for `prefilter` and testing only the records around its hits,
/// until `limit` records passed, the sieve's budget is spent or the readable end: `Ok(None)`.
/// `Ok(Some(k))` when the record at boundary `k` does not fit in a block: everything before
/// `k` was examined (`sifted.last` ends there), and the exact reader goes on from it.
pub(super) fn skim(
    file: &(impl ReadAt + ?Sized),
    mut k: u64,
    extent: Extent,
    how: Reading<'_>,
    (prefilter, limit): (&LinePrefilter, usize),
    sieve: &mut Sieve<'_>,
    sifted: &mut Sifted,
) -> io::Result<Option<u64>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut size = BLOCK;
    loop {
        if k >= extent.end {
            sifted.end = true;
            return Ok(None);
        }
        let want = usize::try_from(extent.end - k).unwrap_or(size).min(size);
        buf.resize(want, 0);
        let n = file.read_full_at(&mut buf, k)?;
        buf.truncate(n);
        if n == 0 {
            // The file is shorter than it was (truncated behind our back): serve what there was.
            sifted.end = true;
            return Ok(None);
        }
        let at_end = k + n as u64 >= extent.end;
        let complete = memrchr(b'\n', &buf).map_or(0, |i| i + 1);
        let lines_end = if at_end && extent.unterminated_ok {
            n
        } else {
            complete
        };
        let block = Block {
            buf: &buf[..lines_end],
            base: k,
            how,
        };
        // At the readable end every record is complete; elsewhere the last record starting in
        // the block may go on past it, so the block is examined up to that record's start.
        let stop = if at_end || lines_end == 0 {
            lines_end
        } else {
            block.owner(block.line_before(lines_end, 0), 0)
        };
        if stop == 0 {
            if !at_end && size < MAX_BLOCK {
                size *= 2;
                continue;
            }
            if !at_end {
                return Ok(Some(k));
            }
            sifted.end = true;
            return Ok(None);
        }
        let mut pos = 0;
        let mut hits = prefilter.hits(&block.buf[..stop]);
        while let Some(hit) = hits.find(pos) {
            let line = memrchr(b'\n', &block.buf[pos..hit]).map_or(pos, |i| pos + i + 1);
            let owner = block.owner(line, pos);
            let (record, end) = block.record(owner, stop);
            sieve.bytes += (owner - pos) as u64;
            sifted.last = Some((record.start(), record.end()));
            if sieve.record(&record, how.max_line_bytes) {
                sifted.records.push(record);
                if sifted.records.len() >= limit {
                    return Ok(None);
                }
            }
            pos = end;
            if sieve.spent() {
                return Ok(None);
            }
        }
        if pos < stop {
            // No hit from `pos` to `stop`: those records are examined without a line read,
            // and the last of them ends at `stop`.
            sieve.bytes += (stop - pos) as u64;
            let owner = block.owner(block.line_before(stop, pos), pos);
            sifted.last = Some((k + owner as u64, k + stop as u64));
        }
        k += stop as u64;
        if at_end {
            sifted.end = true;
            return Ok(None);
        }
        if sieve.spent() {
            return Ok(None);
        }
        size = BLOCK;
    }
}

/// Whole lines of a file in memory, from a boundary on.
struct Block<'a> {
    /// Complete lines (at the readable end, possibly one without its `\n`).
    buf: &'a [u8],
    /// File offset of `buf[0]`.
    base: u64,
    how: Reading<'a>,
}

impl Block<'_> {
    /// The end of the line starting at `start` (its `\n`, or the end of the buffer).
    fn line_end(&self, start: usize) -> usize {
        memchr(b'\n', &self.buf[start..]).map_or(self.buf.len(), |i| start + i)
    }

    /// The start of the line that ends just before `next` (a line start past `floor`), not
    /// before `floor`.
    fn line_before(&self, next: usize, floor: usize) -> usize {
        let content_end = next.saturating_sub(1).max(floor);
        memrchr(b'\n', &self.buf[floor..content_end]).map_or(floor, |i| floor + i + 1)
    }

    /// The line starting at `start`, read as the disk readers read it.
    fn line(&self, start: usize) -> Line {
        let end = self.line_end(start);
        let len = end - start;
        let head = &self.buf[start..start + len.min(self.how.max_line_bytes + 1)];
        let raw = RawLine {
            start: self.base + start as u64,
            len: len as u64,
            head: head.to_vec(),
        };
        Line::read(
            raw,
            self.how.parser,
            self.how.reference_ms,
            self.how.max_line_bytes,
            self.how.splits,
        )
    }

    /// Whether the line at `start` opens a record whatever precedes it (a record start or a
    /// recorded split), and its length; [`Line::read`]'s facts without copying the line.
    fn opens(&self, start: usize) -> (bool, u64) {
        let end = self.line_end(start);
        let len = end - start;
        let head = &self.buf[start..start + len.min(self.how.max_line_bytes + 1)];
        let (text, _) = line_text(head, len as u64, self.how.max_line_bytes);
        let facts = self
            .how
            .parser
            .facts(text.as_bytes(), self.how.reference_ms);
        let opens = facts.start || self.how.splits.contains(self.base + start as u64);
        (opens, len as u64)
    }

    /// The first line of the record that holds the line at `line`, looking back at most one
    /// cap and never before `floor` (a boundary): [`owner_within`] over the lines from
    /// `floor`, as complete.
    ///
    /// [`owner_within`]: crate::parse::records::owner_within
    fn owner(&self, line: usize, floor: usize) -> usize {
        let caps = self.how.caps;
        let (opens, len) = self.opens(line);
        if opens {
            return line;
        }
        let (mut bytes, mut count, mut j) = (len, 1, line);
        while j > floor && count < caps.lines {
            j = self.line_before(j, floor);
            let (opens, len) = self.opens(j);
            bytes += 1 + len;
            count += 1;
            if bytes > caps.bytes {
                return line;
            }
            if opens {
                return j;
            }
        }
        line
    }

    /// The record whose first line starts at `owner`, read forwards (not past `stop`, a
    /// boundary), and where the next record starts.
    fn record(&self, owner: usize, stop: usize) -> (Record, usize) {
        let mut grouper = Grouper::new(self.how.caps);
        let first = self.line(owner);
        let headless = role(&mut grouper, &first) == Role::Headless;
        let mut next = self.line_end(owner) + 1;
        let mut record = Record::one(first, headless);
        while next < stop {
            let line = self.line(next);
            if role(&mut grouper, &line) != Role::Join {
                break;
            }
            next = self.line_end(next) + 1;
            record.lines.push(line);
        }
        (record, next.min(stop))
    }
}
