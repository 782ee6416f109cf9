//! `at=` and `until=`: the position of the first record at or after a time, found in the
//! stream's generations by binary search over byte offsets (`parse::seek`), with no index.
//!
//! Generations are searched newest first: the first one (going back) in which nothing is at
//! or after the time marks the boundary, so the answer lies in the generation after it. A
//! stream's position before its first generation, or past its end, is answered too. The
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
        let mut out: Option<TimeSeek> = None;
        for g in gens.iter().rev() {
            let Some(file) = g.file() else { continue };
            let s: Seek = seek(&*file, g.end(), target, &self.parser, reference)?;
            let total = out.map_or((0, 0), |o| (o.probes, o.bytes));
            let (probes, bytes) = (total.0 + s.probes, total.1 + s.bytes);
            if !s.found {
                // Everything here is older: the answer is the newer generation's, or the end.
                return Ok(Some(match out {
                    Some(found) => TimeSeek {
                        probes,
                        bytes,
                        ..found
                    },
                    None => TimeSeek {
                        cursor: cursor_for(life, g, g.end()),
                        found: false,
                        probes,
                        bytes,
                    },
                }));
            }
            // `after` a cursor at point `offset` reads entries starting at or past `offset`.
            // A segment's bytes before its start are an earlier generation's.
            out = Some(TimeSeek {
                cursor: cursor_for(life, g, s.offset.max(g.start())),
                found: true,
                probes,
                bytes,
            });
        }
        Ok(out)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
