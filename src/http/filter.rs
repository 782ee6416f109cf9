//! The `q=` filter of `/lines`, `/raw`, `/events` and `/api/events`: reads that page by
//! *matches*, with exact resume.
//!
//! [`read_filtered`] reads chunks of entries through [`read_page`] and keeps those the query
//! matches until `limit` matches, the end of what exists, or the scan budget
//! ([`BUDGET_TIME`], [`BUDGET_BYTES`]). Its `next` (forward) or `prev` (backward) is the
//! cursor of the last entry *examined*, matched or not, so a client that passes it back
//! continues exactly where the scan stopped: nothing is scanned twice, lost or doubled.
//! Notices always pass, as with `grep`.

mod chain;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use chain::{sifted_chain, sifted_chain_back};

use super::error::ApiError;
use super::params::MAX_LIMIT;
use super::read::read_page;
use crate::query::{self, Record};
use crate::stream::{Cursor, Entry, Page, Query, Sieve, Stream};

/// Most time one filtered read scans before answering with what it has.
pub(crate) const BUDGET_TIME: Duration = Duration::from_millis(200);
/// Most bytes of entries one filtered read scans before answering with what it has.
pub(crate) const BUDGET_BYTES: u64 = 64 << 20;
/// Text bytes one read of the stream examines for a filtered read, between checks of the
/// time budget.
const SIFT_BYTES: u64 = 8 << 20;

/// Entries one read takes, to be tested after, where a filtered read crosses between the
/// stream's own history and its rotated files (or reads a let-go generation's cursor): both
/// sides are sifted, so this read only carries the cursor over.
const HAND_OVER: usize = 64;

/// A compiled `q`.
pub(crate) type Filter = Arc<query::Query>;

/// The filter a request asks for with `q`, if any (an empty `q` filters nothing).
///
/// # Errors
/// A query that does not parse: a 400 that says where.
pub(crate) fn from_params(
    params: &std::collections::HashMap<String, String>,
) -> Result<Option<Filter>, ApiError> {
    let Some(text) = params.get("q") else {
        return Ok(None);
    };
    let q = query::parse(text).map_err(|e| ApiError::BadQuery {
        message: e.message,
        at: e.at,
        len: e.len,
    })?;
    Ok((!q.is_empty()).then(|| Arc::new(q)))
}

/// Whether an entry passes: notices always do, lines when the query matches.
pub(crate) fn keeps(q: &query::Query, entry: &Entry) -> bool {
    match entry.text() {
        Some(text) => q.matches(&Record {
            text,
            level: entry.facts.level,
        }),
        None => true,
    }
}

/// Drops the entries of an already-read page that do not pass; `next` and `prev` stay the
/// page's (everything in it was examined).
pub(crate) fn apply(q: &query::Query, page: &mut Page) {
    page.entries.retain(|e| keeps(q, e));
}

/// What a filtered read examined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Entries examined.
    pub(crate) entries: u64,
    /// Their bytes (text).
    pub(crate) bytes: u64,
    /// Whether the budget ended the scan before `limit` matches or the end.
    pub(crate) budget: bool,
}

impl Scanned {
    fn count(&mut self, e: &Entry) {
        self.entries += 1;
        self.bytes += e.line.len() as u64;
    }

    /// Counts every entry of a page read on before `q` is applied to it (a long poll's).
    pub(crate) fn count_page(&mut self, page: &Page) {
        page.entries.iter().for_each(|e| self.count(e));
    }

    fn spent(&self, started: Instant) -> bool {
        self.bytes >= BUDGET_BYTES || started.elapsed() >= BUDGET_TIME
    }

    /// `,"scanned":{…}` for a JSON answer.
    pub(crate) fn json(&self) -> String {
        format!(
            ",\"scanned\":{{\"entries\":{},\"bytes\":{},\"budget\":{}}}",
            self.entries, self.bytes, self.budget
        )
    }
}

/// Reads up to `limit` entries that pass `q`, in stream order; see the module documentation.
///
/// # Errors
/// As [`read_page`].
pub(crate) async fn read_filtered(
    stream: &Arc<Stream>,
    query: Query,
    limit: usize,
    q: &Filter,
) -> Result<(Page, Scanned), ApiError> {
    let started = Instant::now();
    let mut scanned = Scanned::default();
    let mut out: Vec<Entry> = Vec::new();
    match query {
        Query::After(start) => {
            let mut at = start;
            let mut prev = None;
            let mut first = true;
            loop {
                let room = limit - out.len();
                let (page, seen) = match sifted(stream, at, room, q).await? {
                    Some(read) => read,
                    None => match sifted_chain(stream, at, room, q).await? {
                        Some(read) => read,
                        None => tested(stream, at, room, q).await?,
                    },
                };
                if std::mem::take(&mut first) {
                    prev = page.prev;
                }
                scanned.entries += seen.entries;
                scanned.bytes += seen.bytes;
                // Nothing examined: the end of what exists.
                let moved = page.next != at;
                at = page.next;
                out.extend(page.entries);
                if out.len() >= limit || !moved {
                    return Ok((page_of(out, at, prev), scanned));
                }
                if scanned.spent(started) {
                    scanned.budget = true;
                    return Ok((page_of(out, at, prev), scanned));
                }
            }
        }
        Query::Before(_) | Query::Last(_) => {
            let want = match query {
                Query::Last(n) => n.min(limit),
                _ => limit,
            };
            let mut read = match query {
                Query::Last(_) => Query::Last(MAX_LIMIT),
                q => q,
            };
            let mut next = match sifted_back(stream, query, want, q, started).await? {
                Back::Done(page, seen) => return Ok((page, seen)),
                Back::Rotated {
                    mut found,
                    next: newest,
                    oldest,
                    seen,
                } => {
                    // The stream's own history is sifted; the loop below reads on into its
                    // rotated files from the oldest position the sift examined: one small
                    // page read whole and tested carries the cursor over, then the rotated
                    // files are sifted too. A notice there (a `gap` for a let-go
                    // generation) is read again by that page, which drops it when a rotated
                    // file holds the generation's text (`history::extend_back`); nothing
                    // that matches lies between it and the next entry found.
                    scanned = seen;
                    if found.first().is_some_and(|e| e.text().is_none()) {
                        found.remove(0);
                        if let Some(e) = found.first() {
                            read = Query::Before(e.cursor);
                        }
                    } else if let Some(oldest) = oldest {
                        read = Query::Before(oldest);
                    }
                    out = found;
                    out.reverse();
                    newest
                }
            };
            loop {
                if let Query::Before(c) = read {
                    // Into the rotated files: sifted there too.
                    let room = want - out.len();
                    if let Some((found, prev, seen)) = sifted_chain_back(stream, c, room, q).await?
                    {
                        let next = *next.get_or_insert(found.last().map_or(c, |e| e.cursor));
                        scanned.entries += seen.entries;
                        scanned.bytes += seen.bytes;
                        out.extend(found.into_iter().rev());
                        let Some(prev) = prev else {
                            out.reverse();
                            return Ok((page_of(out, next, None), scanned));
                        };
                        if out.len() >= want || scanned.spent(started) {
                            scanned.budget = out.len() < want;
                            out.reverse();
                            return Ok((page_of(out, next, Some(prev)), scanned));
                        }
                        read = Query::Before(prev);
                        continue;
                    }
                }
                let page = read_page(stream, read, HAND_OVER).await?;
                let next = *next.get_or_insert(page.next);
                for e in page.entries.iter().rev() {
                    if out.len() >= want {
                        // The newest-first scan stops before this entry: the page begins
                        // just after it.
                        out.reverse();
                        let prev = out.first().map(|f| f.cursor);
                        return Ok((page_of(out, next, prev), scanned));
                    }
                    scanned.count(e);
                    if keeps(q, e) {
                        out.push(e.clone());
                    }
                }
                let done = match page.prev {
                    Some(p) if !page.entries.is_empty() => {
                        read = Query::Before(p);
                        false
                    }
                    _ => true,
                };
                if done || out.len() >= want || scanned.spent(started) {
                    scanned.budget = !done && out.len() < want;
                    out.reverse();
                    // `prev` is before the oldest entry examined: this page's own `prev`.
                    return Ok((page_of(out, next, page.prev), scanned));
                }
            }
        }
    }
}

/// What [`sifted_back`] read.
enum Back {
    /// The answer.
    Done(Page, Scanned),
    /// The read reached the start of the stream's own history with room left, and the
    /// stream has rotated files (or the read starts in them: nothing found, `oldest` `None`):
    /// the matches so far in stream order, the answer's `next`, and where the sift stopped.
    Rotated {
        found: Vec<Entry>,
        next: Option<Cursor>,
        oldest: Option<Cursor>,
        seen: Scanned,
    },
}

/// Up to `want` entries before the query's cursor (or the last ones) that pass `q`, sifted
/// back through the stream ([`Stream::read_sifted_before`]: only matches become entries, and
/// blocks the query's prefilter does not hit are passed over), in pages of [`SIFT_BYTES`]
/// until `want` matches, the start or the scan budget. `prev` is before the oldest entry
/// examined.
async fn sifted_back(
    stream: &Arc<Stream>,
    query: Query,
    want: usize,
    q: &Filter,
    started: Instant,
) -> Result<Back, ApiError> {
    let mut scanned = Scanned::default();
    let mut out: Vec<Entry> = Vec::new();
    let mut at = match query {
        Query::Before(c) => Some(c),
        _ => None,
    };
    let chained = stream.rotated().is_some();
    if chained
        && at.is_some_and(|c| stream.let_go(&c).is_some() || crate::history::involves(&query))
    {
        return Ok(Back::Rotated {
            found: out,
            next: None,
            oldest: None,
            seen: scanned,
        });
    }
    let mut next = None;
    loop {
        let room = want - out.len();
        let (page, oldest, seen) = sifted_page(stream, at, room, q).await?;
        scanned.entries += seen.entries;
        scanned.bytes += seen.bytes;
        let newest = *next.get_or_insert(page.next);
        let mut entries = page.entries;
        entries.append(&mut out);
        out = entries;
        let Some(prev) = page.prev else {
            if chained && out.len() < want {
                return Ok(Back::Rotated {
                    found: out,
                    next: Some(newest),
                    oldest,
                    seen: scanned,
                });
            }
            return Ok(Back::Done(page_of(out, newest, None), scanned));
        };
        if out.len() >= want {
            return Ok(Back::Done(page_of(out, newest, Some(prev)), scanned));
        }
        if scanned.spent(started) || at == Some(prev) {
            scanned.budget = true;
            return Ok(Back::Done(page_of(out, newest, Some(prev)), scanned));
        }
        at = Some(prev);
    }
}

/// One sifted page back ([`Stream::read_sifted_before`]), from memory when it can be, else
/// on a blocking thread; with the oldest position examined and what was examined.
async fn sifted_page(
    stream: &Arc<Stream>,
    at: Option<Cursor>,
    room: usize,
    q: &Filter,
) -> Result<(Page, Option<Cursor>, Scanned), ApiError> {
    let mut sieve = Sieve::new(q, SIFT_BYTES);
    if let Some((page, oldest)) = stream.read_sifted_before(at, room, &mut sieve, false) {
        return Ok((page, oldest, seen(&sieve)));
    }
    let (s, q) = (stream.clone(), q.clone());
    tokio::task::spawn_blocking(move || {
        let mut sieve = Sieve::new(&q, SIFT_BYTES);
        let (page, oldest) = s
            .read_sifted_before(at, room, &mut sieve, true)
            .expect("reads allowed to use the disk always answer");
        (page, oldest, seen(&sieve))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading history: {e}")))
}

/// Up to `room` entries after `at` that pass `q`, tested in the stream as they are read
/// (only matches become entries: [`Stream::read_sifted`]), and what was examined; `None` when
/// the read goes into rotated history, which [`tested`] reads instead.
async fn sifted(
    stream: &Arc<Stream>,
    at: Cursor,
    room: usize,
    q: &Filter,
) -> Result<Option<(Page, Scanned)>, ApiError> {
    if stream.rotated().is_some()
        && (stream.let_go(&at).is_some() || crate::history::involves(&Query::After(at)))
    {
        return Ok(None);
    }
    let mut sieve = Sieve::new(q, SIFT_BYTES);
    if let Some(page) = stream.read_sifted(at, room, &mut sieve, false) {
        return Ok(Some((page, seen(&sieve))));
    }
    let (s, q) = (stream.clone(), q.clone());
    tokio::task::spawn_blocking(move || {
        let mut sieve = Sieve::new(&q, SIFT_BYTES);
        let page = s
            .read_sifted(at, room, &mut sieve, true)
            .expect("reads allowed to use the disk always answer");
        Some((page, seen(&sieve)))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading history: {e}")))
}

/// What a sift examined, as a read's [`Scanned`].
fn seen(sieve: &Sieve<'_>) -> Scanned {
    Scanned {
        entries: sieve.entries,
        bytes: sieve.bytes,
        budget: false,
    }
}

/// Up to `room` entries after `at` that pass `q`, from a page read whole and then tested, and
/// what was examined: `next` is after the last entry tested.
async fn tested(
    stream: &Arc<Stream>,
    at: Cursor,
    room: usize,
    q: &query::Query,
) -> Result<(Page, Scanned), ApiError> {
    let page = read_page(stream, Query::After(at), HAND_OVER).await?;
    let mut seen = Scanned::default();
    let mut kept = Vec::new();
    let mut next = page.next;
    for e in &page.entries {
        seen.count(e);
        if keeps(q, e) {
            kept.push(e.clone());
            if kept.len() >= room {
                next = e.cursor;
                break;
            }
        }
    }
    Ok((page_of(kept, next, page.prev), seen))
}

fn page_of(
    entries: Vec<Entry>,
    next: crate::stream::Cursor,
    prev: Option<crate::stream::Cursor>,
) -> Page {
    Page {
        entries,
        next,
        prev,
    }
}
