//! Filtered reads of a rotated file (a member of `history`'s chain): the same sift and skim
//! the stream's own generations get ([`sift_from`], [`sift_before`]), so that a `q` read
//! through old history tests records before any becomes an entry and, with a line
//! prefilter, passes over the blocks the prefilter does not hit.
//!
//! A rotated file is read line by line (`history` has no record splits for it): the reading
//! here caps records at one line, which makes every line a record of its own, the entries
//! [`Stream::foreign_line`] builds for an unfiltered read of the same file.

use std::io;

use super::super::disk::{Extent, ReadAt};
use super::super::entry::{now_ms, record_cursor};
use super::super::foreign::FOREIGN_LIFE;
use super::super::records::{Reading, Record, Splits};
use super::super::sieve::{Sieve, sift_before, sift_from};
use super::super::{Cursor, Entry, Stream};
use crate::parse::records::Caps;
use crate::tail::Generation;

/// What a forward filtered read of a rotated file found.
#[derive(Debug)]
pub(crate) struct SiftedForeign {
    /// The matches, in file order.
    pub(crate) entries: Vec<Entry>,
    /// The cursor of the last line examined, matched or not (`None`: nothing was).
    pub(crate) last: Option<Cursor>,
    /// Whether the read reached the file's readable end.
    pub(crate) end: bool,
}

impl Stream {
    /// The lines of the rotated file `file` (whose cursors `generation` makes) that start at
    /// or after byte `from` and pass `sieve`, at most `room`; read on until then, the end of
    /// `extent` or the sieve's budget.
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn sift_foreign(
        &self,
        (file, generation): (&(impl ReadAt + ?Sized), &Generation),
        from: u64,
        extent: Extent,
        room: usize,
        sieve: &mut Sieve<'_>,
    ) -> io::Result<SiftedForeign> {
        let splits = Splits::default();
        let how = self.foreign_reading(&splits);
        let sifted = sift_from(file, from, extent, how, (room, None), sieve)?;
        Ok(SiftedForeign {
            entries: self.foreign_entries(generation, &sifted.records),
            last: sifted
                .last
                .map(|(start, end)| record_cursor(FOREIGN_LIFE, generation, start, end)),
            end: sifted.end,
        })
    }

    /// The newest `room` lines of the rotated file `file` that start before byte `before` (a
    /// line boundary) and pass `sieve`, in file order, and the start of the oldest line
    /// examined (0: the file's start was reached); read back until then or the sieve's budget.
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn sift_foreign_before(
        &self,
        (file, generation): (&(impl ReadAt + ?Sized), &Generation),
        before: u64,
        extent: Extent,
        room: usize,
        sieve: &mut Sieve<'_>,
    ) -> io::Result<(Vec<Entry>, u64)> {
        let splits = Splits::default();
        let how = self.foreign_reading(&splits);
        let back = sift_before(file, 0, before, extent, how, room, sieve)?;
        Ok((self.foreign_entries(generation, &back.records), back.from))
    }

    /// The entries of records read from a rotated file, as `foreign_line` builds them.
    fn foreign_entries(&self, generation: &Generation, records: &[Record]) -> Vec<Entry> {
        let max = self.limits.max_line_bytes;
        records
            .iter()
            .map(|r| Entry::record(FOREIGN_LIFE, generation, r, max, None))
            .collect()
    }

    /// How a rotated file's lines are read: as the stream reads its own, one line a record.
    fn foreign_reading<'a>(&'a self, splits: &'a Splits) -> Reading<'a> {
        Reading {
            parser: &self.parser,
            splits,
            caps: Caps {
                lines: 1,
                ..self.limits.caps()
            },
            max_line_bytes: self.limits.max_line_bytes,
            reference_ms: now_ms(),
        }
    }
}
