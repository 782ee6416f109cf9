//! An entry: one record (a line, or a line and its continuation lines) or notice of a
//! stream, encoded once for every reader.

use bytes::Bytes;
use serde::Serialize;

use std::borrow::Cow;

mod json;

use json::LineJson;

use super::Cursor;
use super::records::Record;
use crate::parse::Shape;
use crate::tail::{Generation, Notice, line_text};

/// One entry, with its encoded forms ready to send.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Generation sequence number; with `point`, the entry's position in stream order.
    pub(crate) gen_seq: u64,
    pub(crate) point: u64,
    /// The entry's cursor.
    pub cursor: Cursor,
    /// The entry as a JSON object (`{"cursor":…,"text":…}`), encoded once for every reader.
    pub json: Bytes,
    /// The entry as a line of plain text, without a `\n`: a line's text, or a notice
    /// rendered as `==> rotated: … <==`.
    pub line: Bytes,
    /// Whether this is a notice rather than a line of the file.
    pub(crate) notice: bool,
    /// Event time (ms since the epoch) and level, read off the line by `parse`.
    pub facts: Facts,
    /// Arrival time (ms since the epoch) of an entry delivered live; none from history.
    pub arrival: Option<u64>,
    /// Heap bytes the entry's buffers hold (see [`allocated`]).
    pub(crate) alloc: usize,
}

/// What the parsing engine read off a line entry; empty for notices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// Event time, milliseconds since the Unix epoch.
    pub ts: Option<i64>,
    /// Severity.
    pub level: Option<crate::parse::Level>,
}

/// What one heap allocation costs beyond its capacity: glibc's chunk header, and rounding to
/// 16 bytes on average.
const MALLOC_OVERHEAD: usize = 16;
/// The reference-counted header `Bytes` allocates for a buffer that is sliced or shared
/// (a pointer, a capacity and a count).
const SHARED_HEADER: usize = 3 * std::mem::size_of::<usize>() + MALLOC_OVERHEAD;

/// Most bytes a line entry's JSON takes besides its escaped text: the braces, keys, quotes and
/// flags (77), a cursor (at most 72, its length included), `time` and `ts` (at most 20 characters each) and the
/// longest level name (5).
const JSON_FIXED: usize = 77 + 72 + 2 * 20 + 5;

/// Heap bytes held by a buffer of `capacity` bytes turned into `Bytes` and shared.
fn allocated(capacity: usize) -> usize {
    capacity + MALLOC_OVERHEAD + SHARED_HEADER
}

impl Entry {
    /// A line entry's text (UTF-8, without its `\n`), or `None` for a notice.
    pub fn text(&self) -> Option<&[u8]> {
        (!self.notice).then_some(&self.line[..])
    }

    pub(super) fn key(&self) -> (u64, u64) {
        (self.gen_seq, self.point)
    }

    /// The memory the entry holds: its buffers as allocated, and its slot in the cache.
    pub(super) fn weight(&self) -> usize {
        self.alloc + std::mem::size_of::<Self>()
    }

    /// A record's entry (one line, or several joined by `\n`). Live and history reads both
    /// come here with the same bytes, so they get the same text, `ts` and `level`, which are
    /// the first line's (`parse::Parser::facts`, read once per line by `records::Line::read`); `time` is the
    /// arrival time, absent in history.
    pub(super) fn record(
        life: u32,
        generation: &Generation,
        record: &Record,
        max_line_bytes: usize,
        time: Option<u64>,
    ) -> Self {
        let first = &record.lines[0];
        let point = first.raw.start + 1;
        let cursor = record_cursor(life, generation, record.start(), record.end());
        let (text, truncated) = record_text(record, max_line_bytes);
        let facts = Facts {
            ts: first.facts.ts,
            level: first.facts.level,
        };
        // Both forms share one allocation, sized up front: cached entries are the server's
        // main memory and its main allocation cost. The plain text goes first, then the JSON:
        // keys and values other than the text take at most `JSON_FIXED` bytes, and escapes
        // rarely take more than an eighth of the text, so the buffer is almost never grown
        // (a realloc per entry was a third of ingest's CPU).
        let mut buf = Vec::with_capacity(2 * text.len() + text.len() / 8 + JSON_FIXED);
        buf.extend_from_slice(text.as_bytes());
        let split = buf.len();
        LineJson {
            cursor,
            text: &text,
            truncated,
            cont: record.headless,
            time,
            ts: facts.ts,
            level: facts.level.map(crate::parse::Level::as_str),
        }
        .write(&mut buf);
        let alloc = allocated(buf.capacity());
        let buf = Bytes::from(buf);
        Self {
            gen_seq: generation.seq,
            point,
            cursor,
            json: buf.slice(split..),
            line: buf.slice(..split),
            notice: false,
            facts,
            arrival: time,
            alloc,
        }
    }

    pub(super) fn notice(life: u32, generation: &Generation, point: u64, notice: &Notice) -> Self {
        let cursor = cursor_for(life, generation, point);
        let json = serde_json::to_vec(&NoticeJson {
            cursor: &cursor.to_string(),
            notice: notice.kind.as_str(),
            detail: &notice.detail,
        })
        .expect("a struct of strings always serializes");
        let line = format!(
            "==> {}: {} <==",
            notice.kind.as_str(),
            notice.detail.replace(['\n', '\r'], " ")
        );
        Self {
            gen_seq: generation.seq,
            point,
            cursor,
            alloc: allocated(json.capacity()) + allocated(line.capacity()),
            json: json.into(),
            line: line.into(),
            notice: true,
            facts: Facts::default(),
            arrival: None,
        }
    }
}

/// The cursor of the entry of a record from byte `start` to `end`: its first line's point,
/// with the record's length.
pub(super) fn record_cursor(life: u32, generation: &Generation, start: u64, end: u64) -> Cursor {
    cursor_for(life, generation, start + 1).with_len(end - start)
}

/// A record's text as its entry shows it: its lines joined by `\n`, each cut at
/// `max_line_bytes` (and whether one was), Docker's json-file lines shown as their `log` text.
/// Filters test this text before deciding to build an entry at all.
pub(super) fn record_text(record: &Record, max_line_bytes: usize) -> (Cow<'_, str>, bool) {
    let mut truncated = false;
    let mut text: Cow<'_, str> = Cow::Borrowed("");
    for (i, line) in record.lines.iter().enumerate() {
        let (mut part, cut) = line_text(&line.raw.head, line.raw.len, max_line_bytes);
        truncated |= cut;
        if line.facts.shape == Some(Shape::Docker) {
            // Docker's json-file: the entry shows the container's line, not the wrapper.
            if let Some(log) = crate::parse::docker_text(part.as_bytes()) {
                part = log.into();
            }
        }
        if i == 0 {
            text = part;
        } else {
            let joined = text.to_mut();
            joined.push('\n');
            joined.push_str(&part);
        }
    }
    (text, truncated)
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Serialize)]
struct NoticeJson<'a> {
    cursor: &'a str,
    notice: &'a str,
    detail: &'a str,
}

pub(super) fn cursor_for(life: u32, generation: &Generation, point: u64) -> Cursor {
    // The follower reads a generation's first bytes before any of its lines, so the prefix
    // covers every point handed out; 0 is a harmless fallback that can only cause a `gap`.
    Cursor {
        ident: generation.ident,
        check: generation.check(point).unwrap_or(0),
        life,
        seq: generation.seq,
        point,
        len: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_besides_the_text_fits_in_json_fixed() {
        let longest = LineJson {
            cursor: Cursor {
                ident: u64::MAX,
                check: u32::MAX,
                life: u32::MAX,
                seq: u64::MAX,
                point: u64::MAX,
                len: u32::try_from(crate::stream::cursor::MAX_LEN).expect("six hex digits"),
            },
            text: "",
            truncated: true,
            cont: true,
            time: Some(u64::MAX),
            ts: Some(i64::MIN),
            level: Some(crate::parse::Level::Fatal.as_str()),
        };
        let mut json = Vec::new();
        longest.write(&mut json);
        assert_eq!(json.len(), JSON_FIXED, "{}", String::from_utf8_lossy(&json));
    }
}
