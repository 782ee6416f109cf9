//! `order=time` on `/api/events?streams=a,b`: several streams merged by event time on one SSE
//! connection, resumable exactly.
//!
//! Each connection reads ahead per stream into a queue (through `Stream::read`, normally from
//! the cache: entries are shared `Bytes`) and only ever sends a queue's *head*, so what it has
//! sent is always a prefix of every stream. The event id names each stream's last sent entry
//! (`ID:CURSOR,…`, the multiplexed form), so a resume from it gets exactly what was not sent,
//! whatever order things went out in (Kafka's per-partition offsets).
//!
//! Order: an entry's key is its `ts`; one without (an untimed line, a notice) takes the `ts`
//! of the nearest entry before it in its stream that has one, at most [`LOOKBACK`] entries
//! back ([`Carry`]), else its arrival time, else −∞. That is a function of the stream alone,
//! not of where a read started, so the merged pages (`pages.rs`) find the same keys forwards,
//! backwards and in any chunks. The head with the smallest key goes first
//! (ties: the earlier stream in the request). A live head is held until every other stream
//! has a head queued (so its next key is known) or `--merge-delay` has passed since it
//! arrived (the watermark, Kafka Streams' `max.task.idle.ms`); history is never held. An
//! entry whose key is older than one already sent goes out at once, marked `"late": true`
//! (spliced into its encoded JSON; the cache stays encode-once).
//!
//! The merge reads through [`Source`]: this server's streams, or a hub's views of the
//! engine (`http/hub/sse.rs`), so both order alike.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::select_all;
use tokio::sync::watch;

use super::AppState;
use super::error::ApiError;
use super::filter::{self, Filter};
use super::params::DEFAULT_LIMIT;
use super::read::read_page;
use super::streams::Slot;
use crate::stream::{Cursor, Entry, ORIGIN, Page, Query, Stream};

/// Most entries in one merged event.
const BATCH: usize = 1000;

/// What a merge reads one of its streams through: a stream of this server, or a hub's view
/// of the engine (`http/hub/`). The merged pages (`pages.rs`) read through it too.
pub(super) trait Source: Send + Sync + 'static {
    /// A receiver bumped when the stream may have new entries.
    fn changes(&self) -> watch::Receiver<u64>;

    /// A page of the stream.
    fn read(
        &self,
        query: Query,
        limit: usize,
    ) -> impl Future<Output = Result<Page, ApiError>> + Send;

    /// Entries after `after` for a reader that waits for new ones (the live merge).
    fn live(
        &self,
        after: Cursor,
        limit: usize,
    ) -> impl Future<Output = Result<Page, ApiError>> + Send {
        self.read(Query::After(after), limit)
    }

    /// Where the client stands in each source, for `/metrics`' client lag (the streams of
    /// this server only).
    fn track(_slot: &Slot, _sources: &[Self], _positions: &[Cursor])
    where
        Self: Sized,
    {
    }
}

impl Source for Arc<Stream> {
    fn changes(&self) -> watch::Receiver<u64> {
        self.subscribe()
    }

    async fn read(&self, query: Query, limit: usize) -> Result<Page, ApiError> {
        read_page(self, query, limit).await
    }

    fn track(slot: &Slot, sources: &[Self], positions: &[Cursor]) {
        slot.lag().track(sources, positions);
    }
}

/// One queued entry and its merge key.
#[derive(Debug)]
struct Queued {
    entry: Entry,
    key: i64,
}

/// The state of one time-ordered merged SSE connection.
pub(super) struct Merge<S> {
    app: AppState,
    streams: Vec<S>,
    ids: Vec<String>,
    receivers: Vec<watch::Receiver<u64>>,
    /// Entries read ahead, per stream, in stream order.
    queues: Vec<VecDeque<Queued>>,
    /// Where each stream's read-ahead goes on from.
    read: Vec<Cursor>,
    /// Each stream's last sent entry (what the event id names), if any yet.
    sent: Vec<Option<Cursor>>,
    /// Each stream's key rule after its last entry read.
    carry: Vec<Carry>,
    /// The largest key sent so far: an entry below it is `late`.
    high: Option<i64>,
    delay: Duration,
    q: Option<Filter>,
    /// This response's place under the per-address cap, held while the body lives.
    _slot: Slot,
}

impl<S: Source> Merge<S> {
    /// A merge starting after `start` in each stream (`None`: the stream's `first` page comes
    /// first, then what follows it), with entries already read queued.
    pub(super) fn new(
        app: AppState,
        streams: Vec<S>,
        ids: Vec<String>,
        start: &[(Cursor, bool)],
        first: Vec<Option<Page>>,
        q: Option<Filter>,
        slot: Slot,
    ) -> Self {
        let n = streams.len();
        let positions: Vec<Cursor> = start.iter().map(|s| s.0).collect();
        S::track(&slot, &streams, &positions);
        let receivers = streams.iter().map(Source::changes).collect();
        let delay = app.config.merge_delay;
        let mut merge = Self {
            app,
            streams,
            ids,
            receivers,
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            read: start.iter().map(|s| s.0).collect(),
            sent: start.iter().map(|&(c, named)| named.then_some(c)).collect(),
            carry: vec![Carry::default(); n],
            high: None,
            delay,
            q,
            _slot: slot,
        };
        for (i, page) in first.into_iter().enumerate() {
            if let Some(page) = page {
                merge.queue(i, page, None);
            }
        }
        merge
    }

    /// Restores what an unbroken connection would know after sending each resumed stream's
    /// last entry (`resumed[i]`: stream `i` starts from a client's position, not `last`):
    /// its key rule's state ([`Carry`]) for the entries without `ts` that follow, and the
    /// largest of those keys as the `late` line. An unbroken connection's line is the largest
    /// key it sent at all, so the two agree whenever each stream's keys never decrease (the
    /// usual log); a stream whose lines go back in time can have sent a larger key before its
    /// last one, and a resume does not see that one. A stream that starts with a first page
    /// looks back from its first entry, when that one has no `ts` (with `q`, the entries
    /// between the page's matches are not counted). Costs a few small reads per stream,
    /// normally from memory.
    pub(super) async fn resume(&mut self, resumed: &[bool]) {
        for i in 0..self.streams.len() {
            if let Some(c) = self.sent[i].filter(|_| resumed.get(i) == Some(&true)) {
                let Some((carry, key)) = carry_through(&self.streams[i], c).await else {
                    continue;
                };
                self.carry[i] = carry;
                self.high = Some(self.high.map_or(key, |high| high.max(key)));
                continue;
            }
            let first = self.queues[i].front().map(|h| &h.entry);
            let Some(first) = first.filter(|e| e.facts.ts.is_none()) else {
                continue;
            };
            let mut carry = carry_before(&self.streams[i], first.cursor).await;
            for h in &mut self.queues[i] {
                h.key = carry.key(&h.entry);
            }
            self.carry[i] = carry;
        }
    }

    /// Queues a page of stream `i`, keyed over every entry read, then filtered by `q`.
    fn queue(&mut self, i: usize, page: Page, q: Option<&Filter>) {
        self.read[i] = page.next;
        for entry in page.entries {
            let key = self.carry[i].key(&entry);
            if q.is_none_or(|q| filter::keeps(q, &entry)) {
                self.queues[i].push_back(Queued { entry, key });
            }
        }
    }

    /// The stream whose head goes next, and whether it may go now (else: when it may).
    fn pick(&self) -> Option<(usize, Result<(), Duration>)> {
        let (j, head) = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|h| (i, h)))
            .min_by_key(|(i, h)| (h.key, *i))?;
        let all_known = self.queues.iter().all(|q| !q.is_empty());
        let Some(arrival) = head.entry.arrival.filter(|_| !all_known) else {
            return Some((j, Ok(())));
        };
        let due = Duration::from_millis(arrival) + self.delay;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Some((j, if due <= now { Ok(()) } else { Err(due - now) }))
    }

    /// Sends heads of stream `j` while they stay next and may go.
    fn event(&mut self, j: usize) -> Bytes {
        let mut body = BytesMut::with_capacity(4096);
        body.put_slice(b"{\"stream\":");
        body.put_slice(&serde_json::to_vec(&self.ids[j]).unwrap_or_default());
        body.put_slice(b",\"entries\":[");
        let mut n = 0;
        while n < BATCH {
            match self.pick() {
                Some((k, Ok(()))) if k == j => {}
                _ => break,
            }
            let Some(h) = self.queues[j].pop_front() else {
                break;
            };
            if n > 0 {
                body.put_slice(b",");
            }
            let late = self.high.is_some_and(|high| h.key < high);
            if late {
                // `{` then the rest: one copy, the cached encoding untouched.
                body.put_slice(b"{\"late\":true,");
                body.put_slice(&h.entry.json[1..]);
            } else {
                body.put_slice(&h.entry.json);
            }
            self.high = Some(self.high.map_or(h.key, |high| high.max(h.key)));
            self.sent[j] = Some(h.entry.cursor);
            n += 1;
        }
        if let Some(c) = self.sent[j] {
            self._slot.lag().moved_one(j, c);
        }
        let next = self.sent[j].map(|c| c.to_string()).unwrap_or_default();
        body.put_slice(b"],\"next\":\"");
        body.put_slice(next.as_bytes());
        body.put_slice(b"\",\"prev\":null}");
        let mut out = BytesMut::with_capacity(body.len() + 256);
        out.put_slice(b"event: entries\nid: ");
        let named = self.ids.iter().zip(&self.sent);
        for (i, (id, c)) in named.filter_map(|(id, c)| c.map(|c| (id, c))).enumerate() {
            if i > 0 {
                out.put_slice(b",");
            }
            out.put_slice(id.as_bytes());
            out.put_slice(b":");
            out.put_slice(c.to_string().as_bytes());
        }
        out.put_slice(b"\ndata: ");
        out.put_slice(&body);
        out.put_slice(b"\n\n");
        out.freeze()
    }

    /// The next chunk to send: an event, a keep-alive comment, or `None` to end.
    pub(super) async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            for rx in &mut self.receivers {
                rx.borrow_and_update();
            }
            // Refill empty queues (a filtered read may examine entries and keep none).
            let mut examined = false;
            for i in 0..self.streams.len() {
                if !self.queues[i].is_empty() {
                    continue;
                }
                let read = self.streams[i].live(self.read[i], DEFAULT_LIMIT).await;
                let page = read.map_err(ApiError::end_stream).ok()?;
                examined |= !page.entries.is_empty();
                let q = self.q.take();
                self.queue(i, page, q.as_ref());
                self.q = q;
            }
            let wait = match self.pick() {
                Some((j, Ok(()))) => return Some(self.event(j)),
                Some((_, Err(left))) => Some(left),
                None if examined => continue,
                None => None,
            };
            let keep_alive = self.app.keep_alive.clone();
            let tick = keep_alive.notified();
            let shutdown = self.app.shutdown.clone();
            let changed = select_all(self.receivers.iter_mut().map(|rx| Box::pin(rx.changed())));
            let hold = async {
                match wait {
                    Some(left) => tokio::time::sleep(left).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                (res, _, _) = changed => {
                    if res.is_err() {
                        return None;
                    }
                    if wait.is_none() {
                        // Woken by new entries with nothing left unread: not behind until now.
                        self._slot.lag().caught_up();
                    }
                }
                () = hold => {}
                () = tick => return Some(Bytes::from_static(b": keep-alive\n\n")),
                () = shutdown.cancelled() => return None,
            }
        }
    }
}

/// Entries an entry without `ts` looks back through for one with a `ts` to take as its key.
/// Bounded so that a backward read needs one small read back, not the whole stream; with
/// multi-line records, untimed entries in a timed stream are rare and short (a file's first
/// lines, notices).
pub(super) const LOOKBACK: usize = 64;

/// The merge key rule, walked along a stream in its order: the last `ts` met and how many
/// entries came after it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Carry {
    last: Option<(i64, usize)>,
}

impl Carry {
    /// The key of `e`, the entry after those this carry has walked; `e` is then walked too.
    pub(super) fn key(&mut self, e: &Entry) -> i64 {
        if let Some(ts) = e.facts.ts {
            self.last = Some((ts, 0));
            return ts;
        }
        let carried = self.last.as_mut().and_then(|(ts, since)| {
            *since = since.saturating_add(1);
            (*since <= LOOKBACK).then_some(*ts)
        });
        carried
            .or_else(|| e.arrival.and_then(|t| i64::try_from(t).ok()))
            .unwrap_or(i64::MIN)
    }
}

/// The carry just before entry `c`: walked over the [`LOOKBACK`] entries before it (a failed
/// read walks none).
pub(super) async fn carry_before<S: Source>(stream: &S, c: Cursor) -> Carry {
    let mut carry = Carry::default();
    if let Ok(page) = stream.read(Query::Before(c), LOOKBACK).await {
        for e in &page.entries {
            carry.key(e);
        }
    }
    carry
}

/// The carry just after the entry at cursor `c`, and that entry's merge key, or `None` when it
/// cannot be read back (gone, or never an entry). Two small reads, a third to look back when
/// the entry has no `ts`.
pub(super) async fn carry_through<S: Source>(stream: &S, c: Cursor) -> Option<(Carry, i64)> {
    let before = stream.read(Query::Before(c), 1).await.ok()?;
    let from = before.entries.last().map_or(ORIGIN, |e| e.cursor);
    let at = stream.read(Query::After(from), 1).await.ok()?;
    let e = at.entries.first().filter(|e| e.cursor.point == c.point)?;
    let mut carry = if e.facts.ts.is_some() {
        Carry::default()
    } else {
        carry_before(stream, e.cursor).await
    };
    let key = carry.key(e);
    Some((carry, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untimed_entry_takes_the_last_ts_within_the_lookback_then_its_arrival() {
        let entry = |ts: Option<i64>, arrival: Option<u64>| Entry {
            gen_seq: 0,
            point: 1,
            cursor: ORIGIN,
            json: Bytes::new(),
            line: Bytes::new(),
            notice: false,
            facts: crate::stream::Facts { ts, level: None },
            arrival,
            alloc: 0,
        };
        let mut c = Carry::default();
        assert_eq!(c.key(&entry(None, None)), i64::MIN);
        assert_eq!(c.key(&entry(None, Some(7))), 7);
        assert_eq!(c.key(&entry(Some(100), Some(7))), 100);
        for _ in 0..LOOKBACK {
            assert_eq!(c.key(&entry(None, Some(7))), 100);
        }
        assert_eq!(
            c.key(&entry(None, Some(7))),
            7,
            "past the lookback: arrival"
        );
        assert_eq!(c.key(&entry(None, None)), i64::MIN);
        assert_eq!(c.key(&entry(Some(5), None)), 5);
    }
}
