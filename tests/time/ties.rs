//! Ties and untimed entries in the merged order (`order=time`): ties go to the stream named
//! first, an untimed entry takes the last `ts` before it in its stream, and so a merged page
//! read backwards is the forward order reversed, entry for entry, and the merged SSE sends the
//! same order, over rotated real files whose times repeat within and across files.

use std::time::Duration;

use serde_json::Value;

use super::pages::{VIEW, pairs, stamp};
use crate::common::sse::Connection;
use crate::common::{Server, append, enc};

#[tokio::test(flavor = "multi_thread")]
async fn ties_go_in_request_order_both_ways() {
    let s = Server::start(&["{dir}/a.log", "{dir}/b.log"]).await;
    append(&s.path("a.log"), "2026-12-01T10:00:00Z INFO a\n");
    append(&s.path("b.log"), "2026-12-01T10:00:00Z INFO b\n");
    s.wait_last("a.log", "2026-12-01T10:00:00Z INFO a").await;
    s.wait_last("b.log", "2026-12-01T10:00:00Z INFO b").await;
    let texts = |page: &Value| -> Vec<String> { pairs(page).into_iter().map(|p| p.1).collect() };
    let (a, b) = ("2026-12-01T10:00:00Z INFO a", "2026-12-01T10:00:00Z INFO b");
    let both = s.ok_json("/api/lines?streams=a.log,b.log&last=5").await;
    assert_eq!(texts(&both), [a, b]);
    // One at a time: the newest is b, before it a, and forward from there b again.
    let newest = s.ok_json("/api/lines?streams=a.log,b.log&last=1").await;
    assert_eq!(texts(&newest), [b]);
    let prev = enc(newest["prev"].as_str().unwrap());
    let older = s
        .ok_json(&format!("/api/lines?streams=a.log,b.log&before={prev}"))
        .await;
    assert_eq!(texts(&older), [a]);
    let forth = s
        .ok_json(&format!("/api/lines?streams=a.log,b.log&after={prev}"))
        .await;
    assert_eq!(texts(&forth), [b]);
    // Named the other way round, the tie goes the other way.
    let both = s.ok_json("/api/lines?streams=b.log,a.log&last=5").await;
    assert_eq!(texts(&both), [b, a]);
}

/// A file's lines for [`a_backward_page_is_the_forward_order_reversed`]: whole seconds from
/// `from` on (so times tie within and across files), runs of untimed lines (up to 12, within
/// the key rule's look-back) among them, and untimed lines before the first time.
fn tied_lines(name: &str, from: u64, n: usize, seed: u64) -> String {
    let mut rng = seed;
    let mut out = format!("{name} banner one\n{name} banner two\n");
    let mut t = from;
    for i in 0..n {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        t += rng % 2;
        out.push_str(&format!("{} INFO {name} {i}\n", stamp(t * 1000)));
        if rng % 5 == 0 {
            for j in 0..(rng >> 8) % 12 {
                out.push_str(&format!("{name} {i} untimed {j}\n"));
            }
        }
    }
    out
}

/// An entry's label (`stream`, text or `M:notice`) and `ts`.
fn labelled(page: &Value) -> Vec<(String, String, Option<i64>)> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = e["text"]
                .as_str()
                .map_or_else(|| format!("M:{}", e["notice"]), str::to_owned);
            let stream = e["stream"].as_str().unwrap_or_default().to_owned();
            (stream, text, e["ts"].as_i64())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backward_page_is_the_forward_order_reversed() {
    let dir = tempfile::tempdir().unwrap();
    // a.log was rotated once (a.log.1 holds its older half); times repeat within each file
    // and across the three, and untimed lines (records off: each its own entry) take the
    // time before them.
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("a.log.1"),
        tied_lines("a1", 0, 150, 0x9e37_79b9_7f4a_7c15),
    )
    .unwrap();
    let files = [
        ("a.log", tied_lines("a", 150, 150, 0x2545_f491_4f6c_dd1d)),
        ("b.log", tied_lines("b", 0, 300, 0xd1b5_4a32_d192_ed03)),
        ("c.log", tied_lines("c", 20, 250, 0x8cb9_2ba7_2f3d_8dd7)),
    ];
    for (name, text) in &files {
        std::fs::write(p(name), text).unwrap();
    }
    let s = Server::start_in(
        dir,
        &[
            "--rotated-history",
            "--records",
            "off",
            "{dir}/a.log",
            "{dir}/b.log",
            "{dir}/c.log",
        ],
    )
    .await;
    for (name, text) in &files {
        s.wait_last(name, text.lines().last().unwrap()).await;
    }
    let mut forward_once = None;
    for limit in [1, 3, 7, 50, 1000] {
        // Back from the end to the start of every stream.
        let mut page = s.ok_json(&format!("{VIEW}&last={limit}")).await;
        let mut back = labelled(&page);
        while let Some(prev) = page["prev"].as_str().map(str::to_owned) {
            page = s
                .ok_json(&format!("{VIEW}&before={}&limit={limit}", enc(&prev)))
                .await;
            let mut older = labelled(&page);
            older.append(&mut back);
            back = older;
            assert!(back.len() < 5_000, "paging back does not end");
        }
        // Forward from the oldest page to the end.
        let mut fwd = labelled(&page);
        loop {
            let next = enc(page["next"].as_str().unwrap());
            page = s
                .ok_json(&format!("{VIEW}&after={next}&limit={limit}"))
                .await;
            if page["entries"].as_array().unwrap().is_empty() {
                break;
            }
            fwd.extend(labelled(&page));
            assert!(fwd.len() < 5_000, "paging forward does not end");
        }
        assert!(
            back == fwd,
            "limit {limit}: back and forth differ at {:?}",
            back.iter()
                .zip(&fwd)
                .position(|(x, y)| x != y)
                .map(|i| (&back[i], &fwd[i]))
        );
        match &forward_once {
            None => forward_once = Some(fwd),
            Some(first) => assert!(*first == fwd, "limit {limit}: another order"),
        }
    }
    let merged = forward_once.unwrap();
    // The order is the documented one: keys (`ts`, else the last `ts` before in the stream,
    // else before everything) never go down, and ties go in request order.
    let rank = |s: &str| {
        ["a.log", "b.log", "c.log"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    let mut carried: std::collections::HashMap<String, i64> = Default::default();
    let keyed: Vec<(i64, usize)> = merged
        .iter()
        .map(|(stream, _, ts)| {
            let key = ts
                .or_else(|| carried.get(stream).copied())
                .unwrap_or(i64::MIN);
            carried.insert(stream.clone(), key);
            (key, rank(stream))
        })
        .collect();
    let bad = keyed.windows(2).position(|w| w[0] > w[1]);
    assert!(
        bad.is_none(),
        "out of order at {bad:?}: {:?}",
        bad.map(|i| &merged[i..i + 2])
    );
    // Every entry of every stream, once: as many as each stream's own pages hold.
    for (id, lines) in [("a.log", 300), ("b.log", 300), ("c.log", 250)] {
        let texts = merged
            .iter()
            .filter(|e| e.0 == id && !e.1.starts_with("M:"));
        let timed = texts.clone().filter(|e| e.2.is_some()).count();
        assert_eq!(timed, lines, "{id}: every timed line once");
        let all: std::collections::HashSet<_> = texts.clone().map(|e| &e.1).collect();
        assert_eq!(all.len(), texts.count(), "{id}: nothing doubled");
    }
    // Ties across streams occur in plenty, so the rule was tested.
    let ties = keyed
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        .count();
    assert!(ties > 50, "{ties} ties");
    // The merged SSE sends the same order: each stream's last N entries (whose first may be
    // untimed, its key looked back for), as they stand in the pages' order.
    for n in [5, 17, 40] {
        let mut want = Vec::new();
        for id in ["a.log", "b.log", "c.log"] {
            let own: Vec<_> = merged.iter().filter(|e| e.0 == id).collect();
            want.extend(own[own.len() - n..].iter().map(|e| (*e).clone()));
        }
        want.sort_by_key(|e| merged.iter().position(|m| m == e).unwrap());
        let url = format!(
            "{}/api/events?streams=a.log,b.log,c.log&order=time&last={n}",
            s.url
        );
        let mut c = Connection::open(&s.client, &url, None).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < want.len() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = c.next(left).await.expect("the merged entries within 10 s");
            if e.event != "entries" {
                continue;
            }
            let data = e.json();
            let stream = data["stream"].as_str().unwrap().to_owned();
            got.extend(
                labelled(&data)
                    .into_iter()
                    .map(|(_, text, ts)| (stream.clone(), text, ts)),
            );
        }
        assert!(got == want, "last={n}: SSE {got:?}\npages {want:?}");
    }
}
