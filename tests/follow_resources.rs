//! Bounded resources: streams of deleted glob matches are retired, the stdin spool stays
//! bounded with or without newlines and says when its input ended, and all streams' caches
//! together stay within `--memory` (the real binary's resident memory is measured).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use crate::common::{Server, append, texts, wait_until};

/// Stream ids and states in `GET /api/streams`.
async fn listed(s: &Server) -> Vec<(String, String)> {
    s.ok_json("/api/streams").await["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn glob_churn_leaves_no_dead_streams_after_the_retirement_period() {
    let s = Server::start(&[
        "--rotate-grace",
        "100ms",
        "--retire-after",
        "1s",
        "{dir}/*.log",
    ])
    .await;
    append(&s.path("keep.log"), "kept\n");
    // 1,000 short-lived files, 100 at a time: each is seen (it becomes a stream), then
    // deleted.
    let seen_gone = std::cell::Cell::new(false);
    for round in 0..10 {
        let names: Vec<String> = (0..100).map(|i| format!("r{round}-{i:03}.log")).collect();
        for name in &names {
            append(&s.path(name), format!("{name}\n"));
        }
        wait_until(
            "the round's files are streams",
            Duration::from_secs(20),
            || async {
                let ids: Vec<String> = listed(&s).await.into_iter().map(|(id, _)| id).collect();
                names.iter().all(|n| ids.contains(n))
            },
        )
        .await;
        for name in &names {
            fs::remove_file(s.path(name)).unwrap();
        }
        if listed(&s).await.iter().any(|(_, state)| state == "gone") {
            seen_gone.set(true);
        }
    }
    // Deleted matches are listed as `gone` for a while, then dropped; the live file stays.
    wait_until("no dead streams", Duration::from_secs(30), || async {
        let now = listed(&s).await;
        if now.iter().any(|(_, state)| state == "gone") {
            seen_gone.set(true);
        }
        now == [("keep.log".to_owned(), "following".to_owned())]
    })
    .await;
    assert!(
        seen_gone.get(),
        "deleted matches were listed as gone before being dropped"
    );
    let (status, _) = s.get_json("/api/streams/r0-000.log/lines").await;
    assert_eq!(status, 404, "a dropped stream is not found");
    // A file created again under a dropped name is a new stream.
    append(&s.path("r0-000.log"), "back\n");
    wait_until("the new stream", Duration::from_secs(10), || async {
        let (status, page) = s.get_json("/api/streams/r0-000.log/lines?last=1").await;
        status == 200 && texts(&page) == ["back"]
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn a_glob_match_renamed_out_of_the_pattern_keeps_its_stream_while_its_history_is_there() {
    let s = Server::start(&[
        "--rotate-grace",
        "100ms",
        "--retire-after",
        "500ms",
        "{dir}/*.log",
    ])
    .await;
    append(&s.path("moved.log"), "");
    wait_until("the match is a stream", Duration::from_secs(10), || async {
        listed(&s).await.iter().any(|(id, _)| id == "moved.log")
    })
    .await;
    append(&s.path("moved.log"), "kept history\n");
    s.wait_last("moved.log", "kept history").await;
    // Renamed to a name the pattern does not match: the file (and so the stream's history)
    // is still there, so the stream is never `gone` nor dropped, over several periods.
    fs::rename(s.path("moved.log"), s.path("moved.old")).unwrap();
    let watched_until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < watched_until {
        let now = listed(&s).await;
        let state = now
            .iter()
            .find(|(id, _)| id == "moved.log")
            .map(|(_, st)| st.clone());
        assert!(
            state.as_deref().is_some_and(|st| st != "gone"),
            "the stream of a renamed match: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Deleted for good: gone, then dropped.
    fs::remove_file(s.path("moved.old")).unwrap();
    wait_until("the stream is dropped", Duration::from_secs(15), || async {
        listed(&s).await.is_empty()
    })
    .await;
    s.stop().await;
}

/// The real binary, with `TMPDIR` (where the stdin spool goes) in `tmp`.
struct Binary {
    child: Child,
    url: String,
}

impl Binary {
    fn start(tmp: &Path, args: &[&str]) -> Self {
        let (child, url) = crate::common::spawn_piped(args, &[("TMPDIR", tmp)]);
        let url = url.trim_end_matches('/').to_owned();
        Self { child, url }
    }

    fn write(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().expect("piped");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes in the files under `dir`, recursively.
fn bytes_under(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                bytes_under(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[tokio::test]
async fn stdin_without_newlines_is_cut_and_the_spool_stays_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bin = Binary::start(
        tmp.path(),
        &["--spool-bytes", "64K", "--max-line-bytes", "1K", "-"],
    );
    // 32 MiB without a newline: the spool keeps the first 1,025 bytes of the line.
    let block = vec![b'x'; 1 << 20];
    for _ in 0..32 {
        bin.write(&block);
        let held = bytes_under(tmp.path());
        assert!(held <= 64 * 1024 + 2 * 1026, "the spool holds {held} bytes");
    }
    bin.write(b"\nafter\n");
    wait_until(
        "the line after the cut",
        Duration::from_secs(20),
        || async { texts(&bin.get("/api/streams/stdin/lines?last=1").await) == ["after"] },
    )
    .await;
    let page = bin.get("/api/streams/stdin/lines?last=2").await;
    let cut = &page["entries"][0];
    assert_eq!(cut["text"].as_str().unwrap(), "x".repeat(1024));
    assert_eq!(cut["truncated"], true, "the cut line is marked: {cut}");
    let held = bytes_under(tmp.path());
    assert!(held <= 64 * 1024 + 2 * 1026, "the spool holds {held} bytes");
}

#[tokio::test]
async fn stdin_that_ended_says_ended() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bin = Binary::start(tmp.path(), &["-"]);
    bin.write(b"one\ntwo");
    wait_until("the first line", Duration::from_secs(10), || async {
        texts(&bin.get("/api/streams/stdin/lines?last=1").await) == ["one"]
    })
    .await;
    assert_eq!(
        bin.get("/api/streams").await["streams"][0]["state"],
        "following"
    );
    drop(bin.child.stdin.take());
    wait_until("the stream says ended", Duration::from_secs(10), || async {
        bin.get("/api/streams").await["streams"][0]["state"] == "ended"
    })
    .await;
    // Everything was read before it said so: the unterminated last line too.
    assert_eq!(
        texts(&bin.get("/api/streams/stdin/lines?last=5").await),
        ["one", "two"]
    );
}

/// A figure of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

#[tokio::test]
async fn two_hundred_busy_files_stay_within_the_memory_budget() {
    const FILES: usize = 200;
    const ROUNDS: usize = 40;
    const LINES: usize = 250; // per file and round: about 25 KiB
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    fs::create_dir(&dir).unwrap();
    let paths: Vec<_> = (0..FILES)
        .map(|i| dir.join(format!("f{i:03}.log")))
        .collect();
    for p in &paths {
        fs::File::create(p).unwrap();
    }
    let pattern = format!("{}/*.log", dir.display());
    let memory = std::env::var("COMETAIL_TEST_MEMORY").unwrap_or_else(|_| "16M".into());
    let bin = Binary::start(tmp.path(), &["--memory", &memory, &pattern]);
    // Every file gets 1 MiB of lines, in 40 rounds, while cometail follows them all.
    let filler = "y".repeat(90);
    for round in 0..ROUNDS {
        for p in &paths {
            let lines: String = (0..LINES)
                .map(|i| format!("{round:02} {i:04} {filler}\n"))
                .collect();
            append(p, lines);
        }
    }
    let last = format!("{:02} {:04} {filler}", ROUNDS - 1, LINES - 1);
    for i in 0..FILES {
        let path = format!("/api/streams/f{i:03}.log/lines?last=1");
        wait_until(
            "every file read to its end",
            Duration::from_secs(120),
            || async { texts(&bin.get(&path).await) == [last.clone()] },
        )
        .await;
    }
    let pid = bin.child.id();
    let (rss, peak) = (status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM"));
    eprintln!("--memory {memory}: VmRSS {rss} KiB, VmHWM {peak} KiB");
    // 16 MiB of caches, plus what the server holds whatever the budget: the followers' read
    // buffers (200 x 256 KiB), the lines of steps in flight, the runtime, the allocator's
    // arenas (about 140 MiB in all, in a debug build, with `--memory 1M`). Without a shared
    // budget (`--memory 4G`) the same run peaks at about 440 MiB.
    assert!(peak < 256 * 1024, "peak resident memory {peak} KiB");
    // And every entry is still there, from disk: the oldest line of a file.
    let origin = crate::common::files::origin();
    let first = bin
        .get(&format!(
            "/api/streams/f000.log/lines?after={origin}&limit=1"
        ))
        .await;
    assert_eq!(texts(&first), [format!("00 0000 {filler}")]);
}
