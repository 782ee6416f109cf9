//! The memory scenario: resident memory while many files are busy at once.
//!
//! `files` empty files in one directory are followed through one glob (`DIR/*.log`); then each
//! gets `mib_per_file` MiB of lines, appended in rounds as fast as the writer can, while the
//! server follows them all. Once every stream has its file's last line, the server's resident
//! memory now and at its peak (`VmRSS`, `VmHWM`) are read from `/proc`. Run it once per
//! `--memory` setting, passed as `COMETAIL_MEMORY` in the environment (the server inherits it).

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::http::Conn;
use crate::report::Row;
use crate::scenario::Ctx;
use crate::server::{Kind, Server};

/// Lines per file and round.
const ROUND_LINES: usize = 250;

/// Runs the scenario; see the module documentation.
///
/// # Errors
/// The server cannot be started or read, or a stream misses its last line for 300 s.
pub(crate) async fn busy_files(ctx: &Ctx, files: usize, mib_per_file: usize) -> Result<Row> {
    let dir = ctx.fresh_dir("memory")?;
    let paths: Vec<_> = (0..files)
        .map(|i| dir.join(format!("f{i:05}.log")))
        .collect();
    for p in &paths {
        std::fs::File::create(p)?;
    }
    let server = Server::start(
        Kind::Cometail,
        &ctx.launch,
        &dir.join("*.log"),
        Duration::from_secs(60),
    )
    .await?;
    let line_bytes = ctx.line_bytes.max(20);
    let rounds = (mib_per_file << 20) / (ROUND_LINES * line_bytes);
    let t0 = Instant::now();
    let writing = paths.clone();
    tokio::task::spawn_blocking(move || write_rounds(&writing, rounds, line_bytes)).await??;
    ctx.log(format!(
        "memory: wrote {files} x {mib_per_file} MiB in {:.1} s; waiting for every last line",
        t0.elapsed().as_secs_f64()
    ));
    let last = format!("{:06} {:04} ", rounds - 1, ROUND_LINES - 1);
    let mut conn = Conn::open(server.addr, None).await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    for i in 0..files {
        let path = format!("/api/streams/f{i:05}.log/lines?last=1");
        loop {
            let (head, body) = tokio::time::timeout(Duration::from_secs(60), conn.get(&path))
                .await
                .context("GET timed out")??;
            if head.status == 200 && String::from_utf8_lossy(&body).contains(&last) {
                break;
            }
            if Instant::now() > deadline {
                bail!("f{i:05}.log lacks its last line 300 s after the writer finished");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let visible = t0.elapsed().as_secs_f64();
    let rss = server.rss_bytes()?;
    let peak = peak_rss_bytes(server.pid)?;
    let cpu = server.cpu_tree().as_secs_f64();
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let memory = std::env::var("COMETAIL_MEMORY").unwrap_or_else(|_| "default".into());
    Ok(Row::new(
        "memory",
        Kind::Cometail.name(),
        format!("files={files} x {mib_per_file} MiB, --memory {memory}"),
    )
    .m("rss_MiB", rss as f64 / 1_048_576.0)
    .m("peak_rss_MiB", peak as f64 / 1_048_576.0)
    .m("all_visible_s", visible)
    .m("srv_cpu_s", cpu))
}

/// Appends `rounds` rounds of [`ROUND_LINES`] lines of `line_bytes` bytes to every file.
fn write_rounds(paths: &[std::path::PathBuf], rounds: usize, line_bytes: usize) -> Result<()> {
    let mut files = paths
        .iter()
        .map(|p| std::fs::OpenOptions::new().append(true).open(p))
        .collect::<std::io::Result<Vec<_>>>()?;
    let filler = "m".repeat(line_bytes - 13);
    let mut buf = String::new();
    for round in 0..rounds {
        for f in &mut files {
            buf.clear();
            for i in 0..ROUND_LINES {
                buf.push_str(&format!("{round:06} {i:04} {filler}\n"));
            }
            f.write_all(buf.as_bytes())?;
        }
    }
    Ok(())
}

/// `VmHWM` (peak resident memory) of `pid`, bytes.
fn peak_rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .context("no VmHWM line")
}
