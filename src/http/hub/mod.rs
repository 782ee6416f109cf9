//! The hub's endpoints: the same contract as standalone (`/api/streams`, `/lines` with
//! `after`/`before`/`last`/`at` and long polls, `/raw`, SSE with `Last-Event-ID`, the
//! multiplexed `/api/events`, `q=`, `/metrics` and the probes), read from the engine through
//! [`Hub`] instead of from local streams. Ids are `host~file` and views `*~file`, `host~*`,
//! `*~*`. Parameters, page encoding, filters (`q`, `grep`), time ranges (`at`, `until`),
//! downloads, errors and every layer (guard, auth, headers, caps) are the standalone ones;
//! live reads go through the target's view (`hub/view.rs`), so viewers cost the engine
//! nothing while the hub's cache covers them. An id the hub does not know (no agent announces
//! it, the engine holds none of its entries) is a `404`, as on a standalone server.

mod merged;
mod metrics;
mod sse;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::AppState;
use super::at::{Range, Resolved};
use super::download;
use super::error::ApiError;
use super::filter::{self, Filter};
use super::grep::Grep;
use super::metrics::StreamKind;
use super::params::{DEFAULT_LIMIT, Selection, selection};
use super::read::{Params, json, page_json, params, plain};
use super::streams::{Slot, StreamCap};
use crate::engine::names::Target;
use crate::hub::{Hub, ReadError};
use crate::stream::{Cursor, Page, Query};

pub(super) use merged::lines as merged_lines;
pub(super) use sse::{events, multiplexed};

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        Self::Busy(e.to_string())
    }
}

/// The targets of several ids read as one (a multiplexed or merged read), each known, none
/// covering a file another covers too: that file's entries would come twice, or a merge would
/// take one side's position for the other's.
async fn distinct_targets(hub: &Hub, ids: &[String]) -> Result<Vec<Target>, ApiError> {
    let mut targets = Vec::with_capacity(ids.len());
    for id in ids {
        targets.push(target(hub, id).await?);
    }
    for (i, a) in targets.iter().enumerate() {
        if let Some(j) = targets[..i].iter().position(|b| b.overlaps(a)) {
            return Err(ApiError::BadRequest(format!(
                "`{}` and `{}` overlap (a view covers the other's files): name each file once",
                ids[j], ids[i]
            )));
        }
    }
    Ok(targets)
}

/// The file or view `id` names, when the hub knows it: a `404` otherwise, as a standalone
/// server's unknown stream. A file an agent announces but has not published yet (say, a
/// path that does not exist yet: `waiting`) is known, and a long poll on it waits for its
/// entries, as a standalone server's poll waits for a missing file (`Hub::knows`).
async fn target(hub: &Hub, id: &str) -> Result<Target, ApiError> {
    let target = Target::parse(id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no stream `{id}` (a hub's ids are HOST~FILE, with `*` for either side)"
        ))
    })?;
    if !hub.knows(&target).await? {
        return Err(ApiError::NotFound(format!(
            "no stream `{id}` (no agent announces it and the engine holds none of its entries)"
        )));
    }
    Ok(target)
}

/// The selection of a request, with `at=` and `until=` (the standalone parameters and
/// checks, `http/at.rs`) resolved against the engine's store times: `at` becomes a start
/// point, `until` an end the page is cut at (`Resolved::cut`).
async fn select(
    app: &AppState,
    hub: &Hub,
    params: &std::collections::HashMap<String, String>,
) -> Result<(Selection, Option<Resolved>), ApiError> {
    let mut sel = selection(params, None, app.config.default_lines)?;
    let range = Range::from_params(params)?;
    if range.at.is_none() && range.until.is_none() {
        return Ok((sel, None));
    }
    let mut resolved = Resolved::default();
    if let Some(ms) = range.at {
        let (start, _) = hub.seek_time(ms).await?;
        sel.query = Query::After(start);
        resolved.start = Some(sel.query);
    }
    if let Some(ms) = range.until {
        let (end, found) = hub.seek_time(ms).await?;
        resolved.end = found.then_some(end);
    }
    Ok((sel, Some(resolved)))
}

/// The first page of a request: live positions through the view, history from the engine;
/// filtered by `q`, then `grep` (its `next` stays the last entry examined, so a resume is
/// exact).
async fn first_page(
    hub: &Arc<Hub>,
    target: &Target,
    sel: &Selection,
    q: Option<&Filter>,
    grep: Option<&Grep>,
) -> Result<Page, ApiError> {
    let mut page = match sel.query {
        Query::After(c) => {
            let (view, _) = hub.view(target);
            hub.read_after(&view, c, sel.limit).await?
        }
        Query::Before(c) => hub.before(target, Some(c), sel.limit).await?,
        Query::Last(n) => hub.before(target, None, n).await?,
    };
    keep(&mut page, q, grep);
    Ok(page)
}

/// Drops the entries `q` and then `grep` do not keep, as a standalone server does.
fn keep(page: &mut Page, q: Option<&Filter>, grep: Option<&Grep>) {
    if let Some(q) = q {
        filter::apply(q, page);
    }
    if let Some(g) = grep {
        g.apply(page);
    }
}

/// Waits for entries after `after` that pass `q` and `grep` until `deadline` (`None`: no
/// deadline) or shutdown; `Ok(None)` when none came. Entries the filters drop move the
/// cursor on; the last position examined is in `at`.
async fn wait(
    app: &AppState,
    hub: &Arc<Hub>,
    target: &Target,
    at: &mut Cursor,
    (q, grep): (Option<&Filter>, Option<&Grep>),
    deadline: Option<Instant>,
) -> Result<Option<Page>, ApiError> {
    let (view, mut changed) = hub.view(target);
    let far = Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600);
    loop {
        // Marked seen before reading: entries appended meanwhile still wake us.
        changed.borrow_and_update();
        let mut page = hub.read_waiting(&view, *at, DEFAULT_LIMIT).await?;
        *at = page.next;
        keep(&mut page, q, grep);
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
    let target = target(&hub, &id).await?;
    let params = params(p)?;
    let download = download::disposition(&params, &id, "json")?;
    let q = filter::from_params(&params)?;
    let grep = Grep::from_params(&params)?;
    let (sel, range) = select(&app, &hub, &params).await?;
    let mut page = first_page(&hub, &target, &sel, q.as_ref(), grep.as_ref()).await?;
    if let Some(r) = &range {
        r.cut(&mut page);
    }
    // A bounded range (`until`) never waits for more, as on a standalone server.
    let waits = range.is_none_or(|r| r.end.is_none());
    if matches!(sel.query, Query::After(_))
        && page.entries.is_empty()
        && !sel.wait.is_zero()
        && waits
    {
        let _permit =
            app.long_polls.clone().try_acquire_owned().map_err(|_| {
                ApiError::Busy("too many long polls are held; try again later".into())
            })?;
        let deadline = Instant::now() + sel.wait;
        let mut at = page.next;
        let filters = (q.as_ref(), grep.as_ref());
        match wait(&app, &hub, &target, &mut at, filters, Some(deadline)).await? {
            Some(more) => page = more,
            // With a filter, what was examined meanwhile is not examined again.
            None => page.next = at,
        }
    }
    Ok(download::attach(
        json(page_json(&page, None).freeze()),
        download,
    ))
}

/// `GET /api/streams/{id}/raw`: the entries as plain text; with `follow=1`, streamed.
pub(super) async fn raw(
    State(app): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    Path(id): Path<String>,
    cap: StreamCap,
    p: Params,
) -> Result<Response, ApiError> {
    let target = target(&hub, &id).await?;
    let params = params(p)?;
    let download = download::disposition(&params, &id, "log")?;
    let q = filter::from_params(&params)?;
    let grep = Grep::from_params(&params)?;
    let (sel, range) = select(&app, &hub, &params).await?;
    let slot = sel.follow.then(|| cap.admit(StreamKind::Raw)).transpose()?;
    let mut page = first_page(&hub, &target, &sel, q.as_ref(), grep.as_ref()).await?;
    if let Some(r) = &range {
        r.cut(&mut page);
    }
    let body = match slot {
        Some(slot) => {
            let first = plain(&page);
            let follow = RawFollow {
                app,
                hub,
                target,
                next: page.next,
                q,
                grep,
                _slot: slot,
            };
            let rest = futures_util::stream::unfold(follow, |mut follow| async move {
                let chunk = follow.next_chunk().await?;
                Some((Ok::<_, Infallible>(chunk), follow))
            });
            Body::from_stream(futures_util::stream::once(async { Ok(first) }).chain(rest))
        }
        None => Body::from(plain(&page)),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(download::attach(response, download))
}

/// The state of one `raw?follow` response.
struct RawFollow {
    app: AppState,
    hub: Arc<Hub>,
    target: Target,
    /// The last entry examined.
    next: Cursor,
    q: Option<Filter>,
    grep: Option<Grep>,
    /// This response's place under the per-address cap, held while the body lives.
    _slot: Slot,
}

impl RawFollow {
    /// The next lines that pass the filter; `None` ends the response (shutdown, or the
    /// engine failing: the client reconnects).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let waited = wait(
            &self.app,
            &self.hub,
            &self.target,
            &mut self.next,
            (self.q.as_ref(), self.grep.as_ref()),
            None,
        )
        .await;
        match waited {
            Ok(page) => page.map(|p| plain(&p)),
            Err(e) => {
                e.end_stream();
                None
            }
        }
    }
}

impl AppState {
    /// A hub's state: the standalone one, whose `/metrics` also reports the hub's work
    /// against the engine.
    pub fn for_hub(
        sources: Arc<crate::sources::Sources>,
        config: Arc<crate::config::Config>,
        shutdown: tokio_util::sync::CancellationToken,
        hub: &Arc<Hub>,
    ) -> Self {
        let mut state = Self::new(sources, config, shutdown);
        Arc::get_mut(&mut state.metrics)
            .expect("a new state's metrics are not shared yet")
            .register(Box::new(metrics::EngineFigures(hub.clone())));
        state
    }
}
