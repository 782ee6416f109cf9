//! `/metrics` under load: scraped again and again while 10,000 SSE clients connect to the
//! real binary, every scrape answers (within the deadline, in the format promtool accepts),
//! and the open-streams gauge counts the clients up and down again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::wait_until;

const CLIENTS: usize = 10_000;

/// The soft and hard limits on open files of process `pid` (`/proc/PID/limits`).
fn nofile(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let n = |i: usize| -> u64 {
        let v = line.split_whitespace().nth(i).unwrap();
        if v == "unlimited" {
            u64::MAX
        } else {
            v.parse().unwrap()
        }
    };
    (n(3), n(4))
}

/// Raises this process's soft limit on open files to its hard limit with util-linux's
/// `prlimit` (the tests forbid `unsafe`, so no `setrlimit` here); the child started after
/// inherits it.
fn raise_nofile() -> u64 {
    let pid = std::process::id();
    let (soft, hard) = nofile(pid);
    if soft < hard {
        let status = std::process::Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--nofile={hard}:{hard}"))
            .status()
            .expect("prlimit runs (util-linux)");
        assert!(status.success(), "prlimit raises the soft limit");
    }
    nofile(pid).0
}

/// One scrape in the classic text format: its status, how long it took, and the body.
async fn scrape(client: &reqwest::Client, url: &str) -> (u16, Duration, String) {
    let started = Instant::now();
    let r = client
        .get(format!("{url}/metrics"))
        .header("accept", "text/plain; version=0.0.4")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (status, started.elapsed(), body)
}

fn open_sse(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("cometail_open_streams{transport=\"sse\"} "))
        .and_then(|v| v.trim().parse().ok())
}

/// A client that asks for the stream's events and reads the response head, then holds the
/// connection without reading more.
async fn sse_client(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /api/streams/app.log/events HTTP/1.1\r\nHost: {addr}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let mut n = 0;
    while n < 12 {
        let got = tcp.read(&mut buf[n..]).await.unwrap();
        assert!(got > 0, "closed after {n} bytes");
        n += got;
    }
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_while_ten_thousand_clients_connect() {
    let limit = raise_nofile();
    assert!(
        limit >= (CLIENTS as u64) + 1_000,
        "{CLIENTS} clients need an open-files limit above {}; the hard limit here is {limit}",
        CLIENTS + 1_000
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "one\n").unwrap();
    let log = log.display().to_string();
    let (child, url) = crate::common::spawn_piped(&["--max-connections", "10100", &log], &[]);
    let _child = crate::common::Reaped(child);
    let url = url.trim_end_matches('/').to_owned();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let connecting = tokio::spawn(async move {
        let mut held = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS / 250 {
            let wave: Vec<_> = (0..250).map(|_| tokio::spawn(sse_client(addr))).collect();
            for c in wave {
                held.push(c.await.unwrap());
            }
        }
        held
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut scrapes = 0;
    let mut slowest = Duration::ZERO;
    let mut seen: Vec<f64> = Vec::new();
    while !connecting.is_finished() {
        let (status, took, text) = scrape(&client, &url).await;
        assert_eq!(status, 200, "{text}");
        slowest = slowest.max(took);
        seen.extend(open_sse(&text));
        scrapes += 1;
    }
    let held = connecting.await.unwrap();
    assert!(
        scrapes >= 3,
        "only {scrapes} scrapes while the clients connected"
    );
    assert!(
        seen.windows(2).any(|w| w[1] > w[0]),
        "the gauge moved while they connected: {seen:?}"
    );
    assert!(
        slowest < Duration::from_secs(10),
        "a scrape took {slowest:?}"
    );
    let (_, _, text) = scrape(&client, &url).await;
    assert_eq!(open_sse(&text), Some(CLIENTS as f64));
    let (promtool_ok, said) = crate::metrics::promtool_check(&text);
    assert!(promtool_ok, "promtool: {said}");
    drop(held);
    wait_until(
        "the clients are counted gone",
        Duration::from_secs(30),
        || async { open_sse(&scrape(&client, &url).await.2) == Some(0.0) },
    )
    .await;
}
