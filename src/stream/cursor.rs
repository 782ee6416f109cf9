//! Cursors: positions in a stream that clients hand back.
//!
//! A cursor names a file generation and a *point* in it. Points are byte offsets shifted by
//! one: the entry whose line starts at byte `s` has point `s + 1`, and point 0 lies before the
//! generation's first entry. So "after cursor C" is "entries whose line starts at or past
//! `C.point`", and "before C" is "entries that start before byte `C.point - 1`"; both are exact
//! for every entry cursor the server hands out, and no state per client is needed.
//!
//! A generation is named twice over:
//! - exactly, by the server's `life` (a random number drawn when the process starts) and the
//!   generation's sequence number in its stream: within one run of the server, a cursor can
//!   never resolve into another generation, whatever inode numbers or first bytes they share;
//! - by content, for cursors from an earlier run (after a restart): the digest of the file's
//!   identity (device, inode, birth time) and a checksum of its first `min(point, 1024)` bytes.
//!   Only the generations of files still there can match, and a mismatch is a `gap`.
//!
//! The text form is `IIIIIIIIIIIIIIIICCCCCCCCLLLLLLLLS…-P…`: 16 hex digits of identity, 8 of
//! checksum, 8 of life, the sequence number in hex, a `-`, then the point in hex; an entry's
//! cursor adds `-N…`, its byte length in hex (at most [`MAX_LEN`]). It is opaque to clients
//! and URL-safe; every cursor has exactly one spelling (lowercase, no leading zeros).
//!
//! The length makes `after=` exact when the grouping of lines into records changed under a
//! cursor: "after an entry" is "entries starting at or past `point - 1 + len`", and a record
//! that on disk runs past that byte (the live view had closed it by its 200 ms timer, and a
//! restart forgot that split) is handed out from there as a headless remainder. Without a
//! length (0: notices, gaps, cursors of older servers) "after" is the point rule above.

use std::fmt;
use std::str::FromStr;

/// A position in a stream; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Digest of the generation's file identity.
    pub ident: u64,
    /// Checksum of the generation's first `min(point, PREFIX_BYTES)` bytes.
    pub check: u32,
    /// The run of the stream that issued the cursor (a random number; see the module docs).
    pub life: u32,
    /// The generation's sequence number in its stream, in that run.
    pub seq: u64,
    /// Byte offset of the entry's first byte plus one (0: before the first entry).
    pub point: u64,
    /// The entry's length in bytes (its lines with their `\n`s), at most `0xff_ffff`; 0 when
    /// not known or not an entry. Not part of where the cursor is: see [`Cursor::resume_at`].
    pub len: u32,
}

/// Longest entry length a cursor carries (six hex digits); a longer record's cursor carries
/// none, and `after=` falls back to the point rule for it.
pub(crate) const MAX_LEN: u64 = 0xff_ffff;

impl Cursor {
    /// The byte from which the entries after this one start: past its whole entry when its
    /// length is known (a record that grew past it is continued from there), else `point`.
    pub fn resume_at(&self) -> u64 {
        if self.len == 0 || self.point == 0 {
            self.point
        } else {
            self.point - 1 + u64::from(self.len)
        }
    }

    /// This cursor with `len` as its entry length (none past [`MAX_LEN`]).
    pub(crate) fn with_len(self, len: u64) -> Self {
        let len = if len <= MAX_LEN {
            u32::try_from(len).unwrap_or(0)
        } else {
            0
        };
        Self { len, ..self }
    }
}

/// Why a cursor's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub struct CursorError;

/// A new run: a random number, never 0 (0 is [`ORIGIN`]'s), drawn for each stream when it is
/// created, so that a restarted server (or a stream recreated in the same process) never
/// mistakes another run's sequence numbers for its own.
///
/// [`ORIGIN`]: super::ORIGIN
pub(crate) fn life() -> u32 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static DRAWN: AtomicU64 = AtomicU64::new(0);
    // `RandomState` is seeded from the OS's randomness; the counter makes each draw differ.
    let n = DRAWN.fetch_add(1, Ordering::Relaxed);
    let h = std::collections::hash_map::RandomState::new().hash_one((std::process::id(), n));
    (h as u32) | 1
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A cursor's text form, on the stack: every entry encodes one, and `write!` with padded hex
/// took a tenth of ingest's CPU.
#[derive(Debug)]
pub struct CursorText {
    buf: [u8; CursorText::MAX],
    len: usize,
}

impl CursorText {
    /// The longest text form: 32 fixed digits, a sequence number, `-`, a point, `-`, a length.
    const MAX: usize = 32 + 16 + 1 + 16 + 1 + 8;

    /// The text (lowercase hex digits and one or two `-`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("hex digits and '-' are ASCII")
    }

    /// Appends `v` as `width` hex digits, or as few as it needs when `width` is 0. A byte
    /// at a time, by a table of digit pairs (a nibble at a time was 4 % of ingest).
    fn push_hex(&mut self, v: u64, width: usize) {
        let digits = if width > 0 {
            width
        } else {
            (64 - v.leading_zeros() as usize).div_ceil(4).max(1)
        };
        let mut all = [0u8; 16];
        for (pair, byte) in all.chunks_exact_mut(2).zip(v.to_be_bytes()) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        self.buf[self.len..self.len + digits].copy_from_slice(&all[16 - digits..]);
        self.len += digits;
    }
}

/// Each byte's two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [HEX[b >> 4], HEX[b & 0xf]];
        b += 1;
    }
    t
};

impl Cursor {
    /// The cursor's text form (see the module documentation), without an allocation.
    pub fn text(&self) -> CursorText {
        let mut t = CursorText {
            buf: [0; CursorText::MAX],
            len: 0,
        };
        t.push_hex(self.ident, 16);
        t.push_hex(u64::from(self.check), 8);
        t.push_hex(u64::from(self.life), 8);
        t.push_hex(self.seq, 0);
        t.buf[t.len] = b'-';
        t.len += 1;
        t.push_hex(self.point, 0);
        if self.len > 0 {
            t.buf[t.len] = b'-';
            t.len += 1;
            t.push_hex(u64::from(self.len), 0);
        }
        t
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (head, rest) = s.split_once('-').ok_or(CursorError)?;
        let (point, len) = match rest.split_once('-') {
            Some((point, len)) => (point, Some(len)),
            None => (rest, None),
        };
        let lower_hex =
            |t: &str| !t.is_empty() && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let canonical =
            |t: &str| lower_hex(t) && t.len() <= 16 && !(t.len() > 1 && t.starts_with('0'));
        // 32 fixed digits, then 1 to 16 for the sequence number.
        if !(33..=48).contains(&head.len())
            || !lower_hex(head)
            || !canonical(&head[32..])
            || !canonical(point)
            || len.is_some_and(|l| !canonical(l) || l == "0" || l.len() > 6)
        {
            return Err(CursorError);
        }
        let hex = |t: &str| u64::from_str_radix(t, 16).map_err(|_| CursorError);
        let len = len.map_or(Ok(0), |l| u32::try_from(hex(l)?).map_err(|_| CursorError))?;
        Ok(Self {
            ident: hex(&head[0..16])?,
            check: u32::try_from(hex(&head[16..24])?).map_err(|_| CursorError)?,
            life: u32::try_from(hex(&head[24..32])?).map_err(|_| CursorError)?,
            seq: hex(&head[32..])?,
            point: hex(point)?,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_round_trips() {
        let c = Cursor {
            ident: u64::MAX,
            check: 0xdead_beef,
            life: 7,
            seq: 0,
            point: 0,
            len: 0,
        };
        assert_eq!(
            c.to_string(),
            format!("{}deadbeef000000070-0", "f".repeat(16))
        );
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        let d = Cursor {
            point: 0x10,
            len: 0xab,
            ..c
        };
        assert_eq!(
            d.to_string(),
            format!("{}deadbeef000000070-10-ab", "f".repeat(16))
        );
        assert_eq!(d.to_string().parse::<Cursor>(), Ok(d));
        assert_eq!(d.resume_at(), 0x10 - 1 + 0xab);
        assert_eq!(c.resume_at(), 0);
    }

    #[test]
    fn malformed_text_is_refused() {
        let ok = format!("{}0-1", "0".repeat(32));
        assert!(ok.parse::<Cursor>().is_ok());
        for bad in [
            String::new(),
            "0".into(),
            "zz".into(),
            "0".repeat(33),
            format!("{}0-", "0".repeat(32)),
            format!("{}-1", "0".repeat(32)),
            format!("{}00-1", "0".repeat(32)),
            format!("{}0-01", "0".repeat(32)),
            format!("{}0-1", "A".repeat(32)),
            format!("{}0-1-2-3", "0".repeat(32)),
            format!("{}0-{}", "0".repeat(32), "f".repeat(17)),
            format!("{}0-1-0", "0".repeat(32)),
            format!("{}0-1-01", "0".repeat(32)),
            format!("{}0-1-", "0".repeat(32)),
            format!("{}0-1-1000000", "0".repeat(32)),
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(CursorError), "{bad:?}");
        }
    }

    #[test]
    fn lives_differ_and_are_never_zero() {
        let (a, b) = (life(), life());
        assert!(a != 0 && b != 0);
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn any_cursor_round_trips(ident: u64, check: u32, life: u32, seq: u64, point: u64, len in 0..=MAX_LEN) {
            let c = Cursor { ident, check, life, seq, point, len: u32::try_from(len).expect("six hex digits") };
            prop_assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
            let mut spelled = format!("{ident:016x}{check:08x}{life:08x}{seq:x}-{point:x}");
            if len > 0 {
                spelled.push_str(&format!("-{len:x}"));
            }
            prop_assert_eq!(c.to_string(), spelled);
        }

        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<Cursor>();
        }
    }
}
