//! The scale-out figures (issue 13): a real `nats-server -js`, `agents` real `cometail agent`
//! processes each following its own file, and two real `cometail hub`s, all on this box.
//! Viewers are SSE clients of the view `*~*`, spread over both hubs.
//!
//! Measured per run: the lines written per second; the agents' CPU per 1,000 lines/s
//! published; engine messages per line (batching, from the server's `/jsz` monitoring); the
//! hubs' engine reads per second (their `cometail_hub_engine_reads_total`), which must not grow
//! with viewers; append → client latency (p50/p99) on one probe viewer, which reads each line's
//! write time from its text; entries lost (every viewer must get every line); and failover:
//! from hub A's SIGKILL to its probe's first entry from hub B, resumed by `Last-Event-ID`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::http::{BodyDecoder, Conn, get_once};
use crate::report::Row;
use crate::scenario::Ctx;
use crate::server::{cpu_time, parse_listen_line};
use crate::sse::SseParser;
use crate::stats::Histogram;

/// Debian's nats-server.
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// What one run sets up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Agents, one file each.
    pub(crate) agents: usize,
    /// Lines per second each agent's file gets.
    pub(crate) rate: u64,
    /// SSE viewers of `*~*`, half on each hub.
    pub(crate) viewers: usize,
    /// How long lines are written.
    pub(crate) duration: Duration,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

async fn spawn(program: &Path, args: &[String]) -> Result<Child> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))
}

/// A hub's listening address, from its first line.
async fn hub_addr(child: &mut Child) -> Result<SocketAddr> {
    let out = child.stdout.take().context("hub stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(out).read_line(&mut line),
    )
    .await
    .context("the hub printed no address within 30 s")??;
    parse_listen_line(&line).ok_or_else(|| anyhow!("no address in {line:?}"))
}

/// A figure from a hub's `/metrics`.
async fn figure(addr: SocketAddr, name: &str) -> Result<f64> {
    let (_, body) = get_once(addr, "/metrics").await?;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .ok_or_else(|| anyhow!("no {name} on {addr}"))
}

/// The messages the engine's stream holds, from the server's monitoring port.
async fn engine_messages(monitor: SocketAddr) -> Result<f64> {
    let (_, body) = get_once(monitor, "/jsz?streams=true").await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
        .find(|s| s["name"] == "COMETAIL")
        .and_then(|s| s["state"]["messages"].as_f64())
        .ok_or_else(|| anyhow!("no COMETAIL stream in /jsz"))
}

/// One SSE viewer of `path` on `addr`: counts the entries it gets into `got`; a probe also
/// records each line's latency and keeps the last event's `next` cursor.
struct Viewer {
    got: Arc<AtomicU64>,
    probe: Option<Arc<Probe>>,
    /// Counts viewers that have had their first event (their starting page).
    ready: Arc<AtomicU64>,
}

struct Probe {
    latency: Histogram,
    next: Mutex<String>,
    /// When the first entry came (µs since the epoch), 0 before.
    first_us: AtomicU64,
}

impl Viewer {
    async fn run(self, addr: SocketAddr, path: String, resume: Option<String>) -> Result<()> {
        let mut conn = Conn::open(addr, None).await?;
        let extra = resume.map_or_else(String::new, |id| format!("Last-Event-ID: {id}\r\n"));
        conn.send_get(&path, &extra).await?;
        let head = conn.read_head().await?;
        if head.status != 200 {
            bail!("{path}: status {}", head.status);
        }
        let mut dec = BodyDecoder::new(head.body);
        let mut parser = SseParser::default();
        let mut buf = Vec::new();
        let cursor = memchr::memmem::Finder::new(b"{\"cursor\":");
        let mut started = false;
        while conn.read_body_some(&mut dec, &mut buf).await? {
            let mut nexts = Vec::new();
            let used = parser.feed(&buf, |event, data| {
                if event != b"entries" {
                    return;
                }
                if !started {
                    started = true;
                    self.ready.fetch_add(1, Ordering::Relaxed);
                }
                let n = cursor.find_iter(data).count() as u64;
                self.got.fetch_add(n, Ordering::Relaxed);
                if let Some(p) = &self.probe {
                    let now = now_us();
                    if n > 0 {
                        let _ = p.first_us.compare_exchange(
                            0,
                            now,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    for at in memchr::memmem::find_iter(data, b"\"text\":\"") {
                        let digits = &data[at + 8..];
                        let end = digits.iter().position(|b| !b.is_ascii_digit()).unwrap_or(0);
                        if let Some(t) = std::str::from_utf8(&digits[..end])
                            .ok()
                            .and_then(|s| s.parse::<u64>().ok())
                        {
                            p.latency.record(now.saturating_sub(t) * 1000);
                        }
                    }
                    if let Some(i) = memchr::memmem::rfind(data, b"\"next\":\"") {
                        let rest = &data[i + 8..];
                        let end = rest.iter().position(|&b| b == b'"').unwrap_or(0);
                        nexts.push(String::from_utf8_lossy(&rest[..end]).into_owned());
                    }
                }
            });
            buf.drain(..used);
            if let (Some(p), Some(last)) = (&self.probe, nexts.pop()) {
                *p.next.lock().await = last;
            }
        }
        Ok(())
    }
}

/// Appends `rate` lines per second to each file for `duration`, each line starting with its
/// write time (µs); returns the lines written per file.
async fn write(files: &[PathBuf], rate: u64, duration: Duration, line_bytes: usize) -> Result<u64> {
    let mut handles = Vec::new();
    for f in files {
        handles.push(
            tokio::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(f)
                .await?,
        );
    }
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut written = 0u64;
    let pad = "x".repeat(line_bytes.saturating_sub(40));
    while start.elapsed() < duration {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        if due <= written {
            continue;
        }
        let t = now_us();
        for (i, h) in handles.iter_mut().enumerate() {
            let mut text = String::new();
            for n in written..due {
                text.push_str(&format!("{t} host{i} line {n} {pad}\n"));
            }
            h.write_all(text.as_bytes()).await?;
        }
        written = due;
    }
    Ok(written)
}

/// One run; see the module documentation.
pub(crate) async fn run(ctx: &Ctx, shape: Shape) -> Result<Row> {
    let dir = ctx.fresh_dir("scale-out")?;
    let cometail = ctx.launch.cometail.clone();
    let (port, monitor_port) = (free_port()?, free_port()?);
    let url = format!("nats://127.0.0.1:{port}");
    let monitor: SocketAddr = ([127, 0, 0, 1], monitor_port).into();
    let args: Vec<String> = [
        "-js",
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-m",
        &monitor_port.to_string(),
        "-sd",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([dir.join("nats").display().to_string()])
    .collect();
    let _nats = spawn(Path::new(NATS_SERVER), &args).await?;
    let up = Instant::now();
    while get_once(monitor, "/healthz").await.is_err() {
        if up.elapsed() > Duration::from_secs(10) {
            bail!("nats-server did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut files = Vec::new();
    let mut agents = Vec::new();
    for i in 0..shape.agents {
        let d = dir.join(format!("host{i}"));
        std::fs::create_dir_all(&d)?;
        let f = d.join("app.log");
        std::fs::write(&f, "")?;
        let a: Vec<String> = ["agent", "--nats", &url, "--host", &format!("bench-{i}")]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["--heartbeat".into(), "1s".into(), f.display().to_string()])
            .collect();
        agents.push(spawn(&cometail, &a).await?);
        files.push(f);
    }
    let hub_args: Vec<String> = [
        "hub",
        "--nats",
        &url,
        "--port",
        "0",
        "--max-streams-per-address",
        "100000",
        "--max-connections",
        "100000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut hub_a = spawn(&cometail, &hub_args).await?;
    let mut hub_b = spawn(&cometail, &hub_args).await?;
    let (a, b) = (hub_addr(&mut hub_a).await?, hub_addr(&mut hub_b).await?);
    // Every agent's file listed on a hub: the stream and every subject exist.
    let listed = Instant::now();
    loop {
        let ok = get_once(a, "/api/streams")
            .await
            .ok()
            .is_some_and(|(s, body)| {
                s == 200
                    && serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["streams"].as_array().map(Vec::len))
                        == Some(shape.agents)
            });
        if ok {
            break;
        }
        // Agents publish nothing for an empty file: one line each makes their subjects.
        for f in &files {
            let mut h = std::fs::OpenOptions::new().append(true).open(f)?;
            std::io::Write::write_all(&mut h, format!("{} warm-up\n", now_us()).as_bytes())?;
        }
        if listed.elapsed() > Duration::from_secs(60) {
            bail!("the hubs did not list {} files within 60 s", shape.agents);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let path = "/api/streams/*~*/events?last=0".to_owned();
    let got = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..shape.viewers {
        let v = Viewer {
            got: got.clone(),
            probe: None,
            ready: ready.clone(),
        };
        let addr = if i % 2 == 0 { a } else { b };
        tasks.push(tokio::spawn(v.run(addr, path.clone(), None)));
    }
    let probe = Arc::new(Probe {
        latency: Histogram::default(),
        next: Mutex::new(String::new()),
        first_us: AtomicU64::new(0),
    });
    let probe_got = Arc::new(AtomicU64::new(0));
    let probe_task = tokio::spawn(
        Viewer {
            got: probe_got.clone(),
            probe: Some(probe.clone()),
            ready: ready.clone(),
        }
        .run(a, path.clone(), None),
    );
    // Every viewer connected and had its starting page before anything is measured.
    let connecting = Instant::now();
    while ready.load(Ordering::Relaxed) < shape.viewers as u64 + 1 {
        if connecting.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} of {} viewers started within 120 s",
                ready.load(Ordering::Relaxed),
                shape.viewers + 1
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu0: Duration = agents
        .iter()
        .filter_map(|c| c.id().and_then(|p| cpu_time(p).ok()))
        .sum();
    let reads0 = figure(a, "cometail_hub_engine_reads_total").await?
        + figure(b, "cometail_hub_engine_reads_total").await?;
    let cold0 = figure(a, "cometail_hub_cold_reads_total").await?
        + figure(b, "cometail_hub_cold_reads_total").await?;
    let msgs0 = engine_messages(monitor).await?;
    let got0 = got.load(Ordering::Relaxed);
    ctx.log(format!(
        "scale-out: {} agents x {}/s, {} viewers over 2 hubs, {:?}",
        shape.agents, shape.rate, shape.viewers, shape.duration
    ));
    let started = Instant::now();
    let per_file = write(&files, shape.rate, shape.duration, ctx.line_bytes).await?;
    let written = per_file * shape.agents as u64;
    let expected = got0 + written * shape.viewers as u64;
    let settle = Instant::now();
    while got.load(Ordering::Relaxed) < expected && settle.elapsed() < ctx.grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu1: Duration = agents
        .iter()
        .filter_map(|c| c.id().and_then(|p| cpu_time(p).ok()))
        .sum();
    let reads = figure(a, "cometail_hub_engine_reads_total").await?
        + figure(b, "cometail_hub_engine_reads_total").await?
        - reads0;
    let cold = figure(a, "cometail_hub_cold_reads_total").await?
        + figure(b, "cometail_hub_cold_reads_total").await?
        - cold0;
    let msgs = engine_messages(monitor).await? - msgs0;
    let lost = expected.saturating_sub(got.load(Ordering::Relaxed));
    let lines_per_s = written as f64 / shape.duration.as_secs_f64();
    let agent_cpu = (cpu1 - cpu0).as_secs_f64() / secs * 100.0;
    // Failover: hub A dies while lines flow; the probe resumes on hub B.
    let resume = probe.next.lock().await.clone();
    let writer = tokio::spawn({
        let files = files.clone();
        let line_bytes = ctx.line_bytes;
        async move { write(&files, 100, Duration::from_secs(5), line_bytes).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = now_us();
    hub_a.start_kill()?;
    let _ = hub_a.wait().await;
    probe_task.abort();
    let again = Arc::new(Probe {
        latency: Histogram::default(),
        next: Mutex::new(String::new()),
        first_us: AtomicU64::new(0),
    });
    let resumed = tokio::spawn(
        Viewer {
            got: Arc::new(AtomicU64::new(0)),
            probe: Some(again.clone()),
            ready: Arc::new(AtomicU64::new(0)),
        }
        .run(b, path.clone(), Some(resume)),
    );
    let wait = Instant::now();
    while again.first_us.load(Ordering::Relaxed) == 0 && wait.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = again.first_us.load(Ordering::Relaxed);
    let failover_ms = if first == 0 {
        f64::NAN
    } else {
        (first.saturating_sub(killed)) as f64 / 1000.0
    };
    let _ = writer.await;
    resumed.abort();
    let mut failed = 0;
    let mut why = String::new();
    for t in tasks {
        if t.is_finished() {
            failed += 1;
            if let Ok(Err(e)) = t.await {
                why = e.to_string();
            }
        } else {
            t.abort();
        }
    }
    if failed > 0 {
        ctx.log(format!("{failed} viewers ended early: {why}"));
    }
    drop(hub_b);
    drop(agents);
    let _ = std::fs::remove_dir_all(&dir);
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(Row::new(
        "scale-out",
        "cometail",
        format!(
            "{} agents x {}/s, {} viewers / 2 hubs",
            shape.agents, shape.rate, shape.viewers
        ),
    )
    .m("lines/s", lines_per_s)
    .m("agents cpu %", agent_cpu)
    .m("agent cpu %/1k lines/s", agent_cpu / (lines_per_s / 1000.0))
    .m("engine msgs/line", msgs / written.max(1) as f64)
    .m("engine reads/s", reads / secs)
    .m("cold reads/s", cold / secs)
    .m("p50 ms", ms(probe.latency.quantile(0.5)))
    .m("p99 ms", ms(probe.latency.quantile(0.99)))
    .m("lost", lost as f64)
    .m("failover ms", failover_ms))
}
