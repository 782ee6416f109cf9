//! Filtered reads through the chain: a `q` read that goes on into the rotated files is sifted
//! there as in the stream's own generations (`Stream::sift_foreign`): only matches become
//! entries and, when the query has a line prefilter, blocks it does not hit are passed over.
//! The notices an unfiltered read gives between members (`older history: …`, a damaged
//! `.gz`'s `gap`) are given here too, at the same places: notices pass every filter.
//!
//! Each read says where it stopped examining, matched or not, so that a `q` page's `next`
//! (forwards) or `prev` (backwards) continues exactly there.

use std::io;

use super::{Chain, Member, cursor};
use crate::stream::disk::{Extent, ReadAt};
use crate::stream::{Cursor, Entry, Sieve, Stream};

impl Chain {
    /// The entries after `(i, from)` that pass `sieve`, at most `room` of them, in stream
    /// order; read on until then, the sieve's budget or the newest member's end. Also the
    /// cursor of the last entry examined (`None`: nothing was), and whether the newest
    /// member's end was reached (the stream's own history follows).
    ///
    /// # Errors
    /// Fails when a member cannot be read.
    pub(crate) fn sift_after(
        &self,
        stream: &Stream,
        (mut i, mut from): (usize, u64),
        room: usize,
        sieve: &mut Sieve<'_>,
    ) -> io::Result<(Vec<Entry>, Option<Cursor>, bool)> {
        let mut out: Vec<Entry> = Vec::new();
        let mut last = None;
        loop {
            let member = &self.links[i].member;
            let len = member.len()?;
            let read = stream.sift_foreign(
                (&**member, &member.generation),
                from,
                extent(member, len),
                room - out.len(),
                sieve,
            )?;
            out.extend(read.entries);
            last = read.last.or(last);
            if !read.end || out.len() >= room {
                return Ok((out, last, false));
            }
            // A damaged `.gz`'s `gap`, unless the read resumes after it (at its point).
            if let Some(gap) = self.damage(stream, i, len).filter(|_| from <= len) {
                last = Some(gap.cursor);
                out.push(gap);
            }
            i += 1;
            if i == self.links.len() {
                return Ok((out, last, true));
            }
            if out.len() >= room {
                return Ok((out, last, false));
            }
            let opening = self.opening(stream, i);
            last = Some(opening.cursor);
            out.push(opening);
            if out.len() >= room || sieve.spent() {
                return Ok((out, last, false));
            }
            from = 0;
        }
    }

    /// The newest `room` entries before `(i, point)` that pass `sieve`, in stream order; read
    /// back until then, the sieve's budget or the oldest member's start. Also the cursor
    /// before which nothing was examined (`None`: the oldest member's start was reached).
    /// `None` when `point` is not just after a line's start (a cursor no read hands out):
    /// the unfiltered reader takes it.
    ///
    /// # Errors
    /// Fails when a member cannot be read.
    pub(crate) fn sift_before(
        &self,
        stream: &Stream,
        (mut i, point): (usize, u64),
        room: usize,
        sieve: &mut Sieve<'_>,
    ) -> io::Result<Option<(Vec<Entry>, Option<Cursor>)>> {
        let mut older: Vec<Entry> = Vec::new(); // newest first
        let (mut before, mut with_opening, mut from_end) =
            (Some(point.saturating_sub(1)), point > 0, false);
        loop {
            let member = &self.links[i].member;
            let len = member.len()?;
            if from_end {
                older.extend(self.damage(stream, i, len));
            }
            let before = before.take().unwrap_or(len).min(len);
            if !starts_line(member, before, len)? {
                return Ok(None);
            }
            let (found, from) = stream.sift_foreign_before(
                (&**member, &member.generation),
                before,
                extent(member, len),
                room.saturating_sub(older.len()),
                sieve,
            )?;
            older.extend(found.into_iter().rev());
            if from > 0 || older.len() >= room {
                // Before the oldest line examined: the member's opening notice is still to
                // come (a cursor past 0 reads it), then the older members.
                older.reverse();
                return Ok(Some((older, Some(cursor(&member.generation, from + 1)))));
            }
            if with_opening {
                older.push(self.opening(stream, i));
            }
            if i == 0 {
                older.reverse();
                return Ok(Some((older, None)));
            }
            if with_opening && sieve.spent() {
                // Stopped at a member's start, its notice given: the older members follow.
                let prev = older.last().map(|e| e.cursor);
                older.reverse();
                return Ok(Some((older, prev)));
            }
            i -= 1;
            with_opening = true;
            from_end = true;
        }
    }
}

/// What of `member` (`len` bytes of text) is served: a damaged `.gz` ends inside a line, and
/// that part is not served as a line.
fn extent(member: &Member, len: u64) -> Extent {
    Extent {
        end: len,
        unterminated_ok: member.damage().is_none(),
    }
}

/// Whether byte `at` of `member` starts a line (or ends the text).
fn starts_line(member: &Member, at: u64, len: u64) -> io::Result<bool> {
    if at == 0 || at >= len {
        return Ok(true);
    }
    let mut byte = [0u8; 1];
    let n = member.read_full_at(&mut byte, at - 1)?;
    Ok(n == 1 && byte[0] == b'\n')
}
