//! gzip for responses whose client asks for it (`Accept-Encoding`), flushed per chunk.
//!
//! History pages (JSON), `/raw` (also `raw?follow=1`) and the page's assets are compressed
//! when the request accepts gzip; every body chunk is deflated and sync-flushed at once, so a
//! streamed chunk reaches the client as soon as it would uncompressed. `text/event-stream` is
//! left alone: a browser opens one SSE response per tab and every one would hold its own
//! deflate state (hundreds of KiB, against a per-connection budget of a few KiB) and deflate
//! each event once per client instead of sharing one encoded event across all of them
//! (docs/PERFORMANCE.md, "Compression", has the figures behind this choice).

use std::io::Write as _;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt as _;

use super::detach::Detachable;

/// Bodies known to be smaller than this are sent as they are (gzip's header and trailer
/// alone are 18 bytes).
const MIN_BYTES: u64 = 256;

/// Compresses the response with gzip when the request accepts it and the body is worth it.
pub(crate) async fn gzip(req: Request, next: Next) -> Response {
    let wanted = accepts_gzip(req.headers()) && req.method() != Method::HEAD;
    let mut res = next.run(req).await;
    if !compressible(res.headers()) {
        return res;
    }
    res.headers_mut()
        .append(VARY, HeaderValue::from_static("accept-encoding"));
    let small = res
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n < MIN_BYTES);
    if !wanted || small || res.headers().contains_key(CONTENT_ENCODING) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // The gzip stream is a body layer: a follow compressed here stays in hyper.
    parts.extensions.remove::<Detachable>();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Response::from_parts(parts, gzip_body(body))
}

/// `body` deflated chunk by chunk, each chunk sync-flushed, then gzip's trailer.
fn gzip_body(body: Body) -> Body {
    // Level 1: most of the ratio on log text for a fraction of the CPU of the default level.
    let mut enc = Some(GzEncoder::new(Vec::new(), Compression::fast()));
    let chunks = body
        .into_data_stream()
        .map(Some)
        .chain(futures_util::stream::once(async { None }));
    Body::from_stream(chunks.filter_map(move |chunk| {
        let out = match chunk {
            Some(Ok(data)) => enc.as_mut().map(|e| {
                e.write_all(&data)
                    .and_then(|()| e.flush())
                    .map(|()| Bytes::from(std::mem::take(e.get_mut())))
            }),
            Some(Err(err)) => Some(Err(std::io::Error::other(err))),
            None => enc.take().map(|e| e.finish().map(Bytes::from)),
        };
        std::future::ready(out.filter(|r| r.as_ref().map_or(true, |b| !b.is_empty())))
    }))
}

/// Whether `Accept-Encoding` lists `gzip` (or `*`) with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q = parts
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q.is_some_and(|q| q > 0.0)
        })
}

/// Text types worth compressing; never `text/event-stream` (see the module's note).
fn compressible(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct != "text/event-stream"
        && (ct.starts_with("text/")
            || ct == "application/json"
            || ct == "application/javascript"
            || ct == "image/svg+xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(v).expect("header"));
        accepts_gzip(&h)
    }

    #[test]
    fn accept_encoding_weights_are_honoured() {
        assert!(accept("gzip"));
        assert!(accept("br, GZIP;q=0.5, deflate"));
        assert!(accept("*"));
        assert!(!accept("gzip;q=0"));
        assert!(!accept("br, zstd"));
        assert!(!accept("gzip;q=zero"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn event_streams_and_binary_types_stay_uncompressed() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_str(v).expect("header"));
            compressible(&h)
        };
        assert!(ct("application/json"));
        assert!(ct("text/plain; charset=utf-8"));
        assert!(!ct("text/event-stream"));
        assert!(!ct("image/png"));
        assert!(!compressible(&HeaderMap::new()));
    }
}
