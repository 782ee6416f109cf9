//! The follower at the edges of what it can see, over real files and the real server: a
//! first look that starts inside a line longer than the look-back, and generations replaced
//! faster than the poll interval.

use std::fs;
use std::time::Duration;

use crate::common::files::Collector;
use crate::common::{Server, append, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_start_inside_a_line_longer_than_the_look_back_marks_its_end_as_cut() {
    let dir = tempfile::tempdir().unwrap();
    // One unterminated line of 65 MiB, past the first look's 64 MiB look-back (a hole of NULs:
    // no disk space used).
    fs::File::create(dir.path().join("a.log"))
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let s = Server::start_in(dir, &["{dir}/a.log"]).await;
    s.wait_following().await;
    let reader = Collector::start(&s, "a.log");
    append(&s.path("a.log"), "end of the long line\nnext\n");
    wait_until("two lines", DEADLINE, || async {
        reader.lines().len() >= 2
    })
    .await;
    // (Before them, history says with a `gap` that it cannot reach the long line's start.)
    let got: Vec<_> = reader
        .entries()
        .into_iter()
        .filter(|e| e.get("text").is_some())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0]["truncated"], true,
        "the long line's end is marked as cut: {got:?}"
    );
    assert_ne!(
        got[0]["text"], "end of the long line",
        "its end is not passed off as a whole line"
    );
    assert_eq!(got[1]["text"], "next");
    assert!(got[1].get("truncated").is_none_or(|t| t == false));
}

#[tokio::test(flavor = "multi_thread")]
async fn generations_replaced_between_two_polls_are_announced_by_a_gap() {
    // A long interval, so that the whole rotation below happens between two looks.
    let s = Server::start(&["--poll", "--poll-interval", "3s", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    let reader = Collector::start(&s, "app.log");
    append(&s.path("app.log"), "a1\n");
    // Seen at a poll: the next look is an interval away.
    reader.wait_exact(&["a1"], DEADLINE).await;
    // Two rotations (logrotate numbering), each new file written: `b1` never meets a look.
    fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    append(&s.path("app.log"), "b1\n");
    fs::rename(s.path("app.log.1"), s.path("app.log.2")).unwrap();
    fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    append(&s.path("app.log"), "c1\n");
    reader
        .wait_items("the newest file's line", DEADLINE, |got| {
            got.last().is_some_and(|l| l == "c1")
        })
        .await;
    let items = reader.items();
    assert!(
        items == ["a1", "<gap>", "c1"] || items == ["a1", "<rotated>", "b1", "<rotated>", "c1"],
        "b1 is read, or its loss announced; nothing silent: {items:?}"
    );
    let gap = reader.entries().into_iter().find(|e| e["notice"] == "gap");
    if let Some(gap) = gap {
        let detail = gap["detail"].as_str().unwrap();
        assert!(detail.contains("app.log.1"), "it names the file: {detail}");
    }
}
