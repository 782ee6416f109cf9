//! JSON and plain-text endpoints: the stream list, `/lines` (reads and long polls), `/raw`.
//!
//! All of them read through [`read_page`], which answers from memory when it can and moves to
//! a blocking thread only when history must come from disk; and long polls wait through
//! [`wait_for_page`], the same loop SSE uses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::AppState;
use super::error::ApiError;
use super::grep::Grep;
use super::params::{Selection, selection};
use crate::stream::{Page, Query, Stream};

/// `GET /api/streams`.
pub(super) async fn list(State(app): State<AppState>) -> Response {
    let streams: Vec<_> = app.sources.list().iter().map(|s| s.summary()).collect();
    json(
        serde_json::to_vec(&serde_json::json!({ "streams": streams }))
            .unwrap_or_default()
            .into(),
    )
}

/// Looks a stream up by id; only streams the command line named exist.
pub(super) fn stream(app: &AppState, id: &str) -> Result<Arc<Stream>, ApiError> {
    app.sources
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("no stream `{id}`")))
}

/// Query parameters, with the extractor's own rejection turned into our JSON 400.
pub(super) type Params =
    Result<QueryParams<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

pub(super) fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|QueryParams(p)| p)
        .map_err(|_| ApiError::BadRequest("the query string is not valid".into()))
}

/// `GET /api/streams/{id}/lines`.
pub(super) async fn lines(
    State(app): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let stream = stream(&app, &id)?;
    let params = params(p)?;
    let sel = selection(&params, None, app.config.default_lines)?;
    let grep = Grep::from_params(&params)?;
    let mut page = read_page(&stream, sel.query, sel.limit).await?;
    filter(grep.as_ref(), &mut page);
    if matches!(sel.query, Query::After(_)) && !sel.wait.is_zero() && page.entries.is_empty() {
        // Only requests that really wait hold a permit.
        let _permit =
            app.long_polls.clone().try_acquire_owned().map_err(|_| {
                ApiError::Busy("too many long polls are held; try again later".into())
            })?;
        let deadline = Instant::now() + sel.wait;
        // With a filter, entries that do not match move the cursor on and the wait goes on.
        while let Some(mut more) = wait_for_page(
            &app,
            &stream,
            Query::After(page.next),
            sel.limit,
            Some(deadline),
        )
        .await?
        {
            filter(grep.as_ref(), &mut more);
            page = more;
            if !page.entries.is_empty() {
                break;
            }
        }
    }
    Ok(json(page_json(&page, None).into()))
}

fn filter(grep: Option<&Grep>, page: &mut Page) {
    if let Some(g) = grep {
        g.apply(page);
    }
}

/// `GET /api/streams/{id}/raw`: the entries as plain text; with `follow=1`, streamed.
pub(super) async fn raw(
    State(app): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let stream = stream(&app, &id)?;
    let params = params(p)?;
    let sel: Selection = selection(&params, None, app.config.default_lines)?;
    let grep = Grep::from_params(&params)?;
    let mut page = read_page(&stream, sel.query, sel.limit).await?;
    filter(grep.as_ref(), &mut page);
    let body = if sel.follow {
        let first = plain(&page);
        let state = (app, stream, page.next, Some(first));
        let chunks = futures_util::stream::unfold(state, move |(app, stream, mut next, first)| {
            let grep = grep.clone();
            async move {
                if let Some(first) = first {
                    return Some((
                        Ok::<_, std::convert::Infallible>(first),
                        (app, stream, next, None),
                    ));
                }
                loop {
                    let mut page = wait_for_page(
                        &app,
                        &stream,
                        Query::After(next),
                        super::params::DEFAULT_LIMIT,
                        None,
                    )
                    .await
                    .ok()
                    .flatten()?;
                    filter(grep.as_ref(), &mut page);
                    next = page.next;
                    if !page.entries.is_empty() {
                        let chunk = plain(&page);
                        return Some((Ok(chunk), (app, stream, next, None)));
                    }
                }
            }
        });
        Body::from_stream(chunks)
    } else {
        Body::from(plain(&page))
    };
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Reads a page, from memory when possible, else on a blocking thread.
///
/// # Errors
/// Only if the read itself panicked (a bug), reported as an internal error.
pub(super) async fn read_page(
    stream: &Arc<Stream>,
    query: Query,
    limit: usize,
) -> Result<Page, ApiError> {
    if let Some(page) = stream.read_cached(&query, limit) {
        return Ok(page);
    }
    let s = stream.clone();
    tokio::task::spawn_blocking(move || s.read(&query, limit))
        .await
        .map_err(|e| ApiError::Internal(format!("reading history: {e}")))
}

/// Waits until entries after the query's cursor exist and returns them; `None` when the
/// deadline passes or the server shuts down first.
///
/// The receiver is marked seen *before* each read, so an append between the read and the
/// wait still wakes us: no lost wake-ups, no polling.
pub(super) async fn wait_for_page(
    app: &AppState,
    stream: &Arc<Stream>,
    query: Query,
    limit: usize,
    deadline: Option<Instant>,
) -> Result<Option<Page>, ApiError> {
    let mut changed = stream.subscribe();
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        changed.borrow_and_update();
        let page = read_page(stream, query, limit).await?;
        if !page.entries.is_empty() {
            return Ok(Some(page));
        }
        tokio::select! {
            res = changed.changed() => if res.is_err() { return Ok(None) },
            () = tokio::time::sleep_until(deadline.unwrap_or(far)) => return Ok(None),
            () = app.shutdown.cancelled() => return Ok(None),
        }
    }
}

/// `{"stream":…,"entries":[…],"next":…,"prev":…}`, from entries encoded once.
pub(super) fn page_json(page: &Page, stream: Option<&str>) -> BytesMut {
    let size: usize = page.entries.iter().map(|e| e.json.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 128);
    out.extend_from_slice(b"{");
    if let Some(id) = stream {
        out.extend_from_slice(b"\"stream\":");
        out.extend_from_slice(&serde_json::to_vec(id).unwrap_or_default());
        out.extend_from_slice(b",");
    }
    out.extend_from_slice(b"\"entries\":[");
    for (i, e) in page.entries.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",");
        }
        out.extend_from_slice(&e.json);
    }
    out.extend_from_slice(b"],\"next\":\"");
    out.extend_from_slice(page.next.to_string().as_bytes());
    out.extend_from_slice(b"\",\"prev\":");
    match page.prev {
        Some(prev) => {
            out.extend_from_slice(b"\"");
            out.extend_from_slice(prev.to_string().as_bytes());
            out.extend_from_slice(b"\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}");
    out
}

fn plain(page: &Page) -> Bytes {
    let mut out = BytesMut::new();
    for e in &page.entries {
        out.extend_from_slice(&e.line);
        out.extend_from_slice(b"\n");
    }
    out.freeze()
}

/// A JSON response that is never cached (log data).
pub(super) fn json(body: Bytes) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
