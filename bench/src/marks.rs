//! The benchmark's line format and how to find it in any server's payload.
//!
//! Every line the writer appends reads `cmt <seq> <send-time-ns> <padding>`; sequence 0 is the
//! warm-up line written before clients connect, whose arrival means "this client is live".
//! Clients never parse the JSON of an event: they scan for `cmt ` with a precomputed finder and
//! keep the hits that open a text value (after its `"`) or a line (at the start of the payload
//! or after a newline, as in a `raw?follow` body), which works the same on cometail's entries,
//! raw text and a socket.io frame, and costs a fraction of a JSON parse on a two-core machine
//! shared with the server under test.

use std::sync::LazyLock;

use memchr::memmem::Finder;

static MARK: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"cmt "));
static NEXT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"next\":"));

/// How the benchmark's lines are laid out around their mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LineFormat {
    /// `cmt <seq> <ns> xxx`: no event time, no level.
    #[default]
    Plain,
    /// `2026-12-01T21:14:39.123Z INFO msg="cmt <seq> <ns> xxx"`: a timestamped text line.
    Ts,
    /// `{"ts":"…","level":"info","msg":"cmt <seq> <ns> xxx"}`: a JSON line.
    Json,
    /// `ts=… level=info msg="cmt <seq> <ns> xxx"`: a logfmt line.
    Logfmt,
}

impl LineFormat {
    /// The name used in result rows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Ts => "ts",
            Self::Json => "json",
            Self::Logfmt => "logfmt",
        }
    }
}

/// Formats line `seq` sent at `ts_ns` as plain text, padded with `x` to `line_bytes`
/// (newline included).
pub(crate) fn format_line(out: &mut Vec<u8>, seq: u64, ts_ns: u64, line_bytes: usize) {
    format_line_as(out, seq, ts_ns, line_bytes, LineFormat::Plain);
}

/// Formats line `seq` sent at `ts_ns` in `format`, padded with `x` to `line_bytes` (newline
/// included). The mark always follows a `"` (in the line or in the entry's escaped JSON), so
/// [`for_each_mark`] finds it in every format.
pub(crate) fn format_line_as(
    out: &mut Vec<u8>,
    seq: u64,
    ts_ns: u64,
    line_bytes: usize,
    format: LineFormat,
) {
    use std::io::Write as _;
    let start = out.len();
    // Writing into a Vec cannot fail.
    let suffix: &[u8] = match format {
        LineFormat::Plain => b"",
        LineFormat::Ts => {
            let _ = write!(out, "{} INFO msg=\"", Rfc3339(ts_ns));
            b"\""
        }
        LineFormat::Json => {
            let _ = write!(
                out,
                "{{\"ts\":\"{}\",\"level\":\"info\",\"msg\":\"",
                Rfc3339(ts_ns)
            );
            b"\"}"
        }
        LineFormat::Logfmt => {
            let _ = write!(out, "ts={} level=info msg=\"", Rfc3339(ts_ns));
            b"\""
        }
    };
    let _ = write!(out, "cmt {seq} {ts_ns} ");
    let used = out.len() - start + suffix.len();
    let pad = line_bytes.saturating_sub(used + 1);
    out.resize(out.len() + pad, b'x');
    out.extend_from_slice(suffix);
    out.push(b'\n');
}

/// An instant in ns since the epoch, shown as RFC 3339 UTC with milliseconds.
pub(crate) struct Rfc3339(pub(crate) u64);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0 / 1_000_000;
        let secs = ms / 1000;
        let days = (secs / 86_400) as i64;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let sod = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60,
            ms % 1000
        )
    }
}

/// Calls `f(seq, ts_ns)` for every benchmark line found in `payload`: a mark counts where it
/// opens a JSON string (after `"`) or a line (at the start of `payload` or after `\n`).
pub(crate) fn for_each_mark(payload: &[u8], mut f: impl FnMut(u64, u64)) {
    for at in MARK.find_iter(payload) {
        if at > 0 && !matches!(payload[at - 1], b'"' | b'\n') {
            continue;
        }
        let rest = &payload[at + 4..];
        let (seq, n) = digits(rest);
        if n == 0 || rest.get(n) != Some(&b' ') {
            continue;
        }
        let (ts, m) = digits(&rest[n + 1..]);
        if m == 0 {
            continue;
        }
        f(seq, ts);
    }
}

fn digits(b: &[u8]) -> (u64, usize) {
    let mut v: u64 = 0;
    let mut n = 0;
    while n < b.len() && n < 20 && b[n].is_ascii_digit() {
        v = v.wrapping_mul(10).wrapping_add(u64::from(b[n] - b'0'));
        n += 1;
    }
    (v, n)
}

/// The value of the JSON string field `"next"` in `body`, if any (cursors are URL-safe and so
/// never contain escapes).
pub(crate) fn next_cursor(body: &[u8]) -> Option<&str> {
    let mut at = NEXT.find(body)? + 7;
    while body.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    if body.get(at) != Some(&b'"') {
        return None;
    }
    at += 1;
    let len = memchr::memchr(b'"', &body[at..])?;
    std::str::from_utf8(&body[at..at + len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_lines_are_found_in_json_and_socket_io_frames() {
        let mut line = Vec::new();
        format_line(&mut line, 42, 1_700_000_000_123_456_789, 100);
        assert_eq!(line.len(), 100);
        assert_eq!(line.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&line[..99]).expect("ascii");
        let json = format!(
            r#"{{"entries":[{{"cursor":"a","text":"{text}","time":1}},{{"cursor":"b","text":"cmt 43 7 x"}}],"next":"b"}}"#
        );
        let mut got = Vec::new();
        for_each_mark(json.as_bytes(), |s, t| got.push((s, t)));
        assert_eq!(got, vec![(42, 1_700_000_000_123_456_789), (43, 7)]);
        assert_eq!(next_cursor(json.as_bytes()), Some("b"));
        let sio = format!(r#"42/ns,["line","{text}"]"#);
        got.clear();
        for_each_mark(sio.as_bytes(), |s, t| got.push((s, t)));
        assert_eq!(got, vec![(42, 1_700_000_000_123_456_789)]);
    }

    #[test]
    fn every_line_format_is_padded_and_found_inside_an_entry() {
        for format in [
            LineFormat::Plain,
            LineFormat::Ts,
            LineFormat::Json,
            LineFormat::Logfmt,
        ] {
            let mut line = Vec::new();
            format_line_as(&mut line, 7, 1_796_159_679_123_000_000, 100, format);
            assert_eq!(line.len(), 100, "{format:?}");
            let text = std::str::from_utf8(&line[..99]).expect("ascii");
            if format != LineFormat::Plain {
                assert!(text.contains("2026-12-01T21:14:39.123Z"), "{text}");
            }
            let entry = serde_json::json!({ "text": text }).to_string();
            let mut got = Vec::new();
            for_each_mark(entry.as_bytes(), |s, t| got.push((s, t)));
            assert_eq!(got, vec![(7, 1_796_159_679_123_000_000)], "{entry}");
        }
    }

    #[test]
    fn marks_are_found_at_line_starts_of_raw_text() {
        let mut raw = Vec::new();
        for (seq, format) in [
            (0, LineFormat::Plain),
            (1, LineFormat::Plain),
            (2, LineFormat::Ts),
        ] {
            format_line_as(&mut raw, seq, 1_796_159_679_123_000_000 + seq, 100, format);
        }
        let mut got = Vec::new();
        for_each_mark(&raw, |s, t| got.push((s, t)));
        let ts = 1_796_159_679_123_000_000;
        assert_eq!(got, vec![(0, ts), (1, ts + 1), (2, ts + 2)]);
    }

    #[test]
    fn other_text_is_ignored() {
        let mut got = Vec::new();
        for_each_mark(
            br#"{"text":"cmt x 1","t2":"cmt 5","t3":"cmt 5 ","t4":"a cmt 5 6"}"#,
            |s, t| got.push((s, t)),
        );
        assert!(got.is_empty());
        assert_eq!(next_cursor(br#"{"next":null}"#), None);
        assert_eq!(next_cursor(br#"{"next": "ab"}"#), Some("ab"));
    }
}
