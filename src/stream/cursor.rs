//! Cursors: positions in a stream that clients hand back.
//!
//! A cursor names a file generation (the digest of its [`FileId`](crate::tail::FileId) and a
//! checksum of its first bytes) and a *point* in it. Points are byte offsets shifted by one:
//! the entry whose line starts at byte `s` has point `s + 1`, and point 0 lies before the
//! generation's first entry. So "after cursor C" is "entries whose line starts at or past
//! `C.point`", and "before C" is "entries that end at or before byte `C.point - 1`"; both are
//! exact for every cursor the server hands out, and no state per client is needed.
//!
//! The text form is `IIIIIIIIIIIIIIIICCCCCCCCP…`: 16 hex digits of identity, 8 of checksum,
//! then the point in hex. It is opaque to clients, URL-safe, and stable across restarts.

use std::fmt;
use std::str::FromStr;

/// A position in a stream; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Digest of the generation's file identity.
    pub ident: u64,
    /// Checksum of the generation's first `min(point, PREFIX_BYTES)` bytes.
    pub check: u32,
    /// Byte offset of the entry's first byte plus one (0: before the first entry).
    pub point: u64,
}

/// Why a cursor's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor")]
pub struct CursorError;

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:08x}{:x}", self.ident, self.check, self.point)
    }
}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // 24 fixed digits, then 1 to 16 for the point; only lowercase hex, as we print it, so
        // that every cursor has exactly one spelling.
        if !(25..=40).contains(&s.len())
            || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(CursorError);
        }
        let hex =
            |r: std::ops::Range<usize>| u64::from_str_radix(&s[r], 16).map_err(|_| CursorError);
        let point_digits = &s[24..];
        if point_digits.len() > 1 && point_digits.starts_with('0') {
            return Err(CursorError);
        }
        Ok(Self {
            ident: hex(0..16)?,
            check: u32::try_from(hex(16..24)?).map_err(|_| CursorError)?,
            point: hex(24..s.len())?,
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
            point: 0,
        };
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in [
            "",
            "0",
            "zz",
            &"0".repeat(24),
            &"A".repeat(25),
            &format!("{}01", "0".repeat(24)),
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(CursorError), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_cursor_round_trips(ident: u64, check: u32, point: u64) {
            let c = Cursor { ident, check, point };
            prop_assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        }

        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,64}") {
            let _ = s.parse::<Cursor>();
        }
    }
}
