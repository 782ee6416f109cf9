//! A line entry's JSON, written by hand into the entry's buffer: byte for byte what
//! `serde_json` writes for the same fields (a test holds it to that), without its per-byte
//! escaping loop and `io::Write` calls, which were a quarter of ingest's instructions.
//!
//! Strings are escaped as `serde_json` escapes them: `"` and `\` with a backslash, the
//! control characters below U+0020 as `\b`, `\t`, `\n`, `\f`, `\r` or `\u00xx` (lower-case
//! hex), everything else (DEL and non-ASCII included) as it is.

use crate::stream::Cursor;

/// A line entry's fields, in the order they are written; the optional ones are left out
/// when absent (or false).
pub(super) struct LineJson<'a> {
    pub(super) cursor: Cursor,
    pub(super) text: &'a str,
    pub(super) truncated: bool,
    /// A headless record: it continues one the live timer closed.
    pub(super) cont: bool,
    pub(super) time: Option<u64>,
    pub(super) ts: Option<i64>,
    pub(super) level: Option<&'static str>,
}

impl LineJson<'_> {
    /// Appends the object (`{"cursor":…,"text":…}`) to `out`.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"cursor\":\"");
        // A cursor is hex digits and `-`: nothing to escape.
        out.extend_from_slice(self.cursor.text().as_str().as_bytes());
        out.extend_from_slice(b"\",\"text\":");
        string(out, self.text);
        if self.truncated {
            out.extend_from_slice(b",\"truncated\":true");
        }
        if self.cont {
            out.extend_from_slice(b",\"cont\":true");
        }
        if let Some(time) = self.time {
            out.extend_from_slice(b",\"time\":");
            decimal(out, time, false);
        }
        if let Some(ts) = self.ts {
            out.extend_from_slice(b",\"ts\":");
            decimal(out, ts.unsigned_abs(), ts < 0);
        }
        if let Some(level) = self.level {
            out.extend_from_slice(b",\"level\":");
            string(out, level);
        }
        out.push(b'}');
    }
}

/// Appends `v` in decimal, with a `-` when `negative`.
fn decimal(out: &mut Vec<u8>, mut v: u64, negative: bool) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// How each byte is written inside a string: 0 as it is, else the letter after `\` (`u` for
/// `\u00xx`). The table `serde_json` uses.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Whether any of the eight bytes of `w` needs escaping (a control character, `"` or `\`).
/// Exact as to whether one does (the borrow tricks can misplace a hit, never invent or lose
/// one), so a block without a hit is copied as it is.
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = w ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGHS != 0
}

/// Appends `s` as a JSON string, quoted and escaped; eight bytes are checked at a time.
fn string(out: &mut Vec<u8>, s: &str) {
    let s = s.as_bytes();
    out.push(b'"');
    // `s[copied..at]` is checked and waits to be copied in one piece.
    let mut copied = 0;
    let mut at = 0;
    for block in s.chunks(8) {
        let clean = <[u8; 8]>::try_from(block).is_ok_and(|w| !needs_escape(u64::from_le_bytes(w)));
        if !clean {
            for (i, &b) in block.iter().enumerate() {
                let letter = ESCAPE[usize::from(b)];
                if letter != 0 {
                    out.extend_from_slice(&s[copied..at + i]);
                    escape(out, b, letter);
                    copied = at + i + 1;
                }
            }
        }
        at += block.len();
    }
    out.extend_from_slice(&s[copied..]);
    out.push(b'"');
}

/// Appends the escape of byte `b`, whose [`ESCAPE`] letter is `letter`.
fn escape(out: &mut Vec<u8>, b: u8, letter: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if letter == b'u' {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
    } else {
        out.extend_from_slice(&[b'\\', letter]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;

    /// The fields as `serde_json` writes them: the reference the hand-written form must equal.
    #[derive(Serialize)]
    struct Reference<'a> {
        cursor: String,
        text: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cont: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        time: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        level: Option<&'static str>,
    }

    fn both(j: &LineJson<'_>) -> (String, String) {
        let mut ours = Vec::new();
        j.write(&mut ours);
        let reference = serde_json::to_vec(&Reference {
            cursor: j.cursor.to_string(),
            text: j.text,
            truncated: j.truncated,
            cont: j.cont,
            time: j.time,
            ts: j.ts,
            level: j.level,
        })
        .expect("serializes");
        (
            String::from_utf8(ours).expect("UTF-8"),
            String::from_utf8(reference).expect("UTF-8"),
        )
    }

    #[test]
    fn every_byte_below_0x80_is_written_as_serde_json_writes_it() {
        let text: String = (0u8..0x80).map(char::from).collect();
        for start in 0..8 {
            let (ours, reference) = both(&LineJson {
                cursor: Cursor {
                    ident: 1,
                    check: 2,
                    life: 3,
                    seq: 4,
                    point: 5,
                    len: 6,
                },
                text: &text[start..],
                truncated: false,
                cont: false,
                time: None,
                ts: None,
                level: None,
            });
            assert_eq!(ours, reference);
        }
    }

    proptest! {
        #[test]
        fn the_json_equals_serde_json(
            text in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f]|é|😀){0,80}",
            (ident, check, life, seq, point, len) in
                (any::<u64>(), any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>(), 0u32..0xff_ffff),
            truncated in any::<bool>(),
            cont in any::<bool>(),
            time in proptest::option::of(any::<u64>()),
            ts in proptest::option::of(any::<i64>()),
            level in proptest::option::of(prop_oneof![Just("info"), Just("error")]),
        ) {
            let cursor = Cursor { ident, check, life, seq, point, len };
            let (ours, reference) =
                both(&LineJson { cursor, text: &text, truncated, cont, time, ts, level });
            prop_assert_eq!(ours, reference);
        }
    }
}
