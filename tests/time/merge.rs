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
    // A long hold, so that even a loaded machine sees b.log's lines within it.
    let args = ["--merge-delay", "5s", "{dir}/a.log", "{dir}/b.log"];
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
    let (got, _) = merged(&mut c, 6, Duration::from_secs(30)).await;
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
    let (got, _) = merged(&mut c, 1, Duration::from_secs(30)).await;
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
    // `last=2000` (more than will be written), not `last=0`: a client that has no event id
    // yet (the writer has begun, and a connection may be cut before its first event) asks
    // for everything, else the lines written before each such connection would be skipped
    // by the client's own request (line n0 was, once in CI: "got 1499 of 1500").
    let url = format!(
        "{}/api/events?streams=a.log,b.log&order=time&last=2000",
        s.url
    );
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

/// `2026-12-01T10:00:00Z` plus `s` seconds, to hours (the browser test's stamps).
fn at(s: u64) -> String {
    format!(
        "2026-12-01T{:02}:{:02}:{:02}Z",
        10 + s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The browser test's (`browser::merged`) sequence over a socket: both files hold history
/// before the server starts, the first pages are read as the page reads them (`last=1000`),
/// and the merged SSE starts after their ends. Live pairs written in the opposite of time
/// order then come in time order, five times over, and again after a reconnect that finds
/// a hundred lines per stream written while it was down.
#[tokio::test(flavor = "multi_thread")]
async fn live_pairs_after_history_come_in_time_order_across_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    for (name, first) in [("a", 0u64), ("b", 1)] {
        let text: String = (first..3000)
            .step_by(2)
            .map(|s| format!("{} INFO {name} at {s}\n", at(s)))
            .collect();
        std::fs::write(dir.path().join(format!("{name}.log")), text).unwrap();
    }
    let args = ["--merge-delay", "3s", "{dir}/a.log", "{dir}/b.log"];
    let s = Server::start_in(dir, &args).await;
    s.wait_following().await;
    let mut after = Vec::new();
    for id in ["a.log", "b.log"] {
        let page = s
            .ok_json(&format!("/api/streams/{id}/lines?last=1000"))
            .await;
        after.push(format!("{id}:{}", page["next"].as_str().unwrap()));
    }
    let url = format!(
        "{}/api/events?streams=a.log,b.log&order=time&after={}",
        s.url,
        after.join(",")
    );
    let mut c = Connection::open(&s.client, &url, None).await;
    assert_eq!(c.status, 200);
    let text = |e: &(String, Value)| e.1["text"].as_str().unwrap().to_owned();
    for k in 0..5u64 {
        // The later line is written first, alternately to either file.
        let t = 5000 + 10 * k;
        let (first, second) = if k % 2 == 0 { ("a", "b") } else { ("b", "a") };
        let later = format!("{} INFO {first} live {}", at(t + 1), t + 1);
        let earlier = format!("{} INFO {second} live {t}", at(t));
        append(&s.path(&format!("{first}.log")), format!("{later}\n"));
        append(&s.path(&format!("{second}.log")), format!("{earlier}\n"));
        let (got, _) = merged(&mut c, 2, Duration::from_secs(30)).await;
        let got: Vec<String> = got.iter().map(text).collect();
        assert_eq!(got, [earlier, later], "pair {k}");
    }
    let (got, last_id) = {
        // One more pair, to hold the id the resume starts from.
        append(&s.path("b.log"), format!("{} INFO b live 5991\n", at(5991)));
        append(&s.path("a.log"), format!("{} INFO a live 5990\n", at(5990)));
        merged(&mut c, 2, Duration::from_secs(30)).await
    };
    assert_eq!(
        got.iter().map(text).collect::<Vec<_>>(),
        [
            format!("{} INFO a live 5990", at(5990)),
            format!("{} INFO b live 5991", at(5991))
        ]
    );
    drop(c);
    let mut want = Vec::new();
    for (name, first) in [("a", 6000u64), ("b", 6001)] {
        let lines: String = (first..6200)
            .step_by(2)
            .map(|s| format!("{} INFO {name} down {s}\n", at(s)))
            .collect();
        append(&s.path(&format!("{name}.log")), lines);
    }
    want.extend((6000..6200).map(|s| {
        let name = if s % 2 == 0 { "a" } else { "b" };
        format!("{} INFO {name} down {s}", at(s))
    }));
    let mut c = Connection::open(&s.client, &url, Some(&last_id)).await;
    append(
        &s.path("a.log"),
        format!("{} INFO a after 7000\n", at(7000)),
    );
    append(
        &s.path("b.log"),
        format!("{} INFO b after 7001\n", at(7001)),
    );
    want.push(format!("{} INFO a after 7000", at(7000)));
    want.push(format!("{} INFO b after 7001", at(7001)));
    let (got, _) = merged(&mut c, 202, Duration::from_secs(30)).await;
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), want);
}

/// The entries' `(text's last word, late)`.
fn marks(got: &[(String, Value)]) -> Vec<(String, bool)> {
    got.iter()
        .map(|(_, e)| {
            let word = e["text"].as_str().unwrap().rsplit(' ').next().unwrap();
            (word.to_owned(), e["late"] == true)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_merge_marks_late_entries_as_an_unbroken_one_does() {
    let args = ["--merge-delay", "100ms", "{dir}/a.log", "{dir}/b.log"];
    let s = Server::start(&args).await;
    append(&s.path("a.log"), "");
    append(&s.path("b.log"), "");
    s.wait_following().await;
    let url = format!("{}/api/events?streams=a.log,b.log&order=time&last=0", s.url);
    let mut unbroken = Connection::open(&s.client, &url, None).await;
    let mut broken = Connection::open(&s.client, &url, None).await;
    append(&s.path("a.log"), format!("{} INFO a1\n", stamp(1000)));
    append(&s.path("b.log"), format!("{} INFO b3\n", stamp(3000)));
    let (one, _) = merged(&mut unbroken, 2, Duration::from_secs(30)).await;
    let (two, id) = merged(&mut broken, 2, Duration::from_secs(30)).await;
    assert_eq!(marks(&one), marks(&two));
    drop(broken);
    // Written while one connection is down: a2 is older than b3, which both sent.
    append(&s.path("a.log"), format!("{} INFO a2\n", stamp(2000)));
    let (one_late, _) = merged(&mut unbroken, 1, Duration::from_secs(30)).await;
    let resume = format!(
        "{}/api/events?streams=a.log,b.log&order=time&after={}",
        s.url,
        crate::common::enc(&id)
    );
    for (how, url, last_id) in [
        ("Last-Event-ID", url.as_str(), Some(id.as_str())),
        ("after=", resume.as_str(), None),
    ] {
        let mut again = Connection::open(&s.client, url, last_id).await;
        let (got, _) = merged(&mut again, 1, Duration::from_secs(30)).await;
        assert_eq!(marks(&got), [("a2".to_owned(), true)], "{how}");
        assert_eq!(marks(&got), marks(&one_late), "{how}");
    }
    assert_eq!(marks(&one_late), [("a2".to_owned(), true)]);
}
