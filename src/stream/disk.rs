//! Reading a generation's lines back from disk, forwards and backwards.
//!
//! These readers produce the same [`RawLine`]s the follower produced when the lines were
//! appended (same starts, same lengths, same heads), so an entry served from history is the
//! entry that was delivered live. They read only what a page needs: paging backwards from the
//! end of a 10 GiB file touches the last blocks, never the whole file.

use std::fs::File;
use std::io;

use memchr::{memchr, memrchr};

use crate::tail::lines::{RawLine, Splitter};

/// Bytes readable at any offset: a followed file, or a rotated one (plain or decompressed).
pub(crate) trait ReadAt {
    /// Fills `buf` from `offset`; returns the bytes read (fewer only at the end).
    ///
    /// # Errors
    /// Fails when the bytes cannot be read.
    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        crate::tail::generation::read_full_at(self, buf, offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for std::sync::Arc<T> {
    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_full_at(buf, offset)
    }
}

fn read_full_at(file: &(impl ReadAt + ?Sized), buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.read_full_at(buf, offset)
}

const BLOCK: usize = 64 << 10;

/// Where a generation's readable bytes end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extent {
    /// End of the bytes to consider (a line boundary, or the generation's end).
    pub end: u64,
    /// Whether a line may end at `end` without a `\n` (the generation is finished).
    pub unterminated_ok: bool,
}

/// Lines that start at or after byte `from` and before `extent.end`, at most `limit`.
pub(crate) fn lines_from(
    file: &(impl ReadAt + ?Sized),
    from: u64,
    extent: Extent,
    max_line_bytes: usize,
    limit: usize,
) -> io::Result<Vec<RawLine>> {
    let mut out = Vec::new();
    let Some(mut offset) = boundary_at_or_after(file, from, extent.end)? else {
        return Ok(out);
    };
    let mut splitter = Splitter::new(offset, max_line_bytes);
    let mut buf = vec![0u8; BLOCK];
    while offset < extent.end && out.len() < limit {
        let want = usize::try_from(extent.end - offset)
            .unwrap_or(BLOCK)
            .min(BLOCK);
        let n = read_full_at(file, &mut buf[..want], offset)?;
        if n == 0 {
            // The file is shorter than it was: someone truncated it behind our back; the
            // follower will announce it. Serve what there was.
            return Ok(out);
        }
        splitter.push(&buf[..n], |l| out.push(l));
        offset += n as u64;
    }
    if offset >= extent.end && extent.unterminated_ok && out.len() < limit {
        out.extend(splitter.finish());
    }
    out.truncate(limit);
    Ok(out)
}

/// The first line boundary at or after `from` (0, or just past a `\n`), if before `end`.
fn boundary_at_or_after(
    file: &(impl ReadAt + ?Sized),
    from: u64,
    end: u64,
) -> io::Result<Option<u64>> {
    if from == 0 {
        return Ok((end > 0).then_some(0));
    }
    // The boundary is just past the first `\n` at or after the byte before `from`.
    let newline = first_newline_at_or_after(file, from - 1, end)?;
    Ok(newline.map(|i| i + 1).filter(|b| *b < end))
}

/// How far back a history read looks for the start of one line: as far as the follower's
/// first look does. A longer line stops the read (see [`Top::LongLine`]).
pub(crate) const LOOK_BACK: u64 = 64 << 20;

/// What lies above the lines [`lines_before_bounded`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Top {
    /// Nothing: the first line returned is the generation's first line.
    Start,
    /// More lines, not read (the limit was reached).
    More,
    /// A line that ends at byte `end` (its `\n` included) and starts more than [`LOOK_BACK`]
    /// bytes earlier: it and everything before it are not read.
    LongLine {
        /// End of the long line.
        end: u64,
    },
}

/// The last `limit` lines that start before byte `before`, in file order, and whether the
/// first of them is the generation's first line (nothing earlier remains).
#[cfg(test)]
pub(crate) fn lines_before(
    file: &(impl ReadAt + ?Sized),
    before: u64,
    extent: Extent,
    max_line_bytes: usize,
    limit: usize,
) -> io::Result<(Vec<RawLine>, bool)> {
    let (lines, top) = lines_before_bounded(file, before, extent, max_line_bytes, limit)?;
    Ok((lines, top == Top::Start))
}

/// [`lines_before`], saying what lies above the lines; never scans more than [`LOOK_BACK`]
/// bytes for one line's start, so a multi-GiB line costs a bounded read, not a scan of it.
pub(crate) fn lines_before_bounded(
    file: &(impl ReadAt + ?Sized),
    before: u64,
    extent: Extent,
    max_line_bytes: usize,
    limit: usize,
) -> io::Result<(Vec<RawLine>, Top)> {
    let before = before.min(extent.end);
    let mut out = Vec::new();
    if before == 0 {
        return Ok((out, Top::Start));
    }
    if limit == 0 {
        return Ok((out, Top::More));
    }
    let mut back = BackReader {
        file,
        start: 0,
        buf: Vec::new(),
    };
    // The last line starting before `before` is the one holding byte `before - 1`.
    let mut line_end = match first_newline_at_or_after(file, before - 1, extent.end)? {
        Some(i) => i + 1,
        None if extent.unterminated_ok => extent.end,
        None => {
            // No complete line holds that byte: step back to the last complete one.
            match back.rfind_newline_within(before - 1)? {
                Back::At(i) => i + 1,
                Back::FileStart => return Ok((out, Top::Start)),
                Back::TooFar => return Ok((out, Top::LongLine { end: before - 1 })),
            }
        }
    };
    while line_end > 0 && out.len() < limit {
        let terminated = back.byte(line_end - 1)? == Some(b'\n');
        let content_end = line_end - u64::from(terminated);
        let start = match back.rfind_newline_within(content_end)? {
            Back::At(i) => i + 1,
            Back::FileStart => 0,
            Back::TooFar => {
                out.reverse();
                return Ok((out, Top::LongLine { end: line_end }));
            }
        };
        let len = content_end - start;
        let head_len = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(max_line_bytes + 1);
        let head = back.bytes(start, head_len)?;
        out.push(RawLine { start, len, head });
        line_end = start;
    }
    out.reverse();
    Ok((out, if line_end == 0 { Top::Start } else { Top::More }))
}

/// Where [`BackReader::rfind_newline_within`] stopped.
enum Back {
    /// A `\n` at this offset.
    At(u64),
    /// No `\n` down to the start of the file.
    FileStart,
    /// No `\n` within [`LOOK_BACK`] bytes.
    TooFar,
}

fn first_newline_at_or_after(
    file: &(impl ReadAt + ?Sized),
    from: u64,
    end: u64,
) -> io::Result<Option<u64>> {
    let mut offset = from;
    let mut buf = vec![0u8; 4096];
    while offset < end {
        let want = usize::try_from(end - offset)
            .unwrap_or(buf.len())
            .min(buf.len());
        let n = read_full_at(file, &mut buf[..want], offset)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = memchr(b'\n', &buf[..n]) {
            return Ok(Some(offset + i as u64));
        }
        offset += n as u64;
    }
    Ok(None)
}

/// Reads a file backwards in blocks, keeping the last block read.
struct BackReader<'a, R: ReadAt + ?Sized> {
    file: &'a R,
    /// Offset of `buf[0]` in the file.
    start: u64,
    buf: Vec<u8>,
}

impl<R: ReadAt + ?Sized> BackReader<'_, R> {
    /// Loads the block that ends at `end`.
    fn load(&mut self, end: u64) -> io::Result<()> {
        let start = end.saturating_sub(BLOCK as u64);
        self.buf
            .resize(usize::try_from(end - start).unwrap_or(BLOCK), 0);
        let n = read_full_at(self.file, &mut self.buf, start)?;
        self.buf.truncate(n);
        self.start = start;
        Ok(())
    }

    fn covers(&self, offset: u64) -> bool {
        offset >= self.start && offset < self.start + self.buf.len() as u64
    }

    /// The last `\n` before `below`, looking back at most [`LOOK_BACK`] bytes.
    fn rfind_newline_within(&mut self, below: u64) -> io::Result<Back> {
        let floor = below.saturating_sub(LOOK_BACK);
        let mut hi = below;
        while hi > floor {
            if !self.covers(hi - 1) {
                self.load(hi)?;
                if !self.covers(hi - 1) {
                    return Ok(Back::FileStart);
                }
            }
            let from = usize::try_from(floor.saturating_sub(self.start)).unwrap_or(0);
            let upto = usize::try_from(hi - self.start).unwrap_or(self.buf.len());
            if let Some(i) = memrchr(b'\n', &self.buf[from.min(upto)..upto]) {
                return Ok(Back::At(self.start + (from.min(upto) + i) as u64));
            }
            hi = self.start.max(floor);
        }
        Ok(if floor == 0 {
            Back::FileStart
        } else {
            Back::TooFar
        })
    }

    fn byte(&mut self, offset: u64) -> io::Result<Option<u8>> {
        if !self.covers(offset) {
            self.load(offset + 1)?;
        }
        Ok(if self.covers(offset) {
            usize::try_from(offset - self.start)
                .ok()
                .and_then(|i| self.buf.get(i).copied())
        } else {
            None
        })
    }

    fn bytes(&mut self, start: u64, len: usize) -> io::Result<Vec<u8>> {
        if self.covers(start) && start + len as u64 <= self.start + self.buf.len() as u64 {
            let i = usize::try_from(start - self.start).unwrap_or(0);
            return Ok(self.buf[i..i + len].to_vec());
        }
        let mut head = vec![0u8; len];
        let n = read_full_at(self.file, &mut head, start)?;
        head.truncate(n);
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(bytes).expect("write");
        f
    }

    fn heads(lines: &[RawLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.head).into_owned())
            .collect()
    }

    const DATA: &[u8] = b"a\nbb\n\nccc\ntail";

    #[test]
    fn forward_reads_from_the_next_boundary() {
        let f = file_with(DATA);
        let ext = Extent {
            end: 10,
            unterminated_ok: false,
        };
        assert_eq!(
            heads(&lines_from(&f, 0, ext, 100, 10).expect("read")),
            ["a", "bb", "", "ccc"]
        );
        assert_eq!(
            heads(&lines_from(&f, 1, ext, 100, 10).expect("read")),
            ["bb", "", "ccc"]
        );
        assert_eq!(
            heads(&lines_from(&f, 3, ext, 100, 2).expect("read")),
            ["", "ccc"]
        );
        let fin = Extent {
            end: 14,
            unterminated_ok: true,
        };
        assert_eq!(
            heads(&lines_from(&f, 7, fin, 100, 10).expect("read")),
            ["tail"]
        );
    }

    #[test]
    fn backward_reads_lines_starting_before_a_byte() {
        let f = file_with(DATA);
        let ext = Extent {
            end: 10,
            unterminated_ok: false,
        };
        let (lines, at_start) = lines_before(&f, 10, ext, 100, 10).expect("read");
        assert_eq!(
            (heads(&lines), at_start),
            (vec!["a".into(), "bb".into(), "".into(), "ccc".into()], true)
        );
        let (lines, at_start) = lines_before(&f, 5, ext, 100, 1).expect("read");
        assert_eq!((heads(&lines), at_start), (vec!["bb".to_owned()], false));
        assert_eq!(lines[0].start, 2);
        let fin = Extent {
            end: 14,
            unterminated_ok: true,
        };
        let (lines, _) = lines_before(&f, 14, fin, 100, 2).expect("read");
        assert_eq!(heads(&lines), ["ccc", "tail"]);
    }

    #[test]
    fn long_lines_read_backwards_keep_bounded_heads() {
        let mut data = vec![b'x'; 300_000];
        data.extend_from_slice(b"\nshort\n");
        let f = file_with(&data);
        let ext = Extent {
            end: data.len() as u64,
            unterminated_ok: false,
        };
        let (lines, at_start) = lines_before(&f, ext.end, ext, 1000, 10).expect("read");
        assert!(at_start);
        assert_eq!((lines[0].len, lines[0].head.len()), (300_000, 1001));
        assert_eq!(lines[1].start, 300_001);
    }
}
