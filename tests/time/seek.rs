//! `at=` over a stream whose newest file has no times: the seek passes over it into the timed
//! history the stream still holds (a file rotated while followed), and a time past everything
//! timed says so (`seek.found` false, the page at the stream's end).

use serde_json::Value;

use crate::common::{Server, append};

/// `2026-12-01T10:00:00Z` plus `s` seconds, in epoch ms.
const T: i64 = 1_796_119_200_000;

fn timed(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "2026-12-01T{:02}:{:02}:{:02}Z INFO timed {i}\n",
                10 + i / 3600,
                i / 60 % 60,
                i % 60
            )
        })
        .collect()
}

fn plain(n: usize) -> String {
    (0..n).map(|i| format!("plain {i}\n")).collect()
}

fn texts(page: &Value) -> Vec<&str> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect()
}

/// Seeks `app.log` at `ms` and checks the first line found (`None`: nothing at or after).
async fn seeks(s: &Server, ms: i64, want: Option<&str>) {
    let page = s
        .ok_json(&format!("/api/streams/app.log/lines?at={ms}&limit=3"))
        .await;
    assert_eq!(page["seek"]["found"], want.is_some(), "at={ms}: {page}");
    match want {
        Some(first) => assert_eq!(texts(&page).first().copied(), Some(first), "at={ms}"),
        None => {
            // The end of the stream: nothing after `next`, and back from `prev` the last line.
            assert!(texts(&page).is_empty(), "at={ms}: {page}");
            let next = crate::common::enc(page["next"].as_str().unwrap());
            let after = s
                .ok_json(&format!("/api/streams/app.log/lines?after={next}"))
                .await;
            assert!(texts(&after).is_empty(), "at={ms}: the stream's end");
            let last = s.ok_json("/api/streams/app.log/lines?last=1").await;
            let prev = page["prev"].as_str().expect("a way back");
            let back = s
                .ok_json(&format!(
                    "/api/streams/app.log/lines?before={}&limit=2",
                    crate::common::enc(prev)
                ))
                .await;
            assert_eq!(texts(&back).last().copied(), texts(&last).last().copied());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_finds_the_timed_history_behind_a_newest_file_without_times() {
    let s = Server::start(&["--timezone", "UTC", "{dir}/app.log"]).await;
    append(&s.path("app.log"), timed(3000));
    s.wait_last("app.log", "2026-12-01T10:49:59Z INFO timed 2999")
        .await;
    // logrotate's turn: the timed file is renamed away, and the new one has no times.
    std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    append(&s.path("app.log"), plain(200));
    s.wait_last("app.log", "plain 199").await;
    seeks(&s, T + 600_000, Some("2026-12-01T10:10:00Z INFO timed 600")).await;
    seeks(&s, T + 600_500, Some("2026-12-01T10:10:01Z INFO timed 601")).await;
    seeks(&s, T - 3_600_000, Some("2026-12-01T10:00:00Z INFO timed 0")).await;
    seeks(
        &s,
        T + 2_999_000,
        Some("2026-12-01T10:49:59Z INFO timed 2999"),
    )
    .await;
    // Past everything timed: said so, at the end.
    seeks(&s, T + 3_000_000, None).await;
    // Reading on from a found record crosses into the untimed file.
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?at={}&limit=10",
            T + 2_998_000
        ))
        .await;
    let got = texts(&page);
    assert_eq!(
        got[..2],
        [
            "2026-12-01T10:49:58Z INFO timed 2998",
            "2026-12-01T10:49:59Z INFO timed 2999"
        ]
    );
    assert!(got.contains(&"plain 0"), "{got:?}");
    // The file without times names its own time for nobody: `until` inside the old file
    // still bounds the range.
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?at={}&until={}&limit=100",
            T + 100_000,
            T + 103_000
        ))
        .await;
    assert_eq!(
        texts(&page),
        (100..103)
            .map(|i| format!("2026-12-01T10:01:{:02}Z INFO timed {i}", i - 60))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn at_in_a_stream_without_any_time_finds_nothing_and_says_so() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), plain(20));
    s.wait_last("app.log", "plain 19").await;
    seeks(&s, T, None).await;
}
