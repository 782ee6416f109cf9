//! Where a cursor points now, and finding a released generation's file again.
//!
//! A cursor resolves to a position when its generation is still known and the position lies
//! within what that generation delivered, or, while the follower is still reading it, what its
//! file held at the last look (not read that far yet). A cursor past the end of its generation (the file
//! was truncated while cometail was not reading it, its first KiB unchanged) and a cursor
//! nobody here issued (another stream's, a forgotten generation's) do not resolve: readers
//! answer them with a `gap`, the same on every endpoint, never with a silent empty page.
//!
//! A generation whose file the follower let go (rotated twice: `app.log.2`) may still be on
//! disk under another name. [`reopen`] looks for it in the directory of the stream's path by
//! identity (device, inode, birth time) and first bytes, so history continues there; only when
//! it is really gone does history say `gap`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::{Cursor, GenRecord, Inner, ORIGIN};
use crate::tail::Generation;
use crate::tail::generation::read_full_at;
use crate::tail::identity::{FileId, PREFIX_BYTES, prefix_check};

/// A position in stream order: (generation sequence number, point).
pub(super) type Pos = (u64, u64);

/// Most directory entries [`reopen`] looks at (bounds the cost of one history read).
const MAX_SCAN: usize = 10_000;

/// What a cursor names now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolved {
    /// A position of a known generation.
    At(Pos),
    /// A known generation, but past the end of what it holds: the file is shorter than when
    /// the cursor was issued.
    PastEnd(u64),
    /// No generation of this stream matches.
    Unknown,
}

/// Resolves `c` against the stream's generations.
pub(super) fn resolve(inner: &Inner, c: Cursor) -> Resolved {
    if c == ORIGIN {
        return inner
            .gens
            .front()
            .filter(|r| r.generation.seq == 0)
            .map_or(Resolved::Unknown, |r| Resolved::At((r.generation.seq, 0)));
    }
    let within = |r: &GenRecord| {
        if c.point < r.generation.start() {
            // Before a segment's start: bytes of an earlier generation of the same file.
            Resolved::Unknown
        } else if c.point <= r.generation.end() + 1 {
            Resolved::At((r.generation.seq, c.point))
        } else if !r.generation.finished() && c.point <= r.generation.seen() + 1 {
            // The follower has not read that far yet (a file read from byte 0 after a
            // restart, a step at a time): the bytes are there, so the position is; its
            // entries come as they are read.
            Resolved::At((r.generation.seq, c.point))
        } else {
            Resolved::PastEnd(r.generation.seq)
        }
    };
    if c.life == inner.life {
        // Issued by this run: the generation is named exactly, or it was forgotten.
        return inner
            .gens
            .iter()
            .find(|r| r.generation.seq == c.seq && r.generation.ident == c.ident)
            .map_or(Resolved::Unknown, |r| {
                // Point 0 (its opening notice) is before everything of any generation.
                if c.point == 0 {
                    Resolved::At((r.generation.seq, 0))
                } else {
                    within(r)
                }
            });
    }
    // From an earlier run: only the content can tell, newest generation first. A cursor past
    // the end of a generation whose first bytes match is that generation, cut short while
    // cometail was down.
    // A cursor into a generation not read that far yet (read from byte 0 after a restart) is
    // a position in it, not past its end: the file holds those bytes (`within`).
    let mut candidates =
        inner.gens.iter().rev().filter(|r| {
            r.generation.ident == c.ident && r.generation.check(c.point) == Some(c.check)
        });
    let Some(newest) = candidates.next() else {
        return Resolved::Unknown;
    };
    std::iter::once(newest)
        .chain(candidates)
        .map(within)
        .find(|r| matches!(r, Resolved::At(_)))
        .unwrap_or_else(|| within(newest))
}

/// The oldest position from which entries can still be served.
pub(super) fn oldest_available(inner: &Inner, cf: Pos) -> Pos {
    inner
        .gens
        .iter()
        .find(|r| r.generation.file().is_some())
        .map_or(cf, |r| (r.generation.seq, r.generation.start()))
        .min(cf)
}

/// Whether `generation`'s bytes can still be its own on disk: no newer generation of the
/// stream has the same file (a truncated file's bytes belong to the generation after it).
pub(super) fn reusable<'a>(
    gens: impl IntoIterator<Item = &'a GenRecord>,
    generation: &Generation,
) -> bool {
    !gens.into_iter().any(|r| {
        // A segment goes on with the same bytes; only a restart at byte 0 (truncation)
        // takes them over.
        r.generation.seq > generation.seq
            && r.generation.id == generation.id
            && r.generation.start() == 0
    })
}

/// The file of a generation the follower let go, found again in the directory of `path` by
/// identity and first bytes; `None` when it is not there (deleted, moved elsewhere, or
/// rewritten). Blocking: call it off the async workers, never under the stream lock.
pub(super) fn reopen(path: &str, generation: &Generation) -> Option<Arc<File>> {
    let dir = match Path::new(path).parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let id = generation.id;
    let candidate = std::fs::read_dir(dir)
        .ok()?
        .take(MAX_SCAN)
        .filter_map(Result::ok)
        .find(|entry| {
            entry.metadata().is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.is_file() && m.dev() == id.dev && m.ino() == id.ino
            })
        })?;
    let file = File::open(candidate.path()).ok()?;
    let meta = file.metadata().ok()?;
    if FileId::of(&meta) != id || meta.len() < generation.end() {
        return None;
    }
    // The same first bytes as the generation had (as far as it had them).
    let n = usize::try_from(generation.end())
        .unwrap_or(PREFIX_BYTES)
        .min(PREFIX_BYTES);
    let mut head = vec![0u8; n];
    let got = read_full_at(&file, &mut head, 0).ok()?;
    let point = u64::try_from(got).ok()?;
    (got == n && prefix_check(&head, point) == generation.check(point)).then(|| Arc::new(file))
}
