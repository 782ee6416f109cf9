//! A real NATS server with JetStream (Debian's `nats-server`), and the real `cometail agent`
//! and `cometail hub` binaries around it, for the scale-out tests.
//!
//! The server runs on a free loopback port with its own store in a temp dir; `kill9` and
//! `restart` fault it as an operator's crash would (SIGKILL, same port, same store). A missing
//! `nats-server` is a test failure, never a skip (`scripts/test.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's nats-server.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A running nats-server; killed on drop.
pub struct Nats {
    /// The engine tests take turns (see [`Turn`]); held for the server's life.
    _turn: Turn,
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    store: PathBuf,
    /// Further `nats-server` arguments (credentials).
    extra: Vec<String>,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

/// A loopback port nothing listens on now, never handed out twice by this process.
///
/// Taken from below the kernel's ephemeral range (32768 and up on Linux), which port-0 binds
/// (hubs, other tests' servers) and outgoing connections draw from: a port picked there and
/// bound later by nats-server could meanwhile be taken by another test, whose server this
/// test would then talk to (a cross-talk that showed as hubs with no lines and foreign lines
/// in a retention test). Tests of other binaries running at the same time start elsewhere in
/// the range (by process id), and a port in use is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const BASE: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = (std::process::id() % 60) * 200;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < SPAN, "no free port left in {BASE}..{}", BASE + SPAN);
        let port = u16::try_from(BASE + (start + n) % SPAN).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One engine test at a time in this process. Run side by side (15 nats-servers with their
/// agents and hubs on two cores), first publishes waited past their ack timeout and hubs
/// served nothing within a test's deadline; each test is short, so taking turns costs little.
/// Released on drop; a test that waits longer than [`TURN_WAIT`] for its turn fails.
struct Turn;

/// The longest a test waits for its turn with the engine.
const TURN_WAIT: Duration = Duration::from_secs(600);

static BUSY: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static FREED: std::sync::Condvar = std::sync::Condvar::new();

impl Turn {
    fn take() -> Self {
        let end = Instant::now() + TURN_WAIT;
        let mut busy = BUSY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *busy {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no turn with the engine within {TURN_WAIT:?}"
            );
            busy = FREED
                .wait_timeout(busy, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *busy = true;
        Self
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *BUSY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        FREED.notify_one();
    }
}

impl Nats {
    /// Starts a server with JetStream, its store under `dir`.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, free_port(), &[])
    }

    /// [`Nats::start`] on `port`, with further server arguments.
    pub fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Self {
        assert!(
            Path::new(NATS_SERVER).exists(),
            "this test needs {NATS_SERVER} (apt-get install nats-server; scripts/test.sh does)"
        );
        let mut nats = Self {
            _turn: Turn::take(),
            child: None,
            port,
            store: dir.join("nats-store"),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            url: format!("nats://127.0.0.1:{port}"),
        };
        nats.spawn();
        nats
    }

    fn spawn(&mut self) {
        // `-a ADDR` among the extra arguments moves the listener (a lab's bridge address).
        let addr = self
            .extra
            .iter()
            .position(|a| a == "-a")
            .and_then(|i| self.extra.get(i + 1))
            .map_or("127.0.0.1", String::as_str)
            .to_owned();
        let child = Command::new(NATS_SERVER)
            .args(["-js", "-a", &addr, "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((addr.as_str(), self.port)).is_err() {
            assert!(
                Instant::now() < end,
                "nats-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // What answered must be our server, not another process on the port: a server that
        // could not bind has exited by now.
        std::thread::sleep(Duration::from_millis(50));
        if let Some(child) = self.child.as_mut() {
            assert!(
                matches!(child.try_wait(), Ok(None)),
                "nats-server exited: port {} is taken by another process",
                self.port
            );
        }
    }

    /// SIGKILLs the server (its store stays).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `cometail agent` or `cometail hub` process; SIGKILLed on drop.
pub struct Role {
    child: Child,
    /// The hub's `http://127.0.0.1:PORT` (empty for an agent).
    pub url: String,
}

impl Role {
    /// `cometail agent --nats URL --host HOST --heartbeat 300ms ARGS…`.
    pub fn agent(nats: &str, host: &str, args: &[&str]) -> Self {
        Self::agent_every(nats, host, "300ms", args)
    }

    /// [`Role::agent`] with its own `--heartbeat` (the default, 15s, shows what a beat
    /// that comes late does).
    pub fn agent_every(nats: &str, host: &str, heartbeat: &str, args: &[&str]) -> Self {
        let mut all = vec![
            "agent",
            "--nats",
            nats,
            "--host",
            host,
            "--heartbeat",
            heartbeat,
        ];
        all.extend_from_slice(args);
        Self::spawn(&all)
    }

    /// [`Role::agent`] inside the network namespace `netns` (`ip netns exec`, which execs
    /// the binary: the child is the agent itself).
    pub fn agent_in(netns: &str, nats: &str, host: &str, args: &[&str]) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns, env!("CARGO_BIN_EXE_cometail")])
            .args([
                "agent",
                "--nats",
                nats,
                "--host",
                host,
                "--heartbeat",
                "300ms",
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip netns exec starts");
        super::first_url(&mut child);
        Self {
            child,
            url: String::new(),
        }
    }

    /// `cometail hub --nats URL --port 0 ARGS…`, once ready: a hub answers from the start,
    /// with 503s until it has its engine and stream, and tests read it as a client that
    /// waited would. Waits 60 s at most; a hub that exits meanwhile is returned as it is.
    pub fn hub(nats: &str, args: &[&str]) -> Self {
        let mut hub = Self::hub_starting(nats, args);
        let ready = format!("{}/readyz", hub.url);
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if matches!(hub.child.try_wait(), Ok(Some(_))) {
                return hub;
            }
            let status = status_of(&ready);
            if status == Some(200) {
                return hub;
            }
            assert!(
                Instant::now() < end,
                "the hub was not ready within 60 s: {status:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `cometail hub --nats URL --port 0 ARGS…`, as soon as it serves (maybe not ready).
    pub fn hub_starting(nats: &str, args: &[&str]) -> Self {
        let mut all = vec!["hub", "--nats", nats, "--port", "0"];
        all.extend_from_slice(args);
        Self::spawn(&all)
    }

    /// Runs the binary with `args` to its end (within 20 s): its exit code and stderr.
    pub fn run(args: &[&str]) -> (Option<i32>, String) {
        Self::run_env(args, &[])
    }

    /// [`Role::run`] with further environment variables.
    pub fn run_env(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cometail starts");
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let mut err = String::new();
                let _ = std::io::Read::read_to_string(
                    &mut child.stderr.take().expect("piped"),
                    &mut err,
                );
                return (status.code(), err);
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("cometail {args:?} did not exit within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`Role::agent`] whose standard error lines come through the receiver.
    pub fn agent_watched(
        nats: &str,
        host: &str,
        args: &[&str],
    ) -> (Self, std::sync::mpsc::Receiver<String>) {
        let mut all = vec![
            "agent",
            "--nats",
            nats,
            "--host",
            host,
            "--heartbeat",
            "300ms",
        ];
        all.extend_from_slice(args);
        let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
            .args(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cometail starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        super::first_url(&mut child);
        (
            Self {
                child,
                url: String::new(),
            },
            rx,
        )
    }

    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log_file(args[0]))
            .spawn()
            .expect("cometail starts");
        let url = super::first_url(&mut child)
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Self { child, url }
    }

    /// SIGTERMs it and waits at most `within` for it to exit: its status, `None` if it is
    /// still running (then it is SIGKILLed on drop).
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a role's standard error goes: nowhere, or with `COMETAIL_TEST_LOGS=DIR` (and, say,
/// `RUST_LOG=cometail=debug`) to `DIR/NNN-ROLE.log`, numbered in start order, so that a
/// failure in a looped run can be read afterwards from every agent's and hub's side.
fn log_file(role: &str) -> Stdio {
    use std::sync::atomic::{AtomicU32, Ordering};
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let Some(dir) = std::env::var_os("COMETAIL_TEST_LOGS") else {
        return Stdio::null();
    };
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let path = Path::new(&dir).join(format!("{n:03}-{role}.log"));
    std::fs::File::create(&path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
        .into()
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two hosts' logs under `dir`, `one/app.log` holding `first` and `two/app.log` holding
/// `second` (the same file name, so a view `*~app.log` covers both).
pub fn two_logs(dir: &Path, first: &str, second: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (one, two) = (dir.join("one"), dir.join("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let (log1, log2) = (one.join("app.log"), two.join("app.log"));
    super::append(&log1, first);
    super::append(&log2, second);
    (log1, log2)
}

/// Two hosts on one engine: agents `web-1` and `web-2`, each following its `app.log`
/// ([`two_logs`], holding `first` and `second`). Fields drop in order: the agents, then the
/// engine.
pub struct TwoHosts {
    pub a1: Role,
    pub a2: Role,
    pub log1: std::path::PathBuf,
    pub log2: std::path::PathBuf,
    pub nats: Nats,
}

/// [`TwoHosts`] under `dir`, on a new engine.
pub fn two_hosts(dir: &Path, first: &str, second: &str) -> TwoHosts {
    let nats = Nats::start(dir);
    let (log1, log2) = two_logs(dir, first, second);
    TwoHosts {
        a1: Role::agent(&nats.url, "web-1", &[log1.to_str().unwrap()]),
        a2: Role::agent(&nats.url, "web-2", &[log2.to_str().unwrap()]),
        log1,
        log2,
        nats,
    }
}

/// Waits (30 s at most) until the hub at `url` lists `count` files: the agents' start is
/// not a test's to time (under a loaded run it took over 10 s once).
pub async fn wait_listed(url: &str, count: usize) {
    let listing = format!("{url}/api/streams");
    super::wait_until(
        "the hub lists every file",
        Duration::from_secs(30),
        || async {
            let listed = match reqwest::get(&listing).await {
                Ok(r) => r.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            listed.is_some_and(|l| l["streams"].as_array().is_some_and(|s| s.len() == count))
        },
    )
    .await;
}

/// The status of a plain `GET url` (`http://HOST:PORT/PATH`), from a blocking socket with a
/// 5 s deadline: `None` when it cannot be had.
fn status_of(url: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/')?);
    let mut socket = std::net::TcpStream::connect(host).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
