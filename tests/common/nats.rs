//! A real NATS server with JetStream (Debian's `nats-server`), and the real `cometail agent`
//! and `cometail hub` binaries around it, for the scale-out tests.
//!
//! The server runs on a free loopback port with its own store in a temp dir; `kill9` and
//! `restart` fault it as an operator's crash would (SIGKILL, same port, same store). A missing
//! `nats-server` is a test failure, never a skip (`scripts/test.sh` installs it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's nats-server.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A running nats-server; killed on drop.
pub struct Nats {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Nats {
    /// Starts a server with JetStream, its store under `dir`.
    pub fn start(dir: &Path) -> Self {
        assert!(
            Path::new(NATS_SERVER).exists(),
            "this test needs {NATS_SERVER} (apt-get install nats-server; scripts/test.sh does)"
        );
        let port = free_port();
        let mut nats = Self {
            child: None,
            port,
            store: dir.join("nats-store"),
            url: format!("nats://127.0.0.1:{port}"),
        };
        nats.spawn();
        nats
    }

    fn spawn(&mut self) {
        let child = Command::new(NATS_SERVER)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < end,
                "nats-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
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
        Self::spawn(&all)
    }

    /// `cometail hub --nats URL --port 0 ARGS…`.
    pub fn hub(nats: &str, args: &[&str]) -> Self {
        let mut all = vec!["hub", "--nats", nats, "--port", "0"];
        all.extend_from_slice(args);
        Self::spawn(&all)
    }

    /// Runs the binary with `args` to its end (within 20 s): its exit code and stderr.
    pub fn run(args: &[&str]) -> (Option<i32>, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
            .args(args)
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

    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cometail starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("cometail prints its first line");
        let url = first
            .split_whitespace()
            .find(|t| t.starts_with("http://"))
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Self { child, url }
    }

    /// SIGKILLs it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
