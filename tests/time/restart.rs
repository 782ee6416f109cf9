//! Records across a restart of the real binary: a record the live view closed by its 200 ms
//! timer, killed before its continuation lines were written, resumes from its cursor with
//! the rest as a headless entry (nothing lost, nothing doubled), although the restarted
//! server, which never saw the split, reads the bytes back as one record.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{append, enc, texts};

/// The real binary on `dir/app.log`, killed (SIGKILL) when dropped.
struct Binary {
    child: Child,
    url: String,
}

impl Binary {
    /// With the smallest cache, so that what lies 2 MiB back is read from disk.
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
            .args(["--port", "0", "--timezone", "UTC", "--cache-bytes", "64K"])
            .arg(dir.join("app.log"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // The server prints its URL before it serves: a read returns or the child is gone.
        assert!(out.read_line(&mut line).unwrap() > 0, "cometail exited");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("{line}"))
            .trim_end_matches('/')
            .to_owned();
        Self { child, url }
    }

    async fn get(&self, path: &str) -> Value {
        let r = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// Polls `last=1` until its text is `text` (10 s at most).
    async fn wait_last(&self, text: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let page = self.get("/api/streams/app.log/lines?last=1").await;
            if texts(&page) == [text] {
                return page["entries"][0].clone();
            }
            assert!(Instant::now() < end, "last line {text:?}, got {page}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Long-polls from `after` until an entry with text `last` came; returns those up to it.
    async fn entries_until(&self, after: &str, last: &str) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(10);
        let mut got: Vec<Value> = Vec::new();
        let mut cursor = after.to_owned();
        while !got.iter().any(|e| e["text"] == last) {
            assert!(
                Instant::now() < end,
                "up to {last:?}, got {} entries",
                got.len()
            );
            let page = self
                .get(&format!(
                    "/api/streams/app.log/lines?after={}&wait=5",
                    enc(&cursor)
                ))
                .await;
            cursor = page["next"].as_str().unwrap().to_owned();
            got.extend(page["entries"].as_array().unwrap().iter().cloned());
        }
        let n = got
            .iter()
            .position(|e| e["text"] == last)
            .map_or(0, |i| i + 1);
        got.truncate(n);
        got
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const START: &str = "2026-12-01T21:14:39.123Z ERROR request failed";
const TRACE: &str = "java.lang.IllegalStateException: boom\n\tat com.example.Handler.run(Handler.java:42)\nCaused by: java.io.IOException: closed";
const NEXT: &str = "2026-12-01T21:14:40Z INFO next";

#[tokio::test(flavor = "multi_thread")]
async fn a_record_resumed_after_a_restart_mid_record_loses_and_doubles_nothing() {
    restarted_mid_record(0).await;
}

/// The same, with the record far behind the restarted server's cache: read from disk.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_far_back_resumed_after_a_restart_loses_and_doubles_nothing() {
    restarted_mid_record(20_000).await;
}

/// A record closed by the timer, the server killed, the record's frames, `NEXT` and `filler`
/// stamped lines written, the server started again; then readers resume from the record.
async fn restarted_mid_record(filler: usize) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "2026-12-01T21:14:38Z INFO before\n");
    let first = Binary::start(dir.path());
    first.wait_last("2026-12-01T21:14:38Z INFO before").await;
    // The record's first line alone: the 200 ms timer closes it, and a reader has it.
    append(&log, format!("{START}\n"));
    let seen = first.wait_last(START).await;
    let cursor = seen["cursor"].as_str().unwrap().to_owned();
    // Killed mid-record: its frames are written while no server runs.
    drop(first);
    append(&log, format!("{TRACE}\n{NEXT}\n"));
    let fill = |i| format!("2026-12-01T21:15:00Z INFO filler {i} {}", "x".repeat(60));
    append(
        &log,
        (0..filler).map(|i| fill(i) + "\n").collect::<String>(),
    );

    let second = Binary::start(dir.path());
    // The reader resumes from its cursor: the frames come once, as the rest of its record.
    let resumed = second.entries_until(&cursor, NEXT).await;
    assert_eq!(texts_of(&resumed), [TRACE, NEXT]);
    assert_eq!(resumed[0]["cont"], true);
    assert!(resumed[1].get("cont").is_none());
    // SSE resumes the same way from the same cursor (`Last-Event-ID`'s form of `after`).
    let sse = crate::common::sse::Connection::open(
        &reqwest::Client::new(),
        &format!("{}/api/streams/app.log/events", second.url),
        Some(&cursor),
    )
    .await;
    let got = sse_texts(sse, 2).await;
    assert_eq!(got[..2], [TRACE, NEXT]);
    // A reader coming fresh to the restarted server sees the bytes' grouping: one record.
    let next = enc(resumed[1]["cursor"].as_str().unwrap());
    let page = second
        .get(&format!("/api/streams/app.log/lines?before={next}&limit=1"))
        .await;
    assert_eq!(texts(&page), [format!("{START}\n{TRACE}")]);
    if filler > 0 {
        assert!(page["entries"][0].get("time").is_none(), "read from disk");
    }
    // A cursor without the length (an older server's) gets the point rule: after the record
    // that starts there, so its frames are skipped; the length is what makes this exact.
    let (bare, _) = cursor.rsplit_once('-').unwrap();
    let old = second.entries_until(bare, NEXT).await;
    assert_eq!(texts_of(&old), [NEXT]);
}

fn texts_of(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect()
}

/// The texts of the first `n` entries on an SSE connection.
async fn sse_texts(mut c: crate::common::sse::Connection, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let e = c
            .next(end.saturating_duration_since(Instant::now()))
            .await
            .expect("stream open");
        if e.event != "entries" {
            continue;
        }
        let data = e.json();
        for entry in data["entries"].as_array().unwrap() {
            out.push(entry["text"].as_str().unwrap().to_owned());
        }
    }
    out
}
