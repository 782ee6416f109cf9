//! The log understood: event time and level on entries, read off real files by a real
//! server, identical live and from history on disk.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, append, texts, xorshift};

/// 2026-12-01T21:14:39Z (`date -u -d 2026-12-01T21:14:39Z +%s`, in ms).
const T: i64 = 1_796_159_679_000;

/// One line per recognised format, the entry text expected, its `ts` and its `level`.
/// The server reads zone-less stamps in Europe/Berlin (UTC+1 in December).
fn formats() -> Vec<(String, String, Option<i64>, Option<&'static str>)> {
    let plain = |line: &str, ts: Option<i64>, level: Option<&'static str>| {
        (line.to_owned(), line.to_owned(), ts, level)
    };
    vec![
        // First: a line with no stamp after a start would join its record.
        plain("a plain line that mentions an error late", None, None),
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
    // The binary line and `after` have no stamp: they join the record the stamped line opens.
    let record = "2026-12-01T21:14:39Z ok\n\u{fffd}\u{fffd}\0binary\x1b[31m\nafter";
    s.wait_last("app.log", record).await;
    let page = s.ok_json("/api/streams/app.log/lines?last=4").await;
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
        ]
    );
}

/// A mixed log of `n` lines: text with levels and words, JSON and logfmt with status codes.
fn mixed_log(n: usize, seed: u64) -> Vec<String> {
    let mut next = xorshift(seed);
    let levels = ["DEBUG", "INFO", "WARN", "ERROR"];
    let words = ["disk full", "timeout", "Timeout", "user bob", "GET /x"];
    (0..n)
        .map(|i| {
            let level = levels[(next() % 4) as usize];
            let word = words[(next() % 5) as usize];
            let status = 200 + (next() % 4) * 100;
            match next() % 3 {
                0 => format!(
                    "2026-12-01T21:14:39.{:03}Z {level} line {i} {word}",
                    i % 1000
                ),
                1 => format!(
                    r#"{{"ts":1796159679,"level":"{}","msg":"{word} {i}","status":{status}}}"#,
                    level.to_lowercase()
                ),
                _ => format!("ts=1796159679 level={level} status={status} msg=\"{word} {i}\""),
            }
        })
        .collect()
}

/// The reference answer: the lines `q` matches, evaluated one by one over the whole file
/// (the evaluator itself is checked against a naive one in `query::eval`'s unit tests).
fn reference(lines: &[String], q: &str) -> Vec<String> {
    let query = cometail::query::parse(q).unwrap();
    let parser = cometail::parse::Parser::new(cometail::parse::Zone::utc());
    lines
        .iter()
        .filter(|l| {
            let level = parser.facts(l.as_bytes(), T).level;
            query.matches(&cometail::query::Record {
                text: l.as_bytes(),
                level,
            })
        })
        .cloned()
        .collect()
}

const QUERIES: [&str; 6] = [
    "level>=warn",
    "timeout",
    "Timeout -level=error",
    "status>=400 \"disk full\"",
    "/line 1[0-9]+ /",
    "status=500 level<=info",
];

#[tokio::test(flavor = "multi_thread")]
async fn q_pages_forward_and_back_equal_a_reference_evaluation() {
    let s = Server::start(&["--timezone", "UTC", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "start\n");
    s.wait_last("app.log", "start").await;
    let origin = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines = mixed_log(3000, 11);
    append(&s.path("app.log"), lines.join("\n") + "\n");
    s.wait_last("app.log", lines.last().unwrap()).await;
    let mut limits = [1usize, 7, 50, 333, 2].into_iter().cycle();
    for q in QUERIES {
        let want = reference(&lines, q);
        assert!(
            !want.is_empty() && want.len() < lines.len(),
            "{q} must select some lines"
        );
        let enc = crate::common::enc(q);
        // Forward from the first appended line, with varying page sizes.
        let mut got = Vec::new();
        let mut after = origin.clone();
        for _ in 0..10_000 {
            let limit = limits.next().unwrap();
            let page = s
                .ok_json(&format!(
                    "/api/streams/app.log/lines?after={after}&limit={limit}&q={enc}"
                ))
                .await;
            let texts = texts(&page);
            assert!(texts.len() <= limit);
            assert!(!page["scanned"]["budget"].as_bool().unwrap());
            after = page["next"].as_str().unwrap().to_owned();
            if texts.is_empty() {
                break;
            }
            got.extend(texts);
        }
        assert_eq!(got, want, "forward q={q}");
        // Backward from the end, with varying page sizes.
        let mut got = Vec::new();
        let mut path = format!("/api/streams/app.log/lines?last=5&q={enc}");
        loop {
            let page = s.ok_json(&path).await;
            let mut texts = texts(&page);
            texts.extend(got);
            got = texts;
            let Some(prev) = page["prev"].as_str() else {
                break;
            };
            let limit = limits.next().unwrap();
            path = format!("/api/streams/app.log/lines?before={prev}&limit={limit}&q={enc}");
        }
        got.retain(|t| t != "start" || want.contains(&"start".to_owned()));
        assert_eq!(got, want, "backward q={q}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn q_filters_long_polls_sse_and_raw_and_bad_q_says_where() {
    let s = Server::start(&["--timezone", "UTC", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "start\n");
    s.wait_last("app.log", "start").await;
    let next = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = crate::common::enc("level>=error");
    let url = format!("{}/api/streams/app.log/events?after={next}&q={q}", s.url);
    let mut sse = crate::common::sse::Connection::open(&s.client, &url, None).await;
    let poll = {
        let client = s.client.clone();
        let url = format!(
            "{}/api/streams/app.log/lines?after={next}&wait=10&q={q}",
            s.url
        );
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    append(&s.path("app.log"), "2026-12-01T21:14:39Z INFO fine\n");
    append(
        &s.path("app.log"),
        "{\"level\":\"info\"}\n2026-12-01T21:14:39Z ERROR bad\n",
    );
    let body: Value = serde_json::from_str(&poll.await.unwrap()).unwrap();
    assert_eq!(texts(&body), ["2026-12-01T21:14:39Z ERROR bad"]);
    // `scanned` counts what the wait examined too, matched or not.
    assert_eq!(body["scanned"]["entries"], 3, "{body}");
    let (entries, _) = sse.entries(1, Duration::from_secs(10)).await;
    let got: Vec<_> = entries
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["2026-12-01T21:14:39Z ERROR bad"]);
    let raw = s
        .client
        .get(format!("{}/api/streams/app.log/raw?last=10&q={q}", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(raw, "2026-12-01T21:14:39Z ERROR bad\n");

    for (q, at, len) in [("level>=loud", 7, 4), ("a \"open", 2, 5), ("n>abc", 2, 3)] {
        let (status, body) = s
            .get_json(&format!(
                "/api/streams/app.log/lines?q={}",
                crate::common::enc(q)
            ))
            .await;
        assert_eq!(
            (status, body["at"].as_u64(), body["len"].as_u64()),
            (400, Some(at), Some(len)),
            "{q}: {body}"
        );
        assert!(
            body["error"].as_str().unwrap().starts_with("`q`: "),
            "{body}"
        );
    }
}

/// The first line of each entry's text (a record's stamped line).
fn first_lines(page: &Value) -> Vec<String> {
    texts(page)
        .iter()
        .map(|t| t.split('\n').next().unwrap_or_default().to_owned())
        .collect()
}

/// A sorted log of `n` records, one a second from `T`, with untimed lines and traces between
/// them; returns the file's bytes and each record's (ts, text).
fn timed_log(n: usize) -> (String, Vec<(i64, String)>) {
    let mut out = String::new();
    let mut records = Vec::new();
    for i in 0..n {
        let ts = T + i as i64 * 1000;
        let secs = (ts - T) / 1000 + 21 * 3600 + 14 * 60 + 39;
        let (d, s) = (secs / 86_400, secs % 86_400);
        let line = format!(
            "2026-12-{:02}T{:02}:{:02}:{:02}Z INFO record {i} {}",
            1 + d,
            s / 3600,
            s / 60 % 60,
            s % 60,
            "x".repeat(i % 50)
        );
        out.push_str(&line);
        out.push('\n');
        records.push((ts, line));
        match i % 17 {
            0 => out.push_str("java.lang.Error: boom\n\tat a.B(C.java:1)\n"),
            5 => out.push_str("an untimed line\n"),
            _ => {}
        }
    }
    (out, records)
}

#[tokio::test(flavor = "multi_thread")]
async fn at_seeks_with_logarithmic_reads_and_until_bounds_the_range() {
    let (bytes, records) = timed_log(300_000);
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), &bytes);
    let s = Server::start_in(dir, &["--timezone", "UTC", "{dir}/app.log"]).await;
    s.wait_following().await;
    let size = bytes.len() as u64;
    let mut next = xorshift(7);
    for _ in 0..25 {
        let target = T - 5000 + (next() % (records.len() as u64 * 1000 + 10_000)) as i64;
        let page = s
            .ok_json(&format!("/api/streams/app.log/lines?at={target}&limit=2"))
            .await;
        let want: Vec<String> = records
            .iter()
            .filter(|r| r.0 >= target)
            .take(1)
            .map(|r| r.1.clone())
            .collect();
        let got = first_lines(&page);
        assert_eq!(got.first(), want.first(), "at={target}");
        let read = page["seek"]["bytes"].as_u64().unwrap();
        assert!(read <= 1 << 20, "at={target}: {read} of {size} bytes read");
        if let (Some(first), Some(prev)) = (want.first(), page["prev"].as_str()) {
            // Paging back from the found record gives what precedes it in the file.
            let i = records.iter().position(|r| &r.1 == first).unwrap();
            if i > 0 {
                let back = s
                    .ok_json(&format!(
                        "/api/streams/app.log/lines?before={prev}&limit=50"
                    ))
                    .await;
                assert!(
                    first_lines(&back).contains(&records[i - 1].1),
                    "before {target}"
                );
            }
        }
    }
    // A range: records in [at, until), with the lines between them.
    let (from, to) = (records[1000].0, records[1020].0);
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?at={from}&until={to}&limit=1000"
        ))
        .await;
    let got: Vec<String> = first_lines(&page)
        .into_iter()
        .filter(|t| t.contains(" record "))
        .collect();
    let want: Vec<String> = records[1000..1020].iter().map(|r| r.1.clone()).collect();
    assert_eq!(got, want);
    let raw = s
        .client
        .get(format!(
            "{}/api/streams/app.log/raw?at=2026-12-01T21:31:19Z&until={to}",
            s.url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.starts_with(&records[1000].1), "{raw:.80}");

    for bad in [
        "at=yesterday",
        "at=2026-12-01T21:14:39",
        &format!("at={from}&until={from}"),
        &format!("at={from}&last=5"),
    ] {
        let (status, body) = s
            .get_json(&format!("/api/streams/app.log/lines?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
}
