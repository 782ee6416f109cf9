//! Streaming responses taken out of hyper once their head is ready: the connection then costs
//! the socket and the stream's own state, and no HTTP machinery.
//!
//! A hyper HTTP/1 connection keeps a read buffer and a write buffer (8 KiB each, or more) and
//! a connection future for as long as it is open; an idle SSE client held ~20 KiB that way.
//! For a plain-text HTTP/1.1 `GET` answered by a streaming body (SSE, or a `raw?follow` that
//! is not gzipped: gzip is a body layer, so `compress.rs` withdraws the offer), the accept loop's
//! service takes the socket out of hyper's I/O ([`Handoff::take_over`]): it writes the head
//! itself, and a small task writes each chunk (chunked transfer coding, one `writev` of the
//! size line, the shared encoded event and the CRLF; `chunked.rs`) straight to the socket.
//! hyper is left with an I/O that swallows writes and never reads, answers into it, and its
//! connection ends, freeing its buffers. TLS and HTTP/2 connections stay in hyper.
//!
//! What stays per detached connection: the `TcpStream` (in a [`Client`], shared with the
//! stream's live edge, `edge.rs`, which writes to a caught-up SSE client without waking this
//! task), the task, the body's stream (the SSE `Feed`), and the `--max-connections` permit,
//! which moves with the socket. The task watches
//! the socket for the client's close without a buffer (readiness, then a read into a small
//! stack buffer), so a closed client frees its place at once, as under hyper.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::TaskTracker;

use super::chunked::{self, Rest};
use super::edge::Client;

/// The chunks of a streaming body that can run without hyper.
pub(crate) type Chunks = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// Where a body that can park on its stream's edge (`edge.rs`) finds its connection's
/// socket once the connection is taken over; empty while hyper sends it.
pub(crate) type ClientSlot = Arc<OnceLock<Arc<Client>>>;

/// A streaming body's chunks, offered to whoever takes them first: hyper (through
/// [`Detachable::body`]) or the accept loop's take-over. A response extension.
#[derive(Clone)]
pub(crate) struct Detachable(Arc<Mutex<Option<Chunks>>>, Option<ClientSlot>);

impl std::fmt::Debug for Detachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Detachable")
    }
}

impl Detachable {
    /// Offers `chunks`; the response carries the returned value as an extension and the body
    /// from [`Detachable::body`].
    pub(crate) fn new(chunks: Chunks) -> Self {
        Self(Arc::new(Mutex::new(Some(chunks))), None)
    }

    /// Like [`Detachable::new`], and `slot` is given the connection's socket when it is
    /// taken over.
    pub(crate) fn with_slot(chunks: Chunks, slot: ClientSlot) -> Self {
        Self(Arc::new(Mutex::new(Some(chunks))), Some(slot))
    }

    fn take(&self) -> Option<Chunks> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// The body hyper sends when the connection is not taken over: the chunks, taken at its
    /// first poll (empty when the take-over got them).
    pub(crate) fn body(&self) -> Body {
        Body::from_stream(Claimed {
            claim: Some(self.clone()),
            chunks: None,
        })
    }
}

/// The body side of a [`Detachable`].
struct Claimed {
    claim: Option<Detachable>,
    chunks: Option<Chunks>,
}

impl Stream for Claimed {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(claim) = self.claim.take() {
            self.chunks = claim.take();
        }
        match &mut self.chunks {
            Some(chunks) => chunks.poll_next_unpin(cx).map(|c| c.map(Ok)),
            None => Poll::Ready(None),
        }
    }
}

/// One plain-text connection's socket, shared by hyper's I/O ([`HandoffIo`]) and the
/// take-over. Cloned into the connection's service.
#[derive(Clone)]
pub(super) struct Handoff(Arc<Shared>);

struct Shared {
    tcp: Mutex<Option<TcpStream>>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Whether the request being answered may be taken over: an HTTP/1.1 `GET` (HTTP/1 serves
    /// one request at a time, so one flag per connection suffices).
    eligible: AtomicBool,
    tasks: TaskTracker,
}

impl Handoff {
    /// Shares `tcp`; `permit` (the connection's place under `--max-connections`) moves with
    /// the socket if it is taken over; taken-over connections run on `tasks`.
    pub(super) fn new(tcp: TcpStream, permit: OwnedSemaphorePermit, tasks: TaskTracker) -> Self {
        Self(Arc::new(Shared {
            tcp: Mutex::new(Some(tcp)),
            permit: Mutex::new(Some(permit)),
            eligible: AtomicBool::new(false),
            tasks,
        }))
    }

    /// hyper's view of the socket.
    pub(super) fn io(&self) -> HandoffIo {
        HandoffIo(self.clone())
    }

    /// Notes whether `req` may be taken over (called as each request arrives).
    pub(super) fn request<B>(&self, req: &Request<B>) {
        let eligible = req.method() == Method::GET && req.version() == Version::HTTP_11;
        self.0.eligible.store(eligible, Ordering::Relaxed);
    }

    /// Takes the connection out of hyper when `res` is a detachable `200` to an eligible
    /// request: writes its head and runs its chunks on a task of its own, and gives hyper an
    /// empty `Connection: close` answer that goes nowhere. Any other response is returned as
    /// it is.
    pub(super) fn take_over(&self, res: Response<Body>) -> Response<Body> {
        if res.status() != StatusCode::OK || !self.0.eligible.swap(false, Ordering::Relaxed) {
            return res;
        }
        let Some(detachable) = res.extensions().get::<Detachable>() else {
            return res;
        };
        let mut tcp_slot = self.0.tcp.lock().unwrap_or_else(PoisonError::into_inner);
        if tcp_slot.is_none() {
            return res;
        }
        let Some(chunks) = detachable.take() else {
            return res;
        };
        let Some(tcp) = tcp_slot.take() else {
            return res;
        };
        drop(tcp_slot);
        let permit = self
            .0
            .permit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let head = head(&res);
        let client = Client::new(tcp);
        if let Some(slot) = &detachable.1 {
            let _ = slot.set(Arc::clone(&client));
        }
        self.0.tasks.spawn(async move {
            let _permit = permit;
            run(client, head, chunks).await;
        });
        let mut gone = Response::new(Body::empty());
        gone.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        gone
    }
}

/// The response head as hyper would write it for a chunked body.
fn head(res: &Response<Body>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    for (name, value) in res.headers() {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    out
}

/// What the taken-over connection's task waits for.
enum Wake {
    /// Its stream's edge left part of an event unsent (`edge.rs`).
    Rest(Rest),
    Chunk(Option<Bytes>),
    /// The socket is readable: the client closed, failed, or sent bytes.
    Readable(io::Result<()>),
}

/// Writes the head, then every chunk, until the chunks end (the terminating chunk is sent),
/// the client closes, or a write fails. The future stays small (`chunked.rs`): it lives as
/// long as the client. While the body is parked on its stream's edge (`edge.rs`), the edge
/// writes to the socket and this task sleeps; it is armed (the edge may write) only while it
/// holds nothing unsent.
async fn run(client: Arc<Client>, head: Vec<u8>, mut chunks: Chunks) {
    let tcp = &client.tcp;
    if chunked::send(tcp, Rest::of(head.into())).await.is_err() {
        return;
    }
    loop {
        client.arm();
        // Readiness, not a read future: no buffer and no waiter node while nothing comes.
        let wake = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = tcp.poll_read_ready(cx) {
                return Poll::Ready(Wake::Readable(r));
            }
            if let Some(rest) = client.take_rest() {
                return Poll::Ready(Wake::Rest(rest));
            }
            chunks.poll_next_unpin(cx).map(Wake::Chunk)
        })
        .await;
        match wake {
            Wake::Readable(ready) => {
                if ready.is_err() || peer_closed(tcp) {
                    return;
                }
            }
            Wake::Rest(rest) => {
                if chunked::send(tcp, rest).await.is_err() {
                    return;
                }
            }
            Wake::Chunk(None) => return chunked::end(tcp).await,
            Wake::Chunk(Some(first)) => {
                client.disarm();
                // Sent before this chunk: the edge wrote those bytes before the body went on.
                if let Some(rest) = client.take_rest() {
                    if chunked::send(tcp, rest).await.is_err() {
                        return;
                    }
                }
                let Ok(written) = chunked::write_batch(tcp, first, &mut chunks) else {
                    return;
                };
                if let Some(rest) = written.rest {
                    if chunked::send(tcp, rest).await.is_err() {
                        return;
                    }
                }
                if written.ended {
                    return chunked::end(tcp).await;
                }
            }
        }
    }
}

/// After readiness: `true` when the client closed (or the socket failed), `false` when it
/// sent bytes (read and dropped, 4 KiB per readiness: a streaming request expects none, so a
/// body sent with it costs reads, never memory) or nothing was there.
fn peer_closed(tcp: &TcpStream) -> bool {
    let mut scratch = [0u8; 4096];
    match tcp.try_read(&mut scratch) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// hyper's I/O over a [`Handoff`]'s socket. Once the socket is taken over, writes are
/// swallowed and reads never complete, so hyper finishes its answer into nothing and ends.
pub(super) struct HandoffIo(Handoff);

impl HandoffIo {
    fn with<R>(
        &self,
        gone: impl FnOnce() -> Poll<io::Result<R>>,
        f: impl FnOnce(Pin<&mut TcpStream>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let mut tcp = (self.0)
            .0
            .tcp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match tcp.as_mut() {
            Some(tcp) => f(Pin::new(tcp)),
            None => gone(),
        }
    }
}

impl AsyncRead for HandoffIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.with(|| Poll::Pending, |tcp| tcp.poll_read(cx, buf))
    }
}

impl AsyncWrite for HandoffIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.with(|| Poll::Ready(Ok(len)), |tcp| tcp.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.with(
            || Poll::Ready(Ok(len)),
            |tcp| tcp.poll_write_vectored(cx, bufs),
        )
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|| Poll::Ready(Ok(())), |tcp| tcp.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|| Poll::Ready(Ok(())), |tcp| tcp.poll_shutdown(cx))
    }
}
