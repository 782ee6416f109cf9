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
//! checksum, 8 of life, the sequence number in hex, a `-`, then the point in hex. It is opaque
//! to clients and URL-safe; every cursor has exactly one spelling (lowercase, no leading zeros).

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
    /// The longest text form: 32 fixed digits, a sequence number, `-`, a point.
    const MAX: usize = 32 + 16 + 1 + 16;

    /// The text (lowercase hex digits and one `-`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("hex digits and '-' are ASCII")
    }

    /// Appends `v` as `width` hex digits, or as few as it needs when `width` is 0.
    fn push_hex(&mut self, v: u64, width: usize) {
        let digits = if width > 0 {
            width
        } else {
            (64 - v.leading_zeros() as usize).div_ceil(4).max(1)
        };
        for i in 0..digits {
            let nibble = (v >> (4 * (digits - 1 - i))) & 0xf;
            self.buf[self.len + i] = b"0123456789abcdef"[nibble as usize];
        }
        self.len += digits;
    }
}

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
        t
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (head, point) = s.split_once('-').ok_or(CursorError)?;
        let lower_hex =
            |t: &str| !t.is_empty() && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let canonical =
            |t: &str| lower_hex(t) && t.len() <= 16 && !(t.len() > 1 && t.starts_with('0'));
        // 32 fixed digits, then 1 to 16 for the sequence number.
        if !(33..=48).contains(&head.len())
            || !lower_hex(head)
            || !canonical(&head[32..])
            || !canonical(point)
        {
            return Err(CursorError);
        }
        let hex = |t: &str| u64::from_str_radix(t, 16).map_err(|_| CursorError);
        Ok(Self {
            ident: hex(&head[0..16])?,
            check: u32::try_from(hex(&head[16..24])?).map_err(|_| CursorError)?,
            life: u32::try_from(hex(&head[24..32])?).map_err(|_| CursorError)?,
            seq: hex(&head[32..])?,
            point: hex(point)?,
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
        };
        assert_eq!(
            c.to_string(),
            format!("{}deadbeef000000070-0", "f".repeat(16))
        );
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
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
            format!("{}0-1-2", "0".repeat(32)),
            format!("{}0-{}", "0".repeat(32), "f".repeat(17)),
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
        fn any_cursor_round_trips(ident: u64, check: u32, life: u32, seq: u64, point: u64) {
            let c = Cursor { ident, check, life, seq, point };
            prop_assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
            let spelled = format!("{ident:016x}{check:08x}{life:08x}{seq:x}-{point:x}");
            prop_assert_eq!(c.to_string(), spelled);
        }

        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<Cursor>();
        }
    }
}
