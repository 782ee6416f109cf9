//! The time engine's figures over a real server and a large timestamped file (issue 11):
//! `seek` (`at=` requests anywhere in the file: time and bytes read per seek) and `grep`
//! (`q=level>=error` paged through every match of the file, forwards and backwards, beside
//! `grep -c` on the same file in the same run; a plain timestamped file and a JSON one, and
//! the plain one again as the rotated file of a followed one, read through the chain).
//!
//! The file is written once under the work dir and reused: lines 1 ms apart from
//! 2026-12-01T00:00:00Z, every hundredth an `ERROR` (1 % matches), padded to `--line-bytes`;
//! as JSON, `{"time":…,"level":"error",…}` objects of the same length.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::http::Conn;
use crate::marks::Rfc3339;
use crate::report::Row;
use crate::scenario::Ctx;
use crate::server::{Kind, Server};

/// 2026-12-01T00:00:00Z in ms since the epoch: line `n` (from 0) is stamped `T0 + n` ms.
const T0_MS: u64 = 1_796_083_200_000;
/// Seeks measured per run.
const SEEKS: usize = 25;
/// Matches per `q` page (the most a page may hold).
const PAGE: usize = 10_000;

/// How the timed file's lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `2026-12-01T00:00:00.000Z ERROR request N xxx…`
    Plain,
    /// `{"time":"2026-12-01T00:00:00.000Z","level":"error","msg":"request N","pad":"xxx…"}`
    Json,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Json => "json",
        }
    }

    /// What `grep -c` looks for: exactly the error lines.
    fn grep_pattern(self) -> &'static str {
        match self {
            Self::Plain => "ERROR",
            Self::Json => "\"level\":\"error\"",
        }
    }
}

/// Writes (or reuses) the timed file of about `gib` GiB; returns its path and line count.
fn timed_file(ctx: &Ctx, gib: f64, shape: Shape) -> Result<(PathBuf, u64)> {
    use std::io::Write as _;
    let data = ctx.workdir.join("data");
    std::fs::create_dir_all(&data)?;
    let suffix = match shape {
        Shape::Plain => "",
        Shape::Json => "-json",
    };
    let path = data.join(format!("timed-{gib}GiB-{}B{suffix}.log", ctx.line_bytes));
    let lines = ((gib * 1024.0 * 1024.0 * 1024.0) / ctx.line_bytes as f64) as u64;
    let want = lines * ctx.line_bytes as u64;
    if std::fs::metadata(&path).map(|m| m.len()).ok() == Some(want) {
        return Ok((path, lines));
    }
    ctx.log(format!("writing {} ({lines} lines)", path.display()));
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(&tmp)?);
    let mut line = Vec::with_capacity(ctx.line_bytes);
    for n in 0..lines {
        line.clear();
        let error = n % 100 == 99;
        let stamp = Rfc3339((T0_MS + n) * 1_000_000);
        match shape {
            Shape::Plain => {
                let level = if error { "ERROR" } else { "INFO" };
                write!(line, "{stamp} {level} request {n} ")?;
                line.resize(ctx.line_bytes - 1, b'x');
            }
            Shape::Json => {
                let level = if error { "error" } else { "info" };
                write!(
                    line,
                    r#"{{"time":"{stamp}","level":"{level}","msg":"request {n}","pad":""#
                )?;
                if line.len() + 3 > ctx.line_bytes {
                    bail!(
                        "--line-bytes {} is too short for a JSON line",
                        ctx.line_bytes
                    );
                }
                line.resize(ctx.line_bytes - 3, b'x');
                line.extend_from_slice(b"\"}");
            }
        }
        line.push(b'\n');
        f.write_all(&line)?;
    }
    f.flush()?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    Ok((path, lines))
}

/// A directory beside `timed` holding `app.log.1`, a hard link to it, and `app.log`, one line
/// stamped after it; returns the path of `app.log`.
fn rotated_chain(timed: &std::path::Path) -> Result<PathBuf> {
    let dir = timed.with_extension("chain");
    std::fs::create_dir_all(&dir)?;
    let member = dir.join("app.log.1");
    let same = |a: &std::path::Path| {
        use std::os::unix::fs::MetadataExt as _;
        let ino = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.ino()).ok();
        ino(a).is_some() && ino(a) == ino(timed)
    };
    if !same(&member) {
        // Absent, or linked to an older timed file: link the current one.
        let _ = std::fs::remove_file(&member);
        std::fs::hard_link(timed, &member).context("linking the timed file as app.log.1")?;
    }
    let live = dir.join("app.log");
    std::fs::write(&live, "2027-01-01T00:00:00.000Z INFO the followed file\n")?;
    Ok(live)
}

/// The entries of a page that are lines (notices, such as a rotated file's `older history`
/// marker, pass every `q` but are not matches).
fn texts(page: &serde_json::Value) -> u64 {
    page["entries"]
        .as_array()
        .map_or(0, |e| e.iter().filter(|e| e.get("text").is_some()).count()) as u64
}

/// `GET path` on `conn`: the time it took and the body as JSON (status 200 only).
async fn get_json(conn: &mut Conn, path: &str) -> Result<(Duration, serde_json::Value)> {
    let t = Instant::now();
    let (head, body) = tokio::time::timeout(Duration::from_secs(120), conn.get(path))
        .await
        .context("GET timed out")??;
    let el = t.elapsed();
    if head.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            head.status,
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    Ok((el, serde_json::from_slice(&body)?))
}

fn median(mut v: Vec<f64>) -> f64 {
    crate::stats::median(&mut v).unwrap_or(f64::NAN)
}

/// The seek scenario: `at=` at [`SEEKS`] spread points of the file, each answered with the
/// entry stamped at that time; time per request and the bytes the binary search read.
pub(crate) async fn seek(ctx: &Ctx, gib: f64) -> Result<Row> {
    let (path, lines) = timed_file(ctx, gib, Shape::Plain)?;
    let server =
        Server::start(Kind::Cometail, &ctx.launch, &path, Duration::from_secs(120)).await?;
    let mut conn = Conn::open(server.addr, None).await?;
    let base = format!("/api/streams/{}/lines", server.stream);
    let (mut times, mut bytes, mut probes) = (Vec::new(), Vec::new(), Vec::new());
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..SEEKS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // The first and last lines, then spread points.
        let n = match i {
            0 => 0,
            1 => lines - 1,
            _ => rng % lines,
        };
        let (t, v) = get_json(&mut conn, &format!("{base}?at={}&limit=1", T0_MS + n)).await?;
        let text = v["entries"][0]["text"].as_str().unwrap_or_default();
        if !text.contains(&format!(" request {n} ")) {
            bail!("at= line {n} answered {text:?}");
        }
        times.push(t.as_secs_f64() * 1e3);
        bytes.push(v["seek"]["bytes"].as_f64().unwrap_or(f64::NAN));
        probes.push(v["seek"]["probes"].as_f64().unwrap_or(f64::NAN));
    }
    server.stop().await;
    let max = times.iter().copied().fold(0.0, f64::max);
    Ok(Row::new(
        "seek",
        "cometail",
        format!("{gib} GiB, {lines} lines x {} B", ctx.line_bytes),
    )
    .m("seek_ms_p50", median(times))
    .m("seek_ms_max", max)
    .m("read_KiB_p50", median(bytes) / 1024.0)
    .m("probes_p50", median(probes)))
}

/// The grep scenario: every `q=level>=error` match of the file, paged forward from its first
/// line, then back from its end (`last=`, then `before=` each page's `prev`), then `grep -c`
/// for the error lines on the same file (all with the file in the page cache: the first `q`
/// pass reads it first).
///
/// With `rotated`, the file is the rotated `app.log.1` (a hard link) of a followed `app.log`
/// that holds one later line: the pages are read through the rotation chain.
pub(crate) async fn grep(ctx: &Ctx, gib: f64, shape: Shape, rotated: bool) -> Result<Row> {
    let (path, lines) = timed_file(ctx, gib, shape)?;
    let size = std::fs::metadata(&path)?.len() as f64;
    let followed = if rotated {
        rotated_chain(&path)?
    } else {
        path.clone()
    };
    let server = Server::start(
        Kind::Cometail,
        &ctx.launch,
        &followed,
        Duration::from_secs(120),
    )
    .await?;
    let mut conn = Conn::open(server.addr, None).await?;
    let base = format!(
        "/api/streams/{}/lines?q=level%3E%3Derror&limit={PAGE}",
        server.stream
    );
    let cpu0 = server.cpu_tree();
    let t = Instant::now();
    let (_, mut v) = get_json(&mut conn, &format!("{base}&at={T0_MS}")).await?;
    let mut matches = 0u64;
    let mut requests = 1u64;
    loop {
        let n = v["entries"].as_array().map_or(0, Vec::len) as u64;
        matches += texts(&v);
        let cut = v["scanned"]["budget"] == true;
        if n < PAGE as u64 && !cut {
            break;
        }
        let next = v["next"].as_str().context("no next")?.to_owned();
        v = get_json(&mut conn, &format!("{base}&after={next}"))
            .await?
            .1;
        requests += 1;
    }
    let q_secs = t.elapsed().as_secs_f64();
    let cpu = server.cpu_tree().saturating_sub(cpu0).as_secs_f64();
    if matches != lines / 100 {
        bail!("q found {matches} matches, want {}", lines / 100);
    }
    // Backwards: the last page, then `before=` each page's `prev` until there is none.
    let cpu0 = server.cpu_tree();
    let t = Instant::now();
    let (_, mut v) = get_json(&mut conn, &format!("{base}&last={PAGE}")).await?;
    let mut back_matches = 0u64;
    let mut back_requests = 1u64;
    loop {
        back_matches += texts(&v);
        let Some(prev) = v["prev"].as_str().map(str::to_owned) else {
            break;
        };
        v = get_json(&mut conn, &format!("{base}&before={prev}"))
            .await?
            .1;
        back_requests += 1;
    }
    let back_secs = t.elapsed().as_secs_f64();
    let back_cpu = server.cpu_tree().saturating_sub(cpu0).as_secs_f64();
    server.stop().await;
    if back_matches != matches {
        bail!("q found {back_matches} matches backwards, {matches} forwards");
    }
    let t = Instant::now();
    let out = std::process::Command::new("grep")
        .args(["-c", shape.grep_pattern()])
        .arg(&path)
        .output()
        .context("running grep")?;
    let grep_secs = t.elapsed().as_secs_f64();
    let counted: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if counted != matches {
        bail!("grep -c counted {counted}, q found {matches}");
    }
    let gbs = |secs: f64| size / secs / 1e9;
    Ok(Row::new(
        "grep",
        "cometail",
        format!(
            "{gib} GiB {}{}, 1 % matches, q=level>=error vs grep -c {}",
            shape.name(),
            if rotated { " as app.log.1" } else { "" },
            shape.grep_pattern()
        ),
    )
    .m("q_s", q_secs)
    .m("q_GB_per_s", gbs(q_secs))
    .m("q_back_s", back_secs)
    .m("q_back_GB_per_s", gbs(back_secs))
    .m("grep_s", grep_secs)
    .m("grep_GB_per_s", gbs(grep_secs))
    .m("q_vs_grep", grep_secs / q_secs)
    .m("q_back_vs_grep", grep_secs / back_secs)
    .m("requests", requests as f64)
    .m("back_requests", back_requests as f64)
    .m("srv_cpu_s", cpu)
    .m("srv_back_cpu_s", back_cpu))
}
