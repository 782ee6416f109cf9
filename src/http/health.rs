//! Probes for load balancers and orchestrators: `GET /healthz` (liveness) and `GET /readyz`
//! (readiness). Both answer without authentication and reveal nothing about the logs: a
//! fixed word, `text/plain`. They still pass the guard (`Host`, `Origin`), which costs a
//! probe nothing, and live under `--base-path` like every other URL.
//!
//! Readiness means every configured source has been set up: [`crate::run`] starts the accept
//! loop only after [`crate::Sources::start`] has created each stream and taken a first look
//! at its file (a missing file is a stream in state `waiting`, which is ready: it is shown and
//! followed once it appears). A server draining for shutdown is not ready (`503`), so a load
//! balancer stops sending it new clients while its open streams end.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `GET /healthz`: the process serves requests.
pub(super) async fn live() -> Response {
    plain(StatusCode::OK, "ok\n")
}

/// `GET /readyz`: sources set up and not shutting down; on a hub, also connected to the
/// engine (a hub that lost it can serve nothing new, so a load balancer should send
/// clients to another).
pub(super) async fn ready(
    State(app): State<AppState>,
    hub: Option<Extension<Arc<crate::hub::Hub>>>,
) -> Response {
    if app.shutdown.is_cancelled() {
        plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else if hub.is_some_and(|Extension(h)| !h.engine_up()) {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine is not reachable\n",
        )
    } else {
        plain(StatusCode::OK, "ready\n")
    }
}

/// `/readyz` of a hub that has not reached its engine yet (`starting.rs`).
pub(super) fn waiting_for_engine() -> Response {
    plain(StatusCode::SERVICE_UNAVAILABLE, "waiting for the engine\n")
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
