//! `at=` and `until=`: the position of the first record at or after a time, found in the
//! stream's generations by binary search over byte offsets (`parse::seek`), with no index.
//!
//! Generations are searched newest first: the first one (going back) in which nothing is at
//! or after the time marks the boundary, so the answer lies in the generation after it. A
//! generation with no timed line at all is passed over (it says nothing about time), so a
//! newest file of plain lines does not hide the timed history before it. A stream's position
//! before its first generation, or past its end (nothing timed at or after the time: the
//! stream's end, `found: false`), is answered too. FIXME(rotated-history): rotated files
//! found on disk (`history/`, members) are not searched; `.gz` ones cannot be by offset. The
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
        let (mut probes, mut bytes, mut searched) = (0, 0, false);
        let mut out: Option<Cursor> = None;
        for g in gens.iter().rev() {
            let Some(file) = g.file() else { continue };
            searched = true;
            let s: Seek = seek(&*file, g.end(), target, &self.parser, reference)?;
            probes += s.probes;
            bytes += s.bytes;
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
        }))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
