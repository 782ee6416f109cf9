//! Reading a stream for a client, the one path every endpoint uses: JSON pages (`/lines`),
//! plain text (`/raw`) and SSE events all read "entries after/before cursor C" through
//! [`read_page`] and wait for new ones through [`wait_for_page`], and encode pages from
//! entries encoded once ([`page_json`], [`plain`]).
//!
//! A read is answered from memory when it can be, and moves to a blocking thread only when
//! history must come from disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Query as QueryParams;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::AppState;
use super::error::ApiError;
use crate::stream::{Cursor, Page, Query, Stream};

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

/// Reads a page, from memory when possible, else on a blocking thread.
///
/// # Errors
/// Only if the read itself panicked (a bug), reported as an internal error.
pub(super) async fn read_page(
    stream: &Arc<Stream>,
    query: Query,
    limit: usize,
) -> Result<Page, ApiError> {
    let chained = stream.rotated().is_some();
    if let (Query::After(c) | Query::Before(c), true) = (&query, chained) {
        if stream.let_go(c).is_some() {
            // A cursor into a generation the stream let go: its text may be in a rotated
            // file now, and the cursor is read there.
            let chain = chain(stream).await?;
            let s = stream.clone();
            let read = tokio::task::spawn_blocking(move || {
                let moved = crate::history::rebind(&s, &chain, &query)?;
                Some(crate::history::read(&s, &chain, &moved, limit))
            });
            if let Some(page) = read.await.map_err(|e| history_failed(&e))? {
                return Ok(page);
            }
        }
    }
    if chained && crate::history::involves(&query) {
        // A cursor into a rotated file: the chain answers (`history`).
        let chain = chain(stream).await?;
        let s = stream.clone();
        return tokio::task::spawn_blocking(move || {
            crate::history::read(&s, &chain, &query, limit)
        })
        .await
        .map_err(|e| history_failed(&e));
    }
    let page = match stream.read_cached(&query, limit) {
        Some(page) => page,
        None => {
            let s = stream.clone();
            tokio::task::spawn_blocking(move || s.read(&query, limit))
                .await
                .map_err(|e| ApiError::Internal(format!("reading history: {e}")))?
        }
    };
    if chained && page.prev.is_none() && !matches!(query, Query::After(_)) {
        // The stream's own history starts here; older history is in its rotated files
        // (looked for once for every reader arriving together; none: nothing to read).
        let chain = chain(stream).await?;
        if chain.links.is_empty() {
            return Ok(page);
        }
        let s = stream.clone();
        return tokio::task::spawn_blocking(move || {
            crate::history::extend_back(&s, &chain, page, limit)
        })
        .await
        .map_err(|e| history_failed(&e));
    }
    Ok(page)
}

/// What [`read_page`] answers for `Query::After(after)` when that answer comes from the
/// stream's cache alone, without waiting: `None` when it needs the disk or rotated history.
pub(super) fn cached_after(stream: &Stream, after: Cursor, limit: usize) -> Option<Page> {
    let query = Query::After(after);
    if stream.rotated().is_some()
        && (stream.let_go(&after).is_some() || crate::history::involves(&query))
    {
        return None;
    }
    stream.read_cached(&query, limit)
}

/// The chain of `stream`'s rotated files, as fresh as a look started now (`history::found`).
pub(super) async fn chain(stream: &Arc<Stream>) -> Result<crate::history::Chain, ApiError> {
    let found = crate::history::found(stream)
        .await
        .map_err(|e| history_failed(&e))?;
    Ok(crate::history::chain_of(stream, &found))
}

fn history_failed(e: &tokio::task::JoinError) -> ApiError {
    ApiError::Internal(format!("reading rotated history: {e}"))
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

/// The entries as plain text, one line each.
pub(super) fn plain(page: &Page) -> Bytes {
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
