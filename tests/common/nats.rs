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
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    store: PathBuf,
    /// Further `nats-server` arguments (credentials).
    extra: Vec<String>,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
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

    /// `cometail hub --nats URL --port 0 ARGS…`.
    pub fn hub(nats: &str, args: &[&str]) -> Self {
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
            .stderr(Stdio::null())
            .spawn()
            .expect("cometail starts");
        let url = super::first_url(&mut child)
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
