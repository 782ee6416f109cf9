//! The scenarios that measure the server alone, with no clients or one at a time: ingest
//! (lines/s into a stream), history (pages near the end, middle and start of a large file)
//! and startup (spawn to first answer). Like every scenario, each owns a fresh server and
//! files for its duration only, and every wait has a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::http::Conn;
use crate::marks::{self, LineFormat};
use crate::report::Row;
use crate::server::{Kind, Server};
use crate::writer;

use crate::scenario::{Ctx, WARMUP};

/// `GET /api/streams/{id}/lines?…` on `conn`, timed; the body on status 200.
async fn timed_get(conn: &mut Conn, path: &str) -> Result<(Duration, Vec<u8>)> {
    let t = Instant::now();
    let (head, body) = tokio::time::timeout(Duration::from_secs(60), conn.get(path))
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
    Ok((el, body))
}

/// The ingest scenario: lines/s from one growing file into the stream, no clients.
pub(crate) async fn ingest(ctx: &Ctx, lines: u64, format: LineFormat) -> Result<Row> {
    let dir = ctx.fresh_dir("ingest")?;
    let result = ingest_in(ctx, &dir, lines, format).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn ingest_in(ctx: &Ctx, dir: &Path, lines: u64, format: LineFormat) -> Result<Row> {
    let file = dir.join("bench.log");
    std::fs::write(&file, WARMUP)?;
    let server = Server::start(Kind::Cometail, &ctx.launch, &file, Duration::from_secs(30)).await?;
    let cpu0 = server.cpu_tree();
    let plan = writer::Plan {
        path: file.clone(),
        rate: 0,
        lines,
        line_bytes: ctx.line_bytes,
        format,
    };
    let t0 = Instant::now();
    let wrote = tokio::task::spawn_blocking(move || writer::write(&plan, Duration::from_secs(600)))
        .await??;
    let write_secs = wrote.elapsed.as_secs_f64();
    ctx.log(format!(
        "ingest: wrote {} lines in {write_secs:.2} s; polling for the last one",
        wrote.written
    ));
    let mut conn = Conn::open(server.addr, None).await?;
    let path = format!("/api/streams/{}/lines?last=1", server.stream);
    let mut visible = None;
    let mut polls = 0u64;
    // Bounded: 300 s after the writer finished.
    let poll_deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < poll_deadline {
        polls += 1;
        let (_, body) = timed_get(&mut conn, &path).await?;
        let mut last = 0;
        marks::for_each_mark(&body, |s, _| last = s);
        if last >= wrote.written {
            visible = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cpu = server.cpu_tree().saturating_sub(cpu0).as_secs_f64();
    let rss = server.rss_bytes().unwrap_or(0) as f64 / 1_048_576.0;
    server.stop().await;
    let Some(visible) = visible else {
        bail!("last line not visible 300 s after the writer finished")
    };
    let secs = visible.as_secs_f64();
    Ok(Row::new(
        "ingest",
        "cometail",
        format!("{} lines x {} B {}", lines, ctx.line_bytes, format.name()),
    )
    .m("lines_per_s", wrote.written as f64 / secs)
    .m(
        "MiB_per_s",
        wrote.written as f64 * ctx.line_bytes as f64 / secs / 1_048_576.0,
    )
    .m("visible_after_s", secs)
    .m("writer_only_s", write_secs)
    .m("srv_cpu_s", cpu)
    .m("lines_per_srv_cpu_s", wrote.written as f64 / cpu.max(1e-9))
    .m("srv_rss_MiB", rss)
    .m("writes", wrote.writes as f64)
    .m("polls", polls as f64))
}

/// Writes (or reuses) a history file of `gib` GiB of numbered lines; returns its path and line count.
fn history_file(ctx: &Ctx, gib: f64) -> Result<(PathBuf, u64)> {
    use std::io::Write as _;
    let data = ctx.workdir.join("data");
    std::fs::create_dir_all(&data)?;
    let path = data.join(format!("history-{gib}GiB.log"));
    let lines = ((gib * 1024.0 * 1024.0 * 1024.0) / ctx.line_bytes as f64) as u64;
    let want = lines * ctx.line_bytes as u64;
    if std::fs::metadata(&path).map(|m| m.len()).ok() == Some(want) {
        return Ok((path, lines));
    }
    ctx.log(format!("writing {} ({} lines)", path.display(), lines));
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(&tmp)?);
    let mut buf = Vec::with_capacity(ctx.line_bytes * 10_000);
    let mut seq = 1;
    while seq <= lines {
        buf.clear();
        let end = (seq + 10_000).min(lines + 1);
        for s in seq..end {
            marks::format_line(&mut buf, s, 0, ctx.line_bytes);
        }
        f.write_all(&buf)?;
        seq = end;
    }
    f.flush()?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    Ok((path, lines))
}

/// The history scenario: `last=1000` and `before` pages near the end, middle and start of a
/// large file.
pub(crate) async fn history(ctx: &Ctx, gib: f64) -> Result<Row> {
    let (path, lines) = history_file(ctx, gib)?;
    let server =
        Server::start(Kind::Cometail, &ctx.launch, &path, Duration::from_secs(120)).await?;
    let mut conn = Conn::open(server.addr, None).await?;
    let cpu0 = server.cpu_tree();
    let base = format!("/api/streams/{}/lines", server.stream);
    const REPEAT: usize = 5;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median_of = |mut v: Vec<f64>| crate::stats::median(&mut v).unwrap_or(f64::NAN);
    // last=1000: the first call may read cold file pages; report it apart from the warm median.
    let mut last_times = Vec::new();
    let mut prev = None;
    let mut cold = f64::NAN;
    for i in 0..REPEAT {
        let (t, body) = timed_get(&mut conn, &format!("{base}?last=1000")).await?;
        if i == 0 {
            cold = ms(t);
        }
        last_times.push(ms(t));
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let n = v["entries"].as_array().map_or(0, Vec::len);
        if n != 1000 {
            bail!("last=1000 returned {n} entries");
        }
        prev = v["prev"].as_str().map(str::to_owned);
    }
    let prev = prev.context("last=1000 gave no prev cursor")?;
    let mut end_times = Vec::new();
    for _ in 0..REPEAT {
        let (t, _) = timed_get(&mut conn, &format!("{base}?before={prev}&limit=1000")).await?;
        end_times.push(ms(t));
    }
    // Pages deeper in the file need a cursor there, and the API has no seek. A cursor's text
    // is (today, see src/stream/cursor.rs) the generation in hex, a `-`, then the point (line
    // start + 1) in hex; swapping the point of a server-issued cursor names another line start
    // of the same generation. Each page is checked to end at the line it should.
    let mut mid = f64::NAN;
    let mut start = f64::NAN;
    let mut note = String::new();
    let lb = ctx.line_bytes as u64;
    for (line, slot) in [(lines / 2, &mut mid), (1001, &mut start)] {
        let Some(c) = cursor_at(&prev, (line - 1) * lb) else {
            note = "middle/start pages not measured: cursor format not recognised".into();
            break;
        };
        let mut ts = Vec::new();
        for _ in 0..REPEAT {
            let (t, body) =
                match timed_get(&mut conn, &format!("{base}?before={c}&limit=1000")).await {
                    Ok(x) => x,
                    Err(e) => {
                        note = format!("crafted cursor refused: {e:#}");
                        break;
                    }
                };
            let mut last = 0;
            marks::for_each_mark(&body, |s, _| last = s);
            if last != line - 1 {
                note = format!("page before line {line} ended at line {last}");
            }
            ts.push(ms(t));
        }
        *slot = median_of(ts);
    }
    let startup = ms(server.to_first_response);
    let cpu_s = server.cpu_tree().saturating_sub(cpu0).as_secs_f64();
    let rss = server.rss_bytes().unwrap_or(0) as f64 / 1_048_576.0;
    server.stop().await;
    let mut row = Row::new("history", "cometail", format!("{gib} GiB ({lines} lines)"))
        .m("last1000_cold_ms", cold)
        .m("last1000_ms", median_of(last_times))
        .m("before_end_ms", median_of(end_times))
        .m("before_middle_ms", mid)
        .m("before_start_ms", start)
        .m("start_to_http_ms", startup)
        .m("srv_cpu_s", cpu_s)
        .m("srv_rss_MiB", rss);
    row.note = note;
    Ok(row)
}

/// The startup scenario: spawn to listening line and to first HTTP 200, `runs` times.
pub(crate) async fn startup(ctx: &Ctx, kind: Kind, runs: usize) -> Result<Row> {
    let dir = ctx.fresh_dir("startup")?;
    let file = dir.join("bench.log");
    std::fs::write(&file, WARMUP)?;
    let mut listening = Vec::new();
    let mut first = Vec::new();
    for _ in 0..runs.max(1) {
        let server = Server::start(kind, &ctx.launch, &file, Duration::from_secs(30)).await?;
        if let Some(d) = server.to_listening {
            listening.push(d.as_secs_f64() * 1e3);
        }
        first.push(server.to_first_response.as_secs_f64() * 1e3);
        server.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let min = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::min);
    let med = |v: &mut Vec<f64>| crate::stats::median(v).unwrap_or(f64::NAN);
    let (lmin, fmin) = (min(&listening), min(&first));
    Ok(
        Row::new("startup", kind.name(), format!("{} spawns", runs.max(1)))
            .m("to_listening_ms", med(&mut listening))
            .m("to_listening_min_ms", lmin)
            .m("to_first_200_ms", med(&mut first))
            .m("to_first_200_min_ms", fmin),
    )
}

/// `template` (a server-issued cursor) moved to the line starting at byte `offset`, if its text
/// has the recognised shape (`<generation>-<point>[-<length>]`, see `src/stream/cursor.rs`;
/// the crafted cursor carries no length, which `before=` does not use).
fn cursor_at(template: &str, offset: u64) -> Option<String> {
    let (generation, rest) = template.split_once('-')?;
    let point = rest.split_once('-').map_or(rest, |(p, _)| p);
    let hex = |t: &str| !t.is_empty() && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (hex(generation) && hex(point) && offset >= 1024)
        .then(|| format!("{generation}-{:x}", offset + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crafted_cursors_keep_the_generation_and_move_the_point() {
        let c = format!(
            "{}{}{}-{:x}",
            "0123456789abcdef", "deadbeef", "000000010", 5000u64
        );
        assert_eq!(
            cursor_at(&c, 2000),
            Some(format!("0123456789abcdefdeadbeef000000010-{:x}", 2001))
        );
        assert_eq!(cursor_at(&c, 10), None);
        assert_eq!(
            cursor_at(&format!("{c}-64"), 2000),
            Some(format!("0123456789abcdefdeadbeef000000010-{:x}", 2001))
        );
        assert_eq!(cursor_at("opaque-Base64", 2000), None);
    }
}
