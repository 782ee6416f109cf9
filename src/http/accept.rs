//! The accept loop: connections under `--max-connections` (else a 503 written by hand), the
//! TLS handshake, hyper's HTTP/1 and HTTP/2 limits, and graceful shutdown with a deadline.
//!
//! The handshake and the first request head share one deadline (`--header-timeout`): hyper's
//! own header timeout starts only once it knows the protocol, and a client that sends nothing
//! (or half an HTTP/2 preface) must not hold a connection forever. On shutdown the loop stops
//! accepting, asks every connection to finish, and waits for them up to
//! [`SHUTDOWN_DEADLINE`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request as HttpRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::detach::Handoff;
use super::error::ApiError;
use super::guard::LocalAddr;
use super::late::{HeadClock, Late};
use crate::config::Config;

/// Default of `--header-timeout`: how long a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most header fields in one HTTP/1 request; more get 431.
pub const MAX_HEADERS: usize = 100;
/// Most concurrent streams on one HTTP/2 connection.
pub const MAX_H2_STREAMS: u32 = 128;
/// How much later than the loop's own first-head deadline hyper's header timer fires.
const HYPER_TIMER_MARGIN: Duration = Duration::from_millis(250);
/// How long a connection whose head timed out has to write its 408.
const LATE_ANSWER: Duration = Duration::from_secs(1);
/// How long shutdown waits for open connections to finish.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(1500);

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
        // hyper's timer covers the heads after the first; for the first, the loop's own
        // deadline (which can answer 408) must fire first, so hyper's waits a little longer.
        .header_read_timeout(header_timeout + HYPER_TIMER_MARGIN)
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
        // A plain-text connection's socket can be taken out of hyper by a streaming answer
        // (`detach.rs`); its permit then goes with it.
        let (socket, permit) = match &tls {
            None => (
                Socket::Plain(Handoff::new(tcp, permit, connections.clone())),
                None,
            ),
            Some(_) => (Socket::Tls(tcp), Some(permit)),
        };
        let handoff = match &socket {
            Socket::Plain(handoff) => Some(handoff.clone()),
            Socket::Tls(_) => None,
        };
        let taker = handoff.clone();
        let started = Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let clock = HeadClock::default();
        let in_time = clock.clone();
        let service = app
            .clone()
            .map_request(move |mut req: HttpRequest<hyper::body::Incoming>| {
                seen.store(true, Ordering::Relaxed);
                in_time.disarm();
                if let Some(handoff) = &handoff {
                    handoff.request(&req);
                }
                req.extensions_mut().insert(ConnectInfo(peer));
                if let Some(local) = local {
                    req.extensions_mut().insert(LocalAddr(local));
                }
                req
            })
            .map_response(move |res| match &taker {
                Some(handoff) => handoff.take_over(res),
                None => res,
            });
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            // The handshake and the first request head share one deadline: hyper's header
            // timeout starts only once it knows the protocol, and a client that sends nothing
            // (or half an HTTP/2 preface) must not hold a connection forever.
            let deadline = tokio::time::Instant::now() + header_timeout;
            let _permit = permit;
            let io: Box<dyn Io> = match (tls, socket) {
                (Some(tls), Socket::Tls(tcp)) => {
                    match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                                clock.speaks_http2();
                            }
                            Box::new(Late::new(stream, clock.clone()))
                        }
                        _ => return,
                    }
                }
                (_, Socket::Plain(handoff)) => Box::new(Late::new(handoff.io(), clock.clone())),
                (None, Socket::Tls(_)) => return,
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
                        waiting_first = false;
                        if !started.load(Ordering::Relaxed) {
                            // Answer 408 (when an HTTP/1 head was under way) and close; the
                            // connection gets a moment to write it, no more.
                            if clock.expire() {
                                let _ = tokio::time::timeout(LATE_ANSWER, conn.as_mut()).await;
                            }
                            break;
                        }
                    }
                    () = shutdown.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                        break;
                    }
                }
            }
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

/// An accepted connection before its protocol is served.
enum Socket {
    /// Plain text: hyper reads and writes through the handoff, which a streaming answer may
    /// take the socket from.
    Plain(Handoff),
    /// TLS: the handshake comes first, and the connection stays in hyper.
    Tls(tokio::net::TcpStream),
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

/// Answers a connection over the cap with [`ApiError::TooManyConnections`] and closes it.
async fn refuse(mut tcp: tokio::net::TcpStream) {
    let answer = ApiError::TooManyConnections.http1_bytes();
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(&answer)).await;
}
