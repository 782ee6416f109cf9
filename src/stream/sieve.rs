//! Filtered forward reads: a `q` query tested on records as they are read, before any of
//! them becomes an entry.
//!
//! An entry costs its text, its JSON and a shared buffer; a `q` read through a large history
//! used to build one for every record and then drop the ones the query did not match (99 % of
//! them for `level>=error` in a typical log), which made such a scan cost about as much per
//! line as ingest. A [`Sieve`] tests each record's text (exactly the text its entry would
//! show, [`record_text`]) and level, counts what it examined, and only the matches go on to
//! become entries. [`sift_from`] reads records on from a position in chunks, by the very
//! grouping [`records_from`] applies, until enough matched, the readable end, or the sieve's
//! byte budget; it says which record it examined last, so that the caller's `next` cursor is
//! after everything examined, matched or not.

use std::io;

use super::Entry;
use super::disk::{Extent, ReadAt};
use super::entry::record_text;
use super::records::{Reading, Record, records_before, records_from};
use super::skim::skim;
use crate::query::{self, LinePrefilter, Query};

/// Records read per chunk while sifting.
const CHUNK_RECORDS: usize = 4096;

/// A filtered read's query, with what the read examined so far.
#[derive(Debug)]
pub struct Sieve<'a> {
    query: &'a Query,
    /// The query's line prefilter, when it has one: history is then skimmed ([`skim`]).
    prefilter: Option<&'a LinePrefilter>,
    /// Text bytes one read examines before it answers with what it has.
    budget: u64,
    /// Entries examined (matched or not).
    pub entries: u64,
    /// Their text bytes.
    pub bytes: u64,
}

impl<'a> Sieve<'a> {
    /// A sieve for `query` that lets one read examine about `budget` text bytes.
    pub fn new(query: &'a Query, budget: u64) -> Self {
        Self {
            query,
            prefilter: query.line_prefilter(),
            budget,
            entries: 0,
            bytes: 0,
        }
    }

    /// Whether the read has examined its budget's worth.
    pub(crate) fn spent(&self) -> bool {
        self.bytes >= self.budget
    }

    /// Whether an entry passes (notices always do), counting it as examined.
    pub(super) fn entry(&mut self, e: &Entry) -> bool {
        self.entries += 1;
        self.bytes += e.line.len() as u64;
        match e.text() {
            Some(text) => self.query.matches(&query::Record {
                text,
                level: e.facts.level,
            }),
            None => true,
        }
    }

    /// Whether a record read from disk passes, counting it as examined: the test its entry
    /// would get, on the same text and level.
    pub(super) fn record(&mut self, record: &Record, max_line_bytes: usize) -> bool {
        let (text, _) = record_text(record, max_line_bytes);
        self.entries += 1;
        self.bytes += text.len() as u64;
        self.query.matches(&query::Record {
            text: text.as_bytes(),
            level: record.lines[0].facts.level,
        })
    }
}

/// What [`sift_from`] found.
#[derive(Debug)]
pub(super) struct Sifted {
    /// The records that passed, in file order.
    pub(super) records: Vec<Record>,
    /// The last record examined (passed or not), as its start and end offsets.
    pub(super) last: Option<(u64, u64)>,
    /// Whether the read reached the readable end (everything before it was examined).
    pub(super) end: bool,
}

/// The records that [`records_from`] would read from `from` (with `cut`) that pass `sieve`,
/// at most `limit` of them; reads on until then, the readable end or the sieve's budget.
///
/// Chunks continue as a cursor would: after the last record examined, from its first line
/// with its end as the cut, which groups exactly as one long read does (the next record's
/// first line closed that record, so it cannot join it on the second read either).
pub(super) fn sift_from(
    file: &(impl ReadAt + ?Sized),
    from: u64,
    extent: Extent,
    how: Reading<'_>,
    (limit, cut): (usize, Option<u64>),
    sieve: &mut Sieve<'_>,
) -> io::Result<Sifted> {
    let mut sifted = Sifted {
        records: Vec::new(),
        last: None,
        end: false,
    };
    if limit == 0 {
        return Ok(sifted);
    }
    let (mut from, mut cut) = (from, cut);
    // With a prefilter, the exact reader reads one record (the one the reader's cursor leaves
    // off in, and any a skim hands back), then the skim goes on from its end.
    let step = if sieve.prefilter.is_some() {
        1
    } else {
        CHUNK_RECORDS
    };
    loop {
        let chunk = records_from(file, from, extent, how, (step, cut))?;
        let read = chunk.len();
        for record in chunk {
            sifted.last = Some((record.start(), record.end()));
            if sieve.record(&record, how.max_line_bytes) {
                sifted.records.push(record);
                if sifted.records.len() >= limit {
                    return Ok(sifted);
                }
            }
            if sieve.spent() {
                return Ok(sifted);
            }
        }
        let Some((start, end)) = sifted.last.filter(|_| read >= step) else {
            sifted.end = true;
            return Ok(sifted);
        };
        (from, cut) = (start + 1, Some(end));
        if let Some(prefilter) = sieve.prefilter {
            let skimmed = skim(
                file,
                end,
                extent,
                how,
                (prefilter, limit),
                sieve,
                &mut sifted,
            );
            if skimmed?.is_none() {
                return Ok(sifted);
            }
            // A record too long for a block: the exact reader reads it, after the last
            // record the skim examined.
            if let Some((start, end)) = sifted.last {
                (from, cut) = (start + 1, Some(end));
            }
        }
    }
}

/// Bytes of a backward sift's first chunk, the stretch sifted forwards in one go (a chunk is
/// examined whole, so the sieve's budget is checked between chunks); each next chunk is
/// twice as long, up to [`BACK_CHUNK`]. A small first chunk keeps a page of a few matches
/// cheap (what a full page examined past its oldest match is examined again by the next).
#[cfg(not(test))]
const FIRST_BACK_CHUNK: u64 = 64 << 10;
/// Most bytes of a backward sift's chunk.
#[cfg(not(test))]
const BACK_CHUNK: u64 = 2 << 20;
/// Small chunks in unit tests, so that boundaries inside records and long lines are met.
#[cfg(test)]
const FIRST_BACK_CHUNK: u64 = 100;
#[cfg(test)]
const BACK_CHUNK: u64 = 300;

/// What [`sift_before`] found.
#[derive(Debug)]
pub(super) struct SiftedBack {
    /// The newest records that passed, at most the limit, in file order.
    pub(super) records: Vec<Record>,
    /// The start of the oldest record examined (a record boundary): every record from it up
    /// to `before` was examined. `lo` when the sift reached it.
    pub(super) from: u64,
}

/// The newest `limit` records that start at or after byte `lo` (the generation's start, where
/// grouping starts afresh) and before byte `before` (a record boundary) that pass `sieve`,
/// found by going back chunk by chunk until then, `lo`, or the sieve's budget.
///
/// Each chunk is sifted forwards ([`sift_from`], with its skim when the query has a
/// prefilter) from a record boundary found by the bounded look-back of [`records_before`]
/// (the record rule is local, so a record start found that way, past `lo`, is a boundary of
/// the grouping from `lo` too), up to the previous chunk's start; so the records examined and
/// their grouping are exactly those of one forward read from `lo`.
pub(super) fn sift_before(
    file: &(impl ReadAt + ?Sized),
    lo: u64,
    before: u64,
    extent: Extent,
    how: Reading<'_>,
    limit: usize,
    sieve: &mut Sieve<'_>,
) -> io::Result<SiftedBack> {
    let mut hi = before.min(extent.end);
    let mut back = SiftedBack {
        records: Vec::new(),
        from: hi,
    };
    if limit == 0 {
        return Ok(back);
    }
    let budget = sieve.budget;
    let mut span = FIRST_BACK_CHUNK;
    while hi > lo {
        let b = boundary_before(file, (lo, hi), span, how)?;
        span = (span * 2).min(BACK_CHUNK);
        let chunk = Extent {
            end: hi,
            unterminated_ok: hi == extent.end && extent.unterminated_ok,
        };
        // A chunk is examined whole: a budget spent inside it would leave a hole between
        // where the sift stopped and the chunk's end.
        sieve.budget = u64::MAX;
        // From `b` (as a forward read enters a generation at its start): reading starts at
        // the line before it, which a boundary never joins.
        let sifted = sift_from(file, b, chunk, how, (usize::MAX, None), sieve);
        sieve.budget = budget;
        let mut records = sifted?.records;
        records.append(&mut back.records);
        back.records = records;
        back.from = b;
        hi = b;
        if back.records.len() >= limit {
            // The older matches of this chunk are examined again by the next page.
            back.records.drain(..back.records.len() - limit);
            back.from = back.records[0].start();
            break;
        }
        if sieve.spent() {
            break;
        }
    }
    Ok(back)
}

/// A record boundary at or after `lo` and before `hi` (itself a boundary), about `span`
/// bytes before `hi`: the start of the record holding the line at that point, or `lo` when
/// that record starts at or before it.
fn boundary_before(
    file: &(impl ReadAt + ?Sized),
    (lo, hi): (u64, u64),
    span: u64,
    how: Reading<'_>,
) -> io::Result<u64> {
    if hi - lo <= span {
        return Ok(lo);
    }
    let at = Extent {
        end: hi,
        unterminated_ok: false,
    };
    let (records, _) = records_before(file, hi - span, at, how, 1)?;
    Ok(records
        .first()
        .map(Record::start)
        .filter(|&start| start > lo && start < hi)
        .unwrap_or(lo))
}

#[cfg(test)]
mod tests;
