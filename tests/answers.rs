//! Answers that must be true (issue 17), over real sockets and files: the throttle never
//! refuses the right credential, a second `Host` is a 400, `last` has no hidden cap, `follow`
//! takes only its documented values, a head that does not arrive in time gets a 408, a
//! multiplexed event's id covers only what was sent, and the documented defaults agree with
//! `--help`.

use std::time::Duration;

use clap::CommandFactory;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::sse::Connection;
use crate::common::{Server, append, net, texts};

const SEC: Duration = Duration::from_secs(1);

fn addr(s: &Server) -> std::net::SocketAddr {
    s.url.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_host_headers_are_a_bad_request_whichever_comes_first() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let a = addr(&s);
    for hosts in [["localhost", "evil.example"], ["localhost", "localhost"]] {
        let mut tcp = TcpStream::connect(a).await.unwrap();
        let head = format!(
            "GET /api/streams HTTP/1.1\r\nHost: {}\r\nHost: {}\r\n\r\n",
            hosts[0], hosts[1]
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let r = tokio::time::timeout(10 * SEC, net::read_response(&mut tcp))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status, 400, "{hosts:?}");
        assert!(r.body.contains("Host"), "{}", r.body);
    }
    assert_eq!(net::get(a, "/api/streams", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn last_is_served_up_to_its_documented_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
    append(&dir.path().join("app.log"), lines);
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    s.wait_last("app.log", "line 9999").await;
    for n in [1_500, 10_000] {
        let page = s
            .ok_json(&format!("/api/streams/app.log/lines?last={n}"))
            .await;
        let got = texts(&page);
        assert_eq!(got.len(), n, "last={n} gives {n} entries, not 1,000");
        assert_eq!(got[0], format!("line {}", 10_000 - n));
    }
    // An explicit `limit` is the documented cap, and `prev` says there is more.
    let page = s
        .ok_json("/api/streams/app.log/lines?last=2000&limit=10")
        .await;
    assert_eq!(texts(&page).len(), 10);
    assert!(page["prev"].is_string());
    // SSE's first event obeys the same rule.
    let mut sse = Connection::open(
        &s.client,
        &format!("{}/api/streams/app.log/events?last=3000", s.url),
        None,
    )
    .await;
    let (entries, _) = sse.entries(3_000, 10 * SEC).await;
    assert_eq!(entries.len(), 3_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_takes_only_its_documented_values() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let a = addr(&s);
    for bad in ["follow", "follow=", "follow=yes", "follow=2"] {
        let r = net::get(a, &format!("/api/streams/app.log/raw?{bad}"), &[]).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.body.contains("follow"), "{bad}: {}", r.body);
    }
    for good in ["follow=0", "follow=false"] {
        let r = net::get(a, &format!("/api/streams/app.log/raw?{good}"), &[]).await;
        assert_eq!(r.status, 200, "{good}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_that_does_not_arrive_in_time_gets_408() {
    let s = Server::start(&["--header-timeout", "500ms", "{dir}/app.log"]).await;
    let a = addr(&s);
    let mut partial = TcpStream::connect(a).await.unwrap();
    partial
        .write_all(b"GET /api/streams HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(a).await.unwrap();
    let mut preface = TcpStream::connect(a).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let r = tokio::time::timeout(5 * SEC, net::read_response(&mut partial))
        .await
        .expect("an answer within 5 s")
        .expect("a 408, not a bare close");
    assert_eq!(r.status, 408);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.body.contains("--header-timeout"), "{}", r.body);
    assert!(net::closed_within(&mut partial, 5 * SEC).await);
    // Nothing sent, or an HTTP/2 preface: closed without HTTP/1 bytes.
    for (name, tcp) in [("silent", &mut silent), ("preface", &mut preface)] {
        let answer = tokio::time::timeout(5 * SEC, net::read_response(tcp))
            .await
            .expect("closed within 5 s");
        assert!(answer.is_none(), "{name}: {answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multiplexed_resume_delivers_every_streams_starting_entries() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), "a1\na2\n");
    append(&dir.path().join("b.log"), "b1\nb2\n");
    let s = Server::start_in(dir, &["{dir}/a.log", "{dir}/b.log"]).await;
    s.wait_last("a.log", "a2").await;
    s.wait_last("b.log", "b2").await;
    let url = format!("{}/api/events?streams=a.log,b.log", s.url);
    let mut first = Connection::open(&s.client, &url, None).await;
    let event = loop {
        let e = first.next(10 * SEC).await.expect("an event");
        if e.event == "entries" {
            break e;
        }
    };
    let data = event.json();
    let (sent, other) = if data["stream"] == "a.log" {
        ("a.log", "b.log")
    } else {
        ("b.log", "a.log")
    };
    assert!(
        !event.id.contains(other),
        "the id names only what was sent: {}",
        event.id
    );
    drop(first);
    // Resuming from that id must still deliver the other stream's starting entries.
    let mut resumed = Connection::open(&s.client, &url, Some(&event.id)).await;
    let event = loop {
        let e = resumed.next(10 * SEC).await.expect("an event");
        if e.event == "entries" {
            break e;
        }
    };
    let data = event.json();
    assert_eq!(data["stream"], other);
    let want: Vec<String> = (1..=2).map(|i| format!("{}{i}", &other[..1])).collect();
    assert_eq!(texts(&data), want);
    assert!(event.id.contains(sent) && event.id.contains(other));
}

/// A default as written in prose ("10,000", "16 KiB", "10 s") in the form `--help` shows it.
fn normalised(text: &str) -> String {
    text.replace([',', ' '], "")
        .replace("KiB", "K")
        .replace("MiB", "M")
        .replace("GiB", "G")
}

#[test]
fn the_documented_defaults_agree_with_help() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let api = std::fs::read_to_string(root.join("docs/API.md")).unwrap();
    let security = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let command = cometail::cli::Cli::command();
    let mut compared = 0;
    for arg in command.get_arguments() {
        let (Some(flag), [default]) = (arg.get_long(), arg.get_default_values()) else {
            continue;
        };
        let default = default.to_string_lossy().into_owned();
        let flag = format!("`--{flag}`");
        // API.md's limits table: `| `--flag` | DEFAULT words… | … |`.
        for row in api
            .lines()
            .filter(|l| l.starts_with(&format!("| {flag} |")))
        {
            let cell = row.split('|').nth(2).unwrap().trim();
            let mut words = cell.split_whitespace();
            let mut said = words.next().unwrap().to_owned();
            if let Some(unit @ ("s" | "ms" | "KiB" | "MiB" | "GiB")) = words.next() {
                said.push_str(unit);
            }
            assert_eq!(
                normalised(&said),
                default,
                "docs/API.md says {flag} defaults to {cell:?}, --help says {default}"
            );
            compared += 1;
        }
        // SECURITY.md: `--flag` (DEFAULT).
        let mut rest = security.as_str();
        while let Some(at) = rest.find(&format!("{flag} (")) {
            rest = &rest[at + flag.len() + 2..];
            let said = &rest[..rest.find(')').unwrap()];
            assert_eq!(
                normalised(said),
                default,
                "SECURITY.md says {flag} ({said}), --help says {default}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 8, "only {compared} defaults found in the docs");
}
