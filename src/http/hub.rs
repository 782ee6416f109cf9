//! The hub's endpoints: the same contract as standalone (`/api/streams`, `/lines` with
//! `after`/`before`/`last` and long polls, SSE with `Last-Event-ID`), read from the engine
//! through [`Hub`] instead of from local streams. Ids are `host~file` and views `*~file`,
//! `host~*`, `*~*`. Parameters, page encoding, errors and every layer (guard, auth, headers,
//! caps) are the standalone ones.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, body::Body};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;

use super::AppState;
use super::error::ApiError;
use super::metrics::StreamKind;
use super::params::{DEFAULT_LIMIT, selection};
use super::read::{Params, json, page_json, params};
use super::streams::{Slot, StreamCap};
use crate::engine::names::Target;
use crate::hub::{Hub, ReadError};
use crate::stream::{Cursor, Page, Query};

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        Self::Busy(e.to_string())
    }
}

fn target(id: &str) -> Result<Target, ApiError> {
    Target::parse(id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no stream `{id}` (a hub's ids are HOST~FILE, with `*` for either side)"
        ))
    })
}

async fn read(hub: &Hub, target: &Target, query: Query, limit: usize) -> Result<Page, ApiError> {
    Ok(match query {
        Query::After(c) => hub.after(target, c, limit).await?,
        Query::Before(c) => hub.before(target, Some(c), limit).await?,
        Query::Last(n) => hub.before(target, None, n).await?,
    })
}

/// Waits for entries after `after` until `deadline` (or shutdown): `None` when none came.
async fn wait(
    app: &AppState,
    hub: &Hub,
    target: &Target,
    after: Cursor,
    limit: usize,
    deadline: Instant,
) -> Result<Option<Page>, ApiError> {
    let mut changed = hub.subscribe();
    loop {
        // Marked seen before reading: a message stored meanwhile still wakes us.
        changed.borrow_and_update();
        let page = hub.after(target, after, limit).await?;
        if !page.entries.is_empty() {
            return Ok(Some(page));
        }
        tokio::select! {
            res = changed.changed() => if res.is_err() { return Ok(None) },
            () = tokio::time::sleep_until(deadline) => return Ok(None),
            () = app.shutdown.cancelled() => return Ok(None),
        }
    }
}

/// `GET /api/streams`.
pub(super) async fn list(Extension(hub): Extension<Arc<Hub>>) -> Result<Response, ApiError> {
    let listing = hub.list().await?;
    Ok(json(
        serde_json::to_vec(&listing).unwrap_or_default().into(),
    ))
}

/// `GET /api/streams/{id}/lines`.
pub(super) async fn lines(
    State(app): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let target = target(&id)?;
    let params = params(p)?;
    let sel = selection(&params, None, app.config.default_lines)?;
    let mut page = read(&hub, &target, sel.query, sel.limit).await?;
    if let Query::After(c) = sel.query {
        if page.entries.is_empty() && !sel.wait.is_zero() {
            let _permit = app.long_polls.clone().try_acquire_owned().map_err(|_| {
                ApiError::Busy("too many long polls are held; try again later".into())
            })?;
            let deadline = Instant::now() + sel.wait;
            if let Some(more) = wait(&app, &hub, &target, c, sel.limit, deadline).await? {
                page = more;
            }
        }
    }
    Ok(json(page_json(&page, None).freeze()))
}

/// `GET /api/streams/{id}/events`.
pub(super) async fn events(
    State(app): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    Path(id): Path<String>,
    cap: StreamCap,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let slot = cap.admit(StreamKind::Sse)?;
    let target = target(&id)?;
    let params = params(p)?;
    let resume = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::BadRequest("`Last-Event-ID` is not valid".into()))
        })
        .transpose()?
        .filter(|s| !s.is_empty());
    let sel = selection(&params, resume, app.config.default_lines)?;
    let first = read(&hub, &target, sel.query, sel.limit).await?;
    let feed = Feed {
        position: first.next,
        first: Some(first),
        app,
        hub,
        target,
        _slot: slot,
    };
    Ok(sse_response(feed))
}

/// One SSE response's state: where its reader is.
struct Feed {
    app: AppState,
    hub: Arc<Hub>,
    target: Target,
    position: Cursor,
    /// The first page, sent before anything else (even when empty, so the client learns its
    /// position).
    first: Option<Page>,
    _slot: Slot,
}

fn event(page: &Page) -> Bytes {
    let data = page_json(page, None);
    let mut out = BytesMut::with_capacity(data.len() + 128);
    out.put_slice(b"event: entries\nid: ");
    out.put_slice(page.next.to_string().as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(&data);
    out.put_slice(b"\n\n");
    out.freeze()
}

impl Feed {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(page) = self.first.take() {
            return Some(event(&page));
        }
        let mut changed = self.hub.subscribe();
        loop {
            changed.borrow_and_update();
            let page = match self
                .hub
                .after(&self.target, self.position, DEFAULT_LIMIT)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    // The client reconnects with its Last-Event-ID, on this hub or another.
                    ApiError::from(e).end_stream();
                    return None;
                }
            };
            if !page.entries.is_empty() {
                self.position = page.next;
                return Some(event(&page));
            }
            let tick = self.app.keep_alive.notified();
            tokio::select! {
                res = changed.changed() => if res.is_err() { return None },
                () = tick => return Some(Bytes::from_static(b": keep-alive\n\n")),
                () = self.app.shutdown.cancelled() => return None,
            }
        }
    }
}

fn sse_response(feed: Feed) -> Response {
    let retry = Bytes::from_static(b"retry: 2000\n\n");
    let body = futures_util::stream::unfold((feed, Some(retry)), |(mut feed, hello)| async move {
        if let Some(hello) = hello {
            return Some((Ok::<_, std::convert::Infallible>(hello), (feed, None)));
        }
        let chunk = feed.next_chunk().await?;
        Some((Ok(chunk), (feed, None)))
    });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
