//! History that never ends silently (issue 17): paging back while the file rotates, cursors
//! of released generations, of other streams, and past the end of a truncated file, and a
//! history read across a line longer than the follower's 64 MiB look-back.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::sse::Connection;
use crate::common::{Server, append, texts};

const SEC: Duration = Duration::from_secs(1);

fn lines(range: std::ops::Range<usize>, tag: &str) -> String {
    range.map(|i| format!("{tag}{i:06}\n")).collect()
}

fn is_gap(e: &Value) -> bool {
    e["notice"] == "gap"
}

/// Renames `app.log` away along a `.1`, `.2` chain and starts a new `app.log` with `fresh`,
/// then waits until the stream follows the new file.
async fn rotate(s: &Server, fresh: &str, last: &str) {
    let p = |n: &str| s.path(n);
    if p("app.log.1").exists() {
        std::fs::rename(p("app.log.1"), p("app.log.2")).unwrap();
    }
    std::fs::rename(p("app.log"), p("app.log.1")).unwrap();
    append(&p("app.log"), fresh);
    s.wait_last("app.log", last).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_back_while_the_file_rotates_twice_sees_every_line_or_a_gap() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), lines(0..N, "old"));
    let s = Server::start_in(dir, &["--rotate-grace", "100ms", "{dir}/app.log"]).await;
    s.wait_last("app.log", &format!("old{:06}", N - 1)).await;
    let mut seen: Vec<String> = Vec::new();
    let mut gaps = Vec::new();
    let mut page = s.ok_json("/api/streams/app.log/lines?last=1000").await;
    for round in 0.. {
        let entries = page["entries"].as_array().unwrap().clone();
        gaps.extend(entries.iter().filter(|e| is_gap(e)).cloned());
        let mut texts_here = texts(&page);
        texts_here.retain(|t| !t.starts_with('<'));
        seen.splice(0..0, texts_here);
        // The file rotates twice while the pager is on its way back.
        if round == 2 {
            rotate(&s, &lines(0..10, "new"), "new000009").await;
        }
        if round == 5 {
            rotate(&s, &lines(0..10, "newer"), "newer000009").await;
        }
        let Some(prev) = page["prev"].as_str() else {
            break;
        };
        page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?before={prev}&limit=1000"
            ))
            .await;
        assert!(round < 100, "paging back never ends");
    }
    let want: Vec<String> = lines(0..N, "old").lines().map(str::to_owned).collect();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no line twice");
    if gaps.is_empty() {
        assert_eq!(seen, want, "without a gap, every line is seen, in order");
    } else {
        // A gap says what was not seen: then the lines seen are still in order.
        let missing = want.iter().filter(|l| !unique.contains(l)).count();
        assert!(missing > 0, "a gap although nothing is missing: {gaps:?}");
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted);
    }
    // The rotated file is still on disk under another name: it must have been found again.
    assert!(gaps.is_empty(), "app.log.2 is reachable: {gaps:?}");
}

/// Answers of every endpoint to `cursor`, as (endpoint, entries); SSE's first event.
async fn every_endpoint(s: &Server, id: &str, cursor: &str) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for query in [format!("after={cursor}"), format!("before={cursor}")] {
        let page = s.ok_json(&format!("/api/streams/{id}/lines?{query}")).await;
        out.push((
            format!("/lines?{query}"),
            page["entries"].as_array().unwrap().clone(),
        ));
    }
    let url = format!("{}/api/streams/{id}/events", s.url);
    let mut sse = Connection::open(&s.client, &url, Some(cursor)).await;
    let event = loop {
        let e = sse.next(10 * SEC).await.expect("an event");
        if e.event == "entries" {
            break e;
        }
    };
    out.push((
        "/events".into(),
        event.json()["entries"].as_array().unwrap().clone(),
    ));
    let raw = s
        .client
        .get(format!("{}/api/streams/{id}/raw?after={cursor}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let text = raw.text().await.unwrap();
    let gap = text
        .lines()
        .find(|l| l.starts_with("==> gap:"))
        .map(|l| serde_json::json!({"notice": "gap", "detail": l}));
    out.push(("/raw".into(), gap.into_iter().collect()));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_of_another_stream_is_a_gap_on_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), lines(0..50, "a"));
    append(&dir.path().join("b.log"), lines(0..50, "b"));
    let s = Server::start_in(dir, &["{dir}/a.log", "{dir}/b.log"]).await;
    s.wait_last("b.log", "b000049").await;
    let b = s.ok_json("/api/streams/b.log/lines?last=5").await;
    let foreign = b["entries"][2]["cursor"].as_str().unwrap().to_owned();
    for (endpoint, entries) in every_endpoint(&s, "a.log", &foreign).await {
        assert!(
            entries.first().is_some_and(is_gap),
            "{endpoint}: a cursor of b.log on a.log must be a gap, got {entries:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_past_the_end_of_a_file_truncated_while_down_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), lines(0..2_000, "line"));
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    s.wait_last("app.log", "line001999").await;
    let page = s.ok_json("/api/streams/app.log/lines?last=1").await;
    let cursor = page["entries"][0]["cursor"].as_str().unwrap().to_owned();
    let dir = s.stop().await;
    // While cometail is down, the file is cut to its first 1,000 lines (its first KiB is
    // unchanged) and 99 new lines are written: shorter than the cursor's position.
    let path = dir.path().join("app.log");
    std::fs::write(&path, lines(0..1_000, "line") + &lines(0..99, "rewritten")).unwrap();
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    s.wait_last("app.log", "rewritten000098").await;
    for (endpoint, entries) in every_endpoint(&s, "app.log", &cursor).await {
        assert!(
            entries.first().is_some_and(is_gap),
            "{endpoint}: a cursor past the end must be a gap, got {:?}",
            entries.first()
        );
    }
    // After the gap, the reader gets the file from its start: no rewritten line is skipped.
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?after={cursor}&limit=10000"
        ))
        .await;
    let got = texts(&page);
    assert!(
        got.contains(&"rewritten000000".to_owned()),
        "{:?}",
        &got[..3]
    );
    assert!(got.contains(&"rewritten000098".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn history_across_a_line_longer_than_the_look_back_is_bounded_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "before\n");
    {
        // 80 MiB without a newline: longer than the 64 MiB look-back.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let block = vec![b'x'; 1 << 20];
        for _ in 0..80 {
            f.write_all(&block).unwrap();
        }
        f.write_all(b"\nafter\n").unwrap();
    }
    let s = Server::start_in(dir, &["--max-line-bytes", "1K", "{dir}/app.log"]).await;
    s.wait_last("app.log", "after").await;
    let page = s.ok_json("/api/streams/app.log/lines?last=3").await;
    let entries = page["entries"].as_array().unwrap();
    let got = texts(&page);
    assert_eq!(got.last().map(String::as_str), Some("after"));
    assert!(
        entries.iter().any(is_gap),
        "the read stops at the look-back and says so: {got:?}"
    );
}
