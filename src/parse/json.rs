//! Facts from a JSON object line, Docker's json-file lines included.
//!
//! serde_json reads only the few keys that carry time and level into borrowed raw values and
//! skips every other key without building it; skipping is iterative, so a depth-10,000 value
//! cannot overflow the stack. A line that is not one valid JSON object (cut, nested past
//! serde_json's limit where it must be read, duplicate keys) is plain text.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::level::Level;
use super::stamp;

/// The keys that carry an event time, in the order they are tried.
pub const TIME_KEYS: [&str; 5] = ["@timestamp", "timestamp", "time", "ts", "@t"];
/// The keys that carry a level, in the order they are tried.
pub const LEVEL_KEYS: [&str; 7] = [
    "level",
    "lvl",
    "severity",
    "levelname",
    "log.level",
    "@l",
    "loglevel",
];

#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(rename = "@timestamp", borrow)]
    at_timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(rename = "@t", borrow)]
    at_t: Option<&'a RawValue>,
    #[serde(borrow)]
    level: Option<&'a RawValue>,
    #[serde(borrow)]
    lvl: Option<&'a RawValue>,
    #[serde(borrow)]
    severity: Option<&'a RawValue>,
    #[serde(borrow)]
    levelname: Option<&'a RawValue>,
    #[serde(rename = "log.level", borrow)]
    log_level: Option<&'a RawValue>,
    #[serde(rename = "@l", borrow)]
    at_l: Option<&'a RawValue>,
    #[serde(borrow)]
    loglevel: Option<&'a RawValue>,
    #[serde(borrow)]
    log: Option<&'a RawValue>,
    #[serde(borrow)]
    stream: Option<&'a RawValue>,
}

/// What a JSON line says, before the time is resolved in a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonFacts<'a> {
    /// The event time: a stamp string or an epoch number.
    pub time: Option<TimeValue<'a>>,
    /// The level from a level key.
    pub level: Option<Level>,
    /// For Docker's json-file: the `log` text (unescaped, trailing `\n` kept).
    pub docker_log: Option<Cow<'a, str>>,
}

/// An event time as a JSON or logfmt value holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeValue<'a> {
    /// A string, read by the stamp shapes.
    Text(Cow<'a, str>),
    /// A number: epoch seconds, milliseconds, microseconds or nanoseconds by magnitude.
    Epoch(f64),
}

/// A JSON string value without its quotes, borrowed when it has no escapes.
pub fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let s = raw.get();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(s).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A JSON number value.
pub fn raw_number(raw: &RawValue) -> Option<f64> {
    let s = raw.get();
    if s.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn time_value(raw: &RawValue) -> Option<TimeValue<'_>> {
    raw_str(raw)
        .map(TimeValue::Text)
        .or_else(|| raw_number(raw).map(TimeValue::Epoch))
}

/// Epoch milliseconds of a number by its magnitude (< 1e11 seconds, < 1e14 ms, < 1e17 µs,
/// else ns); negative, non-finite or past year 9999 gives none.
pub fn epoch_ms(n: f64) -> Option<i64> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n < 1e11 {
        n * 1e3
    } else if n < 1e14 {
        n
    } else if n < 1e17 {
        n / 1e3
    } else {
        n / 1e6
    };
    // 253402300800000 is 10000-01-01T00:00:00Z.
    (ms < 253_402_300_800_000.0).then(|| ms.floor() as i64)
}

fn level_value(raw: &RawValue, numeric: bool) -> Option<Level> {
    match raw_str(raw) {
        Some(s) => Level::parse(s.trim()),
        None if numeric => raw_number(raw).and_then(Level::from_number),
        None => None,
    }
}

/// The facts of a line that starts with `{`, or none when it is not one valid JSON object.
pub fn facts(line: &[u8]) -> Option<JsonFacts<'_>> {
    let keys: Keys<'_> = serde_json::from_slice(line).ok()?;
    let docker = match (keys.log, keys.stream, keys.time) {
        (Some(log), Some(_), Some(_)) => raw_str(log),
        _ => None,
    };
    let time = [
        keys.at_timestamp,
        keys.timestamp,
        keys.time,
        keys.ts,
        keys.at_t,
    ]
    .into_iter()
    .flatten()
    .find_map(time_value);
    let nested_log_level = keys
        .log
        .filter(|l| l.get().starts_with('{'))
        .and_then(|l| serde_json::from_str::<NestedLevel<'_>>(l.get()).ok())
        .and_then(|n| n.level);
    let candidates = [
        (keys.level, true),
        (keys.lvl, true),
        (keys.severity, false),
        (keys.levelname, false),
        (keys.log_level, false),
        (nested_log_level, false),
        (keys.at_l, true),
        (keys.loglevel, false),
    ];
    let level = candidates
        .into_iter()
        .find_map(|(raw, numeric)| raw.and_then(|r| level_value(r, numeric)));
    Some(JsonFacts {
        time,
        level,
        docker_log: docker,
    })
}

/// ECS's `{"log":{"level":…}}`.
#[derive(Deserialize)]
struct NestedLevel<'a> {
    #[serde(borrow)]
    level: Option<&'a RawValue>,
}

/// Whether a JSON or logfmt time value reads as a stamp: its text parsed by the ISO shape.
pub fn stamp_of(text: &str) -> Option<stamp::Stamp> {
    stamp::iso(text.trim().as_bytes(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_in_order_and_unusable_values_fall_through() {
        let f = facts(br#"{"ts":1764623679.5,"level":{"x":1},"severity":"WARNING","msg":"a"}"#)
            .expect("json");
        assert_eq!(f.time, Some(TimeValue::Epoch(1_764_623_679.5)));
        assert_eq!(f.level, Some(Level::Warn));
        let f = facts(br#"{"level":50,"time":1764623679123}"#).expect("pino");
        assert_eq!(f.level, Some(Level::Error));
        let f = facts(br#"{"log":{"level":"error"},"@timestamp":"2026-12-01T21:14:39Z"}"#)
            .expect("ecs");
        assert_eq!(f.level, Some(Level::Error));
        assert!(matches!(f.time, Some(TimeValue::Text(_))));
        assert_eq!(f.docker_log, None);
    }

    #[test]
    fn docker_lines_give_their_log_text() {
        let f = facts(
            br#"{"log":"E1201 boom \"x\"\n","stream":"stderr","time":"2026-12-01T21:14:39.1Z"}"#,
        )
        .expect("docker");
        assert_eq!(f.docker_log.as_deref(), Some("E1201 boom \"x\"\n"));
    }

    #[test]
    fn invalid_deep_and_huge_json_never_panics() {
        assert!(facts(b"{\"a\":").is_none());
        assert!(facts(b"{\"level\":\"warn\"} trailing").is_none());
        let deep = format!(
            "{{\"a\":{}1{},\"level\":\"warn\"}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(
            facts(deep.as_bytes()).and_then(|f| f.level),
            Some(Level::Warn)
        );
        let deep_level = format!(
            "{{\"level\":{}1{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(facts(deep_level.as_bytes()).and_then(|f| f.level), None);
        let huge = format!("{{\"msg\":\"{}\",\"lvl\":\"debug\"}}", "x".repeat(1 << 20));
        assert_eq!(
            facts(huge.as_bytes()).and_then(|f| f.level),
            Some(Level::Debug)
        );
    }

    #[test]
    fn epoch_numbers_are_scaled_by_magnitude() {
        assert_eq!(epoch_ms(1_764_623_679.5), Some(1_764_623_679_500));
        assert_eq!(epoch_ms(1_764_623_679_500.0), Some(1_764_623_679_500));
        assert_eq!(epoch_ms(1_764_623_679_500_000.0), Some(1_764_623_679_500));
        assert_eq!(epoch_ms(1.764_623_679_5e18), Some(1_764_623_679_500));
        assert_eq!(epoch_ms(-1.0), None);
        assert_eq!(epoch_ms(f64::NAN), None);
    }
}
