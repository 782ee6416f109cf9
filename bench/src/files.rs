//! The many-files scenario: what following thousands of quiet files costs the server.
//!
//! N files in one directory are followed through one glob (`DIR/*.log`), each appended one
//! line per second by a writer that keeps them open, as loggers do; optionally one busy file
//! in the same directory that is *not* followed (`busy.txt`) is appended at a high rate. After
//! a warm-up the server's CPU (share of one core), threads and RSS are read from `/proc`, and
//! a sample of streams is checked for its last line, so a cheap server that drops lines does
//! not pass for a good one.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::http;
use crate::report::Row;
use crate::scenario::Ctx;
use crate::server::{self, Kind, Server};

/// Runs the scenario: `files` followed files at 1 line/s each, plus an unfollowed neighbour
/// at `busy_rate` writes/s (0: none), measured over `measure`.
///
/// # Errors
/// Too few file descriptors, or the server cannot be started or read.
pub(crate) async fn many_files(
    ctx: &Ctx,
    files: usize,
    busy_rate: u64,
    measure: Duration,
) -> Result<Row> {
    // The writer holds every file open, and so does the server.
    if (server::nofile_limit() as usize) < files + 200 {
        bail!(
            "{files} files need RLIMIT_NOFILE >= {} (now {}): raise `ulimit -n` first",
            files + 200,
            server::nofile_limit()
        );
    }
    let dir = ctx.fresh_dir("files")?;
    let mut handles = Vec::with_capacity(files);
    for i in 0..files {
        let path = dir.join(format!("f{i:05}.log"));
        let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
        writeln!(f, "f{i:05} 0 start")?;
        handles.push(f);
    }
    let busy = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("busy.txt"))?;
    let server = Server::start(
        Kind::Cometail,
        &ctx.launch,
        &dir.join("*.log"),
        Duration::from_secs(120),
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || write_loop(handles, busy, busy_rate, &stop))
    };
    ctx.log(format!(
        "files: {files} followed files at 1 line/s, neighbour at {busy_rate} writes/s; warming up"
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu0 = server.cpu_tree();
    let t0 = Instant::now();
    tokio::time::sleep(measure).await;
    let cpu_pct =
        server.cpu_tree().saturating_sub(cpu0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    let threads = threads(server.pid)?;
    let rss = server.rss_bytes()?;
    stop.store(true, Ordering::Relaxed);
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
    let (streams, checked, behind) = check_sample(&server, &written).await?;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut row = Row::new(
        "files",
        Kind::Cometail.name(),
        format!("n={files} busy={busy_rate}/s"),
    )
    .m("streams", streams as f64)
    .m("cpu_%", cpu_pct)
    .m("threads", threads as f64)
    .m("rss_MiB", rss as f64 / 1_048_576.0)
    .m("sample_checked", checked as f64)
    .m("sample_behind", behind as f64);
    if behind > 0 {
        row.note = format!("{behind} of {checked} sampled streams lacked their last line");
    }
    Ok(row)
}

/// Appends one line per second to every file (spread evenly over the second) and
/// `busy_rate` lines per second to `busy`, until `stop`; returns each file's last line number.
fn write_loop(mut files: Vec<File>, mut busy: File, busy_rate: u64, stop: &AtomicBool) -> Vec<u64> {
    let n = files.len() as u64;
    let mut last = vec![0u64; files.len()];
    let (mut done, mut busy_done) = (0u64, 0u64);
    let t0 = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let elapsed = t0.elapsed().as_secs_f64();
        let due = (elapsed * n as f64) as u64;
        while done < due {
            let i = usize::try_from(done % n).unwrap_or(0);
            last[i] += 1;
            let _ = writeln!(files[i], "f{i:05} {} {}", last[i], "x".repeat(60));
            done += 1;
        }
        let busy_due = (elapsed * busy_rate as f64) as u64;
        while busy_done < busy_due {
            let _ = writeln!(busy, "busy {busy_done} {}", "y".repeat(60));
            busy_done += 1;
        }
        // Pacing, not synchronisation: the writer wakes every millisecond.
        std::thread::sleep(Duration::from_millis(1));
    }
    last
}

/// Counts the streams and checks, for up to 20 files, that the stream's last line is the
/// file's last line within 3 s; returns (streams, checked, behind).
async fn check_sample(server: &Server, written: &[u64]) -> Result<(usize, usize, usize)> {
    let (_, body) = http::get_once(server.addr, "/api/streams").await?;
    let v: serde_json::Value = serde_json::from_slice(&body).context("/api/streams")?;
    let list = v["streams"].as_array().cloned().unwrap_or_default();
    let step = (written.len() / 20).max(1);
    let (mut checked, mut behind) = (0, 0);
    for i in (0..written.len()).step_by(step) {
        let name = format!("f{i:05}.log");
        let Some(id) = list
            .iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.ends_with(&name)))
            .and_then(|s| s["id"].as_str())
        else {
            behind += 1;
            checked += 1;
            continue;
        };
        let want = format!("f{i:05} {} ", written[i]);
        let path = format!("/api/streams/{id}/lines?last=1");
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut ok = false;
        while Instant::now() < deadline && !ok {
            let (_, body) = http::get_once(server.addr, &path).await?;
            ok = String::from_utf8_lossy(&body).contains(&want);
            if !ok {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        checked += 1;
        behind += usize::from(!ok);
    }
    Ok((list.len(), checked, behind))
}

/// The process's thread count, from `/proc/PID/status`.
fn threads(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Threads: line")
}
