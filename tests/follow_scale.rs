//! Following at scale and under hostile rotation, over real files and the real server:
//! a file back after an absence longer than the grace is read on (nothing replayed, no false
//! `rotated`), copytruncate at 5,000 lines/s loses no more than GNU `tail -F` in the same run,
//! and a replaced directory is followed on.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::files::{Collector, wait_state};
use crate::common::{Server, append};

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_file_back_after_an_absence_longer_than_the_grace_is_not_replayed() {
    let s = Server::start(&["--rotate-grace", "200ms", "{dir}/a.log"]).await;
    append(&s.path("a.log"), "");
    s.wait_following().await;
    let reader = Collector::start(&s, "a.log");
    append(&s.path("a.log"), "a\nb\n");
    reader.wait_exact(&["a", "b"], DEADLINE).await;
    fs::rename(s.path("a.log"), s.path("away")).unwrap();
    wait_state(&s, "a.log", "waiting", None).await;
    // The absence itself: longer than the grace (time passing is the scenario, not a wait
    // for the server).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fs::rename(s.path("away"), s.path("a.log")).unwrap();
    append(&s.path("a.log"), "c\n");
    reader
        .wait_items("the new line", DEADLINE, |got| {
            got.last().is_some_and(|l| l == "c")
        })
        .await;
    assert_eq!(reader.items(), ["a", "b", "c"], "no notice, nothing twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_directory_is_followed_on() {
    let s = Server::start(&["{dir}/logs/app.log"]).await;
    fs::create_dir(s.path("logs")).unwrap();
    append(&s.path("logs/app.log"), "");
    s.wait_following().await;
    let reader = Collector::start(&s, "app.log");
    append(&s.path("logs/app.log"), "1\n");
    reader.wait_exact(&["1"], DEADLINE).await;
    fs::rename(s.path("logs"), s.path("logs.old")).unwrap();
    fs::create_dir(s.path("logs")).unwrap();
    append(&s.path("logs/app.log"), "2\n");
    reader.wait_exact(&["1", "<rotated>", "2"], DEADLINE).await;
    for i in 3..10 {
        append(&s.path("logs/app.log"), format!("{i}\n"));
    }
    reader
        .wait_items("lines in the new directory", DEADLINE, |got| {
            got.len() == 10
        })
        .await;
}

/// GNU `tail -F -n +1` on `path`, its stdout collected.
struct GnuTail {
    child: std::process::Child,
    out: Arc<Mutex<Vec<u8>>>,
}

impl GnuTail {
    fn start(path: &std::path::Path) -> Self {
        let mut child = Command::new("/usr/bin/tail")
            .args(["-F", "-n", "+1", "-s", "0.1"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("GNU tail (/usr/bin/tail, coreutils) runs");
        let out: Arc<Mutex<Vec<u8>>> = Arc::default();
        let mut pipe = child.stdout.take().unwrap();
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64 << 10];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    return;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self { child, out }
    }

    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.out.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for GnuTail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Line numbers delivered, and whether any was delivered twice.
fn numbers(lines: &[String]) -> (HashSet<u64>, usize) {
    let mut seen = HashSet::new();
    let mut doubled = 0;
    for l in lines {
        if let Some(n) = l
            .strip_prefix('L')
            .and_then(|n| n.split(' ').next()?.parse().ok())
        {
            if !seen.insert(n) {
                doubled += 1;
            }
        }
    }
    (seen, doubled)
}

/// Kept strict (cometail <= GNU, both in the same run, under the same load) on purpose. A
/// line is lost only when two truncations pass between two reads (the copy holds the last
/// one only), so the assertion measures how soon a write is read after its event. It once
/// failed at load 16, when a read waited for three thread wake-ups (event thread, async
/// worker, step thread); since a file event queues the step directly (`sources/runner.rs`),
/// three runs at load 19 lost 0 lines against GNU's 148, 249 and 265.
#[tokio::test(flavor = "multi_thread")]
async fn copytruncate_at_5000_lines_a_second_loses_no_more_than_gnu_tail() {
    const LINES: u64 = 20_000;
    const RATE: f64 = 5_000.0;
    const ROTATE_EVERY: u64 = 1_000;
    let s = Server::start(&["{dir}/a.log"]).await;
    let path = s.path("a.log");
    append(&path, "");
    s.wait_following().await;
    let gnu = GnuTail::start(&path);
    let reader = Collector::start(&s, "a.log");
    let writer_path = path.clone();
    let copy = s.path("a.log.1");
    let writer = std::thread::spawn(move || {
        let mut log = OpenOptions::new().append(true).open(&writer_path).unwrap();
        let t0 = Instant::now();
        let mut n = 0u64;
        while n < LINES {
            let due = ((t0.elapsed().as_secs_f64() * RATE) as u64).min(LINES);
            while n < due {
                writeln!(log, "L{n:06} {}", "w".repeat(40)).unwrap();
                n += 1;
                if n % ROTATE_EVERY == 0 {
                    // logrotate's copytruncate: copy the file, then truncate it in place.
                    fs::copy(&writer_path, &copy).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(&writer_path)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
            }
            // Pacing the writer to its rate, not synchronisation.
            std::thread::sleep(Duration::from_millis(1));
        }
        writeln!(log, "END").unwrap();
    });
    writer.join().unwrap();
    let last = |lines: &[String]| lines.last().is_some_and(|l| l == "END");
    reader
        .wait_items("the last line", DEADLINE, |got| last(got))
        .await;
    let end = Instant::now() + DEADLINE;
    while !last(&gnu.lines()) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ours, ours_doubled) = numbers(&reader.lines());
    let (theirs, _) = numbers(&gnu.lines());
    let lost = |got: &HashSet<u64>| (0..LINES).filter(|n| !got.contains(n)).count();
    let (ours_lost, theirs_lost) = (lost(&ours), lost(&theirs));
    eprintln!(
        "copytruncate, {} rotations: cometail lost {ours_lost}, GNU tail -F lost {theirs_lost}",
        LINES / ROTATE_EVERY
    );
    assert_eq!(ours_doubled, 0, "no line twice");
    assert!(
        ours_lost <= theirs_lost,
        "cometail lost {ours_lost} lines, GNU tail -F {theirs_lost}"
    );
}
