//! `at=` and `until=` on `/lines` and `/raw`: a read that starts at the first record at or
//! after a time, and optionally stops before the first record at or after another.
//!
//! Both values are RFC 3339 with a zone, or epoch milliseconds (`parse::instant`). The seek
//! itself (`Stream::seek_time`) reads the file, so it runs on a blocking thread.

use std::collections::HashMap;
use std::sync::Arc;

use super::error::ApiError;
use crate::parse::instant;
use crate::stream::{Cursor, Page, Query, Stream, TimeSeek};

/// The time range a request asks for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Range {
    /// Start at the first record at or after this (ms since the epoch).
    pub(crate) at: Option<i64>,
    /// Stop before the first record at or after this.
    pub(crate) until: Option<i64>,
}

fn time(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|v| instant(v).map_err(|e| ApiError::BadRequest(format!("`{name}`: {e}"))))
        .transpose()
}

impl Range {
    /// The range a request asks for.
    ///
    /// # Errors
    /// An unparsable or zone-less time, `until` not after `at`, `at` with `after`, `before`
    /// or `last`.
    pub(crate) fn from_params(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let range = Self {
            at: time(params, "at")?,
            until: time(params, "until")?,
        };
        if range.at.is_some()
            && ["after", "before", "last"]
                .iter()
                .any(|k| params.contains_key(*k))
        {
            return Err(ApiError::BadRequest(
                "`at` cannot be combined with `after`, `before` or `last`".into(),
            ));
        }
        if let (Some(at), Some(until)) = (range.at, range.until) {
            if until <= at {
                return Err(ApiError::BadRequest("`until` must be after `at`".into()));
            }
        }
        Ok(range)
    }
}

/// Seeks `stream` to `target` on a blocking thread; `None` when it has no file yet.
///
/// # Errors
/// A failed read (internal).
pub(crate) async fn seek(stream: &Arc<Stream>, target: i64) -> Result<Option<TimeSeek>, ApiError> {
    let s = stream.clone();
    tokio::task::spawn_blocking(move || match s.seek_time(target)? {
        Some(found) => crate::history::seek_back(&s, target, found).map(Some),
        None => Ok(None),
    })
    .await
    .map_err(|e| ApiError::Internal(format!("seeking: {e}")))?
    .map_err(|e| ApiError::Internal(format!("seeking: {e}")))
}

/// Where the range starts (`Query::After` the found record) and where it ends, with what the
/// seeks cost: `,"seek":{…}` for a JSON answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resolved {
    /// The read to do instead of the request's own, when `at` was given.
    pub(crate) start: Option<Query>,
    /// Entries at or past this position are cut (`until`).
    pub(crate) end: Option<Cursor>,
    /// Probes and bytes over both seeks.
    pub(crate) probes: u32,
    /// Bytes read by the seeks.
    pub(crate) bytes: u64,
    /// With `at`: whether a record at or after it exists (else the read starts at the end).
    pub(crate) found: Option<bool>,
}

impl Resolved {
    /// `,"seek":{"probes":…,"bytes":…[,"found":…]}`.
    pub(crate) fn json(&self) -> String {
        let found = self
            .found
            .map_or(String::new(), |f| format!(",\"found\":{f}"));
        format!(
            ",\"seek\":{{\"probes\":{},\"bytes\":{}{found}}}",
            self.probes, self.bytes
        )
    }

    /// Cuts a page at the range's end: entries starting at or past it go, and `next` becomes
    /// the last entry kept (or stays, when nothing was cut).
    pub(crate) fn cut(&self, page: &mut Page) {
        let Some(end) = self.end else { return };
        let before_end = |c: &Cursor| (c.seq, c.point.saturating_sub(1)) < (end.seq, end.point);
        if let Some(i) = page.entries.iter().position(|e| !before_end(&e.cursor)) {
            page.entries.truncate(i);
            if let Some(last) = page.entries.last() {
                page.next = last.cursor;
            }
        }
    }
}

/// Resolves a range on a stream (no range: nothing to do).
///
/// # Errors
/// As [`seek`].
pub(crate) async fn resolve(
    stream: &Arc<Stream>,
    range: Range,
) -> Result<Option<Resolved>, ApiError> {
    if range.at.is_none() && range.until.is_none() {
        return Ok(None);
    }
    let mut out = Resolved::default();
    if let Some(at) = range.at {
        if let Some(s) = seek(stream, at).await? {
            out.start = Some(Query::After(s.cursor));
            out.found = Some(s.found);
            out.probes += s.probes;
            out.bytes += s.bytes;
        }
    }
    if let Some(until) = range.until {
        if let Some(s) = seek(stream, until).await? {
            out.end = s.found.then_some(s.cursor);
            out.probes += s.probes;
            out.bytes += s.bytes;
        }
    }
    Ok(Some(out))
}
