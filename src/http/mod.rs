//! The HTTP side: the router, the JSON/SSE/plain-text API, the page, and the accept loop.
//!
//! [`router`] builds the whole application from an [`AppState`] and can be tested without a
//! socket. Every request passes, outermost first: `headers` (security headers on whatever
//! answers), `guard::check` (no body, allowed `Host`, same `Origin`), `auth::require`,
//! `guard::streams` (per-address stream cap), then the handler. [`serve`] is the accept loop:
//! it caps connections, runs the TLS handshake, bounds how long a client may take to send its
//! first request head (and every later one), and on shutdown stops accepting, asks every
//! connection to finish, and waits for them up to a deadline. Streaming bodies end themselves
//! on the same token, so graceful shutdown never waits on an open SSE stream.

mod api;
mod assets;
pub mod auth;
mod error;
mod grep;
pub mod guard;
mod headers;
mod params;
mod sse;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::Request as HttpRequest;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::Config;
use crate::sources::Sources;

pub use error::ApiError;
pub use headers::{CSP, HSTS};

/// Default of `--header-timeout`: how long a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most header fields in one HTTP/1 request; more get 431.
pub const MAX_HEADERS: usize = 100;
/// Most concurrent streams on one HTTP/2 connection.
pub const MAX_H2_STREAMS: u32 = 128;
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
    /// Authentication, when it is on.
    pub(crate) auth: Option<Arc<auth::Authenticator>>,
    /// Open streams per client address.
    pub(crate) streams: Arc<guard::Streams>,
    /// Notified every [`KEEP_ALIVE_TICK`] by [`keep_alive_ticker`]: one timer for every open
    /// stream, instead of a timer armed and disarmed per client per event.
    pub keep_alive: Arc<Notify>,
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
        let auth = auth::Authenticator::new(&config.auth, config.tls.is_some()).map(Arc::new);
        Self {
            sources,
            config,
            shutdown,
            long_polls,
            auth,
            streams: Arc::default(),
            keep_alive: Arc::default(),
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
        .method_not_allowed_fallback(|| async {
            error::json_error(StatusCode::METHOD_NOT_ALLOWED, "only GET is served")
        })
        .layer(from_fn_with_state(state.clone(), guard::streams))
        .layer(from_fn_with_state(state.clone(), auth::require))
        .layer(from_fn_with_state(state.clone(), guard::check))
        .layer(from_fn_with_state(state.clone(), headers::security))
        .with_state(state)
}

/// Accepts connections on `listener` and serves `app` until `shutdown` is cancelled, then
/// waits for open connections up to [`SHUTDOWN_DEADLINE`]. Limits and TLS come from `config`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &Config,
    shutdown: CancellationToken,
) {
    if let Ok(local) = listener.local_addr() {
        if !local.ip().is_loopback() && !config.auth.is_on() {
            tracing::warn!(
                "serving {local} without authentication (--public-without-auth): anyone who \
                 can reach this address can read every followed log"
            );
        }
    }
    let header_timeout = config.header_timeout;
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(config.max_header_bytes)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_H2_STREAMS)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
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
            // Under TLS a plain-text answer would be noise to the client: just close.
            if tls.is_none() {
                connections.spawn(refuse(tcp));
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok();
        let started = Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let service =
            app.clone()
                .map_request(move |mut req: HttpRequest<hyper::body::Incoming>| {
                    seen.store(true, Ordering::Relaxed);
                    req.extensions_mut().insert(ConnectInfo(peer));
                    if let Some(local) = local {
                        req.extensions_mut().insert(guard::LocalAddr(local));
                    }
                    req
                });
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            // The handshake and the first request head share one deadline: hyper's header
            // timeout starts only once it knows the protocol, and a client that sends nothing
            // (or half an HTTP/2 preface) must not hold a connection forever.
            let deadline = tokio::time::Instant::now() + header_timeout;
            let io: Box<dyn Io> = match tls {
                Some(tls) => match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => Box::new(stream),
                    _ => return,
                },
                None => Box::new(tcp),
            };
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(io),
                TowerToHyperService::new(service),
            );
            tokio::pin!(conn);
            let first = tokio::time::sleep_until(deadline);
            tokio::pin!(first);
            let mut waiting_first = true;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    () = &mut first, if waiting_first => {
                        if !started.load(Ordering::Relaxed) {
                            break;
                        }
                        waiting_first = false;
                    }
                    () = shutdown.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                        break;
                    }
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

/// A connection's byte stream: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Most connections waiting to be accepted. A storm of thousands of clients connecting at once
/// overflows tokio's default of 1,024, and a dropped SYN is retried only after a second.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener on `addr` with [`LISTEN_BACKLOG`] (the kernel caps it at `somaxconn`).
///
/// # Errors
/// Fails when the address cannot be bound (in use, not local, no permission).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut tcp: tokio::net::TcpStream) {
    const BODY: &str = "{\"error\":\"too many connections\"}";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         content-security-policy: {CSP}\r\nx-content-type-options: nosniff\r\n\
         cache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
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
