//! Limits: traversal, bodies and heads, connections, streams per address, long polls, slowloris.

use super::*;

/// Over 1,000 traversal strings (11 ways to say `..` × 8 separators × 3 targets × 4 depths,
/// plus the secret's absolute path), for every place a path segment reaches a handler.
fn traversal_targets(secret: &str) -> Vec<String> {
    let ups = [
        "..",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "....",
        "..;",
        "%c0%ae%c0%ae",
        "%252e%252e",
        "..%00",
        "%uff0e%uff0e",
    ];
    let seps = ["/", "%2f", "%2F", "%5c", "\\", "%252f", "//", "%c0%af"];
    let ends = [
        "etc/passwd".to_owned(),
        secret.trim_start_matches('/').to_owned(),
        "Cargo.toml".to_owned(),
    ];
    let mut out = Vec::new();
    for up in ups {
        for sep in seps {
            for end in &ends {
                for depth in 1..=4 {
                    let end = end.replace('/', sep);
                    out.push(format!("{}{end}", format!("{up}{sep}").repeat(depth)));
                }
            }
        }
    }
    out.push(secret.to_owned());
    out.push(enc(secret));
    out.push(format!("%2f{}", enc(secret.trim_start_matches('/'))));
    out
}

/// Percent-encodes what a request line cannot carry raw (keeps `%`, `/`, `.`, `\` as given).
fn raw_target(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"%/.-_~;\\".contains(&b) {
                if b == b'\\' {
                    "%5C".to_owned()
                } else {
                    (b as char).to_string()
                }
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_traversal_attempts_get_404_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ui")).unwrap();
    std::fs::write(dir.path().join("ui/index.html"), "page").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOP-SECRET-CANARY").unwrap();
    append(&dir.path().join("app.log"), "line\n");
    let secret = dir.path().join("secret.txt").display().to_string();
    let s = Server::start_in(dir, &["--assets", "{dir}/ui", "{dir}/app.log"]).await;
    let targets = traversal_targets(&secret);
    let places: [fn(&str) -> String; 6] = [
        |t| format!("/{t}"),
        |t| format!("/ui/{t}"),
        |t| format!("/api/streams/{t}/lines"),
        |t| format!("/api/streams/{t}/raw"),
        |t| format!("/api/streams/{t}/events"),
        |t| format!("/api/{t}"),
    ];
    // One keep-alive connection per place, in parallel.
    let mut tasks = Vec::new();
    for place in places {
        let targets = targets.clone();
        let a = addr(&s);
        tasks.push(tokio::spawn(async move {
            let mut conn = net::Conn::open(a).await;
            for t in &targets {
                let target = place(&raw_target(t));
                let r = conn.get(&target).await;
                assert_eq!(r.status, 404, "{target}: {}", r.body);
                assert!(!r.body.contains("TOP-SECRET-CANARY"));
            }
            targets.len()
        }));
    }
    let mut count = 0;
    for t in tasks {
        count += t.await.unwrap();
    }
    assert!(targets.len() >= 1000, "{} strings", targets.len());
    assert!(count >= 6000, "{count} attempts");
    // The stream list still names only what the command line named.
    let list = s.ok_json("/api/streams").await;
    assert_eq!(list["streams"].as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------- limits

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_get_413_and_oversized_heads_431() {
    let s = Server::start(&["--max-header-bytes", "8K", "{dir}/app.log"]).await;
    let a = addr(&s);
    for headers in [
        &[("Content-Length", "10")][..],
        &[("Transfer-Encoding", "chunked")][..],
    ] {
        let r = net::request(a, "POST", "/api/streams", headers).await;
        assert_eq!(r.status, 413, "{headers:?}");
        assert!(r.body.contains("\"error\""));
    }
    let big = "x".repeat(10_000);
    let r = net::get(a, "/api/streams", &[("X-Big", &big)]).await;
    assert_eq!(r.status, 431);
    let long_target = format!("/api/streams?{}", "a".repeat(10_000));
    assert_eq!(net::get(a, &long_target, &[]).await.status, 431);
    let many: Vec<(String, String)> = (0..150)
        .map(|i| (format!("X-H{i}"), "v".to_owned()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(net::get(a, "/api/streams", &many).await.status, 431);
    // And the server still serves.
    assert_eq!(net::get(a, "/api/streams", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_cap_answers_503() {
    let s = Server::start(&["--max-connections", "3", "{dir}/app.log"]).await;
    let a = addr(&s);
    // The test client's pooled connection may hold a permit; fill the rest with idle sockets.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(a).await.unwrap());
    }
    let mut tcp = TcpStream::connect(a).await.unwrap();
    let r = tokio::time::timeout(5 * SEC, net::read_response(&mut tcp))
        .await
        .expect("answered, not hung")
        .expect("a response");
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_heads_are_closed_at_the_header_timeout() {
    let s = Server::start(&["--header-timeout", "500ms", "{dir}/app.log"]).await;
    let a = addr(&s);
    let mut silent = TcpStream::connect(a).await.unwrap();
    let mut partial = TcpStream::connect(a).await.unwrap();
    partial
        .write_all(b"GET /api/streams HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut preface = TcpStream::connect(a).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let start = Instant::now();
    assert!(net::closed_within(&mut silent, 5 * SEC).await, "silent");
    assert!(
        net::closed_within(&mut partial, 5 * SEC).await,
        "partial head"
    );
    assert!(
        net::closed_within(&mut preface, 5 * SEC).await,
        "half a preface"
    );
    assert!(start.elapsed() < 3 * SEC);
}

#[tokio::test(flavor = "multi_thread")]
async fn open_streams_per_address_are_capped_with_429() {
    let s = Server::start(&["--max-streams-per-address", "2", "{dir}/app.log"]).await;
    let a = addr(&s);
    let mut open = Vec::new();
    for path in [
        "/api/streams/app.log/events",
        "/api/streams/app.log/raw?follow=1",
    ] {
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", path, &[]).await;
        let r = net::read_response(&mut tcp).await.unwrap();
        assert_eq!(r.status, 200, "{path}");
        open.push(tcp);
    }
    for path in [
        "/api/events?streams=app.log",
        "/api/streams/app.log/raw?f%6Fllow=1",
    ] {
        let r = net::get(a, path, &[]).await;
        assert_eq!(r.status, 429, "{path}");
        assert!(r.header("retry-after").is_some());
    }
    // Reads that are not streams are not counted.
    assert_eq!(
        net::get(a, "/api/streams/app.log/raw", &[]).await.status,
        200
    );
    // Closing a stream frees its place.
    drop(open.pop());
    wait_until("a place frees up", 5 * SEC, || async {
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", "/api/streams/app.log/events", &[]).await;
        net::read_response(&mut tcp)
            .await
            .is_some_and(|r| r.status == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_clients_are_not_stream_capped_by_default() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let a = addr(&s);
    let mut open = Vec::new();
    for _ in 0..40 {
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", "/api/streams/app.log/events", &[]).await;
        assert_eq!(net::read_response(&mut tcp).await.unwrap().status, 200);
        open.push(tcp);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn held_long_polls_are_capped_with_503() {
    let s = Server::start(&["--max-long-polls", "1", "{dir}/app.log"]).await;
    let a = addr(&s);
    let next = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/streams/app.log/lines?after={next}&wait=30");
    let mut held = TcpStream::connect(a).await.unwrap();
    net::send_request(&mut held, a, "GET", &path, &[]).await;
    // Probing before the server holds the first poll would race it for the one place: a
    // probe that won would be held itself for 30 s.
    wait_until("the first long poll is held", 5 * SEC, || async {
        let metrics = net::get(a, "/metrics", &[]).await.body;
        metrics.lines().any(|l| l == "cometail_held_long_polls 1")
    })
    .await;
    let second = net::get(a, &path, &[]).await;
    assert_eq!(second.status, 503, "{}", second.body);
    assert!(second.body.contains("\"error\""), "{}", second.body);
    let mut byte = [0u8; 1];
    let answered = tokio::time::timeout(Duration::from_millis(200), held.read(&mut byte)).await;
    assert!(answered.is_err(), "the first poll is still held");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slowloris_does_not_delay_a_real_client() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let a = addr(&s);
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut tcp) = TcpStream::connect(a).await else {
                return;
            };
            let head = b"GET /api/streams HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
            for b in head.iter().chain(std::iter::repeat(&b'a')) {
                if tcp.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    () = stop.cancelled() => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let start = Instant::now();
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", "/api/streams", &[]).await;
        let mut first = [0u8; 1];
        tcp.read_exact(&mut first).await.unwrap();
        let took = start.elapsed();
        assert!(took < SEC, "first byte after {took:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
}

// ---------------------------------------------------------------- framing
