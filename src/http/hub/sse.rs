//! A hub's SSE: `/api/streams/{id}/events` and the multiplexed `/api/events?streams=`, with
//! the standalone event format, `Last-Event-ID` rules (`ID:CURSOR` pairs for several ids)
//! and `q=`. Each connection holds a receiver of every view it reads, so those views (and
//! their one engine reader each) live as long as it does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::watch;

use super::merged::ViewSource;
use super::{distinct_targets, first_page, select, target};
use crate::engine::names::Target;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::filter::{self, Filter};
use crate::http::merge::Merge;
use crate::http::metrics::StreamKind;
use crate::http::params::{DEFAULT_LIMIT, Selection, selection};
use crate::http::read::{Params, page_json, params};
use crate::http::sse::{last_event_id, positions, with_sse_headers};
use crate::http::streams::{Slot, StreamCap};
use crate::hub::{Hub, View};
use crate::stream::{Cursor, Page};

/// `GET /api/streams/{id}/events`.
pub(in crate::http) async fn events(
    State(app): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    Path(id): Path<String>,
    cap: StreamCap,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let slot = cap.admit(StreamKind::Sse)?;
    let target = target(&hub, &id).await?;
    let params = params(p)?;
    let q = filter::from_params(&params)?;
    // `until` and `grep` are for `/lines` and `/raw`: SSE ignores them, as on a standalone
    // server.
    let sel = match last_event_id(&headers)? {
        Some(resume) => selection(&params, Some(resume), app.config.default_lines)?,
        None => select(&app, &hub, &params).await?.0,
    };
    let first = first_page(&hub, &target, &sel, q.as_ref(), None).await?;
    let mut feed = Feed::new(app, hub, slot, false);
    feed.q = q;
    feed.add(id, &target, first.next, Some(first));
    Ok(response(feed))
}

/// `GET /api/events?streams=a,b[&after=a:C,b:C][&last=N]`.
pub(in crate::http) async fn multiplexed(
    State(app): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    cap: StreamCap,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let slot = cap.admit(StreamKind::Sse)?;
    let params = params(p)?;
    let ids = crate::http::pages::stream_ids(&params, "connection")?;
    let by_time = crate::http::sse::by_time(&params)?;
    let targets = distinct_targets(&hub, &ids).await?;
    let resume: HashMap<String, Cursor> = match last_event_id(&headers)? {
        Some(value) => positions(value, "Last-Event-ID")?,
        None => params
            .get("after")
            .map(|v| positions(v, "after"))
            .transpose()?
            .unwrap_or_default(),
    };
    let q = filter::from_params(&params)?;
    let mut rest = params.clone();
    rest.retain(|k, _| matches!(k.as_str(), "last" | "limit"));
    let sel = selection(&rest, None, app.config.default_lines)?;
    if by_time {
        return by_event_time(app, &hub, ids, &targets, &resume, &sel, q, slot).await;
    }
    let mut feed = Feed::new(app, hub.clone(), slot, true);
    for (id, target) in ids.into_iter().zip(&targets) {
        match resume.get(&id) {
            Some(c) => feed.add(id, target, *c, None),
            None => {
                // Ids without a resume point start with their last entries.
                let page = first_page(&hub, target, &sel, q.as_ref(), None).await?;
                feed.add(id, target, page.next, Some(page));
            }
        }
    }
    feed.q = q;
    Ok(response(feed))
}

/// `order=time`: the streams merged by event time as on a standalone server
/// (`http/merge.rs`), each read through its view.
#[allow(clippy::too_many_arguments)]
async fn by_event_time(
    app: AppState,
    hub: &Arc<Hub>,
    ids: Vec<String>,
    targets: &[Target],
    resume: &HashMap<String, Cursor>,
    sel: &Selection,
    q: Option<Filter>,
    slot: Slot,
) -> Result<Response, ApiError> {
    let mut sources = Vec::with_capacity(ids.len());
    let mut start = Vec::with_capacity(ids.len());
    let mut pages = Vec::with_capacity(ids.len());
    for (id, target) in ids.iter().zip(targets) {
        match resume.get(id) {
            Some(c) => {
                start.push((*c, true));
                pages.push(None);
            }
            None => {
                let page = first_page(hub, target, sel, q.as_ref(), None).await?;
                // Named in event ids from the start when exact: the end of an empty page.
                start.push((page.next, page.entries.is_empty()));
                pages.push(Some(page));
            }
        }
        sources.push(ViewSource::new(hub, target));
    }
    let resumed: Vec<bool> = ids.iter().map(|id| resume.contains_key(id)).collect();
    let mut merge = Merge::new(app, sources, ids, &start, pages, q, slot);
    merge.resume(&resumed).await;
    let retry = Bytes::from_static(b"retry: 2000\n\n");
    let body =
        futures_util::stream::unfold((merge, Some(retry)), |(mut merge, hello)| async move {
            if let Some(hello) = hello {
                return Some((Ok::<_, std::convert::Infallible>(hello), (merge, None)));
            }
            let chunk = merge.next_chunk().await?;
            Some((Ok(chunk), (merge, None)))
        });
    Ok(with_sse_headers(axum::body::Body::from_stream(body)))
}

/// One id a connection reads.
struct Read {
    id: String,
    view: Arc<View>,
    changed: watch::Receiver<u64>,
    /// The last entry examined (sent, or dropped by `q`).
    at: Cursor,
    /// Whether `at` has been sent to the client (in an event id); an id whose first page is
    /// not sent yet is left out of the event id, so a resume never skips it.
    sent: bool,
}

/// The state of one SSE connection.
struct Feed {
    app: AppState,
    hub: Arc<Hub>,
    reads: Vec<Read>,
    /// First pages still to send, by index into `reads`.
    first: VecDeque<(usize, Page)>,
    multiplexed: bool,
    q: Option<Filter>,
    /// Where the next look for new entries starts, so a busy id cannot starve the others.
    turn: usize,
    _slot: Slot,
}

impl Feed {
    fn new(app: AppState, hub: Arc<Hub>, slot: Slot, multiplexed: bool) -> Self {
        Self {
            app,
            hub,
            reads: Vec::new(),
            first: VecDeque::new(),
            multiplexed,
            q: None,
            turn: 0,
            _slot: slot,
        }
    }

    fn add(
        &mut self,
        id: String,
        target: &crate::engine::names::Target,
        at: Cursor,
        first: Option<Page>,
    ) {
        let (view, changed) = self.hub.view(target);
        let sent = first.is_none();
        if let Some(page) = first {
            self.first.push_back((self.reads.len(), page));
        }
        self.reads.push(Read {
            id,
            view,
            changed,
            at,
            sent,
        });
    }

    /// An `entries` event of read `i`.
    fn event(&self, i: usize, page: &Page) -> Bytes {
        let read = &self.reads[i];
        let data = page_json(page, self.multiplexed.then_some(read.id.as_str()));
        let mut out = BytesMut::with_capacity(data.len() + 128);
        out.put_slice(b"event: entries\nid: ");
        if self.multiplexed {
            let pairs: Vec<String> = self
                .reads
                .iter()
                .filter(|r| r.sent)
                .map(|r| format!("{}:{}", r.id, r.at))
                .collect();
            out.put_slice(pairs.join(",").as_bytes());
        } else {
            out.put_slice(read.at.to_string().as_bytes());
        }
        out.put_slice(b"\ndata: ");
        out.put_slice(&data);
        out.put_slice(b"\n\n");
        out.freeze()
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some((i, page)) = self.first.pop_front() {
            self.reads[i].at = page.next;
            self.reads[i].sent = true;
            return Some(self.event(i, &page));
        }
        loop {
            for r in &mut self.reads {
                r.changed.borrow_and_update();
            }
            let n = self.reads.len();
            for k in 0..n {
                let i = (self.turn + k) % n;
                let (view, at) = (&self.reads[i].view, self.reads[i].at);
                let mut page = match self.hub.read_waiting(view, at, DEFAULT_LIMIT).await {
                    Ok(page) => page,
                    Err(e) => {
                        // The client reconnects with its Last-Event-ID, here or on another hub.
                        ApiError::from(e).end_stream();
                        return None;
                    }
                };
                if let Some(q) = &self.q {
                    filter::apply(q, &mut page);
                }
                self.reads[i].at = page.next;
                if !page.entries.is_empty() {
                    self.reads[i].sent = true;
                    self.turn = i + 1;
                    return Some(self.event(i, &page));
                }
            }
            let changed = futures_util::future::select_all(
                self.reads.iter_mut().map(|r| Box::pin(r.changed.changed())),
            );
            let tick = self.app.keep_alive.notified();
            tokio::select! {
                (res, _, _) = changed => if res.is_err() { return None },
                () = tick => return Some(Bytes::from_static(b": keep-alive\n\n")),
                () = self.app.shutdown.cancelled() => return None,
            }
        }
    }
}

fn response(feed: Feed) -> Response {
    let retry = Bytes::from_static(b"retry: 2000\n\n");
    let body = futures_util::stream::unfold((feed, Some(retry)), |(mut feed, hello)| async move {
        if let Some(hello) = hello {
            return Some((Ok::<_, std::convert::Infallible>(hello), (feed, None)));
        }
        let chunk = feed.next_chunk().await?;
        Some((Ok(chunk), (feed, None)))
    });
    with_sse_headers(axum::body::Body::from_stream(body))
}
