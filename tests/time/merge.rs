//! `order=time` on `/api/events?streams=a,b`: entries of several real files merged by event
//! time on one SSE connection, held up to `--merge-delay` for a stream that is behind, late
//! ones marked, and resumed exactly across random disconnects.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::sse::Connection;
use crate::common::{Server, append};

/// `2026-12-01T10:00:SSZ` plus `ms`, as a line stamp.
fn stamp(ms: u64) -> String {
    format!(
        "2026-12-01T10:{:02}:{:02}.{:03}Z",
        ms / 60_000,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Reads events until `n` entries came; returns (stream, entry) pairs and the last id.
async fn merged(
    c: &mut Connection,
    n: usize,
    deadline: Duration,
) -> (Vec<(String, Value)>, String) {
    let end = Instant::now() + deadline;
    let mut out = Vec::new();
    let mut id = String::new();
    while out.len() < n {
        let left = end.saturating_duration_since(Instant::now());
        let e = c.next(left).await.expect("stream open");
        if e.event != "entries" {
            continue;
        }
        id = e.id.clone();
        let data = e.json();
        let stream = data["stream"].as_str().unwrap().to_owned();
        for entry in data["entries"].as_array().unwrap() {
            out.push((stream.clone(), entry.clone()));
        }
    }
    (out, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn merged_events_come_in_event_time_order_and_late_ones_are_marked() {
    let args = ["--merge-delay", "2s", "{dir}/a.log", "{dir}/b.log"];
    let s = Server::start(&args).await;
    append(&s.path("a.log"), "");
    append(&s.path("b.log"), "");
    s.wait_following().await;
    let url = format!("{}/api/events?streams=a.log,b.log&order=time&last=0", s.url);
    let mut c = Connection::open(&s.client, &url, None).await;
    assert_eq!(c.status, 200);
    // a.log writes first, b.log a little later: arrival order is not time order.
    let a: String = [1, 3, 5]
        .iter()
        .map(|&i| format!("{} INFO a{i}\n", stamp(i * 1000)))
        .collect();
    let b: String = [2, 4, 6]
        .iter()
        .map(|&i| format!("{} INFO b{i}\n", stamp(i * 1000)))
        .collect();
    append(&s.path("a.log"), &a);
    append(&s.path("b.log"), &b);
    let (got, _) = merged(&mut c, 6, Duration::from_secs(10)).await;
    let order: Vec<String> = got
        .iter()
        .map(|(_, e)| {
            e["text"]
                .as_str()
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(order, ["a1", "b2", "a3", "b4", "a5", "b6"]);
    assert!(got.iter().all(|(_, e)| e.get("late").is_none()));
    assert_eq!(got[1].0, "b.log");
    // Older than what was sent: it goes out anyway, marked.
    append(&s.path("b.log"), format!("{} WARN b0\n", stamp(0)));
    let (got, _) = merged(&mut c, 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].1["late"], true);
    assert_eq!(got[0].0, "b.log");

    let (status, body) = s.get_json("/api/events?streams=a.log&order=random").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn merged_events_resume_exactly_across_random_disconnects() {
    let args = ["--merge-delay", "50ms", "{dir}/a.log", "{dir}/b.log"];
    let s = Server::start(&args).await;
    append(&s.path("a.log"), "");
    append(&s.path("b.log"), "");
    s.wait_following().await;
    let (pa, pb) = (s.path("a.log"), s.path("b.log"));
    let writer = tokio::task::spawn_blocking(move || {
        let mut written: Vec<(String, String)> = Vec::new();
        for i in 0..1500u64 {
            // Each stream's times increase; across streams they interleave.
            let (path, id) = if i % 3 == 0 {
                (&pb, "b.log")
            } else {
                (&pa, "a.log")
            };
            let line = format!("{} INFO n{i}", stamp(i * 10));
            append(path, format!("{line}\n"));
            written.push((id.to_owned(), line));
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        written
    });
    let url = format!("{}/api/events?streams=a.log,b.log&order=time&last=0", s.url);
    let mut got: Vec<(String, Value)> = Vec::new();
    let mut last_id: Option<String> = None;
    let mut rng = 0x9e37_79b9_u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut drops = 0;
    // On after everything came, too: a resume with nothing new must send nothing.
    while got.len() < 1500 || drops < 100 {
        assert!(Instant::now() < deadline, "got {} of 1500", got.len());
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut c = Connection::open(&s.client, &url, last_id.as_deref()).await;
        // Time order holds within a connection, except for entries marked late.
        let mut high = 0;
        let cut = Instant::now() + Duration::from_millis(rng % 60);
        // Take whole events until the cut, then drop the connection.
        while let Ok(Some(e)) =
            tokio::time::timeout_at(cut.into(), c.next(Duration::from_secs(30))).await
        {
            if e.event != "entries" {
                continue;
            }
            let data = e.json();
            let stream = data["stream"].as_str().unwrap().to_owned();
            for entry in data["entries"].as_array().unwrap() {
                let ts = entry["ts"].as_i64().unwrap();
                assert!(ts >= high || entry["late"] == true, "{entry} after {high}");
                high = high.max(ts);
                got.push((stream.clone(), entry.clone()));
            }
            last_id = Some(e.id.clone());
        }
        drops += 1;
    }
    let written = writer.await.unwrap();
    for id in ["a.log", "b.log"] {
        let want: Vec<&String> = written.iter().filter(|w| w.0 == id).map(|w| &w.1).collect();
        let have: Vec<&str> = got
            .iter()
            .filter(|g| g.0 == id)
            .map(|g| g.1["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            have.len(),
            want.len(),
            "{id}: nothing lost, nothing doubled"
        );
        assert!(have.iter().zip(&want).all(|(h, w)| h == w), "{id} in order");
    }
}
