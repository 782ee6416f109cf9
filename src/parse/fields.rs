//! The fields of a JSON or logfmt line, looked up by dotted path for `key=value` queries.
//!
//! Built lazily, once per entry, from the entry's first line: JSON becomes a map of its
//! top-level keys to raw (unparsed) values, and a path descends on demand; logfmt becomes its
//! pairs. A path `a.b` is first looked up as the literal key `"a.b"`, then as `a` → `b`;
//! numeric segments index arrays. Nesting is read at most [`MAX_DEPTH`] levels deep.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::json::{raw_number, raw_str};
use super::logfmt;

/// Deepest path segment followed.
pub const MAX_DEPTH: usize = 32;

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A string (logfmt values are all strings).
    Str(Cow<'a, str>),
    /// A JSON number.
    Num(f64),
    /// A JSON boolean.
    Bool(bool),
    /// JSON `null`.
    Null,
    /// A JSON object or array.
    Composite,
}

/// The fields of one line.
#[derive(Debug, Default)]
pub enum Fields<'a> {
    /// A JSON object: its top-level keys.
    Json(BTreeMap<Cow<'a, str>, &'a RawValue>),
    /// logfmt pairs, in order.
    Logfmt(Vec<logfmt::Pair<'a>>),
    /// Not a structured line.
    #[default]
    None,
}

impl<'a> Fields<'a> {
    /// The fields of `line` (the entry's first line, Docker already unwrapped).
    pub fn of(line: &'a [u8]) -> Self {
        let line = super::skip_decoration(line);
        if line.first() == Some(&b'{') {
            return serde_json::from_slice(line).map_or(Self::None, Self::Json);
        }
        if logfmt::starts_like(line) {
            if let Ok(text) = std::str::from_utf8(line) {
                let pairs: Vec<_> = logfmt::pairs(text).collect();
                if pairs.len() >= 2 {
                    return Self::Logfmt(pairs);
                }
            }
        }
        Self::None
    }

    /// The value at a dotted `path`, if present.
    pub fn get(&self, path: &str) -> Option<Value<'a>> {
        match self {
            Self::Json(map) => {
                if let Some(raw) = map.get(path) {
                    return Some(json_value(raw));
                }
                let mut segments = path.split('.');
                let first = segments.next()?;
                let mut raw: &RawValue = map.get(first)?;
                for (depth, seg) in segments.enumerate() {
                    if depth >= MAX_DEPTH {
                        return None;
                    }
                    raw = child(raw, seg)?;
                }
                Some(json_value(raw))
            }
            Self::Logfmt(pairs) => pairs
                .iter()
                .find(|p| p.key == path)
                .map(|p| Value::Str(p.value.clone())),
            Self::None => None,
        }
    }
}

/// One step down a raw JSON value: a key of an object or an index of an array.
fn child<'a>(raw: &'a RawValue, segment: &str) -> Option<&'a RawValue> {
    let text = raw.get();
    if text.starts_with('{') {
        let map: BTreeMap<Cow<'a, str>, &'a RawValue> = serde_json::from_str(text).ok()?;
        map.get(segment).copied()
    } else if text.starts_with('[') {
        let index: usize = segment.parse().ok()?;
        let items: Vec<&'a RawValue> = serde_json::from_str(text).ok()?;
        items.get(index).copied()
    } else {
        None
    }
}

fn json_value(raw: &RawValue) -> Value<'_> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => raw_str(raw).map_or(Value::Null, Value::Str),
        Some(b't') => Value::Bool(true),
        Some(b'f') => Value::Bool(false),
        Some(b'n') => Value::Null,
        Some(b'{' | b'[') => Value::Composite,
        _ => raw_number(raw).map_or(Value::Null, Value::Num),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_try_the_literal_key_first_then_descend() {
        let line = br#"{"a.b":"lit","a":{"b":"nested","c":[1,{"d":true}]},"n":5,"s":"x\"y"}"#;
        let f = Fields::of(line);
        assert_eq!(f.get("a.b"), Some(Value::Str("lit".into())));
        assert_eq!(f.get("a.c.1.d"), Some(Value::Bool(true)));
        assert_eq!(f.get("a.c.0"), Some(Value::Num(1.0)));
        assert_eq!(f.get("a"), Some(Value::Composite));
        assert_eq!(f.get("s"), Some(Value::Str("x\"y".into())));
        assert_eq!(f.get("a.c.9"), None);
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn logfmt_and_plain_lines() {
        let f = Fields::of(b"level=warn status=500 msg=\"a b\"");
        assert_eq!(f.get("status"), Some(Value::Str("500".into())));
        assert_eq!(f.get("msg"), Some(Value::Str("a b".into())));
        assert!(matches!(Fields::of(b"plain text"), Fields::None));
        assert!(matches!(Fields::of(b"{broken"), Fields::None));
    }
}
