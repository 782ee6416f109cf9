//! Several files (or views) of a hub read as one: the merged pages of `/api/lines?streams=`
//! and the `order=time` SSE merge (`sse.rs`), both the standalone code (`http/pages.rs`,
//! `http/merge.rs`) reading each stream through its view.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use tokio::sync::watch;

use super::distinct_targets;
use crate::engine::names::Target;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::merge::Source;
use crate::http::read::{Params, params};
use crate::hub::{Hub, View};
use crate::stream::{Cursor, Page, Query};

/// `GET /api/lines?streams=a,b[&after=…|&before=…|&last=N][&limit=N][&q=…][&wait=S]`: the
/// files merged by event time, as on a standalone server.
pub(in crate::http) async fn lines(
    State(app): State<AppState>,
    Extension(hub): Extension<Arc<Hub>>,
    p: Params,
) -> Result<Response, ApiError> {
    let params = params(p)?;
    let ids = crate::http::pages::stream_ids(&params, "request")?;
    let sources = distinct_targets(&hub, &ids)
        .await?
        .iter()
        .map(|t| ViewSource::new(&hub, t))
        .collect::<Vec<_>>();
    crate::http::pages::answer(&app, &params, ids, &sources).await
}

/// A hub's view as a merge reads it: live reads from the view's cache (waiting for its
/// tail like any live reader), history from the engine.
pub(super) struct ViewSource {
    hub: Arc<Hub>,
    view: Arc<View>,
    /// Keeps the view (and its one engine reader) alive while the merge reads it.
    changed: watch::Receiver<u64>,
}

impl ViewSource {
    /// The view of `target` (created, with its tail, on first use).
    pub(super) fn new(hub: &Arc<Hub>, target: &Target) -> Self {
        let (view, changed) = hub.view(target);
        Self {
            hub: hub.clone(),
            view,
            changed,
        }
    }
}

impl Source for ViewSource {
    fn changes(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    async fn read(&self, query: Query, limit: usize) -> Result<Page, ApiError> {
        let target = self.view.target();
        Ok(match query {
            Query::After(c) => self.hub.read_after(&self.view, c, limit).await?,
            Query::Before(c) => self.hub.before(target, Some(c), limit).await?,
            Query::Last(n) => self.hub.before(target, None, n.min(limit)).await?,
        })
    }

    async fn live(&self, after: Cursor, limit: usize) -> Result<Page, ApiError> {
        Ok(self.hub.read_waiting(&self.view, after, limit).await?)
    }
}
