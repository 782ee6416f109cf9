//! Multi-line records over real files and a real server: a stack trace is one entry, live and
//! read back from disk; history paging never splits one; a continuation that comes after the
//! 200 ms close is a headless entry (`"cont": true`), the same live and in history; a record
//! is bounded at 1,000 lines; `--records off` keeps every line an entry.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Server, append, enc, texts};

const START: &str = "2026-12-01T21:14:39.123Z ERROR request failed";
const TRACE: [&str; 4] = [
    "java.lang.IllegalStateException: boom",
    "\tat com.example.Handler.run(Handler.java:42)",
    "Caused by: java.io.IOException: closed",
    "\t... 12 more",
];

fn entries(page: &Value) -> Vec<Value> {
    page["entries"].as_array().unwrap().clone()
}

/// Long-polls `after` until `n` entries came; returns them.
async fn live_entries(s: &Server, id: &str, after: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got: Vec<Value> = Vec::new();
    let mut cursor = after.to_owned();
    while got.len() < n {
        assert!(Instant::now() < deadline, "{n} entries live, got {got:?}");
        let page = s
            .ok_json(&format!("/api/streams/{id}/lines?after={cursor}&wait=5"))
            .await;
        cursor = page["next"].as_str().unwrap().to_owned();
        got.extend(entries(&page));
    }
    got
}

/// Every entry of a stream, read back by paging `before=` with `limit` (newest first,
/// returned in stream order).
async fn paged_back(s: &Server, id: &str, limit: usize) -> Vec<Value> {
    let mut page = s
        .ok_json(&format!("/api/streams/{id}/lines?last={limit}"))
        .await;
    let mut out = entries(&page);
    while let Some(prev) = page["prev"].as_str().map(str::to_owned) {
        page = s
            .ok_json(&format!(
                "/api/streams/{id}/lines?before={}&limit={limit}",
                enc(&prev)
            ))
            .await;
        let mut older = entries(&page);
        older.append(&mut out);
        out = older;
    }
    out
}

/// Every entry of a stream, read forwards from its first byte with `after=` and `limit`.
async fn paged_forward(s: &Server, id: &str, limit: usize) -> Vec<Value> {
    let first = paged_back(s, id, 1000).await;
    let mut out = vec![first[0].clone()];
    loop {
        let after = out.last().unwrap()["cursor"].as_str().unwrap().to_owned();
        let page = s
            .ok_json(&format!(
                "/api/streams/{id}/lines?after={}&limit={limit}",
                enc(&after)
            ))
            .await;
        let got = entries(&page);
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

fn record_text() -> String {
    let mut t = START.to_owned();
    for l in TRACE {
        t.push('\n');
        t.push_str(l);
    }
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_trace_written_line_by_line_is_one_entry_live_and_from_history() {
    let s = Server::start(&["--timezone", "UTC", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "plain before\n");
    s.wait_last("app.log", "plain before").await;
    let listed = &s.ok_json("/api/streams").await["streams"][0];
    assert_eq!(
        (listed.get("format"), &listed["timed"]),
        (None, &Value::Bool(false))
    );
    let after = s.ok_json("/api/streams/app.log/lines?last=1").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    // One write per line, as a logger flushing line by line does.
    append(&s.path("app.log"), format!("{START}\n"));
    for l in TRACE {
        append(&s.path("app.log"), format!("{l}\n"));
    }
    append(&s.path("app.log"), "2026-12-01T21:14:40Z INFO next\n");
    let live = live_entries(&s, "app.log", &after, 2).await;
    assert_eq!(live[0]["text"], record_text());
    assert_eq!(live[0]["level"], "error");
    assert_eq!(live[0]["ts"], 1_796_159_679_123_i64);
    assert!(live[0].get("cont").is_none());
    assert_eq!(live[1]["text"], "2026-12-01T21:14:40Z INFO next");

    // The same entries from disk, after a restart, paged one at a time both ways.
    let dir = s.stop().await;
    let s = Server::start_in(dir, &["--timezone", "UTC", "{dir}/app.log"]).await;
    let want = vec![
        "plain before".to_owned(),
        record_text(),
        live[1]["text"].as_str().unwrap().to_owned(),
    ];
    let strip = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .map(|e| e["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(strip(paged_back(&s, "app.log", 1).await), want);
    assert_eq!(strip(paged_forward(&s, "app.log", 1).await), want);
    // The filter sees the whole record: its frames match with its first line.
    let q = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?last=10&q={}",
            enc("IOException")
        ))
        .await;
    assert_eq!(texts(&q), [record_text()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_continuation_after_the_close_is_a_headless_entry_live_and_in_history() {
    // The smallest cache, so that history is soon read back from disk.
    let args = ["--timezone", "UTC", "--cache-bytes", "64K", "{dir}/app.log"];
    let s = Server::start(&args).await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    let t0 = Instant::now();
    append(&s.path("app.log"), format!("{START}\n"));
    // The record closes by itself, so it is seen without a next line.
    s.wait_last("app.log", START).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "held for the close delay"
    );
    append(&s.path("app.log"), format!("{}\n{}\n", TRACE[1], TRACE[3]));
    let late = format!("{}\n{}", TRACE[1], TRACE[3]);
    s.wait_last("app.log", &late).await;
    let live = entries(&s.ok_json("/api/streams/app.log/lines?last=2").await);
    assert_eq!(live[1]["cont"], true);
    assert!(live[0].get("cont").is_none());

    // Push both out of the cache; history read from disk keeps the split the live view made.
    // Stamped lines (untimed ones would continue the open headless record).
    let filler = |i| format!("2026-12-01T21:15:00Z INFO filler {i} {}", "x".repeat(100));
    let lines: String = (0..2000).map(|i| filler(i) + "\n").collect();
    append(&s.path("app.log"), &lines);
    s.wait_last("app.log", &filler(1999)).await;
    let all = paged_back(&s, "app.log", 300).await;
    let key = |e: &Value| (e["cursor"].clone(), e["text"].clone(), e["cont"].clone());
    assert_eq!(all.len(), 2002);
    assert_eq!([key(&all[0]), key(&all[1])], [key(&live[0]), key(&live[1])]);
    assert!(all[0].get("time").is_none(), "read from disk: {}", all[0]);
    let listed = &s.ok_json("/api/streams").await["streams"][0];
    assert_eq!(
        (&listed["format"], &listed["timed"]),
        (&Value::from("iso"), &Value::Bool(true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_is_bounded_at_a_thousand_lines_and_records_off_keeps_lines_apart() {
    let mut bytes = format!("{START}\n");
    for i in 0..1500 {
        bytes.push_str(&format!("\tat frame{i}\n"));
    }
    bytes.push_str("2026-12-01T21:15:00Z INFO after\n");
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), &bytes);
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    let all = paged_back(&s, "app.log", 100).await;
    // 1,000 lines in the record; the 500 past the cap are entries of their own.
    assert_eq!(all.len(), 1 + 501 + 1);
    assert_eq!(all[0]["text"].as_str().unwrap().lines().count(), 1000);
    assert_eq!(all[1]["text"], "\tat frame999");
    assert_eq!(all, paged_forward(&s, "app.log", 7).await);
    let dir = s.stop().await;

    let s = Server::start_in(dir, &["--records", "off", "{dir}/app.log"]).await;
    let all = paged_back(&s, "app.log", 500).await;
    assert_eq!(all.len(), 1502);
    assert_eq!(all[1]["text"], "\tat frame0");
}
