//! The format of one published batch: what an agent writes and a hub reads.
//!
//! One message per batch, on the file's subject. The payload is NDJSON: one entry per line in
//! the API's entry JSON without its `cursor` (hubs mint their own). Texts are JSON strings, so
//! no log line can break the framing. Headers:
//!
//! - `Nats-Expected-Last-Subject-Sequence`: the engine refuses the batch unless the subject's
//!   last message is the one the agent published before: a retry is stored at most once.
//! - [`PREV`]: the same value, our own back-pointer. A reader that finds `prev` between where
//!   it looked from and this message knows a message of this subject is gone (retention, or an
//!   engine that lost writes), and says `gap`.
//! - [`FIRST`], [`LAST`]: the agent's cursors of the first and last entry (its resume point).
//! - [`COUNT`], [`FORMAT`].
//!
//! Everything read from the engine is untrusted input: a message that does not decode is one
//! `gap` notice, never a panic.

use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value};

/// Header: the subject sequence of the agent's previous batch on this subject (0: none).
pub const PREV: &str = "Cometail-Prev";
/// Header: the agent cursor of the batch's first entry.
pub const FIRST: &str = "Cometail-First";
/// Header: the agent cursor of the batch's last entry.
pub const LAST: &str = "Cometail-Last";
/// Header: how many entries the batch holds.
pub const COUNT: &str = "Cometail-Count";
/// Header: the payload format's version.
pub const FORMAT: &str = "Cometail-Format";
/// The one payload format there is.
pub const FORMAT_VERSION: &str = "1";

/// Most entries in one batch.
pub const MAX_ENTRIES: usize = 1_000;
/// Most payload bytes in one batch (an entry larger than this goes alone).
pub const MAX_BYTES: usize = 256 << 10;

/// An entry's JSON without its `cursor` member, as one payload line.
pub fn strip_cursor(json: &[u8]) -> Bytes {
    // Entries are encoded with the cursor first, and a cursor's text has no quote or
    // backslash; anything else takes the slow, general way.
    const HEAD: &[u8] = b"{\"cursor\":\"";
    if let Some(rest) = json.strip_prefix(HEAD) {
        if let Some(end) = rest.iter().position(|&b| b == b'"') {
            let after = &rest[end + 1..];
            let mut out = BytesMut::with_capacity(after.len() + 1);
            out.extend_from_slice(b"{");
            out.extend_from_slice(after.strip_prefix(b",").unwrap_or(after));
            return out.freeze();
        }
    }
    let mut object: Map<String, Value> = serde_json::from_slice(json).unwrap_or_default();
    object.remove("cursor");
    serde_json::to_vec(&object).unwrap_or_default().into()
}

/// One decoded payload line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The entry's JSON object without `{` (`"text":…}`), or `}` for an empty object.
    pub rest: Bytes,
    /// The entry as plain text: a line's text, or `==> kind: detail <==` for a notice.
    pub line: Bytes,
    /// Whether it is a notice.
    pub notice: bool,
    /// When the agent read the line (ms since the epoch), when it says.
    pub time: Option<u64>,
    /// The event time the agent parsed off the line (`ts`), when it says.
    pub ts: Option<i64>,
    /// The level the agent parsed off the line (`level`), when it names one.
    pub level: Option<crate::parse::Level>,
}

/// The entries of a payload, or `None` when it is not a cometail batch.
pub fn decode(payload: &[u8]) -> Option<Vec<Item>> {
    let mut items = Vec::new();
    for raw in payload.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut object: Map<String, Value> = serde_json::from_slice(raw).ok()?;
        // Members a hub adds itself are never taken from the engine.
        let ours = object.remove("cursor").is_some() | object.remove("stream").is_some();
        let (line, notice) = match (object.get("text"), object.get("notice")) {
            (Some(Value::String(t)), None) => (t.clone().into_bytes(), false),
            (None, Some(Value::String(kind))) => {
                let detail = object.get("detail").and_then(Value::as_str).unwrap_or("");
                let detail = detail.replace(['\n', '\r'], " ");
                (format!("==> {kind}: {detail} <==").into_bytes(), true)
            }
            _ => return None,
        };
        let trimmed = raw.trim_ascii();
        let json = if ours || !trimmed.starts_with(b"{") {
            serde_json::to_vec(&object).ok()?
        } else {
            trimmed.to_vec()
        };
        items.push(Item {
            time: object.get("time").and_then(Value::as_u64),
            ts: object.get("ts").and_then(Value::as_i64),
            level: object
                .get("level")
                .and_then(Value::as_str)
                .and_then(crate::parse::Level::parse),
            rest: Bytes::from(json).slice(1..),
            line: line.into(),
            notice,
        });
    }
    (!items.is_empty()).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_entry_loses_its_cursor_and_decodes_back() {
        let stripped = strip_cursor(br#"{"cursor":"00ab-1","text":"GET / 200","time":5}"#);
        assert_eq!(&stripped[..], br#"{"text":"GET / 200","time":5}"#);
        let notice = strip_cursor(br#"{"cursor":"0-0","notice":"gap","detail":"x"}"#);
        let payload = [&stripped[..], b"\n", &notice[..], b"\n"].concat();
        let items = decode(&payload).expect("our own batch decodes");
        assert_eq!(items.len(), 2);
        assert_eq!(&items[0].rest[..], br#""text":"GET / 200","time":5}"#);
        assert_eq!(&items[0].line[..], b"GET / 200");
        assert!(items[1].notice && &items[1].line[..] == b"==> gap: x <==");
    }

    #[test]
    fn foreign_payloads_are_refused_and_cursors_never_taken() {
        for bad in [&b"plain text"[..], b"{}", b"[1]", br#"{"text":1}"#, b""] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let items = decode(br#"{"text":"a","cursor":"evil","stream":"x"}"#).expect("decodes");
        assert_eq!(&items[0].rest[..], br#""text":"a"}"#);
    }
}
