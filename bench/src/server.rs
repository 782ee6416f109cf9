//! Starting, addressing, measuring and stopping the server under test (cometail or frontail).
//!
//! It owns the child process: spawning it on a loopback port, learning its address, and
//! reading its memory and CPU from `/proc`. The process is killed when [`Server`] is dropped,
//! so an early error never leaves a server running.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::http;

/// Which implementation is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// This project.
    Cometail,
    /// frontail (node, socket.io), installed by `bench/peers/frontail.sh`.
    Frontail,
}

impl Kind {
    /// Lower-case name, as in tables and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Cometail => "cometail",
            Kind::Frontail => "frontail",
        }
    }
}

/// How to start each kind.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The cometail binary.
    pub(crate) cometail: PathBuf,
    /// frontail's `index.js`.
    pub(crate) frontail: PathBuf,
    /// `node`.
    pub(crate) node: PathBuf,
    /// CPUs to run the server on (`taskset -c`), or `None` to inherit this process's.
    pub(crate) server_cpus: Option<String>,
}

impl Launch {
    /// A command running `program`, under `taskset -c CPUS` when the server is pinned
    /// (`taskset` execs the program, so the child's pid is the server's).
    fn command(&self, program: &Path) -> Command {
        match &self.server_cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

/// The CPUs the load generator and the servers of this run were allowed to use.
#[derive(Debug, Clone)]
pub(crate) struct Cpus {
    /// CPUs online on the machine.
    pub(crate) online: usize,
    /// This process's `Cpus_allowed_list`.
    pub(crate) generator: String,
    /// The last started server's `Cpus_allowed_list` (empty when none started).
    pub(crate) server: String,
}

static SERVER_CPUS: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

impl Cpus {
    /// What this run used, read from /proc.
    pub(crate) fn of_this_run() -> Self {
        Self {
            online: std::thread::available_parallelism().map_or(0, usize::from),
            generator: allowed_cpus("self").unwrap_or_default(),
            server: SERVER_CPUS.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }

    /// Whether server and load generator could run on the same core.
    pub(crate) fn shared(&self) -> bool {
        let (g, s) = (cpu_set(&self.generator), cpu_set(&self.server));
        s.is_empty() || g.iter().any(|c| s.contains(c))
    }
}

/// `Cpus_allowed_list` of `/proc/{pid}/status` (`pid` may be `self`).
fn allowed_cpus(pid: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
}

/// The CPUs of a list like `0-2,5`.
pub(crate) fn cpu_set(list: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
            out.extend(a..=b.min(a.saturating_add(4096)));
        }
    }
    out
}

fn note_server_cpus(pid: u32) {
    if let (Some(list), Ok(mut slot)) = (allowed_cpus(&pid.to_string()), SERVER_CPUS.lock()) {
        *slot = list;
    }
}

/// A running server.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    /// Its process id.
    pub(crate) pid: u32,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// cometail: the stream id; frontail: the socket.io namespace (without the slash).
    pub(crate) stream: String,
    /// From spawn to the line announcing the address (cometail only; frontail prints none).
    pub(crate) to_listening: Option<Duration>,
    /// From spawn to the first successful HTTP response.
    pub(crate) to_first_response: Duration,
}

/// Parses the first `http://host:port` token of a line.
pub(crate) fn parse_listen_line(line: &str) -> Option<SocketAddr> {
    let at = line.find("http://")?;
    let rest = &line[at + 7..];
    let end = rest
        .find(|c: char| c == '/' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Server {
    /// Starts `kind` following `file` and waits (up to `deadline`) until it answers HTTP.
    ///
    /// # Errors
    /// Spawn failure, no address or no answer within the deadline, or a non-loopback address.
    pub(crate) async fn start(
        kind: Kind,
        launch: &Launch,
        file: &Path,
        deadline: Duration,
    ) -> Result<Self> {
        match kind {
            Kind::Cometail => Self::start_cometail(launch, file, &[], deadline).await,
            Kind::Frontail => Self::start_frontail(launch, file, deadline).await,
        }
    }

    /// Starts cometail following `file` with `args` (flags) as well.
    ///
    /// # Errors
    /// As [`Server::start`].
    pub(crate) async fn start_cometail(
        launch: &Launch,
        file: &Path,
        args: &[&str],
        deadline: Duration,
    ) -> Result<Self> {
        let t0 = Instant::now();
        let mut child = launch
            .command(&launch.cometail)
            .arg("--port")
            .arg("0")
            .args(args)
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", launch.cometail.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("cometail exited at once"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout pipe"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(deadline, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = parse_listen_line(&line) {
                    return Ok::<_, std::io::Error>(Some(addr));
                }
            }
            Ok(None)
        })
        .await
        .context("cometail printed no http:// address in time")??
        .ok_or_else(|| anyhow!("cometail closed stdout without printing an http:// address"))?;
        let to_listening = t0.elapsed();
        note_server_cpus(pid);
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        check_loopback(addr)?;
        let (to_first_response, body) = first_response(addr, "/api/streams", t0, deadline).await?;
        let stream = first_stream_id(&body)?;
        Ok(Self {
            child,
            pid,
            addr,
            stream,
            to_listening: Some(to_listening),
            to_first_response,
        })
    }

    async fn start_frontail(launch: &Launch, file: &Path, deadline: Duration) -> Result<Self> {
        // frontail cannot report a port chosen by the kernel: pick a free one ourselves.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        let t0 = Instant::now();
        let child = launch
            .command(&launch.node)
            .arg(&launch.frontail)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--disable-usage-stats",
                "--number",
                "1",
            ])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning node {}", launch.frontail.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("frontail exited at once"))?;
        let (to_first_response, body) = first_response(addr, "/", t0, deadline).await?;
        note_server_cpus(pid);
        let page = String::from_utf8_lossy(&body);
        let at = page
            .find("io.connect('/")
            .ok_or_else(|| anyhow!("no socket.io namespace in frontail's page"))?
            + 13;
        let end = page[at..]
            .find('\'')
            .ok_or_else(|| anyhow!("unterminated namespace"))?;
        let stream = page[at..at + end].to_string();
        Ok(Self {
            child,
            pid,
            addr,
            stream,
            to_listening: None,
            to_first_response,
        })
    }

    /// Resident memory of the server process, bytes.
    ///
    /// # Errors
    /// The process is gone.
    pub(crate) fn rss_bytes(&self) -> Result<u64> {
        rss_bytes(self.pid)
    }

    /// CPU time of the server and its direct children (frontail runs `tail -F`).
    pub(crate) fn cpu_tree(&self) -> Duration {
        let mut total = cpu_time(self.pid).unwrap_or_default();
        if let Ok(children) =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid))
        {
            for c in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                total += cpu_time(c).unwrap_or_default();
            }
        }
        total
    }

    /// Stops the server and waits for it: SIGTERM first (frontail then kills its `tail -F`
    /// child), SIGKILL after 2 s.
    pub(crate) async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
    }
}

fn check_loopback(addr: SocketAddr) -> Result<()> {
    if !addr.ip().is_loopback() {
        bail!("server announced {addr}, which is not a loopback address: refusing to load it");
    }
    Ok(())
}

/// Polls `GET path` until it answers 200 or `deadline` (from `t0`) passes.
async fn first_response(
    addr: SocketAddr,
    path: &str,
    t0: Instant,
    deadline: Duration,
) -> Result<(Duration, Vec<u8>)> {
    let mut last_err = String::new();
    // Bounded by the deadline; each attempt waits at most 1 s.
    while t0.elapsed() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), http::get_once(addr, path)).await {
            Ok(Ok((200, body))) => return Ok((t0.elapsed(), body)),
            Ok(Ok((status, _))) => last_err = format!("status {status}"),
            Ok(Err(e)) => last_err = e.to_string(),
            Err(_) => last_err = "timeout".into(),
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    bail!("{addr}{path} did not answer 200 within {deadline:?}: {last_err}")
}

fn first_stream_id(body: &[u8]) -> Result<String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).context("GET /api/streams is not JSON")?;
    v["streams"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("GET /api/streams lists no stream: {v}"))
}

/// VmRSS of `pid`, bytes.
///
/// # Errors
/// The process is gone.
pub(crate) fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow!("no VmRSS"))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad VmRSS"))?;
    Ok(kb * 1024)
}

/// utime + stime of `pid`.
///
/// # Errors
/// The process is gone.
pub(crate) fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').ok_or_else(|| anyhow!("bad stat"))? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// Busy CPU time of the whole machine so far (all of /proc/stat's `cpu` line but idle and
/// iowait), to tell how much of the two cores other processes took during a run.
pub(crate) fn machine_busy() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Duration::ZERO;
    };
    let Some(line) = stat.lines().next() else {
        return Duration::ZERO;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = f
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .take(8)
        .sum();
    Duration::from_secs_f64(busy as f64 / clock_ticks() as f64)
}

/// Read-like and write-like system calls made so far by `pid` (`syscr`, `syscw` in
/// /proc/PID/io), or zeros when unreadable.
pub(crate) fn syscalls(pid: u32) -> (u64, u64) {
    let Ok(io) = std::fs::read_to_string(format!("/proc/{pid}/io")) else {
        return (0, 0);
    };
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("syscr:"), field("syscw:"))
}

/// The soft limit on open files of this process.
pub(crate) fn nofile_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_line_yields_the_first_http_address() {
        assert_eq!(
            parse_listen_line("cometail listening on http://127.0.0.1:40123/ (2 streams)"),
            Some("127.0.0.1:40123".parse().expect("addr"))
        );
        assert_eq!(
            parse_listen_line("http://127.0.0.1:7001"),
            Some("127.0.0.1:7001".parse().expect("addr"))
        );
        assert_eq!(parse_listen_line("no address here"), None);
    }

    #[test]
    fn cpu_lists_expand_and_sharing_is_an_overlap() {
        assert_eq!(cpu_set("0-2,5"), vec![0, 1, 2, 5]);
        assert_eq!(cpu_set(""), Vec::<u32>::new());
        let cpus = |g: &str, s: &str| Cpus {
            online: 2,
            generator: g.into(),
            server: s.into(),
        };
        assert!(cpus("0-1", "1").shared());
        assert!(!cpus("0", "1").shared());
        assert!(cpus("0", "").shared(), "unknown counts as shared");
    }

    #[test]
    fn own_process_stats_are_readable() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).expect("rss") > 0);
        assert!(cpu_time(pid).is_ok());
        assert!(nofile_limit() >= 1024);
    }
}
