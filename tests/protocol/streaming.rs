//! Streaming: SSE framing, a client that never reads, multiplexed events, raw follow, limits,
//! followers at the live edge.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn sse_framing_survives_cr_lf_nul_and_line_separators() {
    let s = Server::start(&["{dir}/f.log"]).await;
    append(&s.path("f.log"), "");
    let mut conn = Connection::open(
        &s.client,
        &format!("{}/api/streams/f.log/events?last=0", s.url),
        None,
    )
    .await;
    conn.next(5 * SEC).await.expect("the first event");
    let mut rng = Rng::new(42);
    let pieces: [&[u8]; 9] = [
        b"\r",
        b"\r\n",
        b"\n",
        b"\0",
        "\u{2028}".as_bytes(),
        "\u{2029}".as_bytes(),
        b"\xff",
        b"data: x",
        b"plain",
    ];
    let mut content = Vec::new();
    for _ in 0..2000 {
        content.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
    }
    content.push(b'\n');
    append(&s.path("f.log"), &content);
    let (expected, _) = model_lines(&content);
    let (entries, _) = conn.entries(expected.len(), 10 * SEC).await;
    assert_eq!(line_texts(&entries), expected);
}

#[test]
fn a_client_that_never_reads_costs_bounded_memory_and_others_are_unaffected() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    append(&log, "");
    let (mut child, addr) = crate::common::spawn_binary(&log);
    let child = &mut child.0;
    let rss = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let request =
        format!("GET /api/streams/big.log/events?last=0 HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    // The stalled client asks for events and never reads a byte.
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    stalled.write_all(request.as_bytes()).unwrap();
    // The live client reads everything, counting lines as they arrive.
    let mut live = std::net::TcpStream::connect(&addr).unwrap();
    live.write_all(request.as_bytes()).unwrap();
    live.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Both requests are answered (their starting event sent) before anything is appended,
    // so `last=0` is resolved against the empty file.
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut started = false;
    while !started {
        let n = live.read(&mut buf).unwrap();
        assert!(n > 0, "live stream open");
        started = !parser.feed(&buf[..n]).is_empty();
    }
    let before = rss(child.id());
    let chunk = format!("{}\n", "m".repeat(999)).repeat(1000); // 1 MB, 1000 lines
    let mut peak = before;
    let mut seen = 0usize;
    for i in 0..100 {
        append(&log, &chunk);
        // The live client keeps up with every line despite the stalled one.
        let want = (i + 1) * 1000;
        let end = Instant::now() + 30 * SEC;
        while seen < want {
            assert!(
                Instant::now() < end,
                "live client got {seen} of {want} lines"
            );
            let n = live.read(&mut buf).unwrap();
            assert!(n > 0, "live stream open");
            for e in parser.feed(&buf[..n]) {
                seen += line_texts(e.json()["entries"].as_array().unwrap()).len();
            }
        }
        peak = peak.max(rss(child.id()));
    }
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "stalled client: server RSS {} MiB at start, peak growth {growth_mib} MiB over 100 MB appended",
        before / 1024
    );
    assert!(growth_mib < 96, "server memory grew by {growth_mib} MiB");
    drop(stalled);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn multiplexed_events_name_their_stream_and_resume_every_stream() {
    let s = Server::start(&["{dir}/a.log", "{dir}/b.log"]).await;
    append(&s.path("a.log"), "a0\n");
    append(&s.path("b.log"), "b0\n");
    wait_until("both read", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/b.log/lines").await) == ["b0"]
            && texts(&s.ok_json("/api/streams/a.log/lines").await) == ["a0"]
    })
    .await;
    let url = format!("{}/api/events?streams=a.log,b.log", s.url);
    let mut conn = Connection::open(&s.client, &url, None).await;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut id = String::new();
    while seen.len() < 2 {
        let e = conn.next(5 * SEC).await.unwrap();
        id = e.id.clone();
        let data = e.json();
        for t in line_texts(data["entries"].as_array().unwrap()) {
            seen.push((data["stream"].as_str().unwrap().to_owned(), t));
        }
    }
    assert!(
        seen.contains(&("a.log".into(), "a0".into()))
            && seen.contains(&("b.log".into(), "b0".into()))
    );
    drop(conn);
    append(&s.path("a.log"), "a1\n");
    append(&s.path("b.log"), "b1\nb2\n");
    let mut again = Connection::open(&s.client, &url, Some(&id)).await;
    let mut resumed: Vec<(String, String)> = Vec::new();
    while resumed.len() < 3 {
        let e = again.next(5 * SEC).await.unwrap();
        let data = e.json();
        for t in line_texts(data["entries"].as_array().unwrap()) {
            resumed.push((data["stream"].as_str().unwrap().to_owned(), t));
        }
    }
    resumed.sort();
    assert_eq!(
        resumed,
        [
            ("a.log".into(), "a1".into()),
            ("b.log".into(), "b1".into()),
            ("b.log".into(), "b2".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_returns_plain_text_and_follows_like_tail_f() {
    use futures_util::StreamExt;
    let s = Server::start(&["-n", "2", "{dir}/r.log"]).await;
    append(&s.path("r.log"), "1\n2\n3\n");
    wait_until("3 lines", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/r.log/lines").await) == ["2", "3"]
    })
    .await;
    let resp = s
        .client
        .get(format!("{}/api/streams/r.log/raw?last=3", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), "1\n2\n3\n");
    let resp = s
        .client
        .get(format!("{}/api/streams/r.log/raw?follow=1", s.url))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    append(&s.path("r.log"), "4\n");
    let end = Instant::now() + 5 * SEC;
    while !text.ends_with("4\n") {
        let chunk = tokio::time::timeout_at(end.into(), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(text, "2\n3\n4\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn limit_bounds_entries_and_sse_carries_its_headers() {
    let s = Server::start(&["{dir}/l.log"]).await;
    let body: String = (0..50).map(|i| format!("{i}\n")).collect();
    append(&s.path("l.log"), "");
    let first = s.ok_json("/api/streams/l.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    append(&s.path("l.log"), body);
    let page = s
        .ok_json(&format!(
            "/api/streams/l.log/lines?after={first}&limit=7&wait=5"
        ))
        .await;
    assert_eq!(texts(&page).len(), 7);
    let resp = s
        .client
        .get(format!("{}/api/streams/l.log/lines?last=1", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let conn = Connection::open(
        &s.client,
        &format!("{}/api/streams/l.log/events", s.url),
        None,
    )
    .await;
    assert_eq!(conn.headers["x-accel-buffering"], "no");
    let mut conn = conn;
    let event = conn.next(5 * SEC).await.unwrap();
    assert_eq!(
        event.retry,
        Some(2000),
        "a retry hint comes before the first event"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_several_pages_reaches_every_sse_client_without_a_further_append() {
    // Clients at the same cursor share one encoded event per page; a burst longer than a page
    // must still be sent whole, not held until the next append.
    let s = Server::start(&["{dir}/f.log"]).await;
    append(&s.path("f.log"), "first\n");
    s.wait_last("f.log", "first").await;
    let url = format!("{}/api/streams/f.log/events?last=1", s.url);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut conn = Connection::open(&s.client, &url, None).await;
        conn.entries(1, 5 * SEC).await;
        clients.push(conn);
    }
    let burst: String = (0..2_500).map(|i| format!("burst {i}\n")).collect();
    append(&s.path("f.log"), &burst);
    let expected: Vec<String> = (0..2_500).map(|i| format!("burst {i}")).collect();
    for conn in &mut clients {
        let (entries, _) = conn.entries(expected.len(), 10 * SEC).await;
        assert_eq!(line_texts(&entries), expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn followers_at_the_live_edge_get_every_line_once_and_in_order() {
    // Caught-up clients of connections that left hyper are written by their stream's relay
    // (`edge.rs`) and go back to their own task when an event does not fit their socket, when
    // more than a page follows, or while their task still holds bytes. Single lines, pauses
    // and bursts longer than a page, mixed at random, must reach every client whole, once and
    // in order: those reading all along and those that read only after the last append.
    let s = Server::start(&["{dir}/f.log"]).await;
    append(&s.path("f.log"), "start\n");
    s.wait_last("f.log", "start").await;
    let url = format!("{}/api/streams/f.log/events?last=1", s.url);
    let mut rng = Rng::new(15);
    // (lines to append, then a pause in ms).
    let plan: Vec<(usize, u64)> = (0..400)
        .map(|_| match rng.below(20) {
            0 => (1_000 + rng.below(2_000) as usize, 0),
            1..=6 => (1, 1 + rng.below(4)),
            _ => (1 + rng.below(3) as usize, 0),
        })
        .collect();
    let total: usize = plan.iter().map(|(n, _)| n).sum();
    let expected: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new((0..total).map(|i| format!("edge {i}")).collect());
    let (done, appended) = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    for k in 0..24 {
        let mut conn = Connection::open(&s.client, &url, None).await;
        assert_eq!(line_texts(&conn.entries(1, 5 * SEC).await.0), ["start"]);
        let expected = expected.clone();
        let mut appended = appended.clone();
        readers.push(tokio::spawn(async move {
            if k % 6 == 5 {
                // A client that reads nothing until the end: its socket fills.
                appended.wait_for(|done| *done).await.expect("appender");
            }
            let (entries, _) = conn.entries(expected.len(), 60 * SEC).await;
            assert!(
                line_texts(&entries) == *expected,
                "client {k}: {} entries, not the {} appended in order",
                entries.len(),
                expected.len()
            );
        }));
    }
    let mut next = 0;
    for (lines, pause_ms) in plan {
        let text: String = (next..next + lines)
            .map(|i| format!("edge {i}\n"))
            .collect();
        next += lines;
        append(&s.path("f.log"), text);
        if pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
    }
    done.send(true).expect("readers wait");
    for reader in readers {
        tokio::time::timeout(90 * SEC, reader)
            .await
            .expect("every reader finishes within the deadline")
            .expect("every reader saw every line once, in order");
    }
}
