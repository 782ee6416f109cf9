//! Whole-history search (issue 12): matches over the followed file and its rotated files
//! (plain and gzip) equal a reference count, in both orders; pages joined by `next` cover
//! everything once; bounds; progress; a dropped client frees its permit; the cap answers 503.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::sse::Connection;
use crate::common::{Server, append, enc};

const SEC: Duration = Duration::from_secs(1);

/// A line set where `needle` appears on every 97th line, sometimes in another case.
pub(crate) fn text(tag: &str, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let word = match i % 291 {
            0 => " NEEDLE",
            97 | 194 => " needle",
            _ => "",
        };
        out.push_str(&format!("{tag}-{i:06} status={}{word} tail\n", i % 7));
    }
    out
}

fn gzip_to(path: &std::path::Path, text: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// app.log.3.gz, app.log.2.gz, app.log.1 (plain), app.log: the history, oldest first.
async fn chain_server(extra: &[&str]) -> (Server, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let parts = [("d", 30_000), ("c", 20_000), ("b", 10_000), ("a", 5_000)];
    gzip_to(&p("app.log.3.gz"), text(parts[0].0, parts[0].1).as_bytes());
    gzip_to(&p("app.log.2.gz"), text(parts[1].0, parts[1].1).as_bytes());
    append(&p("app.log.1"), text(parts[2].0, parts[2].1));
    append(&p("app.log"), text(parts[3].0, parts[3].1));
    let mut args = vec!["--rotated-history"];
    args.extend_from_slice(extra);
    args.push("{dir}/app.log");
    let s = Server::start_in(dir, &args).await;
    s.wait_last("app.log", "a-004999 status=1 tail").await;
    let all: Vec<String> = parts
        .iter()
        .flat_map(|(t, n)| text(t, *n).lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    (s, all)
}

pub(crate) struct Outcome {
    /// The matches' texts, in the order they came.
    pub texts: Vec<String>,
    /// Marks among them (notices: lines too long to search), as (index in `texts`, detail).
    pub marks: Vec<(usize, String)>,
    pub done: Value,
    pub progress: usize,
}

pub(crate) async fn run(s: &Server, query: &str) -> Outcome {
    let url = format!("{}/api/streams/app.log/search?{query}", s.url);
    let mut c = Connection::open(&s.client, &url, None).await;
    assert_eq!(c.status, 200, "{query}");
    let mut texts = Vec::new();
    let mut marks = Vec::new();
    let mut progress = 0;
    while let Some(e) = c.next(60 * SEC).await {
        match e.event.as_str() {
            "entries" => {
                for x in e.json()["entries"].as_array().unwrap() {
                    match x["text"].as_str() {
                        Some(t) => texts.push(t.to_owned()),
                        None => {
                            assert_eq!(x["notice"], "gap", "{x}");
                            marks.push((texts.len(), x["detail"].as_str().unwrap().to_owned()));
                        }
                    }
                }
            }
            "progress" => progress += 1,
            "done" => {
                return Outcome {
                    texts,
                    marks,
                    done: e.json(),
                    progress,
                };
            }
            other => panic!("unexpected event {other}"),
        }
    }
    panic!("the search ended without `done`");
}

#[tokio::test(flavor = "multi_thread")]
async fn search_results_equal_a_reference_over_every_file_in_both_orders() {
    let (s, all) = chain_server(&[]).await;
    let reference: Vec<String> = all
        .iter()
        .filter(|l| l.to_lowercase().contains("needle"))
        .cloned()
        .collect();
    assert!(reference.len() > 200);
    let newest = run(&s, &format!("q={}&limit=10000", enc("needle"))).await;
    let mut want = reference.clone();
    want.reverse();
    assert_eq!(newest.texts, want);
    assert_eq!(newest.done["matches"], reference.len());
    assert_eq!(newest.done["next"], Value::Null);
    assert!(newest.progress >= 2);
    assert!(newest.marks.is_empty(), "{:?}", newest.marks);
    let oldest = run(&s, &format!("q={}&order=oldest&limit=10000", enc("needle"))).await;
    assert_eq!(oldest.texts, reference);
    // A capital makes it case-sensitive; a regex and an AND of terms work the same way.
    let exact = run(&s, &format!("q={}&limit=10000", enc("NEEDLE"))).await;
    assert_eq!(
        exact.texts.len(),
        all.iter().filter(|l| l.contains("NEEDLE")).count()
    );
    let re = run(
        &s,
        &format!("q={}&limit=10000", enc("/^c-0001[0-9]{2} status=3/")),
    )
    .await;
    let want_re: Vec<&String> = all
        .iter()
        .rev()
        .filter(|l| l.starts_with("c-0001") && l[8..].starts_with(" status=3"))
        .collect();
    assert_eq!(re.texts.iter().collect::<Vec<_>>(), want_re);
    let and = run(
        &s,
        &format!("q={}&limit=10000", enc("needle \"status=2\" -b")),
    )
    .await;
    assert_eq!(
        and.texts.len(),
        reference
            .iter()
            .filter(|l| l.contains("status=2") && !l.contains('b'))
            .count()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_joined_by_next_cover_every_match_once_and_bounds_hold() {
    let (s, all) = chain_server(&[]).await;
    let reference: Vec<String> = all
        .iter()
        .filter(|l| l.to_lowercase().contains("needle"))
        .cloned()
        .collect();
    for order in ["newest", "oldest"] {
        let bound = if order == "newest" { "before" } else { "after" };
        let mut got = Vec::new();
        let mut next: Option<String> = None;
        for round in 0.. {
            let mut q = format!("q=needle&order={order}&limit=37");
            if let Some(n) = &next {
                q.push_str(&format!("&{bound}={n}"));
            }
            let page = run(&s, &q).await;
            assert!(page.texts.len() <= 37);
            got.extend(page.texts);
            match page.done["next"].as_str() {
                Some(n) => next = Some(n.to_owned()),
                None => break,
            }
            assert!(round < 100);
        }
        if order == "newest" {
            got.reverse();
        }
        assert_eq!(got, reference, "{order}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_search_frees_its_permit_and_the_cap_answers_503() {
    // 600,000 lines and a query no block prefilter helps (a level test on every line).
    let dir = tempfile::tempdir().unwrap();
    let mut big = String::new();
    for i in 0..600_000 {
        big.push_str(&format!("line {i:07} nothing to see here at all\n"));
    }
    append(&dir.path().join("app.log.1"), &big);
    append(&dir.path().join("app.log"), "now\n");
    let s = Server::start_in(
        dir,
        &["--rotated-history", "--max-searches", "1", "{dir}/app.log"],
    )
    .await;
    s.wait_last("app.log", "now").await;
    let url = format!(
        "{}/api/streams/app.log/search?q={}",
        s.url,
        enc("level>=error")
    );
    let mut first = Connection::open(&s.client, &url, None).await;
    assert_eq!(first.status, 200);
    // Progress comes at least every 250 ms while it runs (generous slack: the test machine
    // may be shared by many builds).
    let mut last = Instant::now();
    for _ in 0..4 {
        let e = first.next(10 * SEC).await.unwrap();
        assert_eq!(e.event, "progress");
        assert!(
            last.elapsed() < Duration::from_millis(3000),
            "{:?}",
            last.elapsed()
        );
        last = Instant::now();
    }
    let busy = s.client.get(&url).send().await.unwrap();
    assert_eq!(busy.status(), 503);
    drop(first);
    let freed = Instant::now();
    loop {
        let again = s.client.get(&url).send().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert_eq!(again.status(), 503);
        assert!(
            freed.elapsed() < SEC,
            "the permit was not freed within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A reconnect after `done` gets 204, which stops browsers reconnecting.
    let resp = s
        .client
        .get(&url)
        .header("last-event-id", "end")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_searches_get_400_with_a_reason() {
    let (s, _) = chain_server(&[]).await;
    for q in [
        "",
        "q=",
        "q=x&order=sideways",
        "q=x&limit=0",
        "q=x&limit=10001",
        "q=x&before=nonsense",
        "q=%2F(%2F",
    ] {
        let (status, body) = s
            .get_json(&format!("/api/streams/app.log/search?{q}"))
            .await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body["error"].is_string(), "{q}: {body}");
    }
}
