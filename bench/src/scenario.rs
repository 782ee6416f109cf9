//! The scenarios: each starts a fresh server on a fresh file under the work dir, drives it
//! from this process over loopback, and returns result rows.
//!
//! A scenario owns its server and files for its duration only (the server is killed when it
//! returns, even on error). Every wait here has a deadline and every loop a bound.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::sync::{Semaphore, watch};

use crate::client::{self, Mode, Outcome, Shared};
use crate::report::Row;
use crate::server::{self, Kind, Launch, Server};
use crate::writer;

/// Settings every scenario reads.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// How to start servers.
    pub(crate) launch: Launch,
    /// Scratch files go under here (one sub-directory per run, removed afterwards).
    pub(crate) workdir: PathBuf,
    /// Bytes per benchmark line, newline included.
    pub(crate) line_bytes: usize,
    /// How the writer lays out its lines (plain, timestamped, JSON, logfmt).
    pub(crate) line_format: crate::marks::LineFormat,
    /// Clients connecting at once while a latency run is set up.
    pub(crate) connect_concurrency: usize,
    /// After the writer stops, how long clients may take to receive the last line.
    pub(crate) grace: Duration,
    /// Print progress to stderr.
    pub(crate) verbose: bool,
}

static RUN: AtomicU64 = AtomicU64::new(0);

impl Ctx {
    pub(crate) fn fresh_dir(&self, name: &str) -> Result<PathBuf> {
        let n = RUN.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .workdir
            .join(format!("{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    pub(crate) fn log(&self, msg: impl AsRef<str>) {
        if self.verbose {
            eprintln!("[cometail-bench] {}", msg.as_ref());
        }
    }

    /// Largest client count this process (and a server with the same limit) can hold.
    pub(crate) fn max_clients(&self) -> usize {
        (server::nofile_limit() as usize).saturating_sub(200)
    }
}

/// The client mode used for `kind` when the requested mode is `mode`.
pub(crate) fn mode_for(kind: Kind, mode: Mode) -> Mode {
    match kind {
        Kind::Cometail => mode,
        Kind::Frontail => Mode::Socketio,
    }
}

pub(crate) const WARMUP: &str = "cmt 0 0 warmup\n";

/// A run's clients, connected and live.
struct Crowd {
    shared: Arc<Shared>,
    cancel: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<Outcome>>,
    /// From spawning the first client to the last one receiving its first entry.
    all_ready_after: Option<Duration>,
}

impl Crowd {
    /// Starts `n` clients (at most `concurrency` connecting at once) and waits until each has
    /// its first entry or failed, or `deadline` passes.
    async fn start(
        server: &Server,
        mode: Mode,
        n: usize,
        expected: u64,
        concurrency: usize,
        deadline: Duration,
    ) -> Result<Self> {
        let shared = Arc::new(Shared::new(server.addr, server.stream.clone(), expected));
        let (cancel, rx) = watch::channel(false);
        let sem = Arc::new(Semaphore::new(concurrency.max(1)));
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let permit = if concurrency >= n {
                None
            } else {
                Some(
                    tokio::time::timeout(deadline, sem.clone().acquire_owned())
                        .await
                        .context("connect slots")??,
                )
            };
            handles.push(tokio::spawn(client::run(
                mode,
                i,
                shared.clone(),
                rx.clone(),
                permit,
            )));
        }
        let mut all_ready_after = None;
        while t0.elapsed() < deadline {
            let ready = shared.ready.load(Ordering::Relaxed);
            if ready + shared.failed.load(Ordering::Relaxed) >= n {
                if ready >= n {
                    all_ready_after = Some(Duration::from_nanos(shared.first_entry.max()));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Self {
            shared,
            cancel,
            handles,
            all_ready_after,
        })
    }

    fn ready(&self) -> usize {
        self.shared.ready.load(Ordering::Relaxed)
    }

    /// Waits until every live client has the last line, or `deadline`.
    async fn wait_done(&self, deadline: Duration) {
        let t0 = Instant::now();
        let target = self.ready();
        while t0.elapsed() < deadline && self.shared.done.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Cancels every client and collects the outcomes.
    async fn finish(self) -> (Arc<Shared>, Vec<Outcome>) {
        let _ = self.cancel.send(true);
        let mut outcomes = Vec::with_capacity(self.handles.len());
        let t0 = Instant::now();
        for h in self.handles {
            let left = Duration::from_secs(20).saturating_sub(t0.elapsed());
            match tokio::time::timeout(left, h).await {
                Ok(Ok(o)) => outcomes.push(o),
                Ok(Err(e)) => outcomes.push(Outcome {
                    error: Some(format!("client task: {e}")),
                    ..Outcome::default()
                }),
                Err(_) => outcomes.push(Outcome {
                    error: Some("client did not stop".into()),
                    ..Outcome::default()
                }),
            }
        }
        (self.shared, outcomes)
    }
}

fn first_errors(outcomes: &[Outcome]) -> String {
    let mut errs: Vec<&str> = outcomes.iter().filter_map(|o| o.error.as_deref()).collect();
    let total = errs.len();
    errs.sort_unstable();
    errs.dedup();
    if total == 0 {
        String::new()
    } else {
        format!(
            "{total} client errors, e.g. {}",
            errs.iter().take(3).copied().collect::<Vec<_>>().join(" | ")
        )
    }
}

/// One latency trial's figures.
#[derive(Debug, Clone)]
pub(crate) struct Trial {
    /// Clients live when the writer started.
    pub(crate) ready: usize,
    /// Lines written.
    pub(crate) lines: u64,
    /// Latency percentiles, ms.
    pub(crate) p50_ms: f64,
    /// 99th percentile, ms.
    pub(crate) p99_ms: f64,
    /// Maximum, ms.
    pub(crate) max_ms: f64,
    /// Lines missing at live clients, summed.
    pub(crate) lost: u64,
    /// Lines received twice (or out of order), summed.
    pub(crate) doubled: u64,
    /// Live clients that missed at least one line.
    pub(crate) clients_lost: usize,
    /// Live clients that received at least one line twice.
    pub(crate) clients_doubled: usize,
    /// Server CPU while writing and delivering, percent of one core.
    pub(crate) server_cpu: f64,
    /// The same, CPU seconds.
    pub(crate) server_cpu_s: f64,
    /// This load generator's CPU over the same time, percent of one core.
    pub(crate) client_cpu: f64,
    /// CPU taken by every other process on the machine over the same time, percent of a core.
    pub(crate) other_cpu: f64,
    /// Server read-like system calls per appended line.
    pub(crate) reads_per_line: f64,
    /// Server write-like system calls per appended line.
    pub(crate) writes_per_line: f64,
    /// Server RSS at the end, MiB.
    pub(crate) rss_mib: f64,
    /// Errors seen.
    pub(crate) note: String,
    /// Clients asked for.
    pub(crate) clients: usize,
}

impl Trial {
    /// Every client live and every line delivered once with p99 under `p99_limit_ms`.
    pub(crate) fn perfect(&self, p99_limit_ms: f64) -> bool {
        self.ready == self.clients
            && self.lost == 0
            && self.doubled == 0
            && self.p99_ms < p99_limit_ms
    }
}

/// N clients follow while a writer appends `rate` lines/s for `duration`.
pub(crate) async fn latency_trial(
    ctx: &Ctx,
    kind: Kind,
    mode: Mode,
    clients: usize,
    rate: u64,
    duration: Duration,
) -> Result<Trial> {
    let dir = ctx.fresh_dir("latency")?;
    let result = latency_trial_in(ctx, &dir, kind, mode, clients, rate, duration).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn latency_trial_in(
    ctx: &Ctx,
    dir: &Path,
    kind: Kind,
    mode: Mode,
    clients: usize,
    rate: u64,
    duration: Duration,
) -> Result<Trial> {
    let file = dir.join("bench.log");
    std::fs::write(&file, WARMUP)?;
    let server = Server::start(kind, &ctx.launch, &file, Duration::from_secs(30)).await?;
    let lines = ((rate as f64) * duration.as_secs_f64()).round().max(1.0) as u64;
    let deadline = Duration::from_secs(30) + Duration::from_millis(3 * clients as u64);
    let crowd = Crowd::start(
        &server,
        mode,
        clients,
        lines,
        ctx.connect_concurrency,
        deadline,
    )
    .await?;
    ctx.log(format!(
        "{} {} n={clients}: {} live, writing {lines} lines at {rate}/s",
        kind.name(),
        mode.name(),
        crowd.ready()
    ));
    let (cpu0, me0, t0) = (
        server.cpu_tree(),
        server::cpu_time(std::process::id()).unwrap_or_default(),
        Instant::now(),
    );
    let (r0, w0) = server::syscalls(server.pid);
    let busy0 = server::machine_busy();
    let plan = writer::Plan {
        path: file.clone(),
        rate,
        lines,
        line_bytes: ctx.line_bytes,
        format: ctx.line_format,
    };
    let limit = duration * 3 + Duration::from_secs(10);
    let wrote = tokio::task::spawn_blocking(move || writer::write(&plan, limit)).await??;
    crowd.wait_done(ctx.grace).await;
    let wall = t0.elapsed().as_secs_f64();
    let server_cpu_s = (server.cpu_tree().saturating_sub(cpu0)).as_secs_f64();
    let server_cpu = server_cpu_s / wall * 100.0;
    let client_cpu = server::cpu_time(std::process::id())
        .unwrap_or_default()
        .saturating_sub(me0)
        .as_secs_f64()
        / wall
        * 100.0;
    let busy = server::machine_busy().saturating_sub(busy0).as_secs_f64() / wall * 100.0;
    let other_cpu = (busy - server_cpu - client_cpu).max(0.0);
    let rss_mib = server.rss_bytes().unwrap_or(0) as f64 / 1_048_576.0;
    let (r1, w1) = server::syscalls(server.pid);
    let ready = crowd.ready();
    let (shared, outcomes) = crowd.finish().await;
    server.stop().await;
    let live: Vec<&Outcome> = outcomes.iter().filter(|o| o.ready).collect();
    let lost = live.iter().map(|o| o.delivery.lost(wrote.written)).sum();
    let clients_lost = live
        .iter()
        .filter(|o| o.delivery.lost(wrote.written) > 0)
        .count();
    let clients_doubled = live.iter().filter(|o| o.delivery.doubled > 0).count();
    let doubled = live.iter().map(|o| o.delivery.doubled).sum();
    let mut note = first_errors(&outcomes);
    if wrote.written < lines {
        note.push_str(&format!(
            " writer fell behind: {} of {lines} lines",
            wrote.written
        ));
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(Trial {
        ready,
        lines: wrote.written,
        p50_ms: ms(shared.latency.quantile(0.5)),
        p99_ms: ms(shared.latency.quantile(0.99)),
        max_ms: ms(shared.latency.max()),
        lost,
        doubled,
        clients_lost,
        clients_doubled,
        server_cpu,
        server_cpu_s,
        client_cpu,
        other_cpu,
        reads_per_line: r1.saturating_sub(r0) as f64 / wrote.written.max(1) as f64,
        writes_per_line: w1.saturating_sub(w0) as f64 / wrote.written.max(1) as f64,
        rss_mib,
        note: note.trim().to_string(),
        clients,
    })
}

fn trial_row(scenario: &str, kind: Kind, params: String, t: &Trial) -> Row {
    let mut r = Row::new(scenario, kind.name(), params)
        .m("live", t.ready as f64)
        .m("lines", t.lines as f64)
        .m("p50_ms", t.p50_ms)
        .m("p99_ms", t.p99_ms)
        .m("max_ms", t.max_ms)
        .m("lost", t.lost as f64)
        .m("doubled", t.doubled as f64)
        .m("clients_lost", t.clients_lost as f64)
        .m("clients_doubled", t.clients_doubled as f64)
        .m("srv_cpu_s", t.server_cpu_s)
        .m("srv_cpu_%", t.server_cpu)
        .m("gen_cpu_%", t.client_cpu)
        .m("other_cpu_%", t.other_cpu)
        .m("srv_rd/line", t.reads_per_line)
        .m("srv_wr/line", t.writes_per_line)
        .m("srv_rss_MiB", t.rss_mib);
    r.note = t.note.clone();
    r
}

/// The latency scenario for one configuration.
pub(crate) async fn latency(
    ctx: &Ctx,
    kind: Kind,
    mode: Mode,
    clients: usize,
    rate: u64,
    duration: Duration,
) -> Result<Row> {
    let mode = mode_for(kind, mode);
    let n = clients.min(ctx.max_clients());
    let t = latency_trial(ctx, kind, mode, n, rate, duration).await?;
    let mut row = trial_row(
        "latency",
        kind,
        format!("{} n={clients} rate={rate}/s", mode.name()),
        &t,
    );
    if n < clients {
        row.note = format!(
            "capped at {n} clients by RLIMIT_NOFILE {}; {}",
            server::nofile_limit(),
            row.note
        );
    }
    Ok(row)
}

/// The throughput scenario: the highest rate with every line delivered and p99 < 1 s.
pub(crate) async fn throughput(
    ctx: &Ctx,
    kind: Kind,
    mode: Mode,
    clients: usize,
    start_rate: u64,
    max_rate: u64,
    duration: Duration,
) -> Result<Row> {
    let mode = mode_for(kind, mode);
    const MAX_TRIALS: usize = 12;
    let mut rate = start_rate.max(10);
    let (mut best, mut best_trial, mut fail): (u64, Option<Trial>, Option<u64>) = (0, None, None);
    let mut trials = 0;
    let mut notes = Vec::new();
    while trials < MAX_TRIALS {
        trials += 1;
        let t = latency_trial(ctx, kind, mode, clients, rate, duration).await?;
        let ok = t.perfect(1000.0);
        ctx.log(format!(
            "throughput {} n={clients} rate={rate}: {} (p99 {:.1} ms, lost {}, doubled {}, live {})",
            kind.name(),
            if ok { "pass" } else { "FAIL" },
            t.p99_ms,
            t.lost,
            t.doubled,
            t.ready
        ));
        if ok {
            best = rate;
            best_trial = Some(t);
        } else {
            if !t.note.is_empty() {
                notes.push(format!("at {rate}/s: {}", t.note));
            }
            fail = Some(rate);
        }
        rate = match fail {
            None if rate >= max_rate => break,
            None => (rate * 2).min(max_rate),
            Some(f) if best == 0 => {
                if f <= 10 {
                    break;
                }
                f / 4
            }
            Some(f) => {
                if f - best <= (best / 8).max(100) {
                    break;
                }
                (best + f) / 2
            }
        };
    }
    let mut row = Row::new(
        "throughput",
        kind.name(),
        format!("{} n={clients}", mode.name()),
    )
    .m("max_lines_per_s", best as f64);
    if let Some(t) = &best_trial {
        row = row
            .m("p99_ms_at_max", t.p99_ms)
            .m("srv_cpu_s", t.server_cpu_s)
            .m("srv_cpu_%", t.server_cpu)
            .m("gen_cpu_%", t.client_cpu)
            .m("other_cpu_%", t.other_cpu)
            .m("srv_wr/line", t.writes_per_line);
    }
    row = row
        .m("first_fail_rate", fail.map_or(f64::NAN, |f| f as f64))
        .m("trials", trials as f64);
    notes.truncate(1);
    row.note = notes.join("; ");
    Ok(row)
}

/// Kernel slab memory (where socket structures live), bytes, from /proc/meminfo.
fn kernel_slab_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Slab:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0)
        * 1024
}

/// The idle scenario: memory per idle client and CPU while idle.
pub(crate) async fn idle(
    ctx: &Ctx,
    kind: Kind,
    mode: Mode,
    clients: usize,
    idle_for: Duration,
) -> Result<Row> {
    let mode = mode_for(kind, mode);
    let n = clients.min(ctx.max_clients());
    let dir = ctx.fresh_dir("idle")?;
    let file = dir.join("bench.log");
    std::fs::write(&file, WARMUP)?;
    let server = Server::start(kind, &ctx.launch, &file, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss0, kmem0) = (server.rss_bytes()?, kernel_slab_bytes());
    let deadline = Duration::from_secs(60) + Duration::from_millis(3 * n as u64);
    let crowd = Crowd::start(
        &server,
        mode,
        n,
        u64::MAX,
        ctx.connect_concurrency,
        deadline,
    )
    .await?;
    let ready = crowd.ready();
    ctx.log(format!("idle {}: {ready} of {n} clients live", kind.name()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss1, kmem1) = (server.rss_bytes()?, kernel_slab_bytes());
    let cpu0 = server.cpu_tree();
    let t0 = Instant::now();
    tokio::time::sleep(idle_for).await;
    let idle_cpu_s = server.cpu_tree().saturating_sub(cpu0).as_secs_f64();
    let cpu_pct = idle_cpu_s / t0.elapsed().as_secs_f64() * 100.0;
    let (_, outcomes) = crowd.finish().await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let per = |d: u64| {
        if ready == 0 {
            f64::NAN
        } else {
            d as f64 / ready as f64
        }
    };
    let mut row = Row::new("idle", kind.name(), format!("{} n={clients}", mode.name()))
        .m("live", ready as f64)
        .m("rss_before_MiB", rss0 as f64 / 1_048_576.0)
        .m("rss_after_MiB", rss1 as f64 / 1_048_576.0)
        .m("rss_per_client_B", per(rss1.saturating_sub(rss0)))
        .m("kernel_slab_per_client_B", per(kmem1.saturating_sub(kmem0)))
        .m("idle_cpu_s", idle_cpu_s)
        .m("idle_cpu_%", cpu_pct);
    row.note = first_errors(&outcomes);
    if n < clients {
        row.note = format!(
            "capped at {n} clients by RLIMIT_NOFILE {} (hard limit here); {}",
            server::nofile_limit(),
            row.note
        );
    }
    Ok(row)
}

/// A `TcpExt` counter from /proc/net/netstat (e.g. `ListenOverflows`), or 0.
fn tcp_ext(name: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/netstat") else {
        return 0;
    };
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let [names, values, ..] = rows.as_slice() else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The storm scenario: N clients connect at once; time until all have their first entry.
pub(crate) async fn storm(ctx: &Ctx, kind: Kind, mode: Mode, clients: usize) -> Result<Row> {
    let mode = mode_for(kind, mode);
    let n = clients.min(ctx.max_clients());
    let dir = ctx.fresh_dir("storm")?;
    let file = dir.join("bench.log");
    std::fs::write(&file, WARMUP)?;
    let server = Server::start(kind, &ctx.launch, &file, Duration::from_secs(30)).await?;
    let (over0, drop0) = (tcp_ext("ListenOverflows"), tcp_ext("ListenDrops"));
    let cpu0 = server.cpu_tree();
    let crowd = Crowd::start(&server, mode, n, u64::MAX, n, Duration::from_secs(120)).await?;
    let (over1, drop1) = (tcp_ext("ListenOverflows"), tcp_ext("ListenDrops"));
    let cpu_s = server.cpu_tree().saturating_sub(cpu0).as_secs_f64();
    let ready = crowd.ready();
    let all = crowd.all_ready_after;
    let (shared, outcomes) = crowd.finish().await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut row = Row::new("storm", kind.name(), format!("{} n={clients}", mode.name()))
        .m("live", ready as f64)
        .m(
            "all_first_entry_ms",
            all.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        )
        .m("p50_first_ms", ms(shared.first_entry.quantile(0.5)))
        .m("p99_first_ms", ms(shared.first_entry.quantile(0.99)))
        .m("listen_overflows", over1.saturating_sub(over0) as f64)
        .m("listen_drops", drop1.saturating_sub(drop0) as f64)
        .m("srv_cpu_s", cpu_s);
    row.note = first_errors(&outcomes);
    if n < clients {
        row.note = format!("capped at {n} clients by RLIMIT_NOFILE; {}", row.note);
    }
    Ok(row)
}
