//! What a hub answers before it has its engine (`crate::run_hub`). A hub waits for its engine
//! and for the stream the agents create, which may take as long as the first agent takes to
//! start; its listeners are served from the start all the same, so a client or a probe is
//! answered rather than left on a connection that hangs: `/healthz` is `200` (the process is
//! alive), `/readyz` is `503`, and every other URL a `503` whose JSON says why, each with
//! `Retry-After: 1` and the security headers. Once the hub is open, each request goes to its
//! own router, which answers exactly as if it had been served from the start.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, RETRY_AFTER, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::IntoResponse;
use tower::ServiceExt;

use super::error::ApiError;
use super::headers::CSP;
use super::health;

/// The router to hand requests to, set once the hub is open.
pub type Ready = Arc<OnceLock<Router>>;

/// A router for a hub's listener: [`Ready`]'s router once set, the answers above until then.
/// `base_path` is the configured `--base-path` (the probes live under it).
pub fn until_ready(ready: Ready, base_path: &str) -> Router {
    let base: Arc<str> = base_path.trim_end_matches('/').into();
    Router::new().fallback(move |req: Request| {
        let (ready, base) = (ready.clone(), base.clone());
        async move {
            if let Some(app) = ready.get() {
                return match app.clone().oneshot(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
            }
            let mut response = match req.uri().path().strip_prefix(&*base) {
                Some("/healthz") => health::live().await,
                Some("/readyz") => health::waiting_for_engine(),
                _ => ApiError::Busy(
                    "the hub is waiting for its engine (or for the stream its agents create); \
                     try again shortly"
                        .into(),
                )
                .into_response(),
            };
            // The hub's own layers are not built yet: the headers every answer carries.
            let headers = response.headers_mut();
            headers.insert(RETRY_AFTER, HeaderValue::from(1));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            response
        }
    })
}
