//! What a line says: its shape, event time (`ts`), level, and whether it starts a record.
//!
//! [`Parser::facts`] is a pure function of the line's bytes, the `--timezone` zone and, for
//! the yearless shapes only, a reference time: no stream history and no detector state go in,
//! so the live follower and the history reader, calling the same function on the same bytes,
//! always agree. Shapes are told apart by their first bytes ([`stamp`]), `{` goes to
//! [`json`], an identifier and `=` to [`logfmt`]. [`detect::Detector`] only names a stream's
//! format for reporting; [`records`] holds the multi-line record rule; [`fields`] reads JSON
//! and logfmt fields by dotted path for queries.
//!
//! Nothing here panics on any input (a property test feeds arbitrary bytes) and nothing
//! allocates on the common paths except serde_json's unescaping of escaped strings.

pub mod detect;
pub mod fields;
pub mod json;
pub mod level;
pub mod logfmt;
pub mod pinned;
pub mod records;
pub mod seek;
pub mod stamp;
pub mod zone;

use std::borrow::Cow;

pub use level::Level;
pub use zone::{UnknownZone, Zone};

use json::TimeValue;
use stamp::Stamp;
use zone::DAY_MS;

/// The shape of a line: which layout its stamp or structure has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// ISO 8601 / RFC 3339 at the line start.
    Iso,
    /// ISO in brackets: `[2026-12-01 21:14:39,123]`.
    BracketIso,
    /// `2026/12/01 21:14:39` (nginx error log, Go's `log`).
    Slash,
    /// RFC 3164 syslog, `Dec  1 21:14:39`, optionally after `<PRI>`.
    Syslog,
    /// RFC 5424 syslog, `<165>1 2026-…`.
    Syslog5424,
    /// klog / glog, `I1201 21:14:39.123456`.
    Klog,
    /// Common/combined access log, `[01/Dec/2026:21:14:39 +0000]`.
    Access,
    /// A time of day without a date: a record start with no event time.
    TimeOnly,
    /// A JSON object.
    Json,
    /// Docker's json-file (`{"log":…,"stream":…,"time":…}`).
    Docker,
    /// logfmt.
    Logfmt,
}

impl Shape {
    /// The name used in `/api/streams`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iso => "iso",
            Self::BracketIso => "bracket-iso",
            Self::Slash => "slash",
            Self::Syslog => "syslog",
            Self::Syslog5424 => "syslog5424",
            Self::Klog => "klog",
            Self::Access => "access",
            Self::TimeOnly => "time-only",
            Self::Json => "json",
            Self::Docker => "docker",
            Self::Logfmt => "logfmt",
        }
    }
}

/// What one line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// The shape it matched, if any.
    pub shape: Option<Shape>,
    /// Event time, milliseconds since the Unix epoch (UTC).
    pub ts: Option<i64>,
    /// Severity.
    pub level: Option<Level>,
    /// Whether the line starts a record (a shape matched; for Docker, its text is not a
    /// continuation).
    pub start: bool,
}

/// Reads facts off lines in one zone. Cheap to clone; one per stream (its zone cache is not
/// shared between threads).
#[derive(Debug, Clone)]
pub struct Parser {
    zone: Zone,
    /// The format the operator gave the stream, if any (`pinned.rs`).
    pinned: Option<pinned::Pinned>,
}

impl Parser {
    /// A parser reading zone-less stamps in `zone`.
    pub fn new(zone: Zone) -> Self {
        Self { zone, pinned: None }
    }

    /// The parser with lines read under `pinned` (`None`: every shape, as detected).
    #[must_use]
    pub fn with_pinned(mut self, pinned: Option<pinned::Pinned>) -> Self {
        self.pinned = pinned;
        self
    }

    /// The format the operator gave, if any.
    pub fn pinned(&self) -> Option<pinned::Pinned> {
        self.pinned
    }

    /// The zone zone-less stamps are read in.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// The facts of `line` (without its `\n`). `reference_ms` dates the yearless shapes:
    /// the arrival time for a live line, the file's mtime for one read from history; the year
    /// is the latest one in which the stamp falls no later than a day after the reference.
    pub fn facts(&self, line: &[u8], reference_ms: i64) -> Facts {
        let facts = self.any_facts(line, reference_ms);
        self.pinned.map_or(facts, |p| p.restrict(facts))
    }

    /// The facts of `line` read as whichever shape it has.
    fn any_facts(&self, line: &[u8], reference_ms: i64) -> Facts {
        let line = skip_decoration(line);
        match line.first() {
            Some(b'{') => return self.json_facts(line, reference_ms),
            Some(_) if logfmt::starts_like(line) => {
                if let Some(f) = std::str::from_utf8(line).ok().and_then(logfmt::facts) {
                    return Facts {
                        shape: Some(Shape::Logfmt),
                        ts: f
                            .time
                            .and_then(|t| self.time_value(&TimeValue::Text(t), reference_ms)),
                        level: f.level,
                        start: true,
                    };
                }
            }
            _ => {}
        }
        self.text_facts(line, reference_ms)
    }

    fn text_facts(&self, line: &[u8], reference_ms: i64) -> Facts {
        match stamp::text_stamp(line) {
            Some(s) => Facts {
                shape: Some(s.shape),
                ts: self.resolve(&s, reference_ms),
                level: s.level,
                start: true,
            },
            None => Facts {
                shape: None,
                ts: None,
                level: level::from_text(line),
                start: false,
            },
        }
    }

    fn json_facts(&self, line: &[u8], reference_ms: i64) -> Facts {
        let Some(f) = json::facts(line) else {
            return self.text_facts(line, reference_ms);
        };
        let ts = f
            .time
            .as_ref()
            .and_then(|t| self.time_value(t, reference_ms));
        match f.docker_log {
            Some(log) => {
                let text = log.strip_suffix('\n').unwrap_or(&log).as_bytes();
                let inner = self.text_facts(skip_decoration(text), reference_ms);
                Facts {
                    shape: Some(Shape::Docker),
                    ts,
                    level: inner.level,
                    start: !records::is_continuation_text(text),
                }
            }
            None => Facts {
                shape: Some(Shape::Json),
                ts,
                level: f.level,
                start: true,
            },
        }
    }

    fn time_value(&self, t: &TimeValue<'_>, reference_ms: i64) -> Option<i64> {
        match t {
            TimeValue::Epoch(n) => json::epoch_ms(*n),
            TimeValue::Text(s) => {
                let trimmed = s.trim();
                if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                    return trimmed.parse().ok().and_then(json::epoch_ms);
                }
                json::stamp_of(trimmed).and_then(|st| self.resolve(&st, reference_ms))
            }
        }
    }

    /// Epoch ms of a stamp: its own offset, else the zone; yearless stamps dated by the
    /// reference.
    fn resolve(&self, s: &Stamp, reference_ms: i64) -> Option<i64> {
        if s.timeless {
            return None;
        }
        if !s.yearless {
            return self.instant(s, &s.civil);
        }
        // The latest year in which the stamp falls no later than reference + 1 day. Feb 29
        // may need to look back up to 8 years for a leap year.
        let limit = reference_ms.checked_add(DAY_MS)?;
        let year = zone::utc_year(reference_ms);
        (year.saturating_sub(8)..=year.saturating_add(1))
            .rev()
            .map(|y| s.civil.with_year(y))
            .filter(zone::Civil::is_valid)
            .filter_map(|c| self.instant(s, &c))
            .find(|&ms| ms <= limit)
    }

    fn instant(&self, s: &Stamp, c: &zone::Civil) -> Option<i64> {
        if !c.is_valid() {
            return None;
        }
        match s.offset_minutes {
            Some(off) => c.utc_ms().checked_sub(i64::from(off) * 60_000),
            None => self.zone.to_ms(c),
        }
    }
}

/// Skips what may precede a stamp without being part of the text's layout: a UTF-8 byte
/// order mark and ANSI colour (SGR) sequences.
pub fn skip_decoration(mut line: &[u8]) -> &[u8] {
    if let Some(rest) = line.strip_prefix(b"\xEF\xBB\xBF") {
        line = rest;
    }
    while let Some(rest) = line.strip_prefix(b"\x1b[") {
        let Some(m) = rest
            .iter()
            .position(|&b| !(b.is_ascii_digit() || b == b';'))
        else {
            break;
        };
        if rest[m] != b'm' {
            break;
        }
        line = &rest[m + 1..];
    }
    line
}

/// The `log` text of a Docker json-file line, without its trailing `\n`; none for any other
/// line.
pub fn docker_text(line: &[u8]) -> Option<String> {
    if line.first() != Some(&b'{') {
        return None;
    }
    let log = json::facts(line)?.docker_log?;
    let mut log = log.into_owned();
    if log.ends_with('\n') {
        log.pop();
    }
    Some(log)
}

/// The text an entry shows for a line: Docker's json-file lines become their `log` text
/// (without its trailing `\n`); every other line is itself.
pub fn entry_text(line: &[u8]) -> Cow<'_, [u8]> {
    if line.first() == Some(&b'{') && memchr::memmem::find(line, b"\"stream\"").is_some() {
        if let Some(log) = json::facts(line).and_then(|f| f.docker_log) {
            let text = log.strip_suffix('\n').unwrap_or(&log);
            return Cow::Owned(text.as_bytes().to_vec());
        }
    }
    Cow::Borrowed(line)
}

#[cfg(test)]
mod tests;

/// Why an `at=` / `until=` value is not an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InstantError {
    /// Not RFC 3339 and not all digits.
    #[error("not an RFC 3339 time (2026-12-01T14:05:00Z) or epoch milliseconds")]
    Unparsable,
    /// RFC 3339 without `Z` or an offset: which zone is meant is unknown.
    #[error("the time has no zone: add Z or an offset such as +01:00")]
    NoZone,
    /// A date or time that does not exist (month 13, 24:00, before 1970, after 9999).
    #[error("the time is out of range")]
    OutOfRange,
}

/// The instant an `at=` or `until=` value names: RFC 3339 with `Z` or an offset, or epoch
/// milliseconds (digits only).
///
/// # Errors
/// See [`InstantError`].
pub fn instant(text: &str) -> Result<i64, InstantError> {
    if !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .filter(|&ms| ms < 253_402_300_800_000)
            .ok_or(InstantError::OutOfRange);
    }
    let s = stamp::iso(text.as_bytes(), 0).ok_or(InstantError::Unparsable)?;
    if s.end != text.len() {
        return Err(InstantError::Unparsable);
    }
    let offset = s.offset_minutes.ok_or(InstantError::NoZone)?;
    if !s.civil.is_valid() {
        return Err(InstantError::OutOfRange);
    }
    Ok(s.civil.utc_ms() - i64::from(offset) * 60_000)
}
