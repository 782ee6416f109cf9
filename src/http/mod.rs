//! The HTTP side: the router, the JSON/SSE/plain-text API, the page, and the accept loop.
//!
//! [`router`] builds the whole application from an [`AppState`] and can be tested without a
//! socket. [`serve`] is the accept loop: it caps connections, bounds how long a client may take
//! to send its headers, and on shutdown stops accepting, asks every connection to finish, and
//! waits for them up to a deadline. Streaming bodies end themselves on the same token, so
//! graceful shutdown never waits on an open SSE stream.

mod api;
mod assets;
mod error;
mod headers;
mod params;
mod sse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::Request as HttpRequest;
use axum::http::StatusCode;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::Config;
use crate::sources::Sources;

pub use error::ApiError;
pub use headers::CSP;

/// How long a client may take to send a request's headers before the connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections to finish.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(1500);

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
}

impl AppState {
    /// State for a server over `sources`.
    pub fn new(sources: Arc<Sources>, config: Arc<Config>, shutdown: CancellationToken) -> Self {
        let long_polls = Arc::new(Semaphore::new(config.max_long_polls));
        Self {
            sources,
            config,
            shutdown,
            long_polls,
        }
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/{file}", get(assets::file))
        .route("/api/streams", get(api::list))
        .route("/api/streams/{id}/lines", get(api::lines))
        .route("/api/streams/{id}/events", get(sse::events))
        .route("/api/streams/{id}/raw", get(api::raw))
        .route("/api/events", get(sse::multiplexed))
        .fallback(|| async { error::json_error(StatusCode::NOT_FOUND, "no such path") })
        .layer(axum::middleware::from_fn(headers::security))
        .with_state(state)
}

/// Accepts connections on `listener` and serves `app` until `shutdown` is cancelled, then
/// waits for open connections up to [`SHUTDOWN_DEADLINE`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            connections.spawn(refuse(tcp));
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let service =
            app.clone()
                .map_request(move |mut req: HttpRequest<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                });
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(tcp),
                TowerToHyperService::new(service),
            );
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
    connections.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open at the shutdown deadline were dropped");
    }
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut tcp: tokio::net::TcpStream) {
    const BODY: &str = "{\"error\":\"too many connections\"}";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(response.as_bytes())).await;
}

/// The address the request came from, when served by [`serve`].
pub fn peer(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
