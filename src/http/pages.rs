//! `GET /api/lines?streams=a,b[&order=time]`: the history of several streams as one, in
//! event-time order, paged back and forth by a composite cursor.
//!
//! A page is a k-way merge of per-stream reads through [`read_page`], the path every reader
//! uses: forwards the head with the smallest key goes next, backwards the one with the
//! largest. Only heads are ever taken, so a page is, in each stream, a contiguous run of its
//! entries, and its `next` and `prev` name one cut per stream: paging on loses and doubles
//! nothing, whatever the keys are. Keys are the live merge's (`merge.rs`, [`Carry`]): `ts`,
//! else the last `ts` at most [`LOOKBACK`](super::merge::LOOKBACK) entries back in the stream
//! (a read looks back for it), else the arrival time; so an entry has the same key in every
//! read, whatever its chunks. Ties go to the stream named first: forwards the earlier stream's
//! head is taken first, backwards the later stream's, so that a backward page is the forward
//! order reversed exactly (for streams whose keys never go back).
//!
//! Forward pages mark `late` as the merged SSE does (`merge.rs`): an entry whose key is below
//! the largest key of the entries the `after` position names (what the reader already has),
//! or of an entry earlier in the page, carries `"late": true`.
//!
//! A page's `next` names each stream's last entry in it with `:`, its `prev` the first with
//! `~` (the composite positions of `composite.rs`); a stream with none in the page keeps the
//! component its read started from. Both forms are accepted by both `after=` and `before=`:
//! reading after `~C` starts at `C`, reading before `:C` ends with `C` (each costs one more
//! small read of that stream).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::future::select_all;
use tokio::time::Instant;

use super::AppState;
use super::composite::{Cut, composite, composite_text};
use super::error::ApiError;
use super::filter::{self, BUDGET_BYTES, BUDGET_TIME, Filter};
use super::merge::{Carry, Source, carry_before};
use super::params::{DEFAULT_LIMIT, MAX_LIMIT, MAX_WAIT};
use super::read::{Params, json, params, stream};
use super::sse::MAX_MULTIPLEXED;
use crate::stream::{Cursor, Entry, ORIGIN, Query};

/// Entries per stream in the first read of a page; each further read doubles, up to
/// [`CHUNK_MAX`].
const CHUNK_MIN: usize = 16;
const CHUNK_MAX: usize = 512;

/// Which way a page reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Forward,
    Backward,
}

/// One stream's part of a page.
struct Lane<'a, S> {
    stream: &'a S,
    /// Entries read and kept, with their keys; the front goes next (forwards the oldest,
    /// backwards the newest).
    queue: VecDeque<(Entry, i64)>,
    /// The next read, or `None` once nothing more lies that way.
    read: Option<Query>,
    chunk: usize,
    /// The cut the page started from in this stream.
    start: Cut,
    /// The entries taken into the page, first and last in the reading direction.
    first: Option<Cursor>,
    last: Option<Cursor>,
    /// With `q`: the farthest cut every entry up to which was taken or dropped.
    passed: Option<Cut>,
    /// Forwards: the key rule after the last entry read (none before the first read).
    carry: Option<Carry>,
}

impl<S: Source> Lane<'_, S> {
    /// Reads the next chunk unless the queue holds something; `false` once nothing is left.
    async fn refill(
        &mut self,
        way: Way,
        q: Option<&Filter>,
        scanned: &mut u64,
    ) -> Result<bool, ApiError> {
        while self.queue.is_empty() {
            let Some(query) = self.read else {
                return Ok(false);
            };
            let page = self.stream.read(query, self.chunk).await?;
            self.chunk = (self.chunk * 2).min(CHUNK_MAX);
            *scanned += page
                .entries
                .iter()
                .map(|e| e.line.len() as u64)
                .sum::<u64>();
            let examined = (page.entries.first().map(|e| e.cursor), page.next);
            self.read = match way {
                _ if page.entries.is_empty() => None,
                Way::Forward => Some(Query::After(page.next)),
                Way::Backward => page.prev.map(Query::Before),
            };
            // Keys over every entry read, before `q` drops any, in stream order.
            let mut carry = match (way, self.carry, page.entries.first()) {
                (Way::Forward, Some(carry), _) => carry,
                (_, _, Some(e)) if e.facts.ts.is_none() => {
                    carry_before(self.stream, e.cursor).await
                }
                _ => Carry::default(),
            };
            let keyed: Vec<_> = page
                .entries
                .into_iter()
                .map(|e| {
                    let key = carry.key(&e);
                    (e, key)
                })
                .collect();
            let keeps = |(e, _): &(Entry, i64)| q.is_none_or(|q| filter::keeps(q, e));
            match way {
                Way::Forward => {
                    self.carry = Some(carry);
                    self.queue.extend(keyed.into_iter().filter(keeps));
                }
                Way::Backward => self.queue.extend(keyed.into_iter().rev().filter(keeps)),
            }
            if self.queue.is_empty() && q.is_some() {
                // All dropped: the cut moves past them, so the next page does not scan them.
                self.passed = match (way, examined) {
                    (_, (None, _)) => self.passed,
                    (Way::Forward, (_, next)) => Some(Cut::After(next)),
                    (Way::Backward, (Some(first), _)) => Some(Cut::Before(first)),
                };
            }
            if *scanned >= BUDGET_BYTES {
                break;
            }
        }
        Ok(!self.queue.is_empty())
    }

    fn take(&mut self) -> Option<Entry> {
        let (e, _) = self.queue.pop_front()?;
        self.first.get_or_insert(e.cursor);
        self.last = Some(e.cursor);
        self.passed = None;
        Some(e)
    }

    /// The cut after the page (`next`).
    fn next_cut(&self, way: Way) -> Cut {
        match way {
            // `passed` is only ever set after the last entry taken, so it lies beyond it.
            Way::Forward => self
                .passed
                .or(self.last.map(Cut::After))
                .unwrap_or(self.start),
            Way::Backward => self.first.map_or(self.start, Cut::After),
        }
    }

    /// The cut before the page (`prev`).
    fn prev_cut(&self, way: Way) -> Cut {
        match way {
            Way::Forward => self.first.map_or(self.start, Cut::Before),
            Way::Backward => self
                .passed
                .or(self.last.map(Cut::Before))
                .unwrap_or(self.start),
        }
    }
}

/// Where a stream's read starts: the first read (none: nothing lies that way), the cut that
/// names the start, and an entry to take before what the read brings.
async fn start_of<S: Source>(
    stream: &S,
    way: Way,
    cut: Option<Cut>,
) -> Result<(Option<Query>, Cut, Option<Entry>), ApiError> {
    Ok(match (way, cut) {
        (Way::Forward, Some(Cut::After(c))) => (Some(Query::After(c)), Cut::After(c), None),
        (Way::Forward, Some(Cut::Before(c))) => {
            // From `c` on: after the entry before it (or from the stream's first byte).
            let page = stream.read(Query::Before(c), 1).await?;
            let from = page.entries.last().map_or(ORIGIN, |e| e.cursor);
            (Some(Query::After(from)), Cut::Before(c), None)
        }
        (Way::Backward, Some(Cut::Before(c))) => (Some(Query::Before(c)), Cut::Before(c), None),
        (Way::Backward, Some(Cut::After(c))) => {
            // Up to `c` itself: before the entry after it, or `c` and what precedes it.
            let page = stream.read(Query::After(c), 1).await?;
            if let Some(h) = page.entries.first() {
                (Some(Query::Before(h.cursor)), Cut::After(c), None)
            } else {
                let page = stream.read(Query::Before(c), 1).await?;
                let from = page.entries.last().map_or(ORIGIN, |e| e.cursor);
                let own = stream.read(Query::After(from), 1).await?;
                let own = own.entries.into_iter().next().filter(|e| e.cursor == c);
                (Some(Query::Before(c)), Cut::After(c), own)
            }
        }
        (_, None) => {
            // `last`: back from the stream's last entry now, which the `next` cut names.
            let page = stream.read(Query::Last(1), 1).await?;
            match page.entries.into_iter().next() {
                Some(l) => (Some(Query::Before(l.cursor)), Cut::After(l.cursor), Some(l)),
                None => (None, Cut::After(page.next), None),
            }
        }
    })
}

/// The largest merge key of the entries the cuts name as had (`ID:C`), the line below which a
/// forward page's entries are `late`; two small reads per stream, normally from memory.
async fn had_up_to<S: Source>(streams: &[S], cuts: &[Cut]) -> Option<i64> {
    let mut high = None;
    for (s, cut) in streams.iter().zip(cuts) {
        if let Cut::After(c) = cut {
            if let Some((_, key)) = super::merge::carry_through(s, *c).await {
                high = Some(high.map_or(key, |h: i64| h.max(key)));
            }
        }
    }
    high
}

/// A merged page and its cuts.
struct Merged {
    /// Each entry's stream, the entry, and whether it is `late`.
    entries: Vec<(usize, Entry, bool)>,
    next: Vec<Cut>,
    prev: Option<Vec<Cut>>,
    /// With a hold: how long until the head the page stopped at may go.
    held: Option<Duration>,
}

/// Reads one page. With `hold` (a long poll's `--merge-delay`), a live head (one with an
/// arrival time) goes only once every other stream has an entry after its cut, or `hold`
/// after its arrival, as on the merged SSE connection (`merge.rs`).
///
/// Forwards, `high` is the `late` line (see [`had_up_to`]); it rises with the page.
async fn merge_page<S: Source>(
    streams: &[S],
    way: Way,
    cuts: Option<Vec<Cut>>,
    (limit, hold, mut high): (usize, Option<Duration>, Option<i64>),
    q: Option<&Filter>,
) -> Result<Merged, ApiError> {
    let started = Instant::now();
    let mut lanes: Vec<Lane<'_, S>> = Vec::with_capacity(streams.len());
    for (i, s) in streams.iter().enumerate() {
        let (read, start, own) = start_of(s, way, cuts.as_ref().map(|c| c[i])).await?;
        let mut lane = Lane {
            stream: s,
            queue: VecDeque::new(),
            read,
            chunk: CHUNK_MIN,
            start,
            first: None,
            last: None,
            passed: None,
            carry: None,
        };
        if let Some(e) = own.filter(|e| q.is_none_or(|q| filter::keeps(q, e))) {
            let mut carry = match e.facts.ts {
                Some(_) => Carry::default(),
                None => carry_before(s, e.cursor).await,
            };
            let key = carry.key(&e);
            lane.queue.push_back((e, key));
        }
        lanes.push(lane);
    }
    let mut scanned = 0;
    let mut out = Vec::new();
    let mut held = None;
    while out.len() < limit {
        let mut unknown = false;
        for lane in &mut lanes {
            // A lane cut short by the scan budget has an unknown head: nothing may go before it.
            unknown |= !lane.refill(way, q, &mut scanned).await? && lane.read.is_some();
        }
        if unknown {
            break;
        }
        let heads = lanes
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.queue.front().map(|h| (i, h.1)));
        let pick = match way {
            Way::Forward => heads.min_by_key(|&(i, k)| (k, i)),
            // The forward order reversed: of a tie, the later stream's entry is the later one.
            Way::Backward => heads.max_by_key(|&(i, k)| (k, i)),
        };
        let Some((i, key)) = pick else { break };
        if let Some(wait) = hold.and_then(|delay| held_for(&lanes, i, delay)) {
            held = Some(wait);
            break;
        }
        if let Some(e) = lanes[i].take() {
            let late = way == Way::Forward && high.is_some_and(|h| key < h);
            if way == Way::Forward {
                high = Some(high.map_or(key, |h| h.max(key)));
            }
            out.push((i, e, late));
        }
        if q.is_some() && (scanned >= BUDGET_BYTES || started.elapsed() >= BUDGET_TIME) {
            break;
        }
    }
    if way == Way::Backward {
        out.reverse();
    }
    let at_start =
        way == Way::Backward && lanes.iter().all(|l| l.read.is_none() && l.queue.is_empty());
    Ok(Merged {
        entries: out,
        next: lanes.iter().map(|l| l.next_cut(way)).collect(),
        prev: (!at_start).then(|| lanes.iter().map(|l| l.prev_cut(way)).collect()),
        held,
    })
}

/// How long lane `i`'s head must still wait, if it must: it arrived live less than `delay`
/// ago, and some other stream has nothing after its cut yet (so its next key is unknown).
fn held_for<S>(lanes: &[Lane<'_, S>], i: usize, delay: Duration) -> Option<Duration> {
    let arrival = lanes[i].queue.front()?.0.arrival?;
    let known = lanes
        .iter()
        .enumerate()
        .all(|(j, l)| j == i || !l.queue.is_empty());
    if known {
        return None;
    }
    let due = Duration::from_millis(arrival) + delay;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    due.checked_sub(now).filter(|left| !left.is_zero())
}

/// `{"entries":[{"stream":…,…}],"next":"…","prev":"…"|null}`: each entry's encoding with its
/// stream spliced in (the cached encoding stays untouched).
fn body(ids: &[String], page: &Merged) -> BytesMut {
    let mut out = BytesMut::with_capacity(
        page.entries
            .iter()
            .map(|e| e.1.json.len() + 32)
            .sum::<usize>()
            + 256,
    );
    out.extend_from_slice(b"{\"entries\":[");
    for (n, (i, e, late)) in page.entries.iter().enumerate() {
        if n > 0 {
            out.extend_from_slice(b",");
        }
        out.extend_from_slice(b"{\"stream\":");
        out.extend_from_slice(&serde_json::to_vec(&ids[*i]).unwrap_or_default());
        out.extend_from_slice(if *late { b",\"late\":true," } else { b"," });
        out.extend_from_slice(&e.json[1..]);
    }
    out.extend_from_slice(b"],\"next\":");
    out.extend_from_slice(
        &serde_json::to_vec(&composite_text(ids, &page.next)).unwrap_or_default(),
    );
    out.extend_from_slice(b",\"prev\":");
    match &page.prev {
        Some(prev) => out
            .extend_from_slice(&serde_json::to_vec(&composite_text(ids, prev)).unwrap_or_default()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}");
    out
}

/// The streams a request names, each once, in its order.
pub(super) fn stream_ids(
    params: &std::collections::HashMap<String, String>,
    per: &str,
) -> Result<Vec<String>, ApiError> {
    let names = params
        .get("streams")
        .map(String::as_str)
        .unwrap_or_default();
    let mut ids: Vec<String> = Vec::new();
    for name in names.split(',').filter(|s| !s.is_empty()) {
        if !ids.iter().any(|i| i == name) {
            ids.push(name.to_owned());
        }
    }
    if ids.is_empty() {
        return Err(ApiError::BadRequest(
            "`streams` must name at least one stream".into(),
        ));
    }
    if ids.len() > MAX_MULTIPLEXED {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_MULTIPLEXED} streams per {per}"
        )));
    }
    Ok(ids)
}

fn number(
    params: &std::collections::HashMap<String, String>,
    name: &str,
    max: usize,
) -> Result<Option<usize>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("`{name}` must be a whole number from 0 to {max}"))
                })
        })
        .transpose()
}

/// `GET /api/lines?streams=a,b[&order=time][&after=…|&before=…|&last=N][&limit=N][&q=…][&wait=S]`.
pub(super) async fn lines(
    axum::extract::State(app): axum::extract::State<AppState>,
    p: Params,
) -> Result<axum::response::Response, ApiError> {
    let params = params(p)?;
    let ids = stream_ids(&params, "request")?;
    let streams = ids
        .iter()
        .map(|id| stream(&app, id))
        .collect::<Result<Vec<_>, _>>()?;
    answer(&app, &params, ids, &streams).await
}

/// The merged page (or long poll) of `streams`, named `ids`, for the request's `params`:
/// the standalone streams' answer and a hub's views' alike.
pub(super) async fn answer<S: Source>(
    app: &AppState,
    params: &HashMap<String, String>,
    ids: Vec<String>,
    streams: &[S],
) -> Result<axum::response::Response, ApiError> {
    match params.get("order").map(String::as_str) {
        None | Some("time") => {}
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`order` must be `time` here (arrival order is `/api/events`)".into(),
            ));
        }
    }
    let q = filter::from_params(params)?;
    let chosen = ["after", "before", "last"]
        .iter()
        .filter(|k| params.contains_key(**k))
        .count();
    if chosen > 1 {
        return Err(ApiError::BadRequest(
            "give at most one of `after`, `before` and `last`".into(),
        ));
    }
    let last = number(params, "last", MAX_LIMIT)?;
    let limit = match number(params, "limit", MAX_LIMIT)? {
        Some(0) => return Err(ApiError::BadRequest("`limit` must be at least 1".into())),
        Some(n) => n,
        None => last.map_or(DEFAULT_LIMIT, |n| n.max(1)),
    };
    let wait = number(
        params,
        "wait",
        usize::try_from(MAX_WAIT.as_secs()).unwrap_or(120),
    )?;
    let (way, cuts, limit) = if let Some(v) = params.get("after") {
        (Way::Forward, Some(composite(v, "after", &ids)?), limit)
    } else if let Some(v) = params.get("before") {
        (Way::Backward, Some(composite(v, "before", &ids)?), limit)
    } else {
        let n = last.unwrap_or(app.config.default_lines).min(limit);
        (Way::Backward, None, n)
    };
    if wait.is_some() && way != Way::Forward {
        return Err(ApiError::BadRequest("`wait` needs `after`".into()));
    }
    let deadline = Instant::now() + Duration::from_secs(wait.unwrap_or(0) as u64);
    let mut receivers: Vec<_> = streams.iter().map(Source::changes).collect();
    let mut permit = None;
    let high = match (&way, &cuts) {
        (Way::Forward, Some(cuts)) => had_up_to(streams, cuts).await,
        _ => None,
    };
    let mut cuts = cuts;
    loop {
        for rx in &mut receivers {
            rx.borrow_and_update();
        }
        let hold = wait.is_some().then_some(app.config.merge_delay);
        let page = merge_page(streams, way, cuts.clone(), (limit, hold, high), q.as_ref()).await?;
        if !page.entries.is_empty() || Instant::now() >= deadline {
            return Ok(json(body(&ids, &page).freeze()));
        }
        if permit.is_none() {
            // Only requests that really wait hold a permit.
            permit = Some(app.long_polls.clone().try_acquire_owned().map_err(|_| {
                ApiError::Busy("too many long polls are held; try again later".into())
            })?);
        }
        // Filtered-out entries moved the cut on: wait from there.
        cuts = Some(page.next.clone());
        let changed = select_all(receivers.iter_mut().map(|rx| Box::pin(rx.changed())));
        let wake = page
            .held
            .map_or(deadline, |h| deadline.min(Instant::now() + h));
        tokio::select! {
            (res, _, _) = changed => if res.is_err() { return Ok(json(body(&ids, &page).freeze())) },
            () = tokio::time::sleep_until(wake) => {}
            () = app.shutdown.cancelled() => return Ok(json(body(&ids, &page).freeze())),
        }
    }
}
