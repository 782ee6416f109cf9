//! Endurance: 1,000 rename rotations under a writer at 10,000 lines/s.
//!
//! The writer behaves like a daemon under logrotate: after each rename it keeps writing to the
//! old file (its open handle) for a while (0-10 ms, and a full second on every 200th rotation)
//! before it reopens the path and writes to the new file. Every line must be delivered exactly
//! once, in order, through the HTTP API, with one `rotated` notice per rotation; afterwards the
//! process holds no more file descriptors than before, and no deleted file ever stays open
//! longer than the grace period.
//!
//! `--rotate-grace` keeps its default (3 s), longer than the writer's longest late writing
//! (1 s). A rotation waits until cometail has opened the file it rotates away (its `rotated`
//! notice arrived): like any tailer, cometail cannot read a file that was created and renamed
//! away between two of its looks; the writer never pauses its 10,000 lines/s for this.
//!
//! Runs in both back ends (`--poll` with a 10 ms interval), one after the other; about 20 s
//! each on an idle two-core machine.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::files::{Collector, open_fds, open_fds_under};
use crate::common::{Server, wait_until};
use serde_json::Value;

const ROTATIONS: usize = 1000;
const LINES_PER_MS: usize = 10;
const GRACE: Duration = Duration::from_secs(3);

/// Both back ends, one after the other: the whole process's descriptor count is compared
/// too, which only means something while no other test runs in this process.
#[tokio::test(flavor = "multi_thread")]
async fn thousand_rotations_under_load_lose_and_leak_nothing_in_both_back_ends() {
    rotations(&[]).await;
    rotations(&["--poll", "--poll-interval", "10ms"]).await;
}

/// What the writer thread reports.
struct Written {
    lines: u64,
    elapsed: Duration,
}

/// Writes 10 lines every millisecond and rotates `ROTATIONS` times; see the module docs.
fn writer(path: &Path, seen: &Mutex<Vec<Value>>) -> Written {
    let rotated = path.with_extension("log.1");
    let open = |p: &Path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("open for writing")
    };
    let mut file = open(path);
    let start = Instant::now();
    let mut tick = start;
    let mut seq: u64 = 0;
    let mut buf = String::new();
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut scanned = 0;
    let mut notices = 0;
    // One millisecond's lines; paced against the clock (it catches up when it falls behind).
    let mut write_tick = |file: &mut fs::File, rot: usize| {
        buf.clear();
        for _ in 0..LINES_PER_MS {
            buf.push_str(&format!("{seq:09} r{rot:04} the quick brown fox jumps\n"));
            seq += 1;
        }
        file.write_all(buf.as_bytes()).expect("write");
        tick += Duration::from_millis(1);
        if let Some(wait) = tick.checked_duration_since(Instant::now()) {
            // Pacing the writer's rate, not synchronisation.
            std::thread::sleep(wait);
        }
        seq
    };
    let mut rotated_seen = || {
        let entries = seen.lock().expect("entries");
        notices += entries[scanned..]
            .iter()
            .filter(|e| e["notice"] == "rotated")
            .count();
        scanned = entries.len();
        notices
    };
    for rot in 0..ROTATIONS {
        // Write to the current file at least 5 ms, and until cometail has opened it.
        let since = Instant::now();
        while since.elapsed() < Duration::from_millis(5) || rotated_seen() < rot {
            write_tick(&mut file, rot);
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "cometail did not open the file of rotation {rot} within 20 s"
            );
        }
        fs::rename(path, &rotated).expect("rename");
        // Late writing to the renamed file, then the reopen.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let late = if rot % 200 == 199 {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(rng % 11)
        };
        let since = Instant::now();
        loop {
            write_tick(&mut file, rot);
            if since.elapsed() >= late {
                break;
            }
        }
        file = open(path);
    }
    let lines = write_tick(&mut file, ROTATIONS);
    Written {
        lines,
        elapsed: start.elapsed(),
    }
}

async fn rotations(backend: &[&str]) {
    let mut args = backend.to_vec();
    args.push("{dir}/app.log");
    let dir = tempfile::tempdir().unwrap();
    crate::common::append(&dir.path().join("app.log"), "");
    let before_server = open_fds().len();
    let s = Server::start_in(dir, &args).await;
    let reader = Collector::start(&s, "app.log");
    let dir = s.dir.path().to_path_buf();
    wait_until("the first look", Duration::from_secs(10), || async {
        open_fds_under(&dir).len() == 1
    })
    .await;
    let baseline = open_fds_under(&dir);
    let baseline_total = open_fds().len();

    // Watch for deleted files held open, all along.
    let longest_deleted = Arc::new(Mutex::new(Duration::ZERO));
    let monitor = tokio::spawn({
        let (dir, longest) = (dir.clone(), longest_deleted.clone());
        async move {
            let mut since: Option<Instant> = None;
            loop {
                let deleted = open_fds_under(&dir)
                    .iter()
                    .any(|f| f.ends_with("(deleted)"));
                since = if deleted {
                    since.or(Some(Instant::now()))
                } else {
                    None
                };
                if let Some(t) = since {
                    let mut l = longest.lock().unwrap();
                    *l = (*l).max(t.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    let path = s.path("app.log");
    let shared = reader.shared();
    let written = tokio::task::spawn_blocking(move || writer(&path, &shared))
        .await
        .expect("the writer finishes");
    let total = written.lines;
    wait_until("every line delivered", Duration::from_secs(60), || async {
        reader.with(|e| e.iter().filter(|e| e.get("text").is_some()).count()) as u64 >= total
    })
    .await;

    // Exactly once, in order, with one notice per rotation and no other notice.
    reader.with(|entries| {
        let mut next: u64 = 0;
        let mut rotated = 0;
        for (i, e) in entries.iter().enumerate() {
            if e.get("notice").is_some_and(|n| n != "rotated") {
                let around: Vec<String> = entries[i.saturating_sub(4)..(i + 4).min(entries.len())]
                    .iter()
                    .map(|e| e.to_string())
                    .collect();
                panic!(
                    "unexpected notice at entry {i} of {}: {around:#?}",
                    entries.len()
                );
            }
            if let Some(text) = e.get("text").and_then(Value::as_str) {
                let n: u64 = text[..9].parse().expect("a numbered line");
                assert_eq!(n, next, "line {next} expected, got {text:?}");
                next += 1;
            } else {
                assert_eq!(e["notice"], "rotated", "unexpected notice {e}");
                rotated += 1;
            }
        }
        assert_eq!(next, total);
        assert_eq!(rotated, ROTATIONS);
    });

    // Descriptors: the current file and at most the retained previous generation (named
    // app.log.1); once that is deleted, exactly the baseline again.
    let after = open_fds_under(&dir);
    assert!(
        after.len() <= baseline.len() + 1
            && after
                .iter()
                .all(|f| f.ends_with("/app.log") || f.ends_with("/app.log.1")),
        "after {ROTATIONS} rotations: {after:?} (baseline {baseline:?})"
    );
    fs::remove_file(s.path("app.log.1")).unwrap();
    wait_until(
        "descriptors back to baseline",
        GRACE + Duration::from_secs(2),
        || async { open_fds_under(&dir) == baseline },
    )
    .await;
    monitor.abort();
    let longest = *longest_deleted.lock().unwrap();
    assert!(
        longest < GRACE,
        "a deleted file stayed open for {longest:?}"
    );
    // The whole process: allow one more pooled client connection (two descriptors, both ends
    // are in this process).
    let total_fds = open_fds().len();
    assert!(
        total_fds <= baseline_total + 2,
        "{total_fds} descriptors open, {baseline_total} before"
    );
    // And once the server has stopped, the process holds what it held before it started.
    drop(reader);
    let _dir = s.stop().await;
    wait_until(
        "the process's descriptors back to before the server",
        Duration::from_secs(5),
        || async { open_fds().len() <= before_server },
    )
    .await;
    eprintln!(
        "endurance {backend:?}: {ROTATIONS} rotations, {total} lines in {:.1?} ({:.0} lines/s), \
         longest deleted-but-open {longest:?}, fds {baseline_total} -> {total_fds}",
        written.elapsed,
        total as f64 / written.elapsed.as_secs_f64()
    );
}
