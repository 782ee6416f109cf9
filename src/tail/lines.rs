//! Splitting a byte stream into lines, and turning a line's bytes into entry text.
//!
//! [`Splitter`] is fed the bytes of one file generation in order and yields complete lines
//! with the byte offset where each starts. It never yields a line before its `\n` has been
//! seen ("no complete line yet" means the bytes since the last `\n` are held), and it holds at
//! most `max_line_bytes + 1` bytes of an unfinished line, so memory stays bounded however long
//! a line grows. [`line_text`] is the one place that decides what an entry's text is; the live
//! follower and the history reader both call it, so an entry read from disk is identical to the
//! same entry delivered live.

use std::borrow::Cow;

use memchr::memchr;

/// One complete line found by a [`Splitter`] or read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// Byte offset of the line's first byte within its file generation.
    pub start: u64,
    /// Total length of the line, excluding its `\n` (it may exceed `head.len()`).
    pub len: u64,
    /// The first `min(len, max_line_bytes + 1)` bytes of the line.
    pub head: Vec<u8>,
}

impl RawLine {
    /// Byte offset just past the line's `\n`.
    pub fn end(&self) -> u64 {
        self.start + self.len + 1
    }
}

/// Incremental line splitter with a per-line size cap.
#[derive(Debug, Clone)]
pub struct Splitter {
    max_line_bytes: usize,
    /// Offset of the first byte of the unfinished line.
    line_start: u64,
    /// Bytes of the unfinished line seen so far (may exceed `head.len()`).
    line_len: u64,
    /// Invariant: `head.len() <= max_line_bytes + 1`.
    head: Vec<u8>,
    /// The first line began before the splitter's first byte, out of sight: its bytes are
    /// not its beginning, so none are kept (its `head` stays empty and it reads as cut).
    mid_line: bool,
}

impl Splitter {
    /// A splitter whose next byte is at `offset` of the generation.
    pub fn new(offset: u64, max_line_bytes: usize) -> Self {
        Self {
            max_line_bytes,
            line_start: offset,
            line_len: 0,
            head: Vec::new(),
            mid_line: false,
        }
    }

    /// A splitter whose next byte at `offset` is inside a line that began earlier, further
    /// back than anyone looked. That line comes out with the bytes seen (its length from
    /// `offset`) but an empty head, so [`line_text`] marks it truncated: its end is never
    /// passed off as a whole line.
    pub fn mid_line(offset: u64, max_line_bytes: usize) -> Self {
        Self {
            mid_line: true,
            ..Self::new(offset, max_line_bytes)
        }
    }

    /// The longest line kept whole.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Offset of the first byte not yet part of a complete line.
    pub fn line_start(&self) -> u64 {
        self.line_start
    }

    /// Number of bytes held for the unfinished line (the partial last line).
    pub fn pending_len(&self) -> u64 {
        self.line_len
    }

    /// Feeds the next bytes; every line they complete is passed to `emit`, in order.
    pub fn push(&mut self, mut buf: &[u8], mut emit: impl FnMut(RawLine)) {
        let cap = self.max_line_bytes + 1;
        while !buf.is_empty() {
            let (chunk, complete) = match memchr(b'\n', buf) {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            let room = if self.mid_line {
                0
            } else {
                cap.saturating_sub(self.head.len())
            };
            self.head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.line_len += chunk.len() as u64;
            if complete {
                let line = RawLine {
                    start: self.line_start,
                    len: self.line_len,
                    head: std::mem::take(&mut self.head),
                };
                self.line_start = line.end();
                self.line_len = 0;
                self.mid_line = false;
                emit(line);
                buf = &buf[chunk.len() + 1..];
            } else {
                buf = &[];
            }
        }
    }

    /// Ends the generation: the unfinished line, if any, is returned as a line of its own.
    ///
    /// Used only when no more bytes can ever arrive for it (the file was rotated away,
    /// truncated or deleted); while the file lives, a partial line is held.
    pub fn finish(&mut self) -> Option<RawLine> {
        if self.line_len == 0 {
            return None;
        }
        let line = RawLine {
            start: self.line_start,
            len: self.line_len,
            head: std::mem::take(&mut self.head),
        };
        // The line has no `\n`; the next generation starts afresh, so `line_start` only needs
        // to move past what was consumed.
        self.line_start += self.line_len;
        self.line_len = 0;
        self.mid_line = false;
        Some(line)
    }
}

/// The text of an entry and whether it was cut, from the first bytes of a line.
///
/// `head` holds the first `min(len, max_line_bytes + 1)` bytes of a line of `len` bytes
/// (without its `\n`). A trailing `\r` is dropped (CR LF endings); a line still longer than
/// `max_line_bytes` is cut on a UTF-8 boundary and reported as truncated; invalid UTF-8 is
/// decoded lossily (U+FFFD), never dropped.
/// The text borrows from `head` when it is valid UTF-8 (the common case: no copy).
pub fn line_text(head: &[u8], len: u64, max_line_bytes: usize) -> (Cow<'_, str>, bool) {
    let mut bytes = head;
    if bytes.len() as u64 == len && bytes.last() == Some(&b'\r') {
        bytes = &bytes[..bytes.len() - 1];
    }
    let truncated = bytes.len() > max_line_bytes || len > head.len() as u64;
    if bytes.len() > max_line_bytes {
        bytes = &bytes[..utf8_floor(bytes, max_line_bytes)];
    }
    // Valid UTF-8 is the common case, and `from_utf8` checks it many bytes at a time, where
    // `from_utf8_lossy` walks byte by byte (it was a sixth of ingest's instructions, twice a
    // line): the lossy decoding runs only for text that needs it, with the same result.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    (text, truncated)
}

/// The largest cut point `<= at` that does not split a UTF-8 sequence.
///
/// Backs off over at most three continuation bytes; in invalid input (a run of continuation
/// bytes) it gives up after three and cuts anyway, since there is no character to keep whole.
fn utf8_floor(bytes: &[u8], at: usize) -> usize {
    let mut cut = at;
    while cut > 0 && at - cut < 3 && (bytes[cut] & 0b1100_0000) == 0b1000_0000 {
        cut -= 1;
    }
    if (bytes[cut] & 0b1100_0000) == 0b1000_0000 {
        at
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> (Vec<RawLine>, Splitter) {
        let mut s = Splitter::new(0, max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l));
        }
        (out, s)
    }

    #[test]
    fn lines_are_split_across_chunks_with_their_offsets() {
        let (lines, s) = split(&[b"ab", b"c\nde\n\nf"], 100);
        let got: Vec<_> = lines.iter().map(|l| (l.start, l.head.clone())).collect();
        assert_eq!(
            got,
            vec![(0, b"abc".to_vec()), (4, b"de".to_vec()), (7, vec![])]
        );
        assert_eq!(s.line_start(), 8);
        assert_eq!(s.pending_len(), 1);
    }

    #[test]
    fn partial_line_is_held_until_finished() {
        let (lines, mut s) = split(&[b"x\nhalf"], 100);
        assert_eq!(lines.len(), 1);
        let last = s.finish().expect("a partial line");
        assert_eq!((last.start, last.head.as_slice()), (2, &b"half"[..]));
        assert!(s.finish().is_none());
    }

    #[test]
    fn long_line_keeps_bounded_head_and_is_marked_truncated() {
        let long = vec![b'a'; 10_000];
        let (lines, _) = split(&[&long, &long, b"\nok\n"], 16);
        assert_eq!(lines[0].head.len(), 17);
        assert_eq!(lines[0].len, 20_000);
        assert_eq!(
            line_text(&lines[0].head, lines[0].len, 16),
            ("a".repeat(16).into(), true)
        );
        assert_eq!(lines[1].start, 20_001);
    }

    #[test]
    fn a_line_begun_out_of_sight_is_marked_cut_not_passed_off_as_whole() {
        let mut s = Splitter::mid_line(100, 16);
        let mut out = Vec::new();
        s.push(b"tail of a long line\nnext\n", |l| out.push(l));
        assert_eq!((out[0].start, out[0].len), (100, 19));
        assert_eq!(line_text(&out[0].head, out[0].len, 16), ("".into(), true));
        assert_eq!(
            line_text(&out[1].head, out[1].len, 16),
            ("next".into(), false)
        );
        let mut s = Splitter::mid_line(0, 16);
        s.push(b"never ended", |_| unreachable!("no newline"));
        let last = s.finish().expect("the unfinished fragment");
        assert_eq!(line_text(&last.head, last.len, 16), ("".into(), true));
    }

    #[test]
    fn crlf_loses_its_cr_and_exact_fit_is_not_truncated() {
        assert_eq!(line_text(b"abcd\r", 5, 4), ("abcd".into(), false));
        assert_eq!(line_text(b"abcde", 6, 4), ("abcd".into(), true));
        assert_eq!(line_text(b"a\rb", 3, 4), ("a\rb".into(), false));
    }

    #[test]
    fn cut_respects_utf8_and_invalid_bytes_are_kept_lossily() {
        let s = "ééé".as_bytes(); // 6 bytes
        assert_eq!(line_text(s, 6, 3), ("é".into(), true));
        assert_eq!(line_text(b"a\xffb", 3, 10), ("a\u{fffd}b".into(), false));
        let junk = [0x80u8; 8];
        let (text, truncated) = line_text(&junk, 8, 5);
        assert!(truncated);
        assert_eq!(text.chars().count(), 5);
    }
}
