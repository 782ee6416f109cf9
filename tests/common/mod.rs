//! Shared helpers for integration tests: a real cometail server started in-process on
//! `127.0.0.1:0`, a temp dir for its files, an HTTP client, a WHATWG-conformant SSE parser,
//! and a `wait_until` with a deadline (nothing in these tests sleeps to synchronise).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

pub mod files;
pub mod nats;
pub mod nats_auth;
pub mod net;
pub mod nginx;
pub mod sse;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use cometail::cli::Cli;
use cometail::config::Config;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running server and the directory its files live in.
pub struct Server {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
    handle: Option<JoinHandle<()>>,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts a server on port 0. `args` are command-line arguments after the binary name;
    /// the token `{dir}` in them is replaced by the server's temp dir.
    pub async fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, args).await
    }

    /// Like [`Server::start`], in an existing dir (to restart a server on the same files).
    pub async fn start_in(dir: tempfile::TempDir, args: &[&str]) -> Self {
        let d = dir.path().display().to_string();
        let mut argv: Vec<String> = vec!["cometail".into(), "--port".into(), "0".into()];
        argv.extend(args.iter().map(|a| a.replace("{dir}", &d)));
        let config = Config::from_cli(Cli::try_parse_from(&argv).unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind(config.addr()).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            cometail::run(config, listener, token).await.unwrap();
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let server = Self {
            url,
            dir,
            shutdown,
            handle: Some(handle),
            client,
        };
        // The server answers once its sources are set up.
        wait_until("server answers", Duration::from_secs(10), || async {
            server
                .client
                .get(format!("{}/api/streams", server.url))
                .send()
                .await
                .is_ok()
        })
        .await;
        server
    }

    /// Path of a file in the server's dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// GET `path` (starting with `/`), returning the status and the body parsed as JSON.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        let value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
        (status, value)
    }

    /// GET `path` and expect 200, returning the JSON body.
    pub async fn ok_json(&self, path: &str) -> Value {
        let (status, value) = self.get_json(path).await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    /// Waits until the first stream's file is open and followed.
    pub async fn wait_following(&self) {
        wait_until("following", Duration::from_secs(5), || async {
            self.ok_json("/api/streams").await["streams"][0]["state"] == "following"
        })
        .await;
    }

    /// Waits until the last entry of stream `id` is the line `text`.
    pub async fn wait_last(&self, id: &str, text: &str) {
        self.wait_last_at("", id, text).await;
    }

    /// [`Server::wait_last`] on a server under `--base-path` `prefix` (e.g. `/logs`).
    pub async fn wait_last_at(&self, prefix: &str, id: &str, text: &str) {
        wait_until(text, Duration::from_secs(10), || async {
            texts(
                &self
                    .ok_json(&format!("{prefix}/api/streams/{id}/lines?last=1"))
                    .await,
            ) == [text]
        })
        .await;
    }

    /// Stops the server and waits for it to finish (it must within 2 s); returns its dir.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        let handle = self.handle.take().unwrap();
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("server stops within 2 s")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `cond` until it holds; panics with `what` after `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Appends bytes to a file, creating it if needed.
pub fn append(path: &Path, bytes: impl AsRef<[u8]>) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes.as_ref()).unwrap();
}

/// A seeded xorshift64 generator: the same `seed` gives the same numbers (0 is made odd, as
/// xorshift never leaves 0).
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut rng = seed | 1;
    move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    }
}

/// The texts of a page's line entries (notices as `<notice>`).
pub fn texts(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e.get("text") {
            Some(t) => t.as_str().unwrap().to_owned(),
            None => format!("<{}>", e["notice"].as_str().unwrap()),
        })
        .collect()
}

/// Percent-encodes a query value (cursors are URL-safe already; this is for the rest).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The first `http://` URL in the first line `child` prints on its piped stdout, waited for
/// up to 20 s (`None` for a line without one, such as an agent's).
pub fn first_url(child: &mut std::process::Child) -> Option<String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("cometail prints its first line within 20 s");
    first
        .split_whitespace()
        .find(|t| t.starts_with("http://"))
        .map(str::to_owned)
}

/// Starts the real `cometail` binary on port 0 with `args`, the extra environment `envs` and
/// piped standard input; returns it with the first URL it printed (within 20 s).
pub fn spawn_piped(args: &[&str], envs: &[(&str, &Path)]) -> (std::process::Child, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0"])
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cometail starts");
    let url = first_url(&mut child).expect("cometail prints its URL");
    (child, url)
}

/// Starts the real `cometail` binary on port 0 for `log` and returns it with the
/// `HOST:PORT` it printed; the server is killed when the first is dropped, so a failing test
/// leaves none behind.
pub fn spawn_binary(log: &Path) -> (Reaped, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0"])
        .arg(log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = first_url(&mut child).expect("cometail prints its URL");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    (Reaped(child), addr)
}

/// A child process killed (by its own handle) and reaped when dropped, so that a test that
/// fails leaves no server behind.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
