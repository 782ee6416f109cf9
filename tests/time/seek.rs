//! `at=` over a stream whose newest file has no times: the seek passes over it into the timed
//! history before it, a file rotated while followed or rotated files found at start (plain and
//! `.gz`), and a time past everything timed says so (`seek.found` false, the page at the
//! stream's end). A time inside the followed file does not read its rotated files.

use serde_json::Value;

use crate::common::{Server, append};

/// `2026-12-01T10:00:00Z` plus `s` seconds, in epoch ms.
const T: i64 = 1_796_119_200_000;

fn timed(n: usize) -> String {
    timed_from(0, n)
}

/// Lines `timed from` … `timed to-1`, one a second from 10:00:00.
fn timed_from(from: usize, to: usize) -> String {
    (from..to)
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
async fn at_finds_rotated_files_found_at_start_behind_a_newest_file_without_times() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(timed_from(0, 1000).as_bytes()).unwrap();
    std::fs::write(dir.path().join("app.log.2.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.path().join("app.log.1"), timed_from(1000, 2000)).unwrap();
    std::fs::write(dir.path().join("app.log"), plain(50)).unwrap();
    let s = Server::start_in(
        dir,
        &["--timezone", "UTC", "--rotated-history", "{dir}/app.log"],
    )
    .await;
    s.wait_last("app.log", "plain 49").await;
    seeks(
        &s,
        T + 1_234_000,
        Some("2026-12-01T10:20:34Z INFO timed 1234"),
    )
    .await;
    seeks(&s, T + 300_000, Some("2026-12-01T10:05:00Z INFO timed 300")).await;
    seeks(&s, T - 1, Some("2026-12-01T10:00:00Z INFO timed 0")).await;
    seeks(&s, T + 2_000_000, None).await;
    // From a found record the read runs on across the files into the followed one.
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?at={}&limit=6",
            T + 998_000
        ))
        .await;
    let got = texts(&page);
    assert_eq!(
        got[..4],
        [
            "2026-12-01T10:16:38Z INFO timed 998",
            "2026-12-01T10:16:39Z INFO timed 999",
            "2026-12-01T10:16:40Z INFO timed 1000",
            "2026-12-01T10:16:41Z INFO timed 1001",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seek_inside_the_followed_file_does_not_search_its_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log.1"), timed_from(0, 20_000)).unwrap();
    std::fs::write(dir.path().join("app.log"), timed_from(20_000, 20_100)).unwrap();
    let s = Server::start_in(
        dir,
        &["--timezone", "UTC", "--rotated-history", "{dir}/app.log"],
    )
    .await;
    s.wait_last("app.log", "2026-12-01T15:34:59Z INFO timed 20099")
        .await;
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?at={}&limit=1",
            T + 20_050_000
        ))
        .await;
    assert_eq!(texts(&page), ["2026-12-01T15:34:10Z INFO timed 20050"]);
    let followed = std::fs::metadata(s.path("app.log")).unwrap().len();
    let read = page["seek"]["bytes"].as_u64().unwrap();
    assert!(
        read <= followed,
        "{read} bytes read, the followed file has {followed}"
    );
    // Before the followed file's first record: into the rotated one.
    seeks(
        &s,
        T + 10_000_000,
        Some("2026-12-01T12:46:40Z INFO timed 10000"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_in_a_stream_without_any_time_finds_nothing_and_says_so() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), plain(20));
    s.wait_last("app.log", "plain 19").await;
    seeks(&s, T, None).await;
}
