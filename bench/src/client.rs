//! The simulated viewers: an SSE client, a long-poll client (cometail) and a socket.io
//! WebSocket client (frontail), all reporting into one shared [`Shared`].
//!
//! A client owns one connection and its own delivery accounting; it does not decide when a
//! run ends (the coordinator cancels through a `watch`). Every await races cancellation, so a
//! stuck server never hangs the benchmark.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow, bail};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::http::{BodyDecoder, Conn};
use crate::marks::{for_each_mark, next_cursor};
use crate::sse::SseParser;
use crate::stats::{Delivery, Histogram};
use crate::ws;

/// Clients bound to one loopback source address before moving to the next: well below the
/// ~14k ports `bind(port 0)` can pick on one address (it uses half of the ~28k ephemeral range;
/// `connect` the other half).
pub(crate) const CLIENTS_PER_SOURCE: usize = 5_000;

/// Counts runs, so that each run binds its clients in a fresh 127.N.0.0/16 and never meets
/// the TIME_WAIT ports a previous run left on its addresses (they linger 60 s).
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How a client follows the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// cometail `GET /api/streams/{id}/events` (Server-Sent Events).
    Sse,
    /// cometail `GET /api/streams/{id}/lines?after=…&wait=30` in a loop.
    Longpoll,
    /// frontail: socket.io 2 (engine.io 3) over WebSocket.
    Socketio,
    /// cometail `GET /api/streams/{id}/raw?follow=1` (plain text lines, chunked).
    Raw,
}

impl Mode {
    /// Lower-case name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Sse => "sse",
            Mode::Longpoll => "longpoll",
            Mode::Socketio => "socket.io",
            Mode::Raw => "raw",
        }
    }
}

/// What all clients of a run share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Server address.
    pub(crate) addr: SocketAddr,
    /// cometail stream id or frontail namespace.
    pub(crate) stream: String,
    /// Append-to-receipt latency of every benchmark line at every client, ns.
    pub(crate) latency: Histogram,
    /// From `t0` to each client's first entry (the warm-up line), ns.
    pub(crate) first_entry: Histogram,
    /// When the clients were started.
    pub(crate) t0: Instant,
    /// Clients that received the warm-up line.
    pub(crate) ready: AtomicUsize,
    /// Clients that gave up with an error.
    pub(crate) failed: AtomicUsize,
    /// Clients that received line `expected`.
    pub(crate) done: AtomicUsize,
    /// The writer appends lines 1..=expected.
    pub(crate) expected: u64,
    /// Second octet of this run's source addresses (127.net.0.x).
    pub(crate) net: u8,
}

impl Shared {
    /// Shared state for a run whose writer appends `expected` lines.
    pub(crate) fn new(addr: SocketAddr, stream: String, expected: u64) -> Self {
        Self {
            addr,
            stream,
            latency: Histogram::default(),
            first_entry: Histogram::default(),
            t0: Instant::now(),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            expected,
            net: 1 + (RUNS.fetch_add(1, Ordering::Relaxed) % 250) as u8,
        }
    }
}

/// What one client ends with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Its delivery accounting.
    pub(crate) delivery: Delivery,
    /// Whether it got the warm-up line.
    pub(crate) ready: bool,
    /// Why it stopped early, if it did.
    pub(crate) error: Option<String>,
}

/// The source address for client `idx` of a run in `127.net.0.0/16`: 127.net.0.1 for the first
/// [`CLIENTS_PER_SOURCE`], then 127.net.0.2, … (all loopback, 127.0.0.0/8).
pub(crate) fn source_for(net: u8, idx: usize) -> IpAddr {
    let k = (idx / CLIENTS_PER_SOURCE).min(253) as u8;
    IpAddr::V4(Ipv4Addr::new(127, net, 0, 1 + k))
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Receipt bookkeeping for one client.
struct Recv<'a> {
    shared: &'a Shared,
    delivery: Delivery,
    ready: bool,
    done: bool,
}

impl<'a> Recv<'a> {
    fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            delivery: Delivery::new(),
            ready: false,
            done: false,
        }
    }

    fn on_payload(&mut self, payload: &[u8], now: u64) {
        for_each_mark(payload, |seq, ts| {
            if seq == 0 {
                if !self.ready {
                    self.ready = true;
                    self.shared
                        .first_entry
                        .record(self.shared.t0.elapsed().as_nanos() as u64);
                    self.shared.ready.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            self.delivery.on_seq(seq);
            self.shared.latency.record(now.saturating_sub(ts));
            if !self.done && seq >= self.shared.expected {
                self.done = true;
                self.shared.done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    fn finish(self, result: Result<()>) -> Outcome {
        if result.is_err() {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
        }
        Outcome {
            delivery: self.delivery,
            ready: self.ready,
            error: result.err().map(|e| format!("{e:#}")),
        }
    }
}

/// Runs client `idx` in `mode` until cancelled or the server ends the stream.
pub(crate) async fn run(
    mode: Mode,
    idx: usize,
    shared: Arc<Shared>,
    mut cancel: watch::Receiver<bool>,
    permit: Option<OwnedSemaphorePermit>,
) -> Outcome {
    let mut recv = Recv::new(&shared);
    let work = async {
        match mode {
            Mode::Sse => sse(idx, &shared, &mut recv, permit).await,
            Mode::Longpoll => longpoll(idx, &shared, &mut recv, permit).await,
            Mode::Socketio => socketio(idx, &shared, &mut recv, permit).await,
            Mode::Raw => raw(idx, &shared, &mut recv, permit).await,
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = cancel.wait_for(|c| *c) => Ok(()),
    };
    recv.finish(result)
}

async fn sse(
    idx: usize,
    shared: &Shared,
    recv: &mut Recv<'_>,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<()> {
    let mut conn = Conn::open(shared.addr, Some(source_for(shared.net, idx))).await?;
    let path = format!("/api/streams/{}/events?last=1", shared.stream);
    conn.send_get(&path, "Accept: text/event-stream\r\n")
        .await?;
    let head = conn.read_head().await?;
    drop(permit);
    if head.status != 200 {
        bail!("SSE answered {}", head.status);
    }
    let mut dec = BodyDecoder::new(head.body);
    let mut body = Vec::with_capacity(4096);
    let mut parser = SseParser::default();
    loop {
        let more = conn.read_body_some(&mut dec, &mut body).await?;
        let now = now_ns();
        let used = parser.feed(&body, |_, data| recv.on_payload(data, now));
        body.drain(..used);
        if !more {
            bail!("server ended the event stream");
        }
    }
}

async fn raw(
    idx: usize,
    shared: &Shared,
    recv: &mut Recv<'_>,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<()> {
    let mut conn = Conn::open(shared.addr, Some(source_for(shared.net, idx))).await?;
    let path = format!("/api/streams/{}/raw?follow=1&last=1", shared.stream);
    conn.send_get(&path, "").await?;
    let head = conn.read_head().await?;
    drop(permit);
    if head.status != 200 {
        bail!("raw follow answered {}", head.status);
    }
    let mut dec = BodyDecoder::new(head.body);
    let mut body = Vec::with_capacity(4096);
    loop {
        let more = conn.read_body_some(&mut dec, &mut body).await?;
        let now = now_ns();
        // Whole lines only: a chunk boundary may split one.
        if let Some(end) = body.iter().rposition(|&b| b == b'\n') {
            recv.on_payload(&body[..=end], now);
            body.drain(..=end);
        }
        if !more {
            bail!("server ended the raw follow");
        }
    }
}

async fn longpoll(
    idx: usize,
    shared: &Shared,
    recv: &mut Recv<'_>,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<()> {
    let mut conn = Conn::open(shared.addr, Some(source_for(shared.net, idx))).await?;
    let (head, body) = conn
        .get(&format!("/api/streams/{}/lines?last=1", shared.stream))
        .await?;
    drop(permit);
    if head.status != 200 {
        bail!("GET lines?last=1 answered {}", head.status);
    }
    recv.on_payload(&body, now_ns());
    let mut cursor = next_cursor(&body)
        .ok_or_else(|| anyhow!("no next cursor in {}", String::from_utf8_lossy(&body)))?
        .to_owned();
    let mut close = head.close;
    let mut body = Vec::with_capacity(4096);
    loop {
        if close {
            conn = Conn::open(shared.addr, Some(source_for(shared.net, idx))).await?;
        }
        let path = format!(
            "/api/streams/{}/lines?after={cursor}&wait=30",
            shared.stream
        );
        conn.send_get(&path, "").await?;
        let head = conn.read_head().await?;
        body.clear();
        conn.read_body(&head, &mut body).await?;
        let now = now_ns();
        if head.status != 200 {
            bail!(
                "long poll answered {}: {}",
                head.status,
                String::from_utf8_lossy(&body)
            );
        }
        recv.on_payload(&body, now);
        if let Some(c) = next_cursor(&body) {
            if c != cursor {
                cursor = c.to_owned();
            }
        }
        close = head.close;
    }
}

/// engine.io 3 sends no pings itself: the client must ping within pingInterval + pingTimeout
/// (25 s + 5 s by default) or be dropped.
const EIO3_PING_EVERY: Duration = Duration::from_secs(20);

async fn socketio(
    idx: usize,
    shared: &Shared,
    recv: &mut Recv<'_>,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<()> {
    let mut conn = Conn::open(shared.addr, Some(source_for(shared.net, idx))).await?;
    conn.send_get(
        "/socket.io/?EIO=3&transport=websocket",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: Y29tZXRhaWwtYmVuY2gtMQ==\r\nSec-WebSocket-Version: 13\r\n",
    )
    .await?;
    let head = conn.read_head().await?;
    drop(permit);
    if head.status != 101 {
        bail!("socket.io upgrade answered {}", head.status);
    }
    let mut frames = ws::FrameReader::new(conn.take_leftover());
    let mut stream = conn;
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + EIO3_PING_EVERY,
        EIO3_PING_EVERY,
    );
    let mut out = Vec::new();
    loop {
        let got = tokio::select! {
            r = frames.read(stream.stream_mut()) => r?,
            _ = ping.tick() => {
                ws::encode_text(b"2", &mut out);
                stream.stream_mut().write_all(&out).await?;
                continue;
            }
        };
        let now = now_ns();
        for frame in got {
            match frame {
                ws::Frame::Text(payload) => match payload.first() {
                    Some(b'0') => {
                        // engine.io open: join frontail's namespace.
                        ws::encode_text(format!("40/{},", shared.stream).as_bytes(), &mut out);
                        stream.stream_mut().write_all(&out).await?;
                    }
                    Some(b'2') => {
                        ws::encode_text(b"3", &mut out);
                        stream.stream_mut().write_all(&out).await?;
                    }
                    Some(b'4') => recv.on_payload(&payload, now),
                    Some(b'1') => bail!("engine.io closed the session"),
                    _ => {}
                },
                ws::Frame::Ping(payload) => {
                    ws::encode(0xA, &payload, &mut out);
                    stream.stream_mut().write_all(&out).await?;
                }
                ws::Frame::Close => bail!("server closed the WebSocket"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stay_in_loopback_and_spread_over_addresses() {
        assert_eq!(source_for(1, 0), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(
            source_for(7, CLIENTS_PER_SOURCE),
            IpAddr::V4(Ipv4Addr::new(127, 7, 0, 2))
        );
        assert!(source_for(250, usize::MAX).is_loopback());
    }
}
