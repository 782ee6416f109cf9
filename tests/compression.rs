//! gzip by `Accept-Encoding` over real sockets: history pages and `/raw` come back smaller and
//! decompress to exactly the bytes sent without it; `raw?follow=1` delivers each line as soon
//! as it is written (a sync flush per chunk); SSE stays uncompressed by design.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use futures_util::StreamExt as _;

use crate::common::{Server, append};

/// A log line of the kind people follow: timestamps, levels, ids, paths.
fn log_line(i: usize) -> String {
    format!(
        "2026-12-02T00:{:02}:{:02}.{:03}Z {} request_id={:08x} method=GET path=/api/items/{} status={} duration_ms={}\n",
        (i / 60) % 60,
        i % 60,
        (i * 7) % 1000,
        ["INFO ", "DEBUG", "WARN ", "INFO "][i % 4],
        i.wrapping_mul(2_654_435_761) & 0xffff_ffff,
        i % 977,
        [200, 200, 304, 404, 500][i % 5],
        (i * 13) % 250
    )
}

async fn server_with_lines(n: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..n).map(log_line).collect();
    std::fs::write(dir.path().join("app.log"), text).unwrap();
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    s.wait_following().await;
    s
}

/// GET `path` with the given `Accept-Encoding` (none when `None`): status, headers, raw body.
async fn get(
    s: &Server,
    path: &str,
    accept: Option<&str>,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = s.client.get(format!("{}{path}", s.url));
    if let Some(a) = accept {
        req = req.header("accept-encoding", a);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    let headers = resp.headers().clone();
    (headers, resp.bytes().await.unwrap().to_vec())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn history_page_and_raw_are_gzipped_when_asked_and_decompress_to_the_same_bytes() {
    let s = server_with_lines(1200).await;
    for path in [
        "/api/streams/app.log/lines?last=1000",
        "/api/streams/app.log/raw?last=1000",
    ] {
        let (plain_h, plain) = get(&s, path, None).await;
        assert!(plain_h.get("content-encoding").is_none(), "{path}");
        let (gz_h, gz) = get(&s, path, Some("br;q=1, gzip;q=0.8")).await;
        assert_eq!(gz_h["content-encoding"], "gzip", "{path}");
        assert!(gz_h.get("content-length").is_none(), "{path}");
        assert!(
            gz_h.get_all("vary")
                .iter()
                .any(|v| v.to_str().unwrap().contains("accept-encoding")),
            "{path}: {gz_h:?}"
        );
        assert_eq!(gunzip(&gz), plain, "{path}: decompressed bytes differ");
        eprintln!(
            "{path}: {} bytes plain, {} gzip ({:.1}x)",
            plain.len(),
            gz.len(),
            plain.len() as f64 / gz.len() as f64
        );
        assert!(
            gz.len() * 5 <= plain.len(),
            "{path}: {} gzip bytes for {} plain: less than 5x",
            gz.len(),
            plain.len()
        );
        // A weight of zero is a refusal.
        let (h, body) = get(&s, path, Some("gzip;q=0")).await;
        assert!(h.get("content-encoding").is_none());
        assert_eq!(body, plain);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn followed_raw_is_flushed_per_line_and_sse_stays_uncompressed() {
    let s = server_with_lines(10).await;
    let resp = s
        .client
        .get(format!("{}/api/streams/app.log/raw?follow=1", s.url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let mut body = resp.bytes_stream();
    // Decompress as bytes arrive: a line shows up only if the server flushed it.
    let mut inflater = flate2::write::GzDecoder::new(Vec::new());
    let end = Instant::now() + Duration::from_secs(10);
    for i in 100..103 {
        let line = log_line(i);
        append(&s.path("app.log"), &line);
        while !String::from_utf8_lossy(inflater.get_ref()).ends_with(&line) {
            let chunk = tokio::time::timeout_at(end.into(), body.next())
                .await
                .unwrap_or_else(|_| panic!("line {i} not delivered compressed in time"))
                .unwrap()
                .unwrap();
            inflater.write_all(&chunk).unwrap();
            inflater.flush().unwrap();
        }
    }
    drop(body);

    let resp = s
        .client
        .get(format!("{}/api/streams/app.log/events", s.url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert!(resp.headers().get("content-encoding").is_none());
    s.stop().await;
}
