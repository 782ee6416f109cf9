//! `at=` and `until=`: the position of the first record at or after a time, found in the
//! stream's generations by binary search over byte offsets (`parse::seek`), with no index.
//!
//! Generations are searched newest first: the first one (going back) in which nothing is at
//! or after the time marks the boundary, so the answer lies in the generation after it. A
//! generation with no timed line at all is passed over (it says nothing about time), so a
//! newest file of plain lines does not hide the timed history before it. A stream's position
//! before its first generation, or past its end (nothing timed at or after the time: the
//! stream's end, `found: false`), is answered too. When no generation holds a timed record
//! before the time, the answer may lie further back: `open_back` says so, and the rotated
//! files found on disk are searched next (`history/seek.rs`). The
//! file is read without the lock (the generation list is copied first); reading never goes
//! past a generation's `end`, so an unfinished line is never a result.

use std::sync::Arc;

use super::{Cursor, Stream, cursor_for};
use crate::parse::seek::{Seek, seek};
use crate::tail::Generation;

/// Where a time seek landed.
#[derive(Debug, Clone, Copy)]
pub struct TimeSeek {
    /// Reading `after` this cursor gives the entries from the found record on.
    pub cursor: Cursor,
    /// Whether a record at or after the time exists (else `cursor` is the stream's end).
    pub found: bool,
    /// Probes made, over all generations searched.
    pub probes: u32,
    /// Bytes read, over all generations searched.
    pub bytes: u64,
    /// Whether the search went back past the oldest generation without meeting a timed
    /// record before the time: older history (rotated files, `history/`) may hold the answer.
    pub open_back: bool,
}

impl Stream {
    /// Finds the first record at or after `target` (ms since the epoch). Blocks on file
    /// reads: call it off the async workers. `None` when the stream has no file to search.
    ///
    /// # Errors
    /// A read failed.
    pub fn seek_time(&self, target: i64) -> std::io::Result<Option<TimeSeek>> {
        let (life, gens): (u32, Vec<Arc<Generation>>) = {
            let inner = self.lock();
            let gens = inner.gens.iter().map(|r| r.generation.clone()).collect();
            (inner.life, gens)
        };
        let reference = now_ms();
        // The stream's end, where a seek past every timed record lands.
        let Some(newest) = gens.last() else {
            return Ok(None);
        };
        let end = cursor_for(life, newest, newest.end());
        let (mut probes, mut bytes, mut searched, mut open_back) = (0, 0, false, true);
        let mut out: Option<Cursor> = None;
        for g in gens.iter().rev() {
            let Some(file) = g.file() else { continue };
            searched = true;
            let s: Seek = seek(&*file, g.end(), target, &self.parser, reference)?;
            probes += s.probes;
            bytes += s.bytes;
            // A timed record before the time here: anything older is older still.
            open_back &= !s.earlier;
            if !s.found && !s.timed {
                // No time here (a newest file of plain lines after timed rotated ones): it
                // tells nothing, so the search goes on into older generations.
                continue;
            }
            if !s.found {
                // Everything here is older: the answer is the newer generation's, or the end.
                break;
            }
            // `after` a cursor at point `offset` reads entries starting at or past `offset`.
            // A segment's bytes before its start are an earlier generation's.
            out = Some(cursor_for(life, g, s.offset.max(g.start())));
        }
        Ok(searched.then_some(TimeSeek {
            cursor: out.unwrap_or(end),
            found: out.is_some(),
            probes,
            bytes,
            open_back,
        }))
    }

    /// [`parse::seek`](seek) over `src`, bytes `[0, end)`, with this stream's parser: for
    /// files the stream reads as history beyond its generations (`history/`).
    ///
    /// # Errors
    /// A read failed.
    pub(crate) fn seek_in(
        &self,
        src: &(impl crate::parse::seek::ReadAt + ?Sized),
        end: u64,
        target: i64,
    ) -> std::io::Result<Seek> {
        seek(src, end, target, &self.parser, now_ms())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
