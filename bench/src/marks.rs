//! The benchmark's line format and how to find it in any server's payload.
//!
//! Every line the writer appends reads `cmt <seq> <send-time-ns> <padding>`; sequence 0 is the
//! warm-up line written before clients connect, whose arrival means "this client is live".
//! Clients never parse the JSON of an event: they scan for `"cmt ` (the text value's opening
//! quote) with a precomputed finder, which works the same on cometail's entries and on a
//! socket.io frame, and costs a fraction of a JSON parse on a two-core machine shared with the
//! server under test.

use std::sync::LazyLock;

use memchr::memmem::Finder;

static MARK: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"cmt "));
static NEXT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"next\":"));

/// Formats line `seq` sent at `ts_ns`, padded with `x` to `line_bytes` (newline included).
pub(crate) fn format_line(out: &mut Vec<u8>, seq: u64, ts_ns: u64, line_bytes: usize) {
    use std::io::Write as _;
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = write!(out, "cmt {seq} {ts_ns} ");
    let used = out.len() - start;
    let pad = line_bytes.saturating_sub(used + 1);
    out.resize(out.len() + pad, b'x');
    out.push(b'\n');
}

/// Calls `f(seq, ts_ns)` for every benchmark line found in `payload`.
pub(crate) fn for_each_mark(payload: &[u8], mut f: impl FnMut(u64, u64)) {
    for at in MARK.find_iter(payload) {
        let rest = &payload[at + 5..];
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
    fn other_text_is_ignored() {
        let mut got = Vec::new();
        for_each_mark(
            br#"{"text":"cmt x 1","t2":"cmt 5","t3":"cmt 5 "}"#,
            |s, t| got.push((s, t)),
        );
        assert!(got.is_empty());
        assert_eq!(next_cursor(br#"{"next":null}"#), None);
        assert_eq!(next_cursor(br#"{"next": "ab"}"#), Some("ab"));
    }
}
