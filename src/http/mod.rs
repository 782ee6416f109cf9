//! The HTTP side: the router, the JSON/SSE/plain-text API, the page, and the accept loop.
//!
//! [`router`] builds the whole application from an [`AppState`] and can be tested without a
//! socket. Every request passes, outermost first: under `--base-path`, `base::strip` (the
//! prefix off, or 404/308); `headers` (security headers on whatever answers), `guard::check`
//! (no body, allowed `Host`, same `Origin`), `auth::require` (all but the probes of
//! `health.rs`, which reveal nothing), then the handler; handlers that open a stream take a place under the per-address cap (`streams`).
//! Every refusal is an [`ApiError`] (`error.rs`, the one table from refusal to status). All
//! endpoints read through `read.rs`. [`serve`] (`accept.rs`) is the accept loop. Streaming
//! bodies end themselves on the shutdown token, so graceful shutdown never waits on an open
//! SSE stream.

mod accept;
pub mod activation;
mod api;
mod assets;
mod at;
mod auth;
mod base;
mod chunked;
mod composite;
mod compress;
mod detach;
mod download;
mod edge;
mod error;
mod filter;
mod grep;
mod guard;
mod headers;
mod health;
mod hub;
mod late;
mod merge;
mod metrics;
mod pages;
mod params;
mod read;
mod search;
mod sse;
mod sse_answer;
mod sse_wake;
pub mod starting;
mod streams;
mod throttle;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::sources::Sources;

pub use accept::{
    HEADER_READ_TIMEOUT, LISTEN_BACKLOG, Listener, MAX_H2_STREAMS, MAX_HEADERS, SHUTDOWN_DEADLINE,
    UnixSocket, listen, listen_unix, serve,
};
pub use error::{ApiError, Challenge};
pub use headers::{CSP, HSTS};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The streams.
    pub sources: Arc<Sources>,
    /// The configuration.
    pub config: Arc<Config>,
    /// Cancelled when the server shuts down; streaming responses end on it.
    pub shutdown: CancellationToken,
    /// Permits for long polls held waiting.
    pub long_polls: Arc<Semaphore>,
    /// Authentication, when it is on.
    pub(crate) auth: Option<Arc<auth::Authenticator>>,
    /// Open streams per client address.
    pub(crate) streams: Arc<streams::Streams>,
    /// Notified every [`KEEP_ALIVE_TICK`] by [`keep_alive_ticker`]: one timer for every open
    /// stream, instead of a timer armed and disarmed per client per event.
    pub keep_alive: Arc<Notify>,
    /// What `/metrics` reports (`metrics.rs`).
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Permits for whole-history searches (`--max-searches`).
    pub(crate) searches: Arc<Semaphore>,
    /// SSE readers' wake-ups, relayed from an async worker (`sse_wake.rs`).
    pub(crate) sse_wake: Arc<sse_wake::Relays>,
}

/// How often every streaming response sends a keep-alive comment. An idle response wakes
/// only then, and the comment is a few bytes: cheaper than tracking what each one sent.
pub const KEEP_ALIVE_TICK: Duration = Duration::from_secs(15);

/// Wakes every streaming response each [`KEEP_ALIVE_TICK`] until `shutdown`.
pub async fn keep_alive_ticker(tick: Arc<Notify>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(KEEP_ALIVE_TICK);
    loop {
        tokio::select! {
            _ = interval.tick() => tick.notify_waiters(),
            () = shutdown.cancelled() => return,
        }
    }
}

impl AppState {
    /// State for a server over `sources`.
    pub fn new(sources: Arc<Sources>, config: Arc<Config>, shutdown: CancellationToken) -> Self {
        let long_polls = Arc::new(Semaphore::new(config.max_long_polls));
        let auth = auth::Authenticator::new(&config.auth, config.tls.is_some(), &config.base_path)
            .map(Arc::new);
        let mut metrics = metrics::Metrics::new();
        metrics.collect(sources.clone(), long_polls.clone(), config.max_long_polls);
        let metrics = Arc::new(metrics);
        let keep_alive = Arc::<Notify>::default();
        let sse_wake = Arc::new(sse_wake::Relays::new(keep_alive.clone(), shutdown.clone()));
        Self {
            searches: search::searches(config.max_searches),
            metrics,
            sources,
            config,
            shutdown,
            long_polls,
            auth,
            streams: Arc::default(),
            keep_alive,
            sse_wake,
        }
    }
}

/// The whole application, under `--base-path` when one is set (`base.rs`).
pub fn router(state: AppState) -> Router {
    let app = routes(state.clone());
    under_base(app, state)
}

/// A hub's application (`hub.rs`): its own reading routes, with every layer, the page and
/// the probes of [`router`].
pub fn hub_router(state: AppState, hub: std::sync::Arc<crate::hub::Hub>) -> Router {
    let reading = Router::new()
        .route("/", get(assets::index))
        .route("/{file}", get(assets::file))
        .route("/api/streams", get(hub::list))
        .route("/api/streams/{id}/lines", get(hub::lines))
        .route("/api/streams/{id}/events", get(hub::events))
        .route("/api/streams/{id}/raw", get(hub::raw))
        .route("/api/events", get(hub::multiplexed))
        .route("/api/lines", get(hub::merged_lines))
        .route("/metrics", get(metrics::scrape));
    // Outside every layer, so the probes see the hub too (`/readyz` asks about the engine).
    let app = layered(reading, state.clone()).layer(axum::Extension(hub));
    under_base(app, state)
}

fn under_base(app: Router, state: AppState) -> Router {
    if state.config.base_path == "/" {
        return app;
    }
    Router::new()
        .fallback_service(app)
        .layer(from_fn_with_state(state.clone(), base::strip))
        .layer(from_fn_with_state(state.clone(), headers::security))
        .with_state(state)
}

/// The application's routes, at the root.
fn routes(state: AppState) -> Router {
    let reading = Router::new()
        .route("/", get(assets::index))
        .route("/{file}", get(assets::file))
        .route("/api/streams", get(api::list))
        .route("/api/streams/{id}/lines", get(api::lines))
        .route("/api/streams/{id}/events", get(sse::events))
        .route("/api/streams/{id}/raw", get(api::raw))
        .route("/api/streams/{id}/search", get(search::search))
        .route("/api/search", get(search::multi))
        .route("/api/events", get(sse::multiplexed))
        .route("/api/lines", get(pages::lines))
        .route("/metrics", get(metrics::scrape));
    layered(reading, state)
}

/// Every layer of the module documentation around `reading`, plus the probes.
fn layered(reading: Router<AppState>, state: AppState) -> Router {
    reading
        .fallback(|| async { ApiError::NotFound("no such path".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(compress::gzip))
        .layer(from_fn_with_state(state.clone(), auth::require))
        .merge(probes())
        .layer(from_fn_with_state(state.clone(), guard::check))
        .layer(from_fn_with_state(state.clone(), headers::security))
        .with_state(state)
}

/// What `--metrics-bind`'s own listener serves, at its root whatever `--base-path` says:
/// `/metrics` and the probes, without authentication (whoever can reach that address was
/// chosen by the operator); the guard and the security headers still apply.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::scrape))
        .merge(probes())
        .fallback(|| async { ApiError::NotFound("no such path".into()) })
        .layer(from_fn_with_state(state.clone(), guard::check))
        .layer(from_fn_with_state(state.clone(), headers::security))
        .with_state(state)
}

/// A hub's [`metrics_router`]: its `/readyz` also asks about the engine.
pub fn hub_metrics_router(state: AppState, hub: std::sync::Arc<crate::hub::Hub>) -> Router {
    metrics_router(state).layer(axum::Extension(hub))
}

/// Routes that answer without authentication (`health.rs`): they reveal nothing.
fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
}

/// The address the request came from, when served by [`serve`].
pub fn peer(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
