//! The per-address cap on open streams (SSE, `raw?follow`), as an extractor.
//!
//! A handler that is about to answer with a long-lived body takes a [`StreamCap`] and calls
//! [`StreamCap::admit`]; the [`Slot`] it gets moves into the response body, so a place is held
//! exactly as long as the stream is open and freed when the body is dropped (the client went
//! away, the server shut down, or the handler failed before answering). The handler decides,
//! not the path: `raw` counts only when it really follows.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use super::metrics::{Metrics, OpenStream, StreamKind};

/// Open streams per client address.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A place among an address's open streams; given back when dropped. It also counts the
/// response among the open streams `/metrics` reports.
#[derive(Debug)]
pub(crate) struct Slot {
    place: Option<(Arc<Streams>, IpAddr)>,
    _open: OpenStream,
}

impl Slot {
    /// Where the client is, for `/metrics`' lag figures.
    pub(crate) fn lag(&self) -> &Arc<super::metrics::ClientLag> {
        self._open.lag()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((streams, ip)) = self.place.take() else {
            return;
        };
        let mut open = streams.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// The right to ask for a [`Slot`]: the client's address and the limit that applies to it.
#[derive(Debug)]
pub(crate) struct StreamCap {
    streams: Arc<Streams>,
    /// The client's address; `None` when the cap does not apply (a loopback client without an
    /// explicit `--max-streams-per-address`, or a request not from the accept loop).
    ip: Option<IpAddr>,
    max: usize,
    metrics: Arc<Metrics>,
}

impl StreamCap {
    /// Takes a place for one more open stream.
    ///
    /// # Errors
    /// [`ApiError::TooManyStreams`] when the address has `--max-streams-per-address` open.
    pub(crate) fn admit(self, kind: StreamKind) -> Result<Slot, ApiError> {
        let Some(ip) = self.ip else {
            return Ok(Slot {
                place: None,
                _open: self.metrics.open(kind),
            });
        };
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return Err(ApiError::TooManyStreams);
        }
        *n += 1;
        drop(open);
        Ok(Slot {
            place: Some((self.streams, ip)),
            _open: self.metrics.open(kind),
        })
    }
}

impl FromRequestParts<AppState> for StreamCap {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Infallible> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            // Behind a trusted proxy, the client it names: each proxied client has its own
            // cap instead of all sharing the proxy's.
            .map(|c| {
                super::auth::client_address(c.0.ip(), &parts.headers, &app.config.trusted_proxies)
            })
            // Loopback clients share one address: capping them would cap the whole machine,
            // which `--max-connections` does; they are capped only when the limit was given.
            .filter(|ip| !ip.is_loopback() || app.config.cap_loopback_streams);
        Ok(Self {
            streams: app.streams.clone(),
            ip,
            max: app.config.max_streams_per_address,
            metrics: app.metrics.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_frees_when_its_slot_is_dropped() {
        let streams = Arc::new(Streams::default());
        let metrics = Arc::new(Metrics::new());
        let cap = || StreamCap {
            streams: streams.clone(),
            ip: Some(IpAddr::from([10, 0, 0, 1])),
            max: 1,
            metrics: metrics.clone(),
        };
        let held = cap()
            .admit(StreamKind::Sse)
            .expect("the first place is free");
        assert!(matches!(
            cap().admit(StreamKind::Sse),
            Err(ApiError::TooManyStreams)
        ));
        drop(held);
        assert!(cap().admit(StreamKind::Raw).is_ok());
    }
}
