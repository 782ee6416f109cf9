//! "Entries after / before this cursor" for a file or a view, from the engine.
//!
//! Forward reads walk the view's messages with direct gets (`next_by_subj`, which takes
//! wildcards), in stream-sequence order: the same order on every hub. Backward reads follow
//! each subject's back-pointers ([`batch::PREV`]) and merge the subjects by sequence.
//!
//! Gaps are exact: retention removes only from the front of the stream and deletes are denied,
//! so when a forward read looking from sequence `from` finds a message whose back-pointer
//! lies in `[from, seq)`, the message it points to is gone, and a `gap` notice stands there.
//! A cursor whose batch no longer has the content it named (an engine that lost writes and
//! reused sequences) is a `gap` too, and so is a cursor from another engine log.

use std::collections::BinaryHeap;

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::DirectGetErrorKind;
use bytes::{BufMut, Bytes, BytesMut};

use super::{Hub, ReadError, cursor};
use crate::engine::batch::{self, Item};
use crate::engine::names::{self, Target};
use crate::stream::{Cursor, Entry, Facts, Page};

/// Most subjects a backward read of a view merges (one back-chain each).
pub(super) const MAX_VIEW_SUBJECTS: usize = 1_000;

/// One batch as read from the engine.
#[derive(Debug, Clone)]
pub(super) struct Msg {
    seq: u64,
    subject: String,
    /// The back-pointer (0: the subject's first batch), `None` for a foreign message.
    prev: Option<u64>,
    check: u32,
    /// When the engine stored it (ms since the epoch).
    pub(super) stored_ms: i64,
    /// The entries, or `None` when the message is not a cometail batch.
    items: Option<Vec<Item>>,
}

impl Msg {
    fn from_stream(m: &StreamMessage) -> Self {
        let prev = m
            .headers
            .get(batch::PREV)
            .and_then(|v| v.as_str().parse().ok());
        let items = prev.and(batch::decode(&m.payload));
        Self {
            seq: m.sequence,
            subject: m.subject.to_string(),
            prev,
            check: cursor::check(&m.payload),
            stored_ms: i64::try_from(m.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            items,
        }
    }

    /// How many entries it stands for: a foreign message is one `gap` notice.
    fn len(&self) -> u64 {
        self.items.as_ref().map_or(1, |i| i.len() as u64)
    }
}

fn engine_error(e: impl std::fmt::Display) -> ReadError {
    ReadError(e.to_string())
}

impl Hub {
    fn counted(&self) {
        self.stats
            .engine_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    async fn get(&self, seq: u64) -> Result<Option<Msg>, ReadError> {
        self.counted();
        match self.js_stream.direct_get(seq).await {
            Ok(m) => Ok(Some(Msg::from_stream(&m))),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(engine_error(e)),
        }
    }

    pub(super) async fn next(&self, filter: &str, from: u64) -> Result<Option<Msg>, ReadError> {
        self.counted();
        match self
            .js_stream
            .direct_get_next_for_subject(filter, Some(from.max(1)))
            .await
        {
            Ok(m) => Ok(Some(Msg::from_stream(&m))),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(engine_error(e)),
        }
    }

    pub(super) async fn last_of(&self, subject: &str) -> Result<Option<Msg>, ReadError> {
        self.counted();
        match self.js_stream.direct_get_last_for_subject(subject).await {
            Ok(m) => Ok(Some(Msg::from_stream(&m))),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(engine_error(e)),
        }
    }

    /// `host:file` of a subject, for notices.
    fn place(&self, subject: &str) -> String {
        names::parse_subject(self.prefix(), subject)
            .map_or_else(|| subject.to_owned(), |(h, f)| format!("{h}:{f}"))
    }

    /// The `stream` member of a view's entries: the file's id.
    fn stream_id(&self, subject: &str) -> Option<String> {
        names::parse_subject(self.prefix(), subject).map(|(h, f)| format!("{h}~{f}"))
    }

    /// The entry at `point` (1-based) of `msg`.
    fn entry(&self, msg: &Msg, point: u64, view: bool) -> Entry {
        let c = cursor::at(self.ident(), msg.seq, point, msg.check);
        let foreign;
        let item = match &msg.items {
            Some(items) => &items[usize::try_from(point - 1).unwrap_or(0)],
            None => {
                foreign = notice_item(&format!(
                    "a message on {} (sequence {}) not written by a cometail agent was skipped",
                    msg.subject, msg.seq
                ));
                &foreign
            }
        };
        let stream = view.then(|| self.stream_id(&msg.subject)).flatten();
        build(c, msg.seq, point, item, stream.as_deref())
    }

    /// A `gap` notice at `(seq, 0)`: before the batch at `seq`.
    fn gap(&self, seq: u64, detail: &str) -> Entry {
        let c = cursor::at(self.ident(), seq, 0, 0);
        build(c, seq, 0, &notice_item(detail), None)
    }

    /// The entries after `after` in `target`, at most `limit` (an empty page at the end:
    /// a cursor beyond the newest entry is "not yet", never a gap).
    ///
    /// # Errors
    /// The engine did not answer.
    pub async fn after(
        &self,
        target: &Target,
        after: Cursor,
        limit: usize,
    ) -> Result<Page, ReadError> {
        let filter = target.filter(self.prefix());
        let view = target.is_view();
        let mut entries = Vec::new();
        let mut next = after;
        let mut from;
        let origin = after.ident == 0 && after.seq == 0;
        // Set when retention removed the batch of the entry `after` names: whatever followed
        // that entry in its batch is gone, so the next page begins with a `gap`.
        let mut lost = None;
        if !origin && after.ident != self.ident() {
            let first = self.first_seq().await?;
            let gap = self.gap(
                first,
                "the cursor is from another engine log (the stream was recreated, or the \
                 cursor is not a hub's); reading from the oldest entry the engine keeps",
            );
            next = gap.cursor;
            entries.push(gap);
            from = first;
        } else if after.point == 0 {
            from = after.seq.max(1);
        } else {
            from = after.seq + 1;
            let named = self.get(after.seq).await?;
            if named.is_none() {
                let first = self.first_seq().await?;
                if after.seq < first {
                    from = from.max(first);
                    let place = if view {
                        format!("the view {}", target.id())
                    } else {
                        self.place(&filter)
                    };
                    lost = Some(format!(
                        "entries of {place} after this cursor are missing: older than the \
                         engine keeps"
                    ));
                }
            }
            if let Some(msg) = named {
                if subject_matches(&filter, &msg.subject) {
                    if msg.check == after.check {
                        for point in after.point + 1..=msg.len() {
                            if entries.len() >= limit {
                                break;
                            }
                            let e = self.entry(&msg, point, view);
                            next = e.cursor;
                            entries.push(e);
                        }
                    } else {
                        let gap = self.gap(
                            from,
                            "the engine no longer holds the entry this cursor names (it lost \
                             writes in an unclean restart); some entries may be missing or repeated",
                        );
                        next = gap.cursor;
                        entries.push(gap);
                    }
                }
            }
        }
        while entries.len() < limit {
            let Some(msg) = self.next(&filter, from).await? else {
                break;
            };
            let detail = lost.take().or_else(|| {
                msg.prev.is_some_and(|p| p >= from && p < msg.seq).then(|| {
                    format!(
                        "entries of {} are missing here: older than the engine keeps, or lost \
                         by the engine",
                        self.place(&msg.subject)
                    )
                })
            });
            if let Some(detail) = detail {
                let gap = self.gap(msg.seq, &detail);
                next = gap.cursor;
                entries.push(gap);
                if entries.len() >= limit {
                    break;
                }
            }
            for point in 1..=msg.len() {
                if entries.len() >= limit {
                    break;
                }
                let e = self.entry(&msg, point, view);
                next = e.cursor;
                entries.push(e);
            }
            from = msg.seq + 1;
        }
        if let Some(detail) = lost {
            // Nothing stored after the removed batch yet: the gap stands where the next
            // batch will, so a resume from it finds no second gap.
            let gap = self.gap(from, &detail);
            next = gap.cursor;
            entries.push(gap);
        }
        Ok(Page {
            prev: entries.first().map(|e| e.cursor),
            entries,
            next,
        })
    }

    /// The `limit` entries before `before` in `target` (the newest ones for `None`), in
    /// stream order.
    ///
    /// # Errors
    /// The engine did not answer.
    pub async fn before(
        &self,
        target: &Target,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, ReadError> {
        let view = target.is_view();
        if let Some(c) = before {
            if c.ident != self.ident() {
                let gap = self.gap(
                    self.first_seq().await?,
                    "the cursor is from another engine log (the stream was recreated, or the \
                     cursor is not a hub's)",
                );
                return Ok(Page {
                    next: gap.cursor,
                    entries: vec![gap],
                    prev: None,
                });
            }
        }
        // The newest entries are those up to the stream's last sequence read *before* the
        // subjects' heads: a batch stored while the heads are read (after one subject was
        // looked at, or after an empty answer) lies beyond that bound, so the page's `next`
        // never passes it by. Bounding after the heads would skip such a batch for good.
        let bound = match before {
            Some(c) => (c.seq, c.point),
            None => (self.last_seq().await?, u64::MAX),
        };
        let subjects = self.subjects(target).await?;
        // Each subject's newest batch at or before the bound, newest first.
        let mut heads = BinaryHeap::new();
        let mut cut: Option<(u64, String)> = None;
        for subject in subjects {
            let Some(mut msg) = self.last_of(&subject).await? else {
                continue;
            };
            while msg.seq > bound.0 {
                match self.back(&msg).await? {
                    Back::Msg(m) => msg = m,
                    Back::Start => break,
                    Back::Cut(seq) => {
                        cut = cut.max(Some((seq, msg.subject.clone())));
                        break;
                    }
                }
            }
            if msg.seq <= bound.0 {
                heads.push(Head(msg));
            }
        }
        let mut newest_first = Vec::new();
        let mut more = false;
        'merge: while let Some(Head(msg)) = heads.pop() {
            let top = if msg.seq == bound.0 {
                bound.1.saturating_sub(1).min(msg.len())
            } else {
                msg.len()
            };
            for point in (1..=top).rev() {
                if newest_first.len() >= limit {
                    more = true;
                    break 'merge;
                }
                newest_first.push(self.entry(&msg, point, view));
            }
            match self.back(&msg).await? {
                Back::Msg(m) => heads.push(Head(m)),
                Back::Start => {}
                Back::Cut(seq) => cut = cut.max(Some((seq, msg.subject.clone()))),
            }
        }
        if !more {
            if let Some((seq, subject)) = cut {
                newest_first.push(self.gap(
                    seq,
                    &format!(
                        "older entries of {} are beyond what the engine keeps",
                        self.place(&subject)
                    ),
                ));
            }
        }
        newest_first.reverse();
        let entries = newest_first;
        let next = match (entries.last(), before) {
            (Some(e), _) => e.cursor,
            (None, Some(c)) => c,
            (None, None) => cursor::at(self.ident(), bound.0 + 1, 0, 0),
        };
        Ok(Page {
            prev: if more {
                entries.first().map(|e| e.cursor)
            } else {
                None
            },
            entries,
            next,
        })
    }

    /// The position before the first batch the engine stored at or after `ms` (ms since the
    /// epoch), in any file or view, found by bisecting sequences (store times grow with them),
    /// and whether there is such a batch (else the position is after the last one): `at=` and
    /// `until=` on a hub seek by when a batch reached the engine, within the agent's batching
    /// of the line's writing, not by the line's own timestamp.
    ///
    /// # Errors
    /// The engine did not answer.
    pub async fn seek_time(&self, ms: i64) -> Result<(Cursor, bool), ReadError> {
        let last = self.last_seq().await?;
        let (mut lo, mut hi) = (self.first_seq().await?, last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).await? {
                Some(m) if m.stored_ms >= ms => hi = mid,
                // Older, or gone meanwhile (retention only removes from the front).
                _ => lo = mid + 1,
            }
        }
        Ok((cursor::at(self.ident(), lo, 0, 0), lo <= last))
    }

    /// The batch before `msg` on its subject.
    async fn back(&self, msg: &Msg) -> Result<Back, ReadError> {
        match msg.prev {
            None | Some(0) => Ok(Back::Start),
            Some(p) if p >= msg.seq => Ok(Back::Start),
            Some(p) => match self.get(p).await? {
                Some(m) if m.subject == msg.subject => Ok(Back::Msg(m)),
                _ => Ok(Back::Cut(msg.seq)),
            },
        }
    }

    /// The subjects a target reads: its own, or the view's that the stream holds.
    async fn subjects(&self, target: &Target) -> Result<Vec<String>, ReadError> {
        self.counted();
        let filter = target.filter(self.prefix());
        if !target.is_view() {
            return Ok(vec![filter]);
        }
        let info = self
            .js_stream
            .info_with_subjects(filter)
            .await
            .map_err(engine_error)?;
        let subjects: Vec<(String, usize)> =
            info.try_collect::<Vec<_>>().await.map_err(engine_error)?;
        let mut subjects: Vec<String> = subjects.into_iter().map(|(s, _)| s).collect();
        subjects.sort();
        subjects.truncate(MAX_VIEW_SUBJECTS);
        Ok(subjects)
    }

    async fn first_seq(&self) -> Result<u64, ReadError> {
        self.counted();
        let info = self.js_stream.get_info().await.map_err(engine_error)?;
        Ok(info.state.first_sequence.max(1))
    }

    async fn last_seq(&self) -> Result<u64, ReadError> {
        self.counted();
        let info = self.js_stream.get_info().await.map_err(engine_error)?;
        Ok(info.state.last_sequence)
    }
}

use futures_util::TryStreamExt;

/// Where a back-chain goes from a batch.
enum Back {
    Msg(Msg),
    /// The subject's first batch: nothing before it.
    Start,
    /// The previous batch is gone (retention); the chain is cut before this sequence.
    Cut(u64),
}

/// A back-chain's head, ordered by sequence (the heap pops the newest).
struct Head(Msg);

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.0.seq == other.0.seq
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.seq.cmp(&other.0.seq)
    }
}

/// Whether a subject matches a filter of tokens and `*`.
fn subject_matches(filter: &str, subject: &str) -> bool {
    let (mut f, mut s) = (filter.split('.'), subject.split('.'));
    loop {
        match (f.next(), s.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            _ => return false,
        }
    }
}

fn notice_item(detail: &str) -> Item {
    let json = serde_json::json!({ "notice": "gap", "detail": detail }).to_string();
    Item {
        rest: Bytes::from(json).slice(1..),
        line: format!("==> gap: {} <==", detail.replace(['\n', '\r'], " ")).into(),
        notice: true,
        time: None,
        ts: None,
        level: None,
    }
}

/// An entry with the hub's cursor (and, in a view, the file's id) in front of the agent's
/// JSON.
fn build(c: Cursor, seq: u64, point: u64, item: &Item, stream: Option<&str>) -> Entry {
    let mut json = BytesMut::with_capacity(item.rest.len() + 96);
    json.put_slice(b"{\"cursor\":\"");
    json.put_slice(c.to_string().as_bytes());
    json.put_slice(b"\",");
    if let Some(id) = stream {
        json.put_slice(b"\"stream\":");
        json.put_slice(&serde_json::to_vec(id).unwrap_or_default());
        json.put_slice(b",");
    }
    json.put_slice(&item.rest);
    let alloc = json.capacity() + item.line.len();
    Entry {
        gen_seq: seq,
        point,
        cursor: c,
        json: json.freeze(),
        line: item.line.clone(),
        notice: item.notice,
        facts: Facts {
            ts: item.ts,
            level: item.level,
        },
        arrival: item.time,
        alloc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_tokens_and_single_wildcards() {
        assert!(subject_matches("c.*.a=log", "c.web.a=log"));
        assert!(subject_matches("c.web.a=log", "c.web.a=log"));
        assert!(!subject_matches("c.*.a=log", "c.web.b=log"));
        assert!(!subject_matches("c.*.*", "c.web"));
    }
}
