//! Whole-history search at the edges (issue 12): a generation the follower let go while its
//! file is still on disk under another name is searched (once, with or without the rotated
//! chain), and a line longer than the scanner's 64 MiB is marked in the matches, not skipped
//! silently, in plain and `.gz` files, in both orders.

use std::io::Write;
use std::path::Path;

use crate::common::{Server, append, enc};
use crate::search::{run, text};

fn last_line(t: &str) -> String {
    t.lines().last().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generation_let_go_but_still_on_disk_is_searched_once() {
    for chained in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let parts = [("a", 3000), ("b", 2000), ("c", 1000)];
        let texts: Vec<String> = parts.iter().map(|(t, n)| text(t, *n)).collect();
        append(&dir.path().join("app.log"), &texts[0]);
        let mut args = vec!["--rotate-grace", "100ms", "{dir}/app.log"];
        if chained {
            args.insert(0, "--rotated-history");
        }
        let s = Server::start_in(dir, &args).await;
        s.wait_last("app.log", &last_line(&texts[0])).await;
        // Two rotations by renaming: the follower keeps the current file and the one before,
        // so the first generation's file is let go; it is still there, as app.log.2.
        for t in &texts[1..] {
            if s.path("app.log.1").exists() {
                std::fs::rename(s.path("app.log.1"), s.path("app.log.2")).unwrap();
            }
            std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
            append(&s.path("app.log"), t);
            s.wait_last("app.log", &last_line(t)).await;
        }
        let reference: Vec<String> = texts
            .iter()
            .flat_map(|t| t.lines())
            .filter(|l| l.to_lowercase().contains("needle"))
            .map(str::to_owned)
            .collect();
        assert!(reference.iter().any(|l| l.starts_with("a-")));
        let oldest = run(&s, &format!("q={}&order=oldest&limit=10000", enc("needle"))).await;
        assert_eq!(oldest.texts, reference, "chained: {chained}");
        let newest = run(&s, &format!("q={}&limit=10000", enc("needle"))).await;
        let mut want = reference.clone();
        want.reverse();
        assert_eq!(newest.texts, want, "chained: {chained}");
        assert_eq!(newest.done["matches"], reference.len());
    }
}

/// `tag-1 NEEDLE first`, a line of 80 MiB with `NEEDLE` inside, `tag-2 NEEDLE second`.
fn with_a_long_line(tag: &str) -> Vec<u8> {
    let mut out = format!("{tag}-1 NEEDLE first\n").into_bytes();
    let mut long = vec![b'y'; 80 << 20];
    long[40 << 20..(40 << 20) + 8].copy_from_slice(b" NEEDLE ");
    out.extend_from_slice(&long);
    out.extend_from_slice(format!("\n{tag}-2 NEEDLE second\n").as_bytes());
    out
}

fn gzip_to(path: &Path, text: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_longer_than_the_scanner_is_marked_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    gzip_to(&dir.path().join("app.log.2.gz"), &with_a_long_line("g"));
    std::fs::write(dir.path().join("app.log.1"), with_a_long_line("p")).unwrap();
    append(&dir.path().join("app.log"), "live NEEDLE now\n");
    let s = Server::start_in(dir, &["--rotated-history", "{dir}/app.log"]).await;
    s.wait_last("app.log", "live NEEDLE now").await;
    let oldest_first = [
        "g-1 NEEDLE first",
        "g-2 NEEDLE second",
        "p-1 NEEDLE first",
        "p-2 NEEDLE second",
        "live NEEDLE now",
    ];
    for order in ["oldest", "newest"] {
        let got = run(&s, &format!("q=NEEDLE&order={order}&limit=100")).await;
        let mut want: Vec<&str> = oldest_first.to_vec();
        if order == "newest" {
            want.reverse();
        }
        assert_eq!(got.texts, want, "{order}");
        assert_eq!(got.done["matches"], 5, "{order}");
        assert_eq!(got.done["next"], serde_json::Value::Null, "{order}");
        // One mark per long line, where it lies: between its file's first and second match.
        let at: Vec<usize> = got.marks.iter().map(|(i, _)| *i).collect();
        let want_at = if order == "oldest" { [1, 3] } else { [2, 4] };
        assert_eq!(at, want_at, "{order}: {:?}", got.marks);
        let names: Vec<bool> = got
            .marks
            .iter()
            .map(|(_, d)| d.contains("app.log.2.gz") && d.contains("not searched"))
            .collect();
        let gz_mark = if order == "oldest" { 0 } else { 1 };
        assert!(names[gz_mark], "{:?}", got.marks);
        assert!(
            got.marks[1 - gz_mark].1.contains("app.log.1"),
            "{:?}",
            got.marks
        );
    }
    // A limit counts matches only: the marks ride along.
    let two = run(&s, "q=NEEDLE&order=oldest&limit=2").await;
    assert_eq!(two.texts, oldest_first[..2]);
    assert_eq!(two.marks.len(), 1);
    assert!(two.done["next"].is_string());
}

/// Runs a multi-stream search; returns (stream, text) per match in order, and `done`.
async fn run_multi(s: &Server, query: &str) -> (Vec<(String, String)>, serde_json::Value) {
    let url = format!("{}/api/search?{query}", s.url);
    let mut c = crate::common::sse::Connection::open(&s.client, &url, None).await;
    assert_eq!(c.status, 200, "{query}");
    let mut got = Vec::new();
    while let Some(e) = c.next(std::time::Duration::from_secs(60)).await {
        let data = e.json();
        match e.event.as_str() {
            "entries" => {
                let stream = data["stream"].as_str().unwrap().to_owned();
                assert!(e.id.starts_with(&format!("{stream}:")), "{}", e.id);
                for x in data["entries"].as_array().unwrap() {
                    got.push((stream.clone(), x["text"].as_str().unwrap().to_owned()));
                }
            }
            "progress" => assert!(data["scanned"].as_u64() <= data["total"].as_u64()),
            "done" => return (got, data),
            other => panic!("unexpected event {other}"),
        }
    }
    panic!("the search ended without `done`");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_search_over_several_streams_covers_each_in_turn_and_pages_by_composite_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (text("a", 4000), text("b", 3000));
    gzip_to(&dir.path().join("one.log.1.gz"), a.as_bytes());
    append(&dir.path().join("one.log"), text("n", 500));
    append(&dir.path().join("two.log"), &b);
    let s = Server::start_in(
        dir,
        &["--rotated-history", "{dir}/one.log", "{dir}/two.log"],
    )
    .await;
    s.wait_last("two.log", &last_line(&b)).await;
    s.wait_last("one.log", &last_line(&text("n", 500))).await;
    let needle = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.to_lowercase().contains("needle"))
            .map(str::to_owned)
            .collect()
    };
    let tagged = |id: &str, lines: Vec<String>| -> Vec<(String, String)> {
        lines.into_iter().map(|l| (id.to_owned(), l)).collect()
    };
    // Oldest first: one.log's history (its .gz, then the file), then two.log's.
    let mut want = tagged("one.log", needle(&format!("{a}{}", text("n", 500))));
    want.extend(tagged("two.log", needle(&b)));
    let (got, done) = run_multi(
        &s,
        "streams=one.log,two.log&q=needle&order=oldest&limit=10000",
    )
    .await;
    assert_eq!(got, want);
    assert_eq!(done["matches"], want.len());
    assert_eq!(done["next"], serde_json::Value::Null);
    // Newest first, a page at a time: each page goes on where `next` says, none repeated.
    let mut pages = Vec::new();
    let mut next: Option<String> = None;
    for round in 0.. {
        let mut q = "streams=one.log,two.log&q=needle&limit=29".to_owned();
        if let Some(n) = &next {
            q.push_str(&format!("&before={}", enc(n)));
        }
        let (got, done) = run_multi(&s, &q).await;
        assert!(got.len() <= 29);
        pages.extend(got);
        match done["next"].as_str() {
            Some(n) => next = Some(n.to_owned()),
            None => break,
        }
        assert!(round < 100);
    }
    let mut want_newest = tagged("one.log", needle(&format!("{a}{}", text("n", 500))));
    want_newest.reverse();
    let mut two = tagged("two.log", needle(&b));
    two.reverse();
    want_newest.extend(two);
    assert_eq!(pages, want_newest);
    // Bad input: a clear 400.
    for q in [
        "q=needle",
        "streams=one.log&q=needle&before=nocolon",
        "streams=one.log&q=needle&before=three.log:00",
        "streams=one.log&q=needle&after=one.log:00",
    ] {
        let (status, body) = s.get_json(&format!("/api/search?{q}")).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body["error"].is_string(), "{q}: {body}");
    }
    let (status, _) = s.get_json("/api/search?streams=nope&q=needle").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_search_of_a_gz_stops_within_a_second_even_while_it_only_verifies() {
    // 1.2 GiB of text in one `.gz` member (decoding it takes seconds): an oldest-first search with `limit=1` finds its
    // match at once and then only verifies the member (its CRC32 is at the end).
    let dir = tempfile::tempdir().unwrap();
    let chunk: String = (0..100_000)
        .map(|i| format!("line {i:06} nothing to see here, padding the text out\n"))
        .collect();
    let f = std::fs::File::create(dir.path().join("app.log.1.gz")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut text = 0;
    while text < 1200 << 20 {
        enc.write_all(chunk.as_bytes()).unwrap();
        text += chunk.len();
    }
    enc.finish().unwrap();
    append(&dir.path().join("app.log"), "now\n");
    let s = Server::start_in(
        dir,
        &["--rotated-history", "--max-searches", "1", "{dir}/app.log"],
    )
    .await;
    s.wait_last("app.log", "now").await;
    let url = format!(
        "{}/api/streams/app.log/search?q=nothing&order=oldest&limit=1",
        s.url
    );
    let mut c = crate::common::sse::Connection::open(&s.client, &url, None).await;
    assert_eq!(c.status, 200);
    // Into the pass: two progress events (the first is sent before the scan starts).
    let mut progress = 0;
    while progress < 2 {
        let e = c.next(std::time::Duration::from_secs(10)).await.unwrap();
        assert_ne!(e.event, "done", "the search ended before its client left");
        progress += usize::from(e.event == "progress");
    }
    drop(c);
    let dropped = std::time::Instant::now();
    loop {
        let again = s.client.get(&url).send().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert_eq!(again.status(), 503);
        assert!(
            dropped.elapsed() < std::time::Duration::from_secs(1),
            "the search went on after its client left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
