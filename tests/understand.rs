//! The log understood: event time and level on entries, read off real files by a real
//! server, identical live and from history on disk.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, append, texts};

/// 2026-12-01T21:14:39Z (`date -u -d 2026-12-01T21:14:39Z +%s`, in ms).
const T: i64 = 1_796_159_679_000;

/// One line per recognised format, the entry text expected, its `ts` and its `level`.
/// The server reads zone-less stamps in Europe/Berlin (UTC+1 in December).
fn formats() -> Vec<(String, String, Option<i64>, Option<&'static str>)> {
    let plain = |line: &str, ts: Option<i64>, level: Option<&'static str>| {
        (line.to_owned(), line.to_owned(), ts, level)
    };
    vec![
        plain("2026-12-01T21:14:39.123Z ERROR rfc3339", Some(T + 123), Some("error")),
        plain("2026-12-01 22:14:39,5 WARN [main] log4j zone-less", Some(T + 500), Some("warn")),
        plain("[2026-12-01 22:14:39] CRITICAL bracketed", Some(T), Some("fatal")),
        plain("2026/12/01 22:14:39 [error] 7#7: nginx", Some(T), Some("error")),
        plain("Dec  1 22:14:39 host app[42]: warning: syslog", Some(T), Some("warn")),
        plain("<11>1 2026-12-01T21:14:39Z host app 1 - - rfc5424", Some(T), Some("error")),
        plain("I1201 22:14:39.250000   12 main.go:34] klog", Some(T + 250), Some("info")),
        plain(
            "10.0.0.1 - - [01/Dec/2026:21:14:39 +0000] \"GET / HTTP/1.1\" 500 12",
            Some(T),
            None,
        ),
        plain(r#"{"ts":1796159679.5,"level":"debug","msg":"json"}"#, Some(T + 500), Some("debug")),
        plain(r#"{"@timestamp":"2026-12-01T21:14:39Z","log.level":"ERROR"}"#, Some(T), Some("error")),
        plain("time=2026-12-01T21:14:39Z level=warn msg=\"logfmt\"", Some(T), Some("warn")),
        (
            r#"{"log":"2026-12-01 22:14:39 ERROR inside docker\n","stream":"stderr","time":"2026-12-01T21:14:39.9Z"}"#
                .to_owned(),
            "2026-12-01 22:14:39 ERROR inside docker".to_owned(),
            Some(T + 900),
            Some("error"),
        ),
        plain("2026-13-45 12:00:00 ERROR not a date", None, Some("error")),
        plain("a plain line that mentions an error late", None, None),
    ]
}

fn facts(e: &Value) -> (String, Option<i64>, Option<String>) {
    (
        e["text"].as_str().unwrap().to_owned(),
        e["ts"].as_i64(),
        e["level"].as_str().map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_format_yields_its_ts_and_level_live_and_from_history() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "start\n");
    let args = ["--timezone", "Europe/Berlin", "{dir}/app.log"];
    let s = Server::start_in(dir, &args).await;
    s.wait_last("app.log", "start").await;
    let start = s.ok_json("/api/streams/app.log/lines?last=1").await;
    let after = start["next"].as_str().unwrap().to_owned();

    let formats = formats();
    for (line, ..) in &formats {
        append(&s.path("app.log"), format!("{line}\n"));
    }
    let want: Vec<_> = formats
        .iter()
        .map(|(_, text, ts, level)| (text.clone(), *ts, level.map(str::to_owned)))
        .collect();
    let path = format!("/api/streams/app.log/lines?after={after}&wait=5");
    // Each long poll answers as soon as entries exist; poll until all have arrived.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut live = Vec::new();
    while live.len() < want.len() {
        assert!(Instant::now() < deadline, "every line live: {live:?}");
        live = s.ok_json(&path).await["entries"]
            .as_array()
            .unwrap()
            .clone();
    }
    let live: Vec<_> = live.iter().map(facts).collect();
    assert_eq!(live, want);

    // History: a restarted server reads the same bytes back from disk.
    let dir = s.stop().await;
    let s = Server::start_in(dir, &args).await;
    let page = s.ok_json("/api/streams/app.log/lines?last=100").await;
    let history: Vec<_> = page["entries"].as_array().unwrap()[1..]
        .iter()
        .map(facts)
        .collect();
    assert_eq!(history, want);
    // And paging back from the end (before=) reads the disk backwards.
    let last = page["entries"].as_array().unwrap().last().unwrap()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = s
        .ok_json(&format!("/api/streams/app.log/lines?before={last}&limit=3"))
        .await;
    let back: Vec<_> = back["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(facts)
        .collect();
    assert_eq!(back, want[want.len() - 4..want.len() - 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_lines_stay_text_and_the_follower_goes_on() {
    let s = Server::start(&["--timezone", "UTC", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    let deep = format!(
        "{{\"level\":\"warn\",\"a\":{}1{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let huge = format!("{{\"level\":\"info\",\"msg\":\"{}\"}}", "x".repeat(1 << 20));
    let mut bytes = Vec::new();
    for line in [
        deep.as_str(),
        huge.as_str(),
        "{\"level\":\"error\",",
        "2026-12-01T21:14:39Z ok",
    ] {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(b"\xff\xfe\x00binary\x1b[31m\n");
    bytes.extend_from_slice(b"after\n");
    append(&s.path("app.log"), &bytes);
    s.wait_last("app.log", "after").await;
    let page = s.ok_json("/api/streams/app.log/lines?last=6").await;
    let got: Vec<_> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["ts"].as_i64(),
                e["level"].as_str().map(str::to_owned),
                e["truncated"].as_bool(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (None, Some("warn".to_owned()), None),
            // Cut at --max-line-bytes (1 MiB), so no longer JSON: plain text, where the level
            // word rule still sees `info` among the first tokens (as for the broken object).
            (None, Some("info".to_owned()), Some(true)),
            (None, Some("error".to_owned()), None),
            (Some(T), None, None),
            (None, None, None),
            (None, None, None),
        ]
    );
    assert_eq!(texts(&page)[5], "after");
}
