//! The accept loop (TCP, or a Unix domain socket: [`listen_unix`]): connections under `--max-connections` (else a 503 written by hand), the
//! TLS handshake, hyper's HTTP/1 and HTTP/2 limits, and graceful shutdown with a deadline.
//!
//! The handshake and the first request head share one deadline (`--header-timeout`): hyper's
//! own header timeout starts only once it knows the protocol, and a client that sends nothing
//! (or half an HTTP/2 preface) must not hold a connection forever. On shutdown the loop stops
//! accepting, asks every connection to finish, and waits for them up to
//! [`SHUTDOWN_DEADLINE`].

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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
use tokio::net::{TcpListener, UnixListener};
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

/// What the accept loop accepts connections from.
#[derive(Debug)]
pub enum Listener {
    /// A TCP address (`--bind`, `--metrics-bind`).
    Tcp(TcpListener),
    /// A Unix domain socket (`--unix-socket`): its clients count as loopback clients, from
    /// `127.0.0.1` port 0.
    Unix(UnixSocket),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self::Tcp(listener)
    }
}

/// The address a Unix socket's clients are given: they are on this machine.
const UNIX_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

impl Listener {
    /// The next connection, its peer's address and the local address it reached.
    async fn accept(&self) -> std::io::Result<(Conn, SocketAddr, Option<SocketAddr>)> {
        match self {
            Self::Tcp(listener) => {
                let (tcp, peer) = listener.accept().await?;
                let _ = tcp.set_nodelay(true);
                let local = tcp.local_addr().ok();
                Ok((Conn::Tcp(tcp), peer, local))
            }
            Self::Unix(socket) => {
                let (unix, _) = socket.listener.accept().await?;
                Ok((Conn::Unix(unix), UNIX_PEER, None))
            }
        }
    }
}

/// An accepted connection, by the kind of its socket.
enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// Accepts connections on `listener` and serves `app` until `shutdown` is cancelled, then
/// waits for open connections up to [`SHUTDOWN_DEADLINE`]. Limits and TLS come from `config`.
pub async fn serve(
    listener: impl Into<Listener>,
    app: Router,
    config: &Config,
    shutdown: CancellationToken,
) {
    let listener = listener.into();
    let tcp_local = match &listener {
        Listener::Tcp(tcp) => tcp.local_addr().ok(),
        Listener::Unix(_) => None,
    };
    if let Some(local) = tcp_local {
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
        let (conn, peer, local) = match accepted {
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
                match conn {
                    Conn::Tcp(tcp) => connections.spawn(refuse(tcp)),
                    Conn::Unix(unix) => connections.spawn(refuse(unix)),
                };
            }
            continue;
        };
        // A plain-text TCP connection's socket can be taken out of hyper by a streaming
        // answer (`detach.rs`); its permit then goes with it.
        let (socket, permit) = match (conn, &tls) {
            (Conn::Tcp(tcp), None) => (
                Socket::Plain(Handoff::new(tcp, permit, connections.clone())),
                None,
            ),
            (Conn::Tcp(tcp), Some(_)) => (Socket::Tls(tcp), Some(permit)),
            (Conn::Unix(unix), _) => (Socket::Unix(unix), Some(permit)),
        };
        let handoff = match &socket {
            Socket::Plain(handoff) => Some(handoff.clone()),
            Socket::Tls(_) | Socket::Unix(_) => None,
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
                (_, Socket::Unix(unix)) => Box::new(Late::new(unix, clock.clone())),
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
    /// A Unix domain socket (plain text, served by `--unix-socket`'s listener): it stays in
    /// hyper (`detach.rs` takes TCP sockets only).
    Unix(tokio::net::UnixStream),
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
async fn refuse(mut conn: impl AsyncWrite + Unpin) {
    let answer = ApiError::TooManyConnections.http1_bytes();
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.write_all(&answer)).await;
}

/// A listening Unix domain socket (`--unix-socket`), whose file is removed when it is dropped
/// (if the path still names the socket this process made).
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file, to remove only our own; `None` for a socket
    /// another process made (systemd's), whose file is never removed.
    id: Option<(u64, u64)>,
}

impl UnixSocket {
    /// The socket's path (`@name` for an abstract one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A listening socket another process made and passed (systemd socket activation): served
    /// like `--unix-socket`'s, its file left alone at exit (its maker removes it). Call it in
    /// the runtime.
    ///
    /// # Errors
    /// The socket cannot be made non-blocking or registered with the runtime.
    pub fn adopt(listener: std::os::unix::net::UnixListener) -> std::io::Result<Self> {
        use std::os::linux::net::SocketAddrExt;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let path = match (addr.as_pathname(), addr.as_abstract_name()) {
            (Some(path), _) => path.to_path_buf(),
            (None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)).into(),
            (None, None) => PathBuf::from("(unnamed)"),
        };
        Ok(Self {
            listener: UnixListener::from_std(listener)?,
            path,
            id: None,
        })
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Listens on a Unix domain socket at `path` with permissions `mode` (e.g. `0o660`).
///
/// A socket file left by a server that is gone (nothing accepts on it) is removed first; a
/// socket something still accepts on, or a path that is not a socket, is refused. The mode is
/// set right after binding: keep the socket in a directory only the server and its clients can
/// enter, so nobody connects in between.
///
/// # Errors
/// Fails when the path is in use, is not a socket, or cannot be bound or given its mode.
pub fn listen_unix(path: &Path, mode: u32) -> std::io::Result<UnixSocket> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "the path exists and is not a socket (not removed)",
            ));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::AddrInUse,
                    "a server is listening on it (another cometail?)",
                ));
            }
            // Nothing accepts: a socket file left behind by a server that is gone.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => std::fs::remove_file(path)?,
            Err(e) => return Err(e),
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    let meta = std::fs::symlink_metadata(path)?;
    Ok(UnixSocket {
        listener,
        path: path.to_path_buf(),
        id: Some((meta.dev(), meta.ino())),
    })
}
