//! The `408 Request Timeout` for a first request head that did not arrive in time.
//!
//! hyper's own header timeout closes the connection without an answer, and it starts only once
//! hyper knows the protocol. The accept loop keeps its own deadline for the handshake and the
//! first head; when it passes, [`HeadClock::expire`] tells the connection's I/O wrapper
//! ([`Late`]) to write [`ApiError::HeadTimeout`] and then report end of input, so hyper closes
//! the connection. The answer is written only when an HTTP/1 head was under way: a client that
//! sent nothing gets a closed connection, and an HTTP/2 one (TLS ALPN `h2` or the cleartext
//! preface) would not understand HTTP/1 bytes.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::ApiError;

/// The start of the HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI *";

/// Shared between the accept loop and a connection's [`Late`] wrapper.
#[derive(Debug, Clone, Default)]
pub(super) struct HeadClock {
    clock: Arc<Mutex<Clock>>,
    /// Set once the first head arrived in time: reads then skip the clock entirely.
    disarmed: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Clock {
    expired: bool,
    http2: bool,
    /// The first bytes the client sent (enough to recognise the HTTP/2 preface).
    first: Vec<u8>,
    /// The task reading the connection, woken when the clock expires.
    reader: Option<Waker>,
}

impl HeadClock {
    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The first head arrived in time: nothing more to watch.
    pub(super) fn disarm(&self) {
        self.disarmed.store(true, Ordering::Relaxed);
    }

    /// The connection negotiated HTTP/2 (ALPN): no HTTP/1 answer on timeout.
    pub(super) fn speaks_http2(&self) {
        self.lock().http2 = true;
    }

    /// The head deadline passed. Returns whether the connection answers 408 (an HTTP/1 head
    /// was under way): then the wrapper writes it and ends the input, and the caller lets the
    /// connection run a moment longer; otherwise the caller just drops it.
    pub(super) fn expire(&self) -> bool {
        let mut clock = self.lock();
        let http1 =
            !clock.http2 && !clock.first.is_empty() && !H2_PREFACE.starts_with(&clock.first);
        if http1 {
            clock.expired = true;
            if let Some(waker) = clock.reader.take() {
                waker.wake();
            }
        }
        http1
    }
}

/// A connection's I/O, able to answer 408 and end once its [`HeadClock`] expires.
#[derive(Debug)]
pub(super) struct Late<T> {
    inner: T,
    clock: HeadClock,
    /// The part of the 408 still to write, once decided.
    answer: Option<(Vec<u8>, usize)>,
}

impl<T> Late<T> {
    pub(super) fn new(inner: T, clock: HeadClock) -> Self {
        Self {
            inner,
            clock,
            answer: None,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Late<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.clock.disarmed.load(Ordering::Relaxed) {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        {
            let mut clock = this.clock.lock();
            if !clock.expired {
                clock.reader = Some(cx.waker().clone());
                drop(clock);
                let before = buf.filled().len();
                let read = Pin::new(&mut this.inner).poll_read(cx, buf);
                let mut clock = this.clock.lock();
                if clock.first.len() < H2_PREFACE.len() {
                    let new = &buf.filled()[before..];
                    let want = H2_PREFACE.len() - clock.first.len();
                    clock.first.extend_from_slice(&new[..new.len().min(want)]);
                }
                return read;
            }
            if this.answer.is_none() {
                this.answer = Some((ApiError::HeadTimeout.http1_bytes(), 0));
            }
        }
        // Expired: write what is left of the answer, flush, then report end of input.
        if let Some((bytes, written)) = &mut this.answer {
            while *written < bytes.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => *written = bytes.len(),
                    Poll::Ready(Ok(n)) => *written += n,
                    Poll::Pending => return Poll::Pending,
                }
            }
            if Pin::new(&mut this.inner).poll_flush(cx).is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Late<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
