//! Recognising the timestamp at the start of a text line (or inside a JSON or logfmt value).
//!
//! Every shape is recognised by hand in one pass, which also gives where the stamp ends (the
//! level rule looks just after it) and lets a continuation line fail on its first byte. The
//! line-start shapes are told apart by their first bytes (four digits and `-` or `/`, two
//! digits and `:`, `[` and a digit, `<`, a month name and a space, a klog letter and a digit),
//! so the order in which they are tried never changes a result. A stamp matches
//! *syntactically* first; whether its values are a real time is a separate question
//! ([`Civil::is_valid`]), so `2026-13-45 12:00:00` still starts a record but has no time.

use super::Shape;
use super::level::{self, Level};
use super::zone::Civil;

/// A stamp found at the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Which shape matched.
    pub shape: Shape,
    /// The civil time as written (the year is 0 when the shape has none).
    pub civil: Civil,
    /// The written UTC offset in minutes, when the stamp has one.
    pub offset_minutes: Option<i32>,
    /// Whether the stamp has no year (syslog, klog): it is inferred from a reference time.
    pub yearless: bool,
    /// Whether the stamp has no date at all (time-only): it gives no event time.
    pub timeless: bool,
    /// The level the stamp itself carries (klog's letter, syslog's `<PRI>`).
    pub level: Option<Level>,
    /// Byte index just past the stamp.
    pub end: usize,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn month_name(b: &[u8], i: usize) -> Option<u8> {
    let name = b.get(i..i + 3)?;
    MONTHS
        .iter()
        .position(|m| m.as_slice() == name)
        .and_then(|p| u8::try_from(p + 1).ok())
}

/// The value of `n` ASCII digits at `i`.
fn digits(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = b.get(i..i + n)?;
    s.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

fn d2(b: &[u8], i: usize) -> Option<u8> {
    digits(b, i, 2).and_then(|v| u8::try_from(v).ok())
}

fn is(b: &[u8], i: usize, c: u8) -> bool {
    b.get(i) == Some(&c)
}

/// `hh:mm[:ss[(.|,)fraction]]` at `i`; the fraction keeps milliseconds. Returns the civil
/// time fields and the end. With `need_seconds`, `hh:mm` alone is not a match.
fn clock(b: &[u8], i: usize, civil: &mut Civil, need_seconds: bool) -> Option<usize> {
    civil.hour = d2(b, i)?;
    if !is(b, i + 2, b':') {
        return None;
    }
    civil.minute = d2(b, i + 3)?;
    let mut end = i + 5;
    if is(b, end, b':') && d2(b, end + 1).is_some() {
        civil.second = d2(b, end + 1)?;
        end += 3;
        if (is(b, end, b'.') || is(b, end, b',')) && b.get(end + 1).is_some_and(u8::is_ascii_digit)
        {
            end += 1;
            let mut milli = 0u16;
            let mut n = 0;
            while let Some(&d) = b.get(end).filter(|d| d.is_ascii_digit()) {
                if n < 3 {
                    milli = milli * 10 + u16::from(d - b'0');
                }
                n += 1;
                end += 1;
            }
            while n < 3 {
                milli *= 10;
                n += 1;
            }
            civil.milli = milli;
        }
    } else if need_seconds {
        return None;
    }
    Some(end)
}

/// `±hh`, `±hhmm` or `±hh:mm` at `i`: the offset in minutes and the end.
fn numeric_offset(b: &[u8], i: usize) -> Option<(i32, usize)> {
    let sign = match b.get(i)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = i32::from(d2(b, i + 1)?);
    let (minutes, end) = if is(b, i + 3, b':') {
        (i32::from(d2(b, i + 4)?), i + 6)
    } else if let Some(m) = d2(b, i + 3) {
        (i32::from(m), i + 5)
    } else {
        (0, i + 3)
    };
    // A following digit means this was not an offset (`+12345`).
    if b.get(end).is_some_and(u8::is_ascii_digit) || hours > 23 || minutes > 59 {
        return None;
    }
    Some((sign * (hours * 60 + minutes), end))
}

/// An ISO 8601 / RFC 3339 stamp at `i`: `dddd-dd-dd`, `T`/`t`/space, `hh:mm[:ss[.f]]`, then an
/// optional `Z`, `±hh[:]mm`, or a space and `±hhmm` (Go's `time.String`).
pub fn iso(b: &[u8], i: usize) -> Option<Stamp> {
    let mut civil = Civil {
        year: i32::try_from(digits(b, i, 4)?).ok()?,
        month: 0,
        day: 0,
        hour: 0,
        minute: 0,
        second: 0,
        milli: 0,
    };
    if !is(b, i + 4, b'-') || !is(b, i + 7, b'-') {
        return None;
    }
    civil.month = d2(b, i + 5)?;
    civil.day = d2(b, i + 8)?;
    if !matches!(b.get(i + 10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let mut end = clock(b, i + 11, &mut civil, false)?;
    let mut offset_minutes = None;
    if matches!(b.get(end), Some(b'Z' | b'z')) {
        offset_minutes = Some(0);
        end += 1;
    } else if let Some((off, e)) = numeric_offset(b, end) {
        offset_minutes = Some(off);
        end = e;
    } else if is(b, end, b' ') {
        if let Some((off, e)) = numeric_offset(b, end + 1) {
            if e - end == 6 && matches!(b.get(e), None | Some(b' ' | b']')) {
                offset_minutes = Some(off);
                end = e;
            }
        }
    }
    Some(Stamp {
        shape: Shape::Iso,
        civil,
        offset_minutes,
        yearless: false,
        timeless: false,
        level: None,
        end,
    })
}

/// `dddd/dd/dd hh:mm[:ss[.f]]` (nginx's error log, Go's `log`), read in the zone.
fn slash(b: &[u8]) -> Option<Stamp> {
    let mut civil = Civil {
        year: i32::try_from(digits(b, 0, 4)?).ok()?,
        month: 0,
        day: 0,
        hour: 0,
        minute: 0,
        second: 0,
        milli: 0,
    };
    if !is(b, 4, b'/') || !is(b, 7, b'/') || !is(b, 10, b' ') {
        return None;
    }
    civil.month = d2(b, 5)?;
    civil.day = d2(b, 8)?;
    let end = clock(b, 11, &mut civil, false)?;
    Some(Stamp {
        shape: Shape::Slash,
        civil,
        offset_minutes: None,
        yearless: false,
        timeless: false,
        level: None,
        end,
    })
}

/// `hh:mm:ss[.f]` at the line start: a record start without an event time.
fn time_only(b: &[u8]) -> Option<Stamp> {
    let mut civil = Civil {
        year: 0,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        milli: 0,
    };
    let end = clock(b, 0, &mut civil, true)?;
    Some(Stamp {
        shape: Shape::TimeOnly,
        civil,
        offset_minutes: None,
        yearless: false,
        timeless: true,
        level: None,
        end,
    })
}

/// RFC 3164 `Mmm dd hh:mm:ss` at `i` (day space-padded, zero-padded or one digit).
fn bsd_syslog(b: &[u8], i: usize) -> Option<Stamp> {
    let month = month_name(b, i)?;
    if !is(b, i + 3, b' ') {
        return None;
    }
    let mut j = i + 4;
    if is(b, j, b' ') {
        j += 1;
    }
    let day = if let Some(d) = d2(b, j) {
        j += 2;
        d
    } else {
        let d = u8::try_from(digits(b, j, 1)?).ok()?;
        j += 1;
        d
    };
    if !is(b, j, b' ') {
        return None;
    }
    let mut civil = Civil {
        year: 0,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        milli: 0,
    };
    let end = clock(b, j + 1, &mut civil, true)?;
    Some(Stamp {
        shape: Shape::Syslog,
        civil,
        offset_minutes: None,
        yearless: true,
        timeless: false,
        level: None,
        end,
    })
}

/// `<PRI>` then an RFC 5424 (`1 ` and an ISO stamp or `-`) or RFC 3164 header.
fn syslog(b: &[u8]) -> Option<Stamp> {
    let close = b.iter().take(5).position(|&c| c == b'>')?;
    if close < 2 {
        return None;
    }
    let pri = u16::try_from(digits(b, 1, close - 1)?).ok()?;
    let level = Level::from_syslog_pri(pri)?;
    let i = close + 1;
    if is(b, i, b'1') && is(b, i + 1, b' ') {
        let mut stamp = if is(b, i + 2, b'-') && matches!(b.get(i + 3), None | Some(b' ')) {
            // The nil timestamp: a record start with no time.
            time_less(Shape::Syslog5424, i + 3)
        } else {
            iso(b, i + 2)?
        };
        stamp.shape = Shape::Syslog5424;
        stamp.level = Some(level);
        return Some(stamp);
    }
    let mut stamp = match bsd_syslog(b, i) {
        Some(s) => s,
        None => iso(b, i)?,
    };
    stamp.shape = Shape::Syslog;
    stamp.level = Some(level);
    Some(stamp)
}

fn time_less(shape: Shape, end: usize) -> Stamp {
    Stamp {
        shape,
        civil: Civil {
            year: 0,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            milli: 0,
        },
        offset_minutes: None,
        yearless: false,
        timeless: true,
        level: None,
        end,
    }
}

/// klog/glog `Lmmdd hh:mm:ss.uuuuuu`: the letter is the level, the year is inferred.
fn klog(b: &[u8]) -> Option<Stamp> {
    let letter = *b.first()?;
    if !matches!(letter, b'I' | b'W' | b'E' | b'F') {
        return None;
    }
    let level = Level::from_letter(letter)?;
    let mut civil = Civil {
        year: 0,
        month: d2(b, 1)?,
        day: d2(b, 3)?,
        hour: 0,
        minute: 0,
        second: 0,
        milli: 0,
    };
    if !is(b, 5, b' ') {
        return None;
    }
    let end = clock(b, 6, &mut civil, true)?;
    Some(Stamp {
        shape: Shape::Klog,
        civil,
        offset_minutes: None,
        yearless: true,
        timeless: false,
        level: Some(level),
        end,
    })
}

/// How far into a line the access-log shape looks for its `[`.
const ACCESS_SEARCH: usize = 128;

/// Common/combined log format: the first `[` within 128 bytes, then `dd/Mmm/dddd:hh:mm:ss
/// ±hhmm]`. The status code is a field, not a level.
fn access(b: &[u8]) -> Option<Stamp> {
    let open = memchr::memchr(b'[', &b[..b.len().min(ACCESS_SEARCH)])?;
    let i = open + 1;
    let mut civil = Civil {
        year: 0,
        month: 0,
        day: d2(b, i)?,
        hour: 0,
        minute: 0,
        second: 0,
        milli: 0,
    };
    if !is(b, i + 2, b'/') || !is(b, i + 6, b'/') || !is(b, i + 11, b':') {
        return None;
    }
    civil.month = month_name(b, i + 3)?;
    civil.year = i32::try_from(digits(b, i + 7, 4)?).ok()?;
    let end = clock(b, i + 12, &mut civil, true)?;
    if !is(b, end, b' ') {
        return None;
    }
    let (offset, end) = numeric_offset(b, end + 1)?;
    if !is(b, end, b']') {
        return None;
    }
    Some(Stamp {
        shape: Shape::Access,
        civil,
        offset_minutes: Some(offset),
        yearless: false,
        timeless: false,
        level: None,
        end: end + 1,
    })
}

/// The stamp a text line starts with (after any BOM and colour codes were skipped), with the
/// level found by the stamp or by the word rule just after it.
pub fn text_stamp(b: &[u8]) -> Option<Stamp> {
    let first = *b.first()?;
    let mut stamp = match first {
        b'0'..=b'9' => match b.get(2) {
            Some(b':') => time_only(b),
            _ => match b.get(4) {
                Some(b'-') => iso(b, 0),
                Some(b'/') => slash(b),
                _ => None,
            },
        },
        b'[' if b.get(1).is_some_and(u8::is_ascii_digit) && is(b, 5, b'-') => {
            iso(b, 1).and_then(|mut s| {
                // `[stamp]` or `[stamp thread]`: the level rule starts after the stamp.
                s.shape = Shape::BracketIso;
                (matches!(b.get(s.end), Some(b']' | b' '))).then(|| {
                    s.end += usize::from(is(b, s.end, b']'));
                    s
                })
            })
        }
        b'<' => syslog(b),
        b'A'..=b'Z' if b.get(1).is_some_and(u8::is_ascii_digit) => klog(b),
        b'A'..=b'S' => bsd_syslog(b, 0),
        _ => None,
    };
    if stamp.is_none() {
        stamp = access(b);
    }
    let mut stamp = stamp?;
    if stamp.level.is_none() && stamp.shape != Shape::Access {
        stamp.level = level::from_text(b.get(stamp.end..).unwrap_or_default());
    }
    Some(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(line: &str) -> Option<Shape> {
        text_stamp(line.as_bytes()).map(|s| s.shape)
    }

    #[test]
    fn each_shape_is_recognised_by_its_first_bytes() {
        for (line, want) in [
            ("2026-12-01T21:14:39.123Z x", Some(Shape::Iso)),
            ("2026-12-01 21:14:39,123 INFO x", Some(Shape::Iso)),
            ("2026-12-01 21:14 x", Some(Shape::Iso)),
            ("[2026-12-01 21:14:39,123] ERROR x", Some(Shape::BracketIso)),
            ("2026/12/01 21:14:39 [error] 7#7: x", Some(Shape::Slash)),
            ("Dec  1 21:14:39 host app[42]: x", Some(Shape::Syslog)),
            ("<34>Oct 11 22:14:15 mymachine su: x", Some(Shape::Syslog)),
            (
                "<165>1 2026-12-01T21:14:39.003Z host app 42 ID47 - x",
                Some(Shape::Syslog5424),
            ),
            (
                "I1201 21:14:39.123456   12 file.go:34] x",
                Some(Shape::Klog),
            ),
            (
                "1.2.3.4 - - [01/Dec/2026:21:14:39 +0000] \"GET / HTTP/1.1\" 500 1",
                Some(Shape::Access),
            ),
            ("21:14:39.123 [main] ERROR c.x - x", Some(Shape::TimeOnly)),
            ("2026-13-45 12:00:00 x", Some(Shape::Iso)),
            ("\tat com.example.Foo.bar(Foo.java:10)", None),
            ("Caused by: java.lang.IllegalStateException", None),
            ("May the force be with you", None),
            ("2026-12-01 is a date only", None),
            ("12345", None),
            ("<999>1 2026-12-01T21:14:39Z x", None),
        ] {
            assert_eq!(shape(line), want, "{line:?}");
        }
    }

    #[test]
    fn offsets_and_fractions_are_read() {
        let s = text_stamp(b"2026-12-01T21:14:39.1+01:30 x").expect("iso");
        assert_eq!((s.civil.milli, s.offset_minutes), (100, Some(90)));
        let s = text_stamp(b"2026-12-01 21:14:39.123456789 -0500 EST x").expect("go");
        assert_eq!((s.civil.milli, s.offset_minutes), (123, Some(-300)));
        let s = text_stamp(b"2026-12-01 21:14:39 - 7 lines").expect("no offset");
        assert_eq!(s.offset_minutes, None);
        let s = text_stamp(b"[2026-12-01 21:14:39,123] WARN x").expect("bracket");
        assert_eq!((s.end, s.level), (25, Some(Level::Warn)));
    }
}
