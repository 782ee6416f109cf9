//! Server-Sent Events: one stream (`/api/streams/{id}/events`) or several on one connection
//! (`/api/events?streams=a,b`).
//!
//! A response body is an async stream that reads from the client's own cursor, so nothing is
//! queued for a slow client: hyper polls the body only when the socket can take more, and the
//! client simply falls behind in the file. Every event is one `data:` line of JSON, and JSON
//! escapes CR, LF and NUL, so no log line can break the framing
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream>).
//! The body ends by itself on shutdown, which graceful shutdown needs. A keep-alive comment is
//! sent on every tick of the shared keep-alive ticker (every 15 s).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::select_all;

use super::AppState;
use super::detach::{ClientSlot, Detachable};
use super::edge::Edge;
use super::error::ApiError;
use super::filter::{self, Filter};
use super::merge::Merge;
use super::metrics::StreamKind;
use super::params::{DEFAULT_LIMIT, cursor, selection};
use super::read::{Params, page_json, params, read_page, stream};
use super::sse_answer::{share, single_event};
use super::sse_wake::Wake;
use super::streams::{Slot, StreamCap};
use crate::stream::{Cursor, Page, Query, Stream};

/// Least time between two progress events (no entries, a moved id) of a sparse `q` scan.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Reconnection delay suggested to browsers.
const RETRY_MS: u32 = 2000;
/// Most streams one multiplexed connection may carry.
pub(crate) const MAX_MULTIPLEXED: usize = 64;

pub(super) fn last_event_id(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::BadRequest("`Last-Event-ID` is not valid".into()))
        })
        .transpose()
        .map(|v| v.filter(|s| !s.is_empty()))
}

/// `GET /api/streams/{id}/events`.
pub(super) async fn events(
    State(app): State<AppState>,
    Path(id): Path<String>,
    cap: StreamCap,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let slot = cap.admit(StreamKind::Sse)?;
    let stream = stream(&app, &id)?;
    let params = params(p)?;
    let sel = selection(&params, last_event_id(&headers)?, app.config.default_lines)?;
    let q = filter::from_params(&params)?;
    let first = first_page(&stream, sel.query, sel.limit, q.as_ref()).await?;
    let ids = vec![stream.id().to_string()];
    let positions = vec![first.next];
    let first = VecDeque::from([(0, first)]);
    let mut state = Feed::new(&app, vec![stream], positions, ids, first, false, slot);
    state.q = q;
    Ok(sse_response(state))
}

/// `GET /api/events?streams=a,b[&after=a:C,b:C][&last=N]`.
pub(super) async fn multiplexed(
    State(app): State<AppState>,
    cap: StreamCap,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let slot = cap.admit(StreamKind::Sse)?;
    let params = params(p)?;
    let ids = super::pages::stream_ids(&params, "connection")?;
    let streams = ids
        .iter()
        .map(|id| stream(&app, id))
        .collect::<Result<Vec<_>, _>>()?;
    let resume = match last_event_id(&headers)? {
        Some(value) => positions(value, "Last-Event-ID")?,
        None => params
            .get("after")
            .map(|v| positions(v, "after"))
            .transpose()?
            .unwrap_or_default(),
    };
    let q = filter::from_params(&params)?;
    let by_time = by_time(&params)?;
    let mut rest = params.clone();
    rest.retain(|k, _| matches!(k.as_str(), "last" | "limit"));
    let sel = selection(&rest, None, app.config.default_lines)?;
    let mut positions = Vec::new();
    let mut first = VecDeque::new();
    for (i, s) in streams.iter().enumerate() {
        match resume.get(s.id().as_str()) {
            Some(c) => positions.push(*c),
            None => {
                // Streams without a resume point start with their last entries.
                let page = first_page(s, sel.query, sel.limit, q.as_ref()).await?;
                positions.push(page.next);
                first.push_back((i, page));
            }
        }
    }
    if by_time {
        let start: Vec<(Cursor, bool)> = positions
            .iter()
            .enumerate()
            // A stream is named in event ids from the start when its position is exact: a
            // resume point, or the end of an empty first page (`last=0`).
            .map(|(i, c)| {
                let fresh = first.iter().any(|(j, p)| *j == i && !p.entries.is_empty());
                (*c, !fresh)
            })
            .collect();
        let mut pages: Vec<Option<Page>> = vec![None; streams.len()];
        for (i, page) in first {
            pages[i] = Some(page);
        }
        let resumed: Vec<bool> = ids.iter().map(|id| resume.contains_key(id)).collect();
        let mut merge = Merge::new(app, streams, ids, &start, pages, q, slot);
        merge.resume(&resumed).await;
        let body = futures_util::stream::unfold((merge, true), |(mut merge, hello)| async move {
            if hello {
                return Some((Ok::<_, std::convert::Infallible>(retry()), (merge, false)));
            }
            let chunk = merge.next_chunk().await?;
            Some((Ok(chunk), (merge, false)))
        });
        return Ok(with_sse_headers(Body::from_stream(body)));
    }
    let mut state = Feed::new(&app, streams, positions, ids, first, true, slot);
    state.q = q;
    Ok(sse_response(state))
}

/// Whether a multiplexed SSE is merged by event time (`order=time`) rather than sent in
/// arrival order (`order=arrival`, the default).
pub(super) fn by_time(params: &HashMap<String, String>) -> Result<bool, ApiError> {
    match params.get("order").map(String::as_str) {
        None | Some("arrival") => Ok(false),
        Some("time") => Ok(true),
        Some(_) => Err(ApiError::BadRequest(
            "`order` must be `time` or `arrival`".into(),
        )),
    }
}

/// The starting page: filtered by `q` (paging by matches) when given.
async fn first_page(
    stream: &Arc<Stream>,
    query: Query,
    limit: usize,
    q: Option<&Filter>,
) -> Result<Page, ApiError> {
    match q {
        Some(q) => Ok(filter::read_filtered(stream, query, limit, q).await?.0),
        None => read_page(stream, query, limit).await,
    }
}

/// Parses `ID:CURSOR,ID:CURSOR`.
pub(super) fn positions(value: &str, name: &str) -> Result<HashMap<String, Cursor>, ApiError> {
    let mut out = HashMap::new();
    for pair in value.split(',').filter(|s| !s.is_empty()) {
        let (id, c) = pair
            .rsplit_once(':')
            .ok_or_else(|| ApiError::BadRequest(format!("`{name}` must be ID:CURSOR pairs")))?;
        out.insert(id.to_owned(), cursor(name, c)?);
    }
    Ok(out)
}

/// The state of one SSE connection.
struct Feed {
    streams: Vec<Arc<Stream>>,
    /// One change receiver per stream (relayed, `sse_wake.rs`), kept for the life of the
    /// response.
    receivers: Vec<watch::Receiver<Wake>>,
    /// The first stream's live edge, where a caught-up connection that left hyper parks
    /// (`edge.rs`); and that connection's socket, once it left.
    edge: Option<Arc<Edge>>,
    client: ClientSlot,
    /// Each stream's cursor: the last entry sent.
    positions: Vec<Cursor>,
    /// Whether each stream's position has been sent to the client: a multiplexed event's id
    /// names only those, so a resume from it never skips a starting page not yet sent.
    sent: Vec<bool>,
    ids: Vec<String>,
    /// Pages already read, to send first (the starting entries).
    first: VecDeque<(usize, Page)>,
    multiplexed: bool,
    /// The `q` filter: entries that fail it are skipped, but the cursor moves past them.
    q: Option<Filter>,
    /// When the last event was sent, to pace progress events of a sparse filter.
    last_sent: Instant,
    /// The version of the (single, unfiltered) stream at which this connection is known to
    /// have sent everything: no read is needed until the version moves.
    done_at: Option<u64>,
    /// The keep-alive ticks of the first stream's relay last seen: a comment is sent when
    /// they move and nothing else was sent.
    ticks: u64,
    /// This response's place under the per-address cap, held while the body lives.
    slot: Slot,
}

impl Feed {
    fn new(
        app: &AppState,
        streams: Vec<Arc<Stream>>,
        positions: Vec<Cursor>,
        ids: Vec<String>,
        first: VecDeque<(usize, Page)>,
        multiplexed: bool,
        slot: Slot,
    ) -> Self {
        slot.lag().track(&streams, &positions);
        let (receivers, edges): (Vec<watch::Receiver<Wake>>, Vec<Arc<Edge>>) =
            streams.iter().map(|s| app.sse_wake.subscribe(s)).unzip();
        let edge = edges.into_iter().next();
        let mut sent = vec![true; streams.len()];
        for (i, _) in &first {
            sent[*i] = false;
        }
        let ticks = receivers.first().map_or(0, |rx| rx.borrow().ticks);
        Self {
            streams,
            receivers,
            edge,
            client: ClientSlot::default(),
            positions,
            sent,
            ids,
            first,
            multiplexed,
            q: None,
            last_sent: Instant::now(),
            done_at: None,
            ticks,
            slot,
        }
    }

    fn event(&self, index: usize, page: &Page) -> Bytes {
        if !self.multiplexed {
            return single_event(page);
        }
        let data = page_json(page, Some(self.ids[index].as_str()));
        let mut out = BytesMut::with_capacity(data.len() + 128);
        out.put_slice(b"event: entries\nid: ");
        let sent = self.ids.iter().zip(&self.positions).zip(&self.sent);
        for (i, ((id, pos), _)) in sent.filter(|(_, sent)| **sent).enumerate() {
            if i > 0 {
                out.put_slice(b",");
            }
            out.put_slice(id.as_bytes());
            out.put_slice(b":");
            out.put_slice(pos.to_string().as_bytes());
        }
        out.put_slice(b"\ndata: ");
        out.put_slice(&data);
        out.put_slice(b"\n\n");
        out.freeze()
    }

    /// The next chunk to send: an event, a keep-alive comment, or `None` to end (shutdown,
    /// or an internal error, logged once).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some((i, page)) = self.first.pop_front() {
            self.positions[i] = page.next;
            self.sent[i] = true;
            return Some(self.event(i, &page));
        }
        loop {
            // Marked seen before reading, so an append between the read and the wait still
            // wakes us: no lost wake-ups, no polling.
            // (No `Vec` of versions: this runs once or twice per client per event.)
            let mut first = Wake::default();
            for (i, rx) in self.receivers.iter_mut().enumerate() {
                let seen = *rx.borrow_and_update();
                if i == 0 {
                    first = seen;
                }
            }
            let version = first.version;
            // Anything sent below stands for this tick's keep-alive.
            let tick = std::mem::replace(&mut self.ticks, first.ticks) != first.ticks;
            if let Some(q) = self.q.clone() {
                // Filtered: every connection filters for itself (no shared answer). A scan
                // through history that matches nothing still reports its progress, at most
                // 4 times a second, so a reconnect resumes where it got to.
                let mut examined_any = false;
                for i in 0..self.streams.len() {
                    let query = Query::After(self.positions[i]);
                    let mut page = ended(read_page(&self.streams[i], query, DEFAULT_LIMIT).await)?;
                    let examined = !page.entries.is_empty();
                    filter::apply(&q, &mut page);
                    if examined {
                        self.positions[i] = page.next;
                        examined_any = true;
                    }
                    let progress = self.last_sent.elapsed() >= PROGRESS_EVERY;
                    if !page.entries.is_empty() || (examined && progress) {
                        self.last_sent = Instant::now();
                        return Some(self.event(i, &page));
                    }
                }
                if examined_any {
                    // More may follow at once: read again before waiting.
                    continue;
                }
            } else if !self.multiplexed {
                // The common fan-out case: many clients at the newest cursor of one stream
                // share one encoded event.
                let (stream, after) = (&self.streams[0], self.positions[0]);
                if let Some(answer) = stream.shared_answer(after, version) {
                    self.positions[0] = answer.next;
                    self.done_at = answer.complete.then_some(version);
                    return Some(answer.bytes);
                }
                if self.done_at != Some(version) {
                    let query = Query::After(after);
                    let page = ended(read_page(stream, query, DEFAULT_LIMIT).await)?;
                    if !page.entries.is_empty() {
                        let answer = share(stream, after, version, &page);
                        self.positions[0] = answer.next;
                        self.done_at = answer.complete.then_some(version);
                        return Some(answer.bytes);
                    }
                    self.done_at = Some(version);
                }
                if !tick {
                    if let (Some(client), Some(edge)) = (self.client.get(), &self.edge) {
                        // Caught up on a connection that left hyper: the relay writes the
                        // next events itself until it gives the connection back.
                        let lag = Arc::clone(self.slot.lag());
                        if edge.park(client, version, after, lag) {
                            self.positions[0] = client.parked(after).await;
                            self.done_at = None;
                            continue;
                        }
                    }
                }
            } else {
                for i in 0..self.streams.len() {
                    let query = Query::After(self.positions[i]);
                    let page = ended(read_page(&self.streams[i], query, DEFAULT_LIMIT).await)?;
                    if !page.entries.is_empty() {
                        self.positions[i] = page.next;
                        return Some(self.event(i, &page));
                    }
                }
            }
            if tick {
                return Some(Bytes::from_static(b": keep-alive\n\n"));
            }
            // One wait: the relays carry new entries, keep-alive ticks and shutdown (which
            // closes their channels).
            let changed = if let [rx] = &mut self.receivers[..] {
                rx.changed().await
            } else {
                select_all(self.receivers.iter_mut().map(|rx| Box::pin(rx.changed())))
                    .await
                    .0
            };
            if changed.is_err() {
                return None;
            }
            // Woken with nothing left unread: not behind until now.
            self.slot.lag().caught_up();
        }
    }
}

/// The page, or `None` after logging why the stream must end.
fn ended(read: Result<Page, ApiError>) -> Option<Page> {
    read.map_err(ApiError::end_stream).ok()
}

/// The first bytes of every event stream: the reconnection delay.
fn retry() -> Bytes {
    Bytes::from(format!("retry: {RETRY_MS}\n\n"))
}

fn sse_response(feed: Feed) -> Response {
    let slot = Arc::clone(&feed.client);
    // Hyper sends it (TLS, HTTP/2), or the accept loop takes the socket and sends it itself
    // (`detach.rs`): either way one chunk per event.
    let body =
        // Boxed: the state moves in and out of each step's future, a pointer rather than the
        // whole `Feed` (hundreds of bytes, copied twice per client per event).
        futures_util::stream::unfold((Box::new(feed), Some(retry())), |(mut feed, hello)| async move {
            if let Some(hello) = hello {
                return Some((hello, (feed, None)));
            }
            let chunk = feed.next_chunk().await?;
            feed.slot.lag().moved(&feed.positions);
            Some((chunk, (feed, None)))
        });
    let detachable = Detachable::with_slot(Box::pin(body), slot);
    let mut response = with_sse_headers(detachable.body());
    response.extensions_mut().insert(detachable);
    response
}

/// An event-stream response around `body`.
pub(super) fn with_sse_headers(body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
