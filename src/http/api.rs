//! JSON and plain-text endpoints: the stream list, `/lines` (reads and long polls), `/raw`.
//!
//! All of them read through [`super::read`], the path SSE uses too.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::AppState;
use super::at;
use super::detach::Detachable;
use super::download;
use super::error::ApiError;
use super::filter::{self, Filter, read_filtered};
use super::grep::Grep;
use super::metrics::StreamKind;
use super::params::{DEFAULT_LIMIT, Selection, selection};
use super::read::{Params, json, page_json, params, plain, read_page, stream, wait_for_page};
use super::streams::{Slot, StreamCap};
use crate::stream::{Cursor, Page, Query, Stream};

/// `GET /api/streams`.
pub(super) async fn list(State(app): State<AppState>) -> Response {
    let streams: Vec<_> = app.sources.list().iter().map(|s| s.summary()).collect();
    json(
        serde_json::to_vec(&serde_json::json!({ "streams": streams }))
            .unwrap_or_default()
            .into(),
    )
}

/// `GET /api/streams/{id}/lines`.
pub(super) async fn lines(
    State(app): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let stream = stream(&app, &id)?;
    let params = params(p)?;
    let mut sel = selection(&params, None, app.config.default_lines)?;
    let download = download::disposition(&params, &id, "json")?;
    let grep = Grep::from_params(&params)?;
    let q = filter::from_params(&params)?;
    let range = at::resolve(&stream, at::Range::from_params(&params)?).await?;
    if let Some(start) = range.and_then(|r| r.start) {
        sel.query = start;
    }
    let (mut page, mut scanned) = first_page(&stream, &sel, q.as_ref()).await?;
    filter(grep.as_ref(), &mut page);
    if let Some(r) = &range {
        r.cut(&mut page);
    }
    // A bounded range (`until`) never waits for more; a budget-cut scan answers at once.
    let waits = !scanned.is_some_and(|s| s.budget) && range.is_none_or(|r| r.end.is_none());
    if matches!(sel.query, Query::After(_))
        && !sel.wait.is_zero()
        && page.entries.is_empty()
        && waits
    {
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
            if let (Some(q), Some(scanned)) = (&q, &mut scanned) {
                scanned.count_page(&more);
                filter::apply(q, &mut more);
            }
            filter(grep.as_ref(), &mut more);
            page = more;
            if !page.entries.is_empty() {
                break;
            }
        }
    }
    let mut body = page_json(&page, None);
    if let Some(r) = &range {
        body.truncate(body.len() - 1);
        body.extend_from_slice(r.json().as_bytes());
        body.extend_from_slice(b"}");
    }
    if let Some(scanned) = scanned {
        // `{…}` becomes `{…,"scanned":{…}}`.
        body.truncate(body.len() - 1);
        body.extend_from_slice(scanned.json().as_bytes());
        body.extend_from_slice(b"}");
    }
    Ok(download::attach(json(body.into()), download))
}

/// The first page of a read: filtered by `q` (paging by matches) when given.
async fn first_page(
    stream: &Arc<Stream>,
    sel: &Selection,
    q: Option<&Filter>,
) -> Result<(Page, Option<filter::Scanned>), ApiError> {
    match q {
        Some(q) => {
            let (page, scanned) = read_filtered(stream, sel.query, sel.limit, q).await?;
            Ok((page, Some(scanned)))
        }
        None => Ok((read_page(stream, sel.query, sel.limit).await?, None)),
    }
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
    cap: StreamCap,
    p: Params,
) -> Result<Response, ApiError> {
    let stream = stream(&app, &id)?;
    let params = params(p)?;
    let mut sel: Selection = selection(&params, None, app.config.default_lines)?;
    let download = download::disposition(&params, &id, "log")?;
    let grep = Grep::from_params(&params)?;
    let q = filter::from_params(&params)?;
    let range = at::resolve(&stream, at::Range::from_params(&params)?).await?;
    if let Some(start) = range.and_then(|r| r.start) {
        sel.query = start;
    }
    let slot = sel.follow.then(|| cap.admit(StreamKind::Raw)).transpose()?;
    let (mut page, _) = first_page(&stream, &sel, q.as_ref()).await?;
    filter(grep.as_ref(), &mut page);
    if let Some(r) = &range {
        r.cut(&mut page);
    }
    let mut detachable = None;
    let body = match slot {
        Some(slot) => {
            let first = plain(&page);
            slot.lag()
                .track(std::slice::from_ref(&stream), &[page.next]);
            let follow = RawFollow {
                app,
                stream,
                next: page.next,
                grep,
                q,
                _slot: slot,
            };
            let rest = futures_util::stream::unfold(follow, |mut follow| async move {
                let chunk = follow.next_chunk().await?;
                Some((chunk, follow))
            });
            // Like SSE, a follow over plain HTTP/1.1 leaves hyper after its head
            // (`detach.rs`); gzip keeps it in hyper (`compress.rs`).
            let chunks = Detachable::new(Box::pin(futures_util::stream::iter([first]).chain(rest)));
            let body = chunks.body();
            detachable = Some(chunks);
            body
        }
        None => Body::from(plain(&page)),
    };
    let mut response = body.into_response();
    if let Some(detachable) = detachable {
        response.extensions_mut().insert(detachable);
    }
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
    Ok(download::attach(response, download))
}

/// The state of one `raw?follow` response.
struct RawFollow {
    app: AppState,
    stream: Arc<Stream>,
    /// The last entry sent.
    next: Cursor,
    grep: Option<Grep>,
    q: Option<Filter>,
    /// This response's place under the per-address cap, held while the body lives.
    _slot: Slot,
}

impl RawFollow {
    /// The next lines that pass the filter; `None` ends the response (shutdown, or an
    /// internal error, logged once).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            let (behind, past) = self.stream.entries_after(self.next);
            let waited = wait_for_page(
                &self.app,
                &self.stream,
                Query::After(self.next),
                DEFAULT_LIMIT,
                None,
            )
            .await;
            let mut page = match waited {
                Ok(page) => page?,
                Err(e) => {
                    e.end_stream();
                    return None;
                }
            };
            if let Some(q) = &self.q {
                filter::apply(q, &mut page);
            }
            filter(self.grep.as_ref(), &mut page);
            if behind == 0 && !past {
                // It had read everything and waited for these: not behind until now.
                self._slot.lag().caught_up();
            }
            self.next = page.next;
            self._slot.lag().moved(&[self.next]);
            if !page.entries.is_empty() {
                return Some(plain(&page));
            }
        }
    }
}
