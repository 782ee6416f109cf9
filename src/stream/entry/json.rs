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
            // A level's name is a lower-case word: nothing to escape.
            out.extend_from_slice(b",\"level\":\"");
            out.extend_from_slice(level.as_bytes());
            out.push(b'"');
        }
        out.push(b'}');
    }
}

/// Appends `v` in decimal, with a `-` when `negative`; two digits a division.
fn decimal(out: &mut Vec<u8>, mut v: u64, negative: bool) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while v >= 100 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[(v % 100) as usize]);
        v /= 100;
    }
    if v >= 10 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[v as usize]);
    } else {
        at -= 1;
        digits[at] = b'0' + v as u8;
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// `00` to `99`.
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut n = 0;
    while n < 100 {
        t[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    t
};

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

/// Appends `s` as a JSON string, quoted and escaped. Control characters are rare in log text:
/// one pass the compiler vectorizes says whether there is any, and without one only `"` and
/// `\` are escaped, found by `memchr`.
fn string(out: &mut Vec<u8>, s: &str) {
    let s = s.as_bytes();
    out.push(b'"');
    let mut copied = 0;
    if s.iter().fold(false, |any, &b| any | (b < 0x20)) {
        for (i, &b) in s.iter().enumerate() {
            let letter = ESCAPE[usize::from(b)];
            if letter != 0 {
                out.extend_from_slice(&s[copied..i]);
                escape(out, b, letter);
                copied = i + 1;
            }
        }
    } else {
        for i in memchr::memchr2_iter(b'"', b'\\', s) {
            out.extend_from_slice(&s[copied..i]);
            out.extend_from_slice(&[b'\\', s[i]]);
            copied = i + 1;
        }
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

    fn fields(text: &str, time: Option<u64>, ts: Option<i64>) -> LineJson<'_> {
        LineJson {
            cursor: Cursor {
                ident: 1,
                check: 2,
                life: 3,
                seq: 4,
                point: 5,
                len: 6,
            },
            text,
            truncated: false,
            cont: false,
            time,
            ts,
            level: None,
        }
    }

    #[test]
    fn every_byte_below_0x80_is_written_as_serde_json_writes_it() {
        let text: String = (0u8..0x80).map(char::from).collect();
        for start in 0..0x20 {
            let (ours, reference) = both(&fields(&text[start..], None, None));
            assert_eq!(ours, reference);
        }
        for text in ["", "plain", r#"a "quoted" \ path\"#, "\"", "é😀\u{7f}"] {
            let (ours, reference) = both(&fields(text, None, None));
            assert_eq!(ours, reference);
        }
    }

    #[test]
    fn numbers_at_their_edges_are_written_as_serde_json_writes_them() {
        for (time, ts) in [
            (0, 0),
            (9, -9),
            (10, -10),
            (99, 99),
            (100, -100),
            (1_796_159_679_123, 1_796_159_679_123),
            (u64::MAX, i64::MIN),
            (u64::MAX - 1, i64::MAX),
        ] {
            let (ours, reference) = both(&fields("x", Some(time), Some(ts)));
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
