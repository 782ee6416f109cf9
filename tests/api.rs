//! The HTTP API v1 over a real socket and real files: reads, long polls, SSE, errors,
//! shutdown.

use std::time::{Duration, Instant};

use crate::common::sse::Connection;
use crate::common::{Server, append, texts, wait_until};

const SEC: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn first_request_without_cursor_returns_the_last_n_lines() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "1\n2\n3\n4\n5\n");
    let s = Server::start_in(dir, &["-n", "3", "{dir}/app.log"]).await;
    let page = s.ok_json("/api/streams/app.log/lines").await;
    assert_eq!(texts(&page), ["3", "4", "5"]);
    let page = s.ok_json("/api/streams/app.log/lines?last=2").await;
    assert_eq!(texts(&page), ["4", "5"]);
    let page = s.ok_json("/api/streams/app.log/lines?last=100").await;
    assert_eq!(texts(&page), ["1", "2", "3", "4", "5"]);
    assert!(
        page["prev"].is_null(),
        "at the start of the file prev is null"
    );
    let page = s.ok_json("/api/streams/app.log/lines?last=0").await;
    assert_eq!(texts(&page), Vec::<String>::new());
    append(&s.path("app.log"), "6\n");
    let next = page["next"].as_str().unwrap();
    let after = s
        .ok_json(&format!("/api/streams/app.log/lines?after={next}&wait=5"))
        .await;
    assert_eq!(
        texts(&after),
        ["6"],
        "last=0 gives a cursor that follows from the end"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_are_listed_with_their_state() {
    let s = Server::start(&["{dir}/a.log", "{dir}/missing.log"]).await;
    append(&s.path("a.log"), "x\n");
    let list = s.ok_json("/api/streams").await;
    let streams = list["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[1]["id"], "missing.log");
    assert_eq!(streams[1]["state"], "waiting");
    assert_eq!(streams[1]["reason"], "file does not exist");
    // A file that appears later is followed from its first byte.
    append(&s.path("missing.log"), "first\n");
    wait_until("missing.log appears", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/missing.log/lines").await) == ["first"]
    })
    .await;
    assert_eq!(
        s.ok_json("/api/streams").await["streams"][1]["state"],
        "following"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_is_held_then_returns_a_line_appended_while_it_waits() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "old\n");
    wait_until("old line", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines").await) == ["old"]
    })
    .await;
    let next = s.ok_json("/api/streams/app.log/lines").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("/api/streams/app.log/lines?after={next}&wait=30");
    let started = Instant::now();
    let poll = tokio::spawn({
        let client = s.client.clone();
        let url = format!("{}{url}", s.url);
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the long poll is held while nothing is new"
    );
    let written = Instant::now();
    append(&s.path("app.log"), "new\n");
    let page = tokio::time::timeout(5 * SEC, poll).await.unwrap().unwrap();
    assert_eq!(texts(&page), ["new"]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        written.elapsed() < SEC,
        "answered soon after the append: {:?}",
        written.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_times_out_with_no_entries_and_the_same_cursor() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "x\n");
    wait_until("x is read", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines").await) == ["x"]
    })
    .await;
    let next = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    let page = s
        .ok_json(&format!("/api/streams/app.log/lines?after={next}&wait=1"))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert!(started.elapsed() < 5 * SEC);
    assert_eq!(texts(&page), Vec::<String>::new());
    assert_eq!(page["next"].as_str(), Some(next.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_delivers_lines_and_resumes_exactly_after_last_event_id() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "a\n");
    let url = format!("{}/api/streams/app.log/events", s.url);
    let mut conn = Connection::open(&s.client, &url, None).await;
    assert_eq!(conn.status, 200);
    assert_eq!(conn.headers["content-type"], "text/event-stream");
    assert_eq!(conn.headers["cache-control"], "no-store");
    let (first, _) = conn.entries(1, 5 * SEC).await;
    assert_eq!(first[0]["text"], "a");
    append(&s.path("app.log"), "b\nc\n");
    let (entries, id) = conn.entries(2, 5 * SEC).await;
    assert_eq!(
        entries
            .iter()
            .map(|e| e["text"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(
        id,
        entries[1]["cursor"].as_str().unwrap(),
        "the event id is its last entry's cursor"
    );
    assert_eq!(conn.parser.feed(b"").len(), 0);
    drop(conn);
    append(&s.path("app.log"), "d\ne\n");
    let mut again = Connection::open(&s.client, &url, Some(&id)).await;
    let (entries, _) = again.entries(2, 5 * SEC).await;
    assert_eq!(
        entries
            .iter()
            .map(|e| e["text"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["d", "e"]
    );
    append(&s.path("app.log"), "f\n");
    let (entries, _) = again.entries(1, 5 * SEC).await;
    assert_eq!(entries[0]["text"], "f", "nothing twice, nothing skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_json_reason() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "x\n");
    let cursor = s.ok_json("/api/streams/app.log/lines").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases = [
        ("/api/streams/nope/lines", 404),
        ("/api/streams/nope/events", 404),
        ("/api/streams/nope/raw", 404),
        ("/api/nothing", 404),
        ("/api/streams/app.log/lines?after=", 400),
        ("/api/streams/app.log/lines?after=zzz", 400),
        ("/api/streams/app.log/lines?wait=5", 400),
        ("/api/streams/app.log/lines?limit=-1", 400),
        ("/api/streams/app.log/lines?limit=abc", 400),
        ("/api/streams/app.log/lines?last=-1", 400),
        ("/api/streams/app.log/lines?last=x", 400),
        ("/api/streams/app.log/lines?limit=100000", 400),
        ("/api/events", 400),
        ("/api/events?streams=nope", 404),
    ];
    for (path, status) in cases {
        let (got, body) = s.get_json(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    let (got, _) = s
        .get_json(&format!(
            "/api/streams/app.log/lines?after={cursor}&wait=121"
        ))
        .await;
    assert_eq!(got, 400);
    let resp = s
        .client
        .get(format!("{}/api/streams/app.log/events", s.url))
        .header("last-event-id", "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_open_streams_and_long_polls() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "x\n");
    let next = s.ok_json("/api/streams/app.log/lines").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut conn = Connection::open(
        &s.client,
        &format!("{}/api/streams/app.log/events", s.url),
        None,
    )
    .await;
    conn.entries(1, 5 * SEC).await;
    let poll = s
        .client
        .get(format!(
            "{}/api/streams/app.log/lines?after={next}&wait=120",
            s.url
        ))
        .send();
    let poll = tokio::spawn(poll);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    s.stop().await;
    assert!(started.elapsed() < 2 * SEC);
    assert!(conn.next(2 * SEC).await.is_none(), "the SSE stream ended");
    let _ = tokio::time::timeout(2 * SEC, poll)
        .await
        .expect("the long poll ended");
}

#[test]
fn sigterm_stops_the_binary_with_open_streams_within_two_seconds() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "x\n");
    let (mut child, addr) = crate::common::spawn_binary(&log);
    let child = &mut child.0;
    let mut sse = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        sse,
        "GET /api/streams/app.log/events HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let n = sse.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGTERM: {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still running 2 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bad_usage_exits_with_code_two_and_a_message() {
    let bin = env!("CARGO_BIN_EXE_cometail");
    for args in [
        &[][..],
        &["--port", "x", "a.log"],
        &["--nope", "a.log"],
        &["--max-line-bytes", "1", "a.log"],
        &["-", "-"],
    ] {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn last_zero_gives_a_prev_to_page_back_from_the_end() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "1\n2\n");
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    let page = s.ok_json("/api/streams/app.log/lines?last=0").await;
    let prev = page["prev"]
        .as_str()
        .expect("history exists before the end");
    let back = s
        .ok_json(&format!("/api/streams/app.log/lines?before={prev}"))
        .await;
    assert_eq!(texts(&back), ["1", "2"]);
    let empty = Server::start(&["{dir}/empty.log"]).await;
    append(&empty.path("empty.log"), "");
    assert!(empty.ok_json("/api/streams/empty.log/lines?last=0").await["prev"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_methods_get_a_json_reason_too() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let resp = s
        .client
        .post(format!("{}/api/streams", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn glob_stream_ids_keep_the_matched_directories() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["nginx", "apache"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        append(&dir.path().join(sub).join("access.log"), "x\n");
    }
    let s = Server::start_in(dir, &["{dir}/*/access.log"]).await;
    let list = s.ok_json("/api/streams").await;
    let ids: Vec<&str> = list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["apache_access.log", "nginx_access.log"]);
}
