//! `GET /api/streams/{id}/search`: a search over the whole history, answered as Server-Sent
//! Events (`entries`, `progress`, `done`).
//!
//! The scan (`history::search`) runs on a blocking thread and hands encoded events to the
//! body through a small channel. It ends when it is done, when the server shuts down (its
//! token is a child of the server's), or when the client goes: the body owns a drop guard of
//! the token and the channel's receiver, so dropping the body stops the scan at its next block
//! or event (progress is sent at least every 250 ms). A client that stops reading stalls the
//! channel; after [`STALL`] the scan gives up. At most `--max-searches` run at once (503).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use super::filter;
use super::metrics::StreamKind;
use super::params::cursor;
use super::read::{Params, params, stream};
use super::streams::StreamCap;
use crate::history::search::{self, Event, Order, Request};

/// How long a scan waits for a client that does not read before it gives up.
const STALL: Duration = Duration::from_secs(30);
/// Matches per search by default, and at most.
const DEFAULT_LIMIT: usize = 1_000;
const MAX_LIMIT: usize = 10_000;

/// `GET /api/streams/{id}/search?q=…[&order=newest|oldest][&limit=N][&before=C][&after=C]`.
pub(super) async fn search(
    State(app): State<AppState>,
    Path(id): Path<String>,
    cap: StreamCap,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    if resume == Some("end") {
        // The search was done: per the SSE rules, 204 stops the browser reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let stream = stream(&app, &id)?;
    let params = params(p)?;
    let query = filter::from_params(&params)?
        .ok_or_else(|| ApiError::BadRequest("`q` must say what to search for".into()))?;
    let order = match params.get("order").map(String::as_str) {
        None | Some("newest") => Order::Newest,
        Some("oldest") => Order::Oldest,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`order` must be `newest` or `oldest`".into(),
            ));
        }
    };
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("`limit` must be 1..={MAX_LIMIT}")))?,
    };
    let mut before = params
        .get("before")
        .map(|v| cursor("before", v))
        .transpose()?;
    let mut after = params
        .get("after")
        .map(|v| cursor("after", v))
        .transpose()?;
    if let Some(id) = resume {
        // A reconnect goes on from the last event it saw.
        let at = cursor("Last-Event-ID", id)?;
        match order {
            Order::Newest => before = Some(at),
            Order::Oldest => after = Some(at),
        }
    }
    let slot = cap.admit(StreamKind::Sse)?;
    let permit = app.searches.clone().try_acquire_owned().map_err(|_| {
        ApiError::Busy("as many searches as allowed are running; try again later".into())
    })?;
    let request = Request {
        query,
        order,
        limit,
        before,
        after,
    };
    let token = app.shutdown.child_token();
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, search::SearchError>>(8);
    let handle = tokio::runtime::Handle::current();
    let scan_token = token.clone();
    let search_bytes = app.metrics.search_bytes.clone();
    tokio::task::spawn_blocking(move || {
        let mut permit = Some(permit);
        // For `/metrics`: what the scan examined, counted as its progress reports it.
        let mut counted = 0;
        let send = |item| {
            handle
                .block_on(tokio::time::timeout(STALL, tx.send(item)))
                .is_ok_and(|sent| sent.is_ok())
        };
        let mut emit = |event: Event| {
            if let Event::Progress { scanned, .. } | Event::Done { scanned, .. } = event {
                search_bytes.inc_by(scanned.saturating_sub(counted));
                counted = counted.max(scanned);
            }
            if matches!(event, Event::Done { .. }) {
                // Free the permit before the client hears `done`, so that its next search
                // (the following page) is never refused for this one.
                permit.take();
            }
            send(Ok(encode(&event)))
        };
        if let Err(e) = search::run(&stream, &request, &scan_token, &mut emit) {
            send(Err(e));
        }
    });
    // The first event (progress 0) or the reason the search could not start.
    let first = match rx.recv().await {
        Some(Ok(first)) => first,
        Some(Err(e)) => return Err(ApiError::BadRequest(e.to_string())),
        None => {
            return Err(ApiError::Internal(
                "the search ended before it began".into(),
            ));
        }
    };
    let guard = token.drop_guard();
    let hello = Bytes::from(format!(
        "retry: 2000\n\n{}",
        String::from_utf8_lossy(&first)
    ));
    let body = futures_util::stream::unfold(
        (rx, Some(hello), guard, slot),
        |(mut rx, hello, guard, slot)| async move {
            if let Some(hello) = hello {
                return Some((
                    Ok::<_, std::convert::Infallible>(hello),
                    (rx, None, guard, slot),
                ));
            }
            match rx.recv().await {
                Some(Ok(chunk)) => Some((Ok(chunk), (rx, None, guard, slot))),
                _ => None,
            }
        },
    );
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One event in SSE framing. `entries` carry the last match's cursor as their id (the
/// continuation a reconnect starts from); `done` carries `end`.
fn encode(event: &Event) -> Bytes {
    let mut out = BytesMut::new();
    match event {
        Event::Entries(entries) => {
            out.put_slice(b"event: entries\n");
            if let Some(last) = entries.last() {
                out.put_slice(format!("id: {}\n", last.cursor).as_bytes());
            }
            out.put_slice(b"data: {\"entries\":[");
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.put_slice(b",");
                }
                out.put_slice(&e.json);
            }
            out.put_slice(b"]}\n\n");
        }
        Event::Progress { scanned, total } => {
            out.put_slice(
                format!("event: progress\ndata: {{\"scanned\":{scanned},\"total\":{total}}}\n\n")
                    .as_bytes(),
            );
        }
        Event::Done {
            matches,
            scanned,
            next,
        } => {
            let next = next.map_or_else(|| "null".to_owned(), |c| format!("\"{c}\""));
            out.put_slice(
                format!(
                    "event: done\nid: end\ndata: {{\"matches\":{matches},\"scanned\":{scanned},\"next\":{next}}}\n\n"
                )
                .as_bytes(),
            );
        }
    }
    out.freeze()
}

/// The cap on concurrent searches, for `AppState`.
pub(super) fn searches(max: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(max.max(1)))
}
