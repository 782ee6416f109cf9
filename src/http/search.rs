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
    let Some(resume) = resume(&headers) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let stream = stream(&app, &id)?;
    let params = params(p)?;
    let (query, order, limit) = common(&params)?;
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
    let parts = vec![Part {
        tag: None,
        stream,
        before,
        after,
    }];
    respond(app, cap, parts, query, order, limit).await
}

/// `GET /api/search?streams=a,b&q=…[&order=…][&limit=N][&before=ID:C|&after=ID:C]`: the
/// streams are searched one after another, in the order named; each event says which stream
/// it is about, and cursors are composite (`ID:C`). `before`/`after` (only as `done.next`
/// gives them) continue from that stream's cursor and go on with the streams after it.
pub(super) async fn multi(
    State(app): State<AppState>,
    cap: StreamCap,
    headers: HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    let Some(resume) = resume(&headers) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let params = params(p)?;
    let ids = super::pages::stream_ids(&params, "search")?;
    let (query, order, limit) = common(&params)?;
    let bound = match order {
        Order::Newest => "before",
        Order::Oldest => "after",
    };
    let other = if bound == "before" { "after" } else { "before" };
    if params.contains_key(other) {
        return Err(ApiError::BadRequest(format!(
            "with `streams`, only `{bound}` (from `done.next`) bounds an `order={}` search",
            if bound == "before" {
                "newest"
            } else {
                "oldest"
            }
        )));
    }
    let from = match resume.or(params.get(bound).map(String::as_str)) {
        None => None,
        Some(v) => {
            let (id, c) = v.rsplit_once(':').ok_or_else(|| {
                ApiError::BadRequest(format!("`{bound}` must be `STREAM:CURSOR`"))
            })?;
            let at = ids.iter().position(|i| i == id).ok_or_else(|| {
                ApiError::BadRequest(format!("`{bound}` names a stream not in `streams`"))
            })?;
            Some((at, cursor(bound, c)?))
        }
    };
    let skip = from.map_or(0, |(at, _)| at);
    let mut parts = Vec::with_capacity(ids.len());
    for (k, id) in ids.iter().enumerate().skip(skip) {
        let c = from.filter(|_| k == skip).map(|(_, c)| c);
        parts.push(Part {
            tag: Some(id.clone()),
            stream: stream(&app, id)?,
            before: c.filter(|_| order == Order::Newest),
            after: c.filter(|_| order == Order::Oldest),
        });
    }
    respond(app, cap, parts, query, order, limit).await
}

/// The `Last-Event-ID` to go on from: `None` when it is `end` (the search was done: per the
/// SSE rules, a 204 stops the browser reconnecting), `Some(None)` when there is none.
fn resume(headers: &HeaderMap) -> Option<Option<&str>> {
    let id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    (id != Some("end")).then_some(id)
}

/// `q`, `order` and `limit`.
fn common(
    params: &std::collections::HashMap<String, String>,
) -> Result<(Arc<crate::query::Query>, Order, usize), ApiError> {
    let query = filter::from_params(params)?
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
    Ok((query, order, limit))
}

/// One stream's share of a search.
struct Part {
    /// The stream's id in events, when several are searched.
    tag: Option<String>,
    stream: Arc<crate::stream::Stream>,
    before: Option<crate::stream::Cursor>,
    after: Option<crate::stream::Cursor>,
}

/// Runs the parts one after another on a blocking thread (one permit, one `limit` for all)
/// and answers with their events.
async fn respond(
    app: AppState,
    cap: StreamCap,
    parts: Vec<Part>,
    query: Arc<crate::query::Query>,
    order: Order,
    limit: usize,
) -> Result<Response, ApiError> {
    let slot = cap.admit(StreamKind::Sse)?;
    let permit = app.searches.clone().try_acquire_owned().map_err(|_| {
        ApiError::Busy("as many searches as allowed are running; try again later".into())
    })?;
    let token = app.shutdown.child_token();
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, search::SearchError>>(8);
    let handle = tokio::runtime::Handle::current();
    let scan_token = token.clone();
    let search_bytes = app.metrics.search_bytes.clone();
    tokio::task::spawn_blocking(move || {
        let mut permit = Some(permit);
        let send = |item| {
            handle
                .block_on(tokio::time::timeout(STALL, tx.send(item)))
                .is_ok_and(|sent| sent.is_ok())
        };
        // Totals over the parts done so far; `counted` is what `/metrics` has been told.
        let (mut matches, mut scanned, mut counted) = (0usize, 0u64, 0u64);
        let mut next = None;
        for part in &parts {
            let request = Request {
                query: query.clone(),
                order,
                limit: limit - matches,
                before: part.before,
                after: part.after,
            };
            let tag = part.tag.as_deref();
            let mut ended = None;
            let base = scanned;
            let mut emit = |event: Event| {
                if let Event::Progress { scanned: s, .. } | Event::Done { scanned: s, .. } = event {
                    search_bytes.inc_by((base + s).saturating_sub(counted));
                    counted = counted.max(base + s);
                }
                match event {
                    Event::Done {
                        matches,
                        scanned,
                        next,
                    } => {
                        ended = Some((matches, scanned, next));
                        true
                    }
                    Event::Progress { scanned, total } => send(Ok(encode(
                        &Event::Progress {
                            scanned: base + scanned,
                            total: base + total,
                        },
                        tag,
                    ))),
                    entries @ Event::Entries(_) => send(Ok(encode(&entries, tag))),
                }
            };
            if let Err(e) = search::run(&part.stream, &request, &scan_token, &mut emit) {
                send(Err(e));
                return;
            }
            // No `done`: cancelled, or the client went away.
            let Some((m, s, n)) = ended else {
                return;
            };
            matches += m;
            scanned += s;
            if let Some(n) = n {
                next = Some(match tag {
                    Some(id) => format!("{id}:{n}"),
                    None => n.to_string(),
                });
                break;
            }
        }
        // Free the permit before the client hears `done`, so that its next search (the
        // following page) is never refused for this one.
        permit.take();
        send(Ok(done(matches, scanned, next.as_deref())));
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
/// continuation a reconnect starts from; `ID:C` with a `tag`, which the data names as
/// `"stream"` too).
fn encode(event: &Event, tag: Option<&str>) -> Bytes {
    let mut out = BytesMut::new();
    let stream = tag.map(|t| format!("\"stream\":{},", serde_json::Value::from(t)));
    let stream = stream.as_deref().unwrap_or_default();
    match event {
        Event::Entries(entries) => {
            out.put_slice(b"event: entries\n");
            if let Some(last) = entries.last() {
                let id = match tag {
                    Some(t) => format!("{t}:{}", last.cursor),
                    None => last.cursor.to_string(),
                };
                out.put_slice(format!("id: {id}\n").as_bytes());
            }
            out.put_slice(format!("data: {{{stream}\"entries\":[").as_bytes());
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
                format!(
                    "event: progress\ndata: {{{stream}\"scanned\":{scanned},\"total\":{total}}}\n\n"
                )
                .as_bytes(),
            );
        }
        Event::Done {
            matches,
            scanned,
            next,
        } => return done(*matches, *scanned, next.map(|c| c.to_string()).as_deref()),
    }
    out.freeze()
}

/// The `done` event: `next` is the cursor to go on from (`ID:C` for several streams).
fn done(matches: usize, scanned: u64, next: Option<&str>) -> Bytes {
    let next = next.map_or_else(|| "null".to_owned(), |c| format!("\"{c}\""));
    Bytes::from(format!(
        "event: done\nid: end\ndata: {{\"matches\":{matches},\"scanned\":{scanned},\"next\":{next}}}\n\n"
    ))
}

/// The cap on concurrent searches, for `AppState`.
pub(super) fn searches(max: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(max.max(1)))
}
