//! `GET /api/lines?streams=a,b`: the history of several real files as one, in event-time
//! order, paged back to the start and forward again by composite cursors, equal to a
//! reference merge of the files; filtered by `q`; long-polled with `wait`; bad input is a 400.

use std::time::Duration;

use serde_json::Value;

use crate::common::{Server, append, enc};

/// `2026-12-01T10:00:00.000Z` plus `ms`.
pub(super) fn stamp(ms: u64) -> String {
    format!(
        "2026-12-01T{:02}:{:02}:{:02}.{:03}Z",
        10 + ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Three files of timed lines with random gaps (distinct times across files: each file has
/// its own residue mod 3), and the reference merge: `(stream, text)` by time.
fn three_logs(dir: &std::path::Path, n: usize) -> Vec<(String, String)> {
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut all: Vec<(u64, String, String)> = Vec::new();
    for (k, name) in ["a.log", "b.log", "c.log"].iter().enumerate() {
        let mut t = 0u64;
        let mut text = String::new();
        for i in 0..n {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            t += 3 * (1 + rng % 40);
            let ms = t + k as u64;
            let level = if rng % 7 == 0 { "WARN" } else { "INFO" };
            let line = format!("{} {level} {name} line {i}", stamp(ms));
            text.push_str(&line);
            text.push('\n');
            all.push((ms, (*name).to_owned(), line));
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
    all.sort();
    all.into_iter().map(|(_, s, l)| (s, l)).collect()
}

pub(super) fn pairs(page: &Value) -> Vec<(String, String)> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap().to_owned(),
                e["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(super) const VIEW: &str = "/api/lines?streams=a.log,b.log,c.log";

/// Pages back from `last` to the start, then forward from the oldest page to the end; each
/// way, every entry once and in time order.
async fn both_ways(s: &Server, extra: &str, limit: usize, want: &[(String, String)]) {
    let mut page = s.ok_json(&format!("{VIEW}{extra}&last={limit}")).await;
    let newest_next = page["next"].as_str().unwrap().to_owned();
    let mut back = pairs(&page);
    let mut pages = 1;
    while let Some(prev) = page["prev"].as_str().map(str::to_owned) {
        page = s
            .ok_json(&format!(
                "{VIEW}{extra}&before={}&limit={limit}",
                enc(&prev)
            ))
            .await;
        let mut older = pairs(&page);
        older.append(&mut back);
        back = older;
        pages += 1;
        assert!(pages < 10 * want.len(), "paging back does not end");
    }
    assert_eq!(back.len(), want.len(), "back: every entry once");
    assert!(back == want, "back: in time order");
    // Forward from the oldest page's end.
    let mut fwd = pairs(&page);
    loop {
        let next = page["next"].as_str().unwrap().to_owned();
        page = s
            .ok_json(&format!("{VIEW}{extra}&after={}&limit={limit}", enc(&next)))
            .await;
        if page["entries"].as_array().unwrap().is_empty() {
            // At the end: the same cut the first page named (each stream at its last entry
            // or, with `q`, at the last entry examined).
            if extra.is_empty() {
                assert_eq!(next, newest_next);
            }
            break;
        }
        fwd.extend(pairs(&page));
        assert!(fwd.len() <= want.len(), "forward: nothing doubled");
    }
    assert!(fwd == want, "forward: every entry once, in time order");
}

#[tokio::test(flavor = "multi_thread")]
async fn merged_pages_go_back_and_forth_in_time_order_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let want = three_logs(dir.path(), 400);
    let s = Server::start_in(dir, &["{dir}/a.log", "{dir}/b.log", "{dir}/c.log"]).await;
    s.wait_following().await;
    for limit in [1, 7, 100, 1000] {
        both_ways(&s, "", limit, &want).await;
    }
    // `q` filters before the merge; pages stay exact.
    let warns: Vec<(String, String)> = want
        .iter()
        .filter(|(_, l)| l.contains(" WARN "))
        .cloned()
        .collect();
    assert!(warns.len() > 20);
    both_ways(&s, "&q=level%3E%3Dwarn", 9, &warns).await;

    // Live: a long poll from the end is answered by the next line to arrive; as history the
    // two new lines then come in time order, although b.log's was written first.
    let end = s.ok_json(&format!("{VIEW}&last=0")).await;
    assert!(pairs(&end).is_empty());
    let next = end["next"].as_str().unwrap().to_owned();
    let url = format!("{}{VIEW}&after={}&wait=20", s.url, enc(&next));
    let poll = tokio::spawn({
        let client = s.client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    let late = (
        "b.log".to_owned(),
        format!("{} INFO b.log live", stamp(10_000_000)),
    );
    let early = (
        "a.log".to_owned(),
        format!("{} INFO a.log live", stamp(9_000_000)),
    );
    append(&s.path("b.log"), format!("{}\n", late.1));
    append(&s.path("a.log"), format!("{}\n", early.1));
    let polled = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .expect("the long poll answers")
        .unwrap();
    let polled = pairs(&polled);
    assert!(!polled.is_empty() && polled.iter().all(|p| *p == early || *p == late));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = pairs(&s.ok_json(&format!("{VIEW}&after={}", enc(&next))).await);
        if got.len() == 2 {
            assert_eq!(got, [early, late]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both live lines: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_merged_page_requests_are_400_with_a_reason() {
    let s = Server::start(&["{dir}/a.log", "{dir}/b.log"]).await;
    append(&s.path("a.log"), "2026-12-01T10:00:00Z INFO one\n");
    append(&s.path("b.log"), "2026-12-01T10:00:01Z INFO two\n");
    s.wait_following().await;
    let page = s.ok_json("/api/lines?streams=a.log,b.log&last=5").await;
    let next = page["next"].as_str().unwrap().to_owned();
    let (a_only, _) = next.split_once(',').unwrap();
    for (query, says) in [
        ("streams=", "streams"),
        ("streams=a.log,b.log&order=arrival", "order"),
        ("streams=a.log,b.log&after=nope", "after"),
        (
            &format!("streams=a.log,b.log&after={}", enc(a_only)),
            "b.log",
        ),
        (
            &format!("streams=a.log&after={}", enc(&next)),
            "not one of `streams`",
        ),
        (
            &format!("streams=a.log,b.log&after={}&last=1", enc(&next)),
            "at most one",
        ),
        ("streams=a.log,b.log&last=1&wait=3", "wait"),
        ("streams=a.log,b.log&q=%22open", "q"),
        ("streams=a.log,b.log&limit=0", "limit"),
    ] {
        let (status, body) = s.get_json(&format!("/api/lines?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let reason = body.to_string();
        assert!(reason.contains(says), "{query}: {reason}");
    }
    let (status, _) = s.get_json("/api/lines?streams=a.log,nope").await;
    assert_eq!(status, 404);
}

/// Long-polls the merged view of a.log and b.log from `next` until `n` entries came; returns
/// each entry's (last word, late) and moves `next` on.
async fn polled_marks(s: &Server, next: &mut String, n: usize) -> Vec<(String, bool)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} entries, got {out:?}"
        );
        let page = s
            .ok_json(&format!(
                "/api/lines?streams=a.log,b.log&after={}&wait=5",
                enc(next)
            ))
            .await;
        *next = page["next"].as_str().unwrap().to_owned();
        for e in page["entries"].as_array().unwrap() {
            let word = e["text"].as_str().unwrap().rsplit(' ').next().unwrap();
            out.push((word.to_owned(), e["late"] == true));
        }
    }
    out
}

/// Forward pages mark `late` as the merged SSE does: an entry older than one the reader's
/// position names (or than one before it in the page) carries `"late": true`.
#[tokio::test(flavor = "multi_thread")]
async fn a_merged_long_poll_marks_entries_behind_its_position_late() {
    // A long hold, so that a loaded machine still sees b3 and a1 within it.
    let s = Server::start(&["--merge-delay", "3s", "{dir}/a.log", "{dir}/b.log"]).await;
    append(&s.path("a.log"), "");
    append(&s.path("b.log"), "");
    s.wait_following().await;
    let mut next = s.ok_json("/api/lines?streams=a.log,b.log&last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    append(&s.path("a.log"), format!("{} INFO a1\n", stamp(1000)));
    append(&s.path("b.log"), format!("{} INFO b3\n", stamp(3000)));
    let on_time = |w: &str| (w.to_owned(), false);
    assert_eq!(
        polled_marks(&s, &mut next, 2).await,
        [on_time("a1"), on_time("b3")]
    );
    let before_a2 = next.clone();
    // Older than b3, which the position names as had: late, on either transport.
    append(&s.path("a.log"), format!("{} INFO a2\n", stamp(2000)));
    assert_eq!(
        polled_marks(&s, &mut next, 1).await,
        [("a2".to_owned(), true)]
    );
    let url = format!(
        "{}/api/events?streams=a.log,b.log&order=time&after={}",
        s.url,
        enc(&before_a2)
    );
    let mut sse = crate::common::sse::Connection::open(&s.client, &url, None).await;
    let e = loop {
        let e = sse
            .next(Duration::from_secs(20))
            .await
            .expect("stream open");
        if e.event == "entries" {
            break e.json();
        }
    };
    assert_eq!(e["entries"][0]["late"], true, "{e}");
    // Newer than everything had: on time again.
    append(&s.path("b.log"), format!("{} INFO b4\n", stamp(4000)));
    assert_eq!(polled_marks(&s, &mut next, 1).await, [on_time("b4")]);
    // History pages back are not marked.
    let back = s.ok_json("/api/lines?streams=a.log,b.log&last=10").await;
    assert!(
        back["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("late").is_none())
    );
}

/// The other transport of a merged view: long polls of `/api/lines?streams=` cut off at random
/// (the request dropped, its answer lost) while both files are written, each resumed from the
/// last `next` the client holds. Every line comes once, in time order but for those marked
/// `late`; the SSE transport's twin is `merge::merged_events_resume_exactly_across_random_disconnects`.
#[tokio::test(flavor = "multi_thread")]
async fn merged_long_polls_lose_and_double_nothing_across_random_disconnects() {
    let s = Server::start(&["--merge-delay", "50ms", "{dir}/a.log", "{dir}/b.log"]).await;
    append(&s.path("a.log"), "");
    append(&s.path("b.log"), "");
    s.wait_following().await;
    let (pa, pb) = (s.path("a.log"), s.path("b.log"));
    let writer = tokio::task::spawn_blocking(move || {
        let mut written: Vec<(String, String)> = Vec::new();
        for i in 0..1500u64 {
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
    let mut next = s.ok_json("/api/lines?streams=a.log,b.log&last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut got: Vec<(String, String)> = Vec::new();
    let (mut high, mut drops) = (0, 0);
    let mut rng = 0x2545_f491_u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // On after everything came, too: a poll with nothing new must bring nothing.
    while got.len() < 1500 || drops < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "got {} of 1500",
            got.len()
        );
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let url = format!(
            "{}/api/lines?streams=a.log,b.log&after={}&limit={}&wait=1",
            s.url,
            enc(&next),
            1 + rng % 200
        );
        let poll = async { s.client.get(url).send().await?.json::<Value>().await };
        // Cut one poll in two after 0-40 ms, whatever it was doing.
        let cut = Duration::from_millis(if rng % 2 == 0 { rng % 40 } else { 30_000 });
        let Ok(page) = tokio::time::timeout(cut, poll).await else {
            drops += 1;
            continue;
        };
        let page = page.expect("a poll answers");
        for e in page["entries"].as_array().unwrap() {
            let ts = e["ts"].as_i64().unwrap();
            assert!(ts >= high || e["late"] == true, "{e} after {high}");
            high = high.max(ts);
            got.push((
                e["stream"].as_str().unwrap().to_owned(),
                e["text"].as_str().unwrap().to_owned(),
            ));
        }
        next = page["next"].as_str().unwrap().to_owned();
    }
    let written = writer.await.unwrap();
    for id in ["a.log", "b.log"] {
        let want: Vec<&String> = written.iter().filter(|w| w.0 == id).map(|w| &w.1).collect();
        let have: Vec<&String> = got.iter().filter(|g| g.0 == id).map(|g| &g.1).collect();
        assert_eq!(have, want, "{id}: every line once, in order");
    }
}
