//! The search scenario: whole-history search (`/api/streams/{id}/search`) beside GNU `grep`
//! and `zgrep` on the same files, in the same run, page cache warm.
//!
//! One plain file and one rotated `.gz` (made with the `gzip` tool, as logrotate does) of
//! generated log lines, with a rare literal on one line in every sixteenth of the text and on
//! the last line. Each repetition times, one after the other so that load falls on both
//! alike: `grep -c` and a search for the literal (case-sensitive, as it has a capital),
//! `grep -ci` and a lowercase search (smart case makes it case-insensitive), `grep -cE` and
//! a regex search, the first match of a newest-first search (it is in the last MiB),
//! `zgrep -c` and a search of the `.gz` history, and `before=` pages at the end, middle and
//! start of the `.gz`. Server CPU seconds are reported beside wall times, because on a
//! shared box the CPU time is the steadier figure. Every count is checked against grep's.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::report::Row;
use crate::scenario::Ctx;
use crate::server::Server;
use crate::stats::median;

/// The rare literal (it has a capital, so cometail's smart case keeps it case-sensitive).
const LITERAL: &str = "Zebra42quux";
/// A regex that matches exactly the literal's lines.
const REGEX: &str = "Zebra[0-9]+qu+x";
/// Deadline of one search.
const SEARCH_DEADLINE: Duration = Duration::from_secs(300);

/// What the scenario's files are.
struct Files {
    plain: PathBuf,
    /// The live file of the `.gz` history (one line) and its rotated `.gz`.
    gz_live: PathBuf,
    gz: PathBuf,
    /// Text offsets of line starts in the `.gz`: near its end, middle and start.
    gz_marks: [u64; 3],
}

/// Writes `mib` MiB of log lines to `path`: the literal on one line in every sixteenth and
/// on the last line. Returns the line starts at 99.9 %, 50 % and 0.1 % of the text.
fn write_text(path: &Path, mib: usize) -> Result<[u64; 3]> {
    const WORDS: [&str; 12] = [
        "request", "served", "user", "login", "cache", "miss", "backend", "timeout", "retry",
        "upstream", "worker", "queue",
    ];
    let total = (mib as u64) << 20;
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path)?);
    let (mut at, mut n, mut x) = (0u64, 0u64, 0x9e37_79b9_7f4a_7c15u64);
    let mut marks = [0u64; 3];
    let fractions = [999, 500, 1];
    let mut line = String::new();
    let mut next_rare = total / 16 / 2;
    while at < total {
        line.clear();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let level = ["INFO", "DEBUG", "WARN", "INFO", "ERROR"][(x % 5) as usize];
        line.push_str(&format!(
            "2026-12-01T10:{:02}:{:02}.{:03}Z {level} [svc-{}]",
            (n / 60_000) % 60,
            (n / 1000) % 60,
            n % 1000,
            n % 17
        ));
        for k in 0..(4 + x % 7) {
            line.push(' ');
            line.push_str(WORDS[((x >> (4 * k)) % 12) as usize]);
        }
        let last = at + 200 >= total;
        if at >= next_rare || last {
            line.push_str(&format!(" {LITERAL} found"));
            next_rare += total / 16;
        }
        line.push_str(&format!(" id={n}\n"));
        for (mark, per_mille) in marks.iter_mut().zip(fractions) {
            if *mark == 0 && at >= total / 1000 * per_mille {
                *mark = at;
            }
        }
        f.write_all(line.as_bytes())?;
        at += line.len() as u64;
        n += 1;
    }
    f.flush()?;
    Ok(marks)
}

/// Makes (or reuses) the scenario's files under the work dir.
fn files(ctx: &Ctx, mib: usize, gz_mib: usize) -> Result<Files> {
    let dir = ctx
        .workdir
        .join("data")
        .join(format!("search-{mib}-{gz_mib}"));
    let plain = dir.join("plain").join("app.log");
    let gz_dir = dir.join("gz");
    let gz = gz_dir.join("app.log.1.gz");
    let marks_file = dir.join("gz-marks");
    let ready = dir.join("ready");
    if !ready.exists() {
        ctx.log(format!(
            "writing {} MiB plain and {} MiB of .gz text",
            mib, gz_mib
        ));
        std::fs::create_dir_all(plain.parent().context("a parent")?)?;
        std::fs::create_dir_all(&gz_dir)?;
        write_text(&plain, mib)?;
        let text = gz_dir.join("app.log.1");
        let marks = write_text(&text, gz_mib)?;
        let status = Command::new("gzip")
            .arg("-6")
            .arg("-f")
            .arg(&text)
            .status()?;
        if !status.success() {
            bail!("gzip failed: {status}");
        }
        std::fs::write(
            &marks_file,
            format!("{} {} {}", marks[0], marks[1], marks[2]),
        )?;
        std::fs::write(
            gz_dir.join("app.log"),
            "2026-12-02T00:00:00.000Z INFO live\n",
        )?;
        std::fs::write(&ready, "")?;
    }
    let marks: Vec<u64> = std::fs::read_to_string(&marks_file)?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [end, mid, start] = marks[..] else {
        bail!("bad {}", marks_file.display());
    };
    Ok(Files {
        plain,
        gz_live: gz_dir.join("app.log"),
        gz,
        gz_marks: [end, mid, start],
    })
}

/// Runs a tool (`grep -c …`), returns its wall time and the count it printed.
fn tool(program: &str, args: &[&str], file: &Path) -> Result<(f64, u64)> {
    let t = Instant::now();
    let out = Command::new(program).args(args).arg(file).output()?;
    let secs = t.elapsed().as_secs_f64();
    let count = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| {
            format!(
                "{program} {args:?} printed {:?}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
    Ok((secs, count))
}

/// One search over SSE: wall seconds to `done`, seconds to the first `entries` event, the
/// match count, and the server's CPU seconds.
struct Searched {
    secs: f64,
    first_secs: f64,
    matches: u64,
    cpu: f64,
}

async fn search(server: &Server, query: &str) -> Result<Searched> {
    let path = format!("/api/streams/{}/search?{query}", server.stream);
    let cpu0 = server.cpu_tree();
    let t = Instant::now();
    let mut sock = tokio::net::TcpStream::connect(server.addr).await?;
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n",
        server.addr
    );
    sock.write_all(head.as_bytes()).await?;
    let mut body = Vec::new();
    let mut first = None;
    let mut buf = vec![0u8; 64 << 10];
    let done = tokio::time::timeout(SEARCH_DEADLINE, async {
        loop {
            let n = sock.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, anyhow::Error>(());
            }
            body.extend_from_slice(&buf[..n]);
            if first.is_none() && memchr::memmem::find(&body, b"event: entries").is_some() {
                first = Some(t.elapsed());
            }
            if memchr::memmem::find(&body, b"event: done").is_some() {
                return Ok(());
            }
        }
    })
    .await
    .context("the search did not finish in time")?;
    done?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = server.cpu_tree().saturating_sub(cpu0).as_secs_f64();
    let text = String::from_utf8_lossy(&body);
    let matches = text
        .split("event: done")
        .nth(1)
        .and_then(|rest| rest.split("\"matches\":").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no done event in {}", &text[..text.len().min(300)]))?;
    Ok(Searched {
        secs,
        first_secs: first.map_or(f64::NAN, |d| d.as_secs_f64()),
        matches,
        cpu,
    })
}

/// Reads `path` once so that the page cache holds it.
fn warm(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path)?;
    std::io::copy(&mut f, &mut std::io::sink())?;
    Ok(())
}

fn check(what: &str, cometail: u64, tool: u64) -> Result<()> {
    if cometail != tool {
        bail!("{what}: cometail found {cometail} matches, the tool {tool}");
    }
    Ok(())
}

/// The search scenario (see the module doc): one row per repetition, which `--repeat`
/// turns into medians.
pub(crate) async fn search_scenario(ctx: &Ctx, mib: usize, gz_mib: usize) -> Result<Row> {
    let f = files(ctx, mib, gz_mib)?;
    warm(&f.plain)?;
    warm(&f.gz)?;
    let deadline = Duration::from_secs(60);
    let plain = Server::start_cometail(&ctx.launch, &f.plain, &[], deadline).await?;
    let q = |text: &str| format!("q={}&limit=10000", urlencode(text));
    // Plain file: literal, case-insensitive literal, regex, first match.
    let (grep_s, grep_n) = tool("grep", &["-c", LITERAL], &f.plain)?;
    let lit = search(&plain, &q(LITERAL)).await?;
    check("literal", lit.matches, grep_n)?;
    let lower = LITERAL.to_lowercase();
    let (grepi_s, grepi_n) = tool("grep", &["-ci", &lower], &f.plain)?;
    let fold = search(&plain, &q(&lower)).await?;
    check("lowercase literal", fold.matches, grepi_n)?;
    let (grepe_s, grepe_n) = tool("grep", &["-cE", REGEX], &f.plain)?;
    let re = search(&plain, &q(&format!("/{REGEX}/"))).await?;
    check("regex", re.matches, grepe_n)?;
    let first = search(&plain, &format!("{}&limit=1", q(LITERAL))).await?;
    plain.stop().await;
    // The .gz history: a fresh server, so its first search also indexes and verifies it.
    let gz =
        Server::start_cometail(&ctx.launch, &f.gz_live, &["--rotated-history"], deadline).await?;
    let (zgrep_s, zgrep_n) = tool("zgrep", &["-c", LITERAL], &f.gz)?;
    let zfirst = search(&gz, &q(LITERAL)).await?;
    check(".gz", zfirst.matches, zgrep_n)?;
    let zwarm = search(&gz, &q(LITERAL)).await?;
    let pages = gz_pages(&gz, &f).await;
    gz.stop().await;
    let ratio = |tool_s: f64, ours: f64| tool_s / ours;
    let mut row = Row::new(
        "search",
        "cometail",
        format!("{mib} MiB plain, {gz_mib} MiB in .gz"),
    )
    .m("grep_c_s", grep_s)
    .m("literal_s", lit.secs)
    .m("literal_x_grep", ratio(grep_s, lit.secs))
    .m("literal_cpu_s", lit.cpu)
    .m("grep_ci_s", grepi_s)
    .m("lower_s", fold.secs)
    .m("lower_x_grep_ci", ratio(grepi_s, fold.secs))
    .m("grep_cE_s", grepe_s)
    .m("regex_s", re.secs)
    .m("regex_x_grep_cE", ratio(grepe_s, re.secs))
    .m("first_match_ms", first.first_secs * 1e3)
    .m("zgrep_c_s", zgrep_s)
    .m("gz_first_s", zfirst.secs)
    .m("gz_first_x_zgrep", ratio(zgrep_s, zfirst.secs))
    .m("gz_again_s", zwarm.secs)
    .m("gz_cpu_s", zwarm.cpu);
    match pages {
        Ok([end, mid, start]) => {
            row = row
                .m("gz_page_end_ms", end)
                .m("gz_page_mid_ms", mid)
                .m("gz_page_start_ms", start);
        }
        Err(e) => row.note = format!(".gz pages not measured: {e:#}"),
    }
    Ok(row)
}

/// `before=` pages of 1,000 lines at the end, middle and start of the `.gz` (its index is
/// built by then), in ms. The cursors are a server-issued one with its point moved to a
/// known line start (a member cursor's other fields do not depend on the point past 1 KiB).
async fn gz_pages(server: &Server, f: &Files) -> Result<[f64; 3]> {
    let mut conn = crate::http::Conn::open(server.addr, None).await?;
    let base = format!("/api/streams/{}/lines", server.stream);
    let (_, body) = conn.get(&format!("{base}?last=1")).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let prev = v["prev"].as_str().context("no prev")?.to_owned();
    let (_, body) = conn.get(&format!("{base}?before={prev}&limit=1")).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let member = v["entries"][0]["cursor"]
        .as_str()
        .context("no entry in the .gz")?
        .to_owned();
    let (generation, _) = member.split_once('-').context("cursor shape")?;
    let mut out = [0.0; 3];
    for (slot, at) in out.iter_mut().zip(f.gz_marks) {
        let c = format!("{generation}-{:x}", at + 1);
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let (head, body) = conn.get(&format!("{base}?before={c}&limit=1000")).await?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            let n = v["entries"].as_array().map_or(0, Vec::len);
            if head.status != 200 || (at > 1 << 20 && n != 1000) {
                bail!("page before {at}: status {}, {n} entries", head.status);
            }
        }
        *slot = median(&mut times).unwrap_or(f64::NAN);
    }
    Ok(out)
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
