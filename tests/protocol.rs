//! The Comet protocol's guarantees over a real socket: exact resume across random
//! disconnects and restarts, history to the first byte, SSE framing, slow clients bounded,
//! the multiplexed and plain-text endpoints.

use std::time::{Duration, Instant};

use crate::common::sse::{Connection, Parser};
use crate::common::{Server, append, texts, wait_until};
use serde_json::Value;

const SEC: Duration = Duration::from_secs(1);

/// A small deterministic generator (xorshift), so failures replay from the printed seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What readers should see for `bytes`: the complete lines, CR of CR LF dropped, decoded
/// lossily (the contract's rules), and the unterminated tail.
fn model_lines(bytes: &[u8]) -> (Vec<String>, Vec<u8>) {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let mut line = &rest[..i];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        lines.push(String::from_utf8_lossy(line).into_owned());
        rest = &rest[i + 1..];
    }
    (lines, rest.to_vec())
}

fn line_texts(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Pages backwards from the end with `before` until `prev` is null; returns all texts.
async fn page_back(s: &Server, id: &str, limit: usize) -> Vec<String> {
    let mut page = s
        .ok_json(&format!(
            "/api/streams/{id}/lines?last={limit}&limit={limit}"
        ))
        .await;
    let mut all: Vec<Vec<String>> = vec![texts(&page)];
    let mut pages = 0;
    while let Some(prev) = page["prev"].as_str() {
        page = s
            .ok_json(&format!(
                "/api/streams/{id}/lines?before={prev}&limit={limit}"
            ))
            .await;
        all.push(texts(&page));
        pages += 1;
        assert!(pages < 100_000, "paging must end");
    }
    all.into_iter().rev().flatten().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_back_to_the_first_byte_exactly() {
    let mut rng = Rng::new(0x5eed_0001);
    let mut content = Vec::new();
    for i in 0..3000 {
        match rng.below(10) {
            0 => content.extend(vec![b'L'; 1 + rng.below(200_000) as usize]),
            1 => content.extend_from_slice(b"bad \xff\xfe utf8 \xc3"),
            2 => content.extend_from_slice(b"crlf line\r"),
            3 => {}
            _ => content.extend_from_slice(format!("line {i} é ✓").as_bytes()),
        }
        content.push(b'\n');
    }
    content.extend_from_slice(b"no trailing newline");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("h.log"), &content).unwrap();
    let s = Server::start_in(dir, &["{dir}/h.log"]).await;
    let (expected, tail) = model_lines(&content);
    for limit in [1, 7, 1000] {
        let got = page_back(&s, "h.log", limit).await;
        assert_eq!(got.len(), expected.len(), "limit {limit}");
        assert!(
            got == expected,
            "limit {limit}: history differs from the file"
        );
    }
    // The unterminated last line is held until its newline arrives, then delivered once.
    let next = s.ok_json("/api/streams/h.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    append(&s.path("h.log"), "\n");
    let page = s
        .ok_json(&format!("/api/streams/h.log/lines?after={next}&wait=10"))
        .await;
    assert_eq!(texts(&page), [String::from_utf8(tail).unwrap()]);
    let got = page_back(&s, "h.log", 500).await;
    assert_eq!(got.len(), expected.len() + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_resumes_the_old_cursor_exactly() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "a\nb\n");
    wait_until("a and b", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines").await) == ["a", "b"]
    })
    .await;
    let cursor = s.ok_json("/api/streams/app.log/lines").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = s.stop().await;
    append(&dir.path().join("app.log"), "c\nd\n");
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    append(&s.path("app.log"), "e\n");
    s.wait_last("app.log", "e").await;
    let page = s
        .ok_json(&format!("/api/streams/app.log/lines?after={cursor}"))
        .await;
    assert_eq!(texts(&page), ["c", "d", "e"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_into_a_deleted_generation_gets_a_gap_then_the_oldest_entries() {
    let s = Server::start(&[
        "--cache-bytes",
        "64K",
        "--rotate-grace",
        "100ms",
        "{dir}/app.log",
    ])
    .await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    append(&s.path("app.log"), "first\n");
    wait_until("first", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines").await) == ["first"]
    })
    .await;
    let old = s.ok_json("/api/streams/app.log/lines").await["entries"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Rotate twice, deleting the rotated files, while writing more than the cache holds.
    for round in 0..2 {
        std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
        std::fs::remove_file(s.path("app.log.1")).unwrap();
        let body: String = (0..2000)
            .map(|i| format!("round {round} line {i} {}\n", "x".repeat(40)))
            .collect();
        append(&s.path("app.log"), body);
        wait_until("rotation seen", 10 * SEC, || async {
            texts(&s.ok_json("/api/streams/app.log/lines?last=1").await)
                == [format!("round {round} line 1999 {}", "x".repeat(40))]
        })
        .await;
    }
    let page = s
        .ok_json(&format!("/api/streams/app.log/lines?after={old}&limit=5"))
        .await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["notice"], "gap", "{page}");
    assert!(
        entries[1..]
            .iter()
            .all(|e| e.get("text").is_some() || e.get("notice").is_some())
    );
    // Following `next` from the gap delivers the rest in order, without a second gap.
    let mut next = page["next"].as_str().unwrap().to_owned();
    let mut seen = line_texts(&entries[1..]);
    loop {
        let page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?after={next}&limit=1000"
            ))
            .await;
        let e = page["entries"].as_array().unwrap();
        if e.is_empty() {
            break;
        }
        assert!(
            e.iter().all(|e| e.get("notice").is_none_or(|n| n != "gap")),
            "one gap only"
        );
        seen.extend(line_texts(e));
        next = page["next"].as_str().unwrap().to_owned();
    }
    let last: Vec<_> = seen.iter().rev().take(2000).rev().cloned().collect();
    let expected: Vec<String> = (0..2000)
        .map(|i| format!("round 1 line {i} {}", "x".repeat(40)))
        .collect();
    assert_eq!(last, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_waits_for_a_missing_file() {
    let s = Server::start(&["{dir}/later.log"]).await;
    let page = s.ok_json("/api/streams/later.log/lines").await;
    let next = page["next"].as_str().unwrap().to_owned();
    let poll = tokio::spawn({
        let url = format!("{}/api/streams/later.log/lines?after={next}&wait=20", s.url);
        let client = s.client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(&s.path("later.log"), "hello\n");
    let page = tokio::time::timeout(10 * SEC, poll).await.unwrap().unwrap();
    assert_eq!(texts(&page), ["hello"]);
}

/// A writer appends numbered lines and rotates the file now and then; returns every line
/// written, in order.
async fn write_with_rotations(dir: std::path::PathBuf, lines: usize, seed: u64) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        let mut rng = Rng::new(seed);
        let path = dir.join("app.log");
        let mut written = Vec::new();
        let mut rotations = 0;
        let mut last_rotation = 0;
        for i in 0..lines {
            let line = format!("line {i} {}", "z".repeat(rng.below(60) as usize));
            append(&path, format!("{line}\n"));
            written.push(line);
            // Rotations are random but at least 300 lines apart, and the writer pauses after
            // each: a file created and rotated away again before the follower's next look
            // cannot be seen by anyone (see ARCHITECTURE.md, "The follower's states").
            if i >= last_rotation + 300 && rng.below(300) == 0 {
                rotations += 1;
                last_rotation = i;
                std::fs::rename(&path, dir.join(format!("app.log.{rotations}"))).unwrap();
                append(&path, "");
                std::thread::sleep(Duration::from_millis(20));
            }
            if rng.below(20) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        written
    })
    .await
    .unwrap()
}

/// A writer appending lines with rotations, and the bookkeeping of a reader that drops its
/// connection at random points: what it got, how many drops, when to stop.
struct Disconnects {
    writer: Option<tokio::task::JoinHandle<Vec<String>>>,
    written: Option<Vec<String>>,
    got: Vec<String>,
    drops: usize,
    deadline: Instant,
}

impl Disconnects {
    /// Starts the writer on a server following an empty `app.log`; returns the harness and
    /// the cursor to start reading from.
    async fn start(s: &Server, seed: u64) -> (Self, String) {
        append(&s.path("app.log"), "");
        let start = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
            .as_str()
            .unwrap()
            .to_owned();
        let writer = tokio::spawn(write_with_rotations(s.dir.path().to_path_buf(), 6000, seed));
        let run = Self {
            writer: Some(writer),
            written: None,
            got: Vec::new(),
            drops: 0,
            deadline: Instant::now() + 60 * SEC,
        };
        (run, start)
    }

    /// Whether to read on: until every written line arrived and 1,000 drops were exercised.
    async fn go_on(&mut self) -> bool {
        if self.written.is_none() && self.writer.as_ref().is_some_and(|w| w.is_finished()) {
            self.written = Some(self.writer.take().unwrap().await.unwrap());
        }
        if let Some(w) = &self.written {
            if self.got.len() >= w.len() && self.drops >= 1000 {
                return false;
            }
        }
        assert!(
            Instant::now() < self.deadline,
            "reader kept up within the deadline ({} lines)",
            self.got.len()
        );
        true
    }

    /// Asserts that the reader got every written line once, in order.
    fn check(self, how: &str) {
        let written = self.written.unwrap();
        let got = self.got;
        assert!(self.drops >= 1000, "exercised {} disconnects", self.drops);
        if let Some(i) = got.iter().zip(&written).position(|(a, b)| a != b) {
            panic!(
                "first difference at {i}: got {:?}, written {:?}",
                &got[i.saturating_sub(2)..(i + 3).min(got.len())],
                &written[i.saturating_sub(2)..(i + 3).min(written.len())]
            );
        }
        assert_eq!(got.len(), written.len(), "nothing lost, nothing doubled");
        eprintln!(
            "{how}: {} random disconnects, {} lines",
            self.drops,
            got.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_disconnects_through_long_poll_lose_and_double_nothing() {
    let s = Server::start(&["--rotate-grace", "200ms", "{dir}/app.log"]).await;
    let (mut run, mut next) = Disconnects::start(&s, 7).await;
    let mut rng = Rng::new(99);
    while run.go_on().await {
        let limit = 1 + rng.below(8);
        let url = format!(
            "{}/api/streams/app.log/lines?after={next}&wait=5&limit={limit}",
            s.url
        );
        // Drop the request at a random point: before it is sent, while it is held, or while
        // the answer is read. The cursor only moves when a whole answer was read.
        let cut = Duration::from_micros(rng.below(1000));
        let attempt = tokio::time::timeout(cut, async {
            let resp = s.client.get(&url).send().await.ok()?;
            resp.json::<Value>().await.ok()
        })
        .await;
        match attempt {
            Ok(Some(page)) => {
                run.got
                    .extend(line_texts(page["entries"].as_array().unwrap()));
                next = page["next"].as_str().unwrap().to_owned();
            }
            _ => run.drops += 1,
        }
    }
    run.check("long poll");
}

#[tokio::test(flavor = "multi_thread")]
async fn random_disconnects_through_sse_lose_and_double_nothing() {
    use futures_util::StreamExt;
    let s = Server::start(&["--rotate-grace", "200ms", "{dir}/app.log"]).await;
    let (mut run, mut last_id) = Disconnects::start(&s, 11).await;
    let mut rng = Rng::new(1234);
    let url = format!("{}/api/streams/app.log/events", s.url);
    while run.go_on().await {
        // Read a random number of bytes of the stream, then drop the connection; events are
        // taken only when complete, as a browser does.
        let budget = if rng.below(2) == 0 {
            rng.below(4000)
        } else {
            rng.below(300_000)
        } as usize;
        run.drops += 1;
        let Ok(resp) = s
            .client
            .get(&url)
            .header("last-event-id", &last_id)
            .send()
            .await
        else {
            continue;
        };
        let mut body = resp.bytes_stream();
        let mut parser = Parser::default();
        let mut read = 0;
        let cut = Instant::now() + Duration::from_millis(rng.below(25));
        while read < budget {
            let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(cut.into(), body.next()).await else {
                break;
            };
            let take = chunk.len().min(budget - read);
            read += take;
            for event in parser.feed(&chunk[..take]) {
                run.got
                    .extend(line_texts(event.json()["entries"].as_array().unwrap()));
                last_id = event.id.clone();
            }
        }
    }
    run.check("sse");
}

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
async fn history_pages_across_the_cache_and_a_rotation_to_the_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let before: String = (0..100).map(|i| format!("disk {i}\n")).collect();
    std::fs::write(dir.path().join("app.log"), &before).unwrap();
    let s = Server::start_in(dir, &["--rotate-grace", "100ms", "{dir}/app.log"]).await;
    let live: String = (0..50).map(|i| format!("live {i}\n")).collect();
    append(&s.path("app.log"), &live);
    s.wait_last("app.log", "live 49").await;
    std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    let new: String = (0..30).map(|i| format!("new {i}\n")).collect();
    append(&s.path("app.log"), &new);
    s.wait_last("app.log", "new 29").await;
    let mut expected: Vec<String> = (0..100).map(|i| format!("disk {i}")).collect();
    expected.extend((0..50).map(|i| format!("live {i}")));
    expected.push("<rotated>".into());
    expected.extend((0..30).map(|i| format!("new {i}")));
    for limit in [1, 7, 64, 1000] {
        assert_eq!(
            page_back(&s, "app.log", limit).await,
            expected,
            "limit {limit}"
        );
    }
    // Forward from the very first entry reproduces the same sequence.
    let first = s.ok_json("/api/streams/app.log/lines?last=1000").await["entries"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut got = vec!["disk 0".to_owned()];
    let mut next = first;
    loop {
        let page = s
            .ok_json(&format!("/api/streams/app.log/lines?after={next}&limit=9"))
            .await;
        if page["entries"].as_array().unwrap().is_empty() {
            break;
        }
        got.extend(texts(&page));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_cross_a_trimmed_cache_without_holes() {
    let s = Server::start(&["--cache-bytes", "64K", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "");
    let start = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines: Vec<String> = (0..3000)
        .map(|i| format!("line {i} {}", "p".repeat(i % 97)))
        .collect();
    for chunk in lines.chunks(100) {
        append(
            &s.path("app.log"),
            chunk.iter().map(|l| format!("{l}\n")).collect::<String>(),
        );
    }
    wait_until("all lines", 10 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines?last=1").await) == [lines[2999].clone()]
    })
    .await;
    // Forward from the start: the first pages come from disk, the last from the cache.
    let mut got = Vec::new();
    let mut next = start;
    loop {
        let page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?after={next}&limit=333"
            ))
            .await;
        if page["entries"].as_array().unwrap().is_empty() {
            break;
        }
        got.extend(texts(&page));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(got, lines);
    assert_eq!(page_back(&s, "app.log", 333).await, lines);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_at_the_end_of_history_survives_its_file_going_away_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "old 1\nold 2\n");
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    // The oldest line of a first load is the last one before the cache: read from disk.
    let next = s.ok_json("/api/streams/app.log/lines?last=2").await["entries"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Truncation releases that generation's file: its bytes are gone.
    std::fs::write(s.path("app.log"), "new 1\n").unwrap();
    let mut got = Vec::new();
    let mut next = next;
    let end = Instant::now() + 10 * SEC;
    while !got.contains(&"new 1".to_owned()) {
        assert!(Instant::now() < end, "new 1 arrives: {got:?}");
        let page = s
            .ok_json(&format!("/api/streams/app.log/lines?after={next}&wait=5"))
            .await;
        got.extend(texts(&page));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(
        got,
        ["old 2", "<truncated>", "new 1"],
        "nothing was missed: no gap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_into_forgotten_generations_get_one_gap_and_no_repeats() {
    let s = Server::start(&["--rotate-grace", "50ms", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    append(&s.path("app.log"), "gen 0\n");
    wait_until("gen 0", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines").await) == ["gen 0"]
    })
    .await;
    let early = s.ok_json("/api/streams/app.log/lines").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    // More rotations than a stream remembers generations (64).
    for g in 1..=70 {
        std::fs::remove_file(s.path("app.log")).unwrap();
        append(&s.path("app.log"), format!("gen {g}\n"));
        s.wait_last("app.log", &format!("gen {g}")).await;
    }
    let mut got = Vec::new();
    let mut next = early;
    loop {
        let page = s
            .ok_json(&format!("/api/streams/app.log/lines?after={next}&limit=50"))
            .await;
        if page["entries"].as_array().unwrap().is_empty() {
            break;
        }
        got.extend(texts(&page).into_iter().filter(|t| t != "<rotated>"));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(got.iter().filter(|t| *t == "<gap>").count(), 1, "{got:?}");
    let lines: Vec<&String> = got.iter().filter(|t| t.starts_with("gen ")).collect();
    let mut sorted = lines.clone();
    sorted.dedup();
    assert_eq!(lines.len(), sorted.len(), "no line twice: {got:?}");
    assert_eq!(lines.last().map(|s| s.as_str()), Some("gen 70"));
}

#[tokio::test(flavor = "multi_thread")]
async fn history_keeps_a_renamed_file_when_a_newer_one_is_deleted_and_marks_what_is_gone() {
    let s = Server::start(&[
        "--rotate-grace",
        "50ms",
        "--cache-bytes",
        "64K",
        "{dir}/app.log",
    ])
    .await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    let initial: String = (0..2000)
        .map(|i| format!("initial {i} {}\n", "i".repeat(40)))
        .collect();
    append(&s.path("app.log"), initial);
    wait_until("initial", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines?last=1").await)
            == [format!("initial 1999 {}", "i".repeat(40))]
    })
    .await;
    // Rotate (app.log.1 keeps the first file), then delete the second file.
    std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    append(&s.path("app.log"), "second\n");
    s.wait_last("app.log", "second").await;
    std::fs::remove_file(s.path("app.log")).unwrap();
    wait_until("deleted", 5 * SEC, || async {
        s.ok_json("/api/streams").await["streams"][0]["state"] == "waiting"
    })
    .await;
    append(&s.path("app.log"), "third\n");
    s.wait_last("app.log", "third").await;
    // The cache holds everything; paging from disk must agree. With a tiny page the first
    // file is read from app.log.1 (still retained although the second file was deleted).
    let all = page_back(&s, "app.log", 100).await;
    let first = format!("initial 0 {}", "i".repeat(40));
    assert_eq!(
        all.first(),
        Some(&first),
        "the first file is read from app.log.1"
    );
    assert_eq!(all.len(), 2000 + 4, "every line and both notices, once");
    assert!(all.contains(&"third".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_are_bounded_in_bytes_too() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("{}\n", "b".repeat(500_000));
    std::fs::write(dir.path().join("big.log"), big.repeat(20)).unwrap();
    let s = Server::start_in(dir, &["{dir}/big.log"]).await;
    let resp = s
        .client
        .get(format!("{}/api/streams/big.log/lines?last=20", s.url))
        .send()
        .await
        .unwrap();
    let body = resp.bytes().await.unwrap();
    assert!(body.len() < 5 << 20, "page of {} bytes", body.len());
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        !texts(&page).is_empty() && page["prev"].is_string(),
        "more to page back to"
    );
}
