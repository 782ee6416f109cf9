//! Support for the browser tests: the real `cometail` binary in a temp dir, a `chromedriver`
//! with a fresh headless Chromium profile, and waits that always have a deadline.
//!
//! Browser tests are serialized with one static mutex ([`run`]): this machine has two cores
//! and a Chromium per test in parallel makes timings meaningless. A missing Chromium or
//! ChromeDriver is a test failure, never a skip.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value as Json, json};

/// Serializes the browser tests of this binary.
static BROWSER_LOCK: Mutex<()> = Mutex::new(());

/// The WebDriver server; Debian's chromium-driver package installs it here.
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The browser it drives.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

/// Installed before any page script runs (CDP `Page.addScriptToEvaluateOnNewDocument`):
/// traps every way an injected script would show itself (dialogs, console) and records
/// Content-Security-Policy violations. The page's own diagnostics start with "cometail:".
const TRAPS: &str = r#"
(() => {
  const t = { calls: [], csp: [] };
  Object.defineProperty(window, "__trap", { value: t });
  for (const k of ["alert", "confirm", "prompt", "print"]) {
    window[k] = (...a) => { t.calls.push(k + ":" + String(a[0])); };
  }
  for (const k of ["log", "info", "warn", "error", "debug", "trace"]) {
    const orig = console[k].bind(console);
    console[k] = (...a) => {
      if (!String(a[0]).startsWith("cometail:")) t.calls.push("console." + k + ":" + String(a[0]));
      orig(...a);
    };
  }
  document.addEventListener("securitypolicyviolation", (e) => {
    t.csp.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || ""));
  });
})();
"#;

/// Run one browser test: takes the lock, builds a runtime, runs `f` to completion.
pub(crate) fn run<F: Future<Output = ()>>(f: F) {
    let _guard = BROWSER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(f);
}

/// A free TCP port on 127.0.0.1 (there is a small race; chromedriver fails loudly if lost).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Poll `cond` until it returns true or `deadline` passes.
#[allow(dead_code)]
pub(crate) fn wait_sync(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `cometail` on port 0, with the temp dir its files live in.
pub(crate) struct Server {
    child: Child,
    /// Base URL, `http://127.0.0.1:PORT/` (`https://` under TLS), without any query.
    pub(crate) url: String,
    /// The URL exactly as cometail printed it: with `?token=…` when it generated a token.
    pub(crate) printed: String,
    /// Temp dir for the followed files (removed on drop).
    pub(crate) dir: tempfile::TempDir,
}

impl Server {
    /// The binary under test; `COMETAIL_BIN` overrides it (e.g. to run these tests against
    /// another build).
    fn binary() -> PathBuf {
        if let Some(p) = std::env::var_os("COMETAIL_BIN") {
            return PathBuf::from(p);
        }
        if let Some(p) = option_env!("CARGO_BIN_EXE_cometail") {
            return PathBuf::from(p);
        }
        // Examples do not get CARGO_BIN_EXE_*: use the binary of the same profile, which
        // lives next to the `examples/` directory.
        let exe = std::env::current_exe().expect("current exe");
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("cometail"))
            .expect("target dir");
        assert!(
            bin.exists(),
            "{} is missing: build it first (cargo build --release)",
            bin.display()
        );
        bin
    }

    /// Start `cometail --port 0 ARGS...` with the temp dir as working directory (and without
    /// `COMETAIL_TOKEN` from the environment). `make` may create files in the dir first.
    pub(crate) fn start(make: impl FnOnce(&Path), args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        make(dir.path());
        let mut child = Command::new(Self::binary())
            .arg("--port")
            .arg("0")
            .args(args)
            .current_dir(dir.path())
            .env_remove("COMETAIL_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cometail");
        let out = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(tok) = line
                        .split_whitespace()
                        .find(|t| t.starts_with("http://") || t.starts_with("https://"))
                    {
                        sent = tx.send(tok.to_string()).is_ok();
                    }
                }
            }
        });
        let printed = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(u) => u,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cometail printed no http(s):// URL within 20 s ({e})");
            }
        };
        let base = printed.split(['?', '#']).next().unwrap_or_default();
        let url = if base.ends_with('/') {
            base.to_string()
        } else {
            format!("{base}/")
        };
        Server {
            child,
            url,
            printed,
            dir,
        }
    }

    /// Path of a file in the temp dir.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Append text to a file in the temp dir (creating it).
    pub(crate) fn append(&self, name: &str, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .expect("open for append");
        f.write_all(text.as_bytes()).expect("append");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chromedriver process and a WebDriver session on a fresh profile.
pub(crate) struct Browser {
    driver: Child,
    port: u16,
    session: String,
    driver_url: String,
    /// The WebDriver client.
    pub(crate) c: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a headless Chromium at `width`x`height`, with the traps
    /// installed in every document.
    pub(crate) async fn start(width: u32, height: u32) -> Browser {
        Self::start_with(width, height, &[]).await
    }

    /// [`Browser::start`] with extra Chromium command-line switches (e.g.
    /// `--ignore-certificate-errors` for a self-signed test certificate).
    pub(crate) async fn start_with(width: u32, height: u32, extra_args: &[&str]) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "browser tests need {CHROMIUM} and {CHROMEDRIVER} \
             (apt-get install chromium chromium-driver)"
        );
        let port = free_port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut driver = cmd.spawn().expect("start chromedriver");
        let up = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > up || matches!(driver.try_wait(), Ok(Some(_))) {
                let _ = driver.kill();
                panic!("chromedriver did not listen on port {port} within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra_args.iter().map(|a| (*a).to_string()));
        let mut caps = serde_json::Map::new();
        caps.insert("pageLoadStrategy".into(), json!("none"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let driver_url = format!("http://127.0.0.1:{port}");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let c = match ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver_url)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("cannot start a Chromium session: {e}");
            }
        };
        let session = c
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let b = Browser {
            driver,
            port,
            session,
            driver_url,
            c,
            _profile: profile,
        };
        b.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": TRAPS }),
        )
        .await;
        // The window size includes browser chrome; emulate the exact viewport instead.
        b.resize(width, height).await;
        b
    }

    /// Send a Chrome DevTools Protocol command through chromedriver.
    pub(crate) async fn cdp(&self, cmd: &str, params: Json) -> Json {
        let sid = &self.session;
        let r = reqwest::Client::new()
            .post(format!(
                "{}/session/{sid}/goog/cdp/execute",
                self.driver_url
            ))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .expect("cdp request");
        assert!(r.status().is_success(), "cdp {cmd}: {}", r.status());
        r.json().await.expect("cdp reply")
    }

    /// Set the viewport as a phone (`width` < 600: a mobile one) or a desktop would have it.
    pub(crate) async fn resize(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await;
    }

    /// Turn the mouse wheel over the middle of the log (`dy` < 0: up), as a user would: a
    /// trusted input event, unlike a script setting `scrollTop`.
    pub(crate) async fn wheel(&self, dy: i32) {
        let at = self
            .js("const r = document.querySelector('#log').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]")
            .await;
        self.cdp(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseWheel", "x": at[0], "y": at[1], "deltaX": 0, "deltaY": dy }),
        )
        .await;
    }

    /// Navigate (returns at once: page load strategy "none") and wait until the app is up.
    pub(crate) async fn open(&self, url: &str) {
        self.c.goto(url).await.expect("goto");
        self.wait_js(
            "the page to start (window.__cometail)",
            "return !!(window.__cometail && document.querySelector('#status'))",
            Duration::from_secs(10),
        )
        .await;
    }

    /// Run a script and return its value.
    pub(crate) async fn js(&self, script: &str) -> Json {
        self.c
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Run a script with arguments.
    pub(crate) async fn js_args(&self, script: &str, args: Vec<Json>) -> Json {
        self.c
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Poll `script` (which returns a boolean) until true or the deadline.
    pub(crate) async fn wait_js(&self, what: &str, script: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Json::Bool(true)) = self.c.execute(script, vec![]).await {
                return;
            }
            if Instant::now() > end {
                let shot = self.c.screenshot().await.ok();
                if let Some(png) = shot {
                    let _ = std::fs::write(artifacts().join("last-timeout.png"), png);
                }
                let texts = self
                    .c
                    .execute(
                        "return document.body ? document.body.innerText.slice(0, 2000) : ''",
                        vec![],
                    )
                    .await;
                panic!("timed out after {timeout:?} waiting for {what}\npage text: {texts:?}");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Text of the log rows currently in the DOM, in document order.
    pub(crate) async fn rows(&self) -> Vec<String> {
        let v = self
            .js("return [...document.querySelectorAll('#log .row .txt')].map(e => e.textContent)")
            .await;
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Anything the traps caught: script calls and CSP violations.
    pub(crate) async fn trapped(&self) -> (Vec<String>, Vec<String>) {
        let v = self
            .js("return window.__trap ? [window.__trap.calls, window.__trap.csp] : [['no traps installed'], []]")
            .await;
        let list = |j: &Json| -> Vec<String> {
            j.as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        (list(&v[0]), list(&v[1]))
    }

    /// Save a screenshot under `artifacts/`.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.c.screenshot().await.expect("screenshot");
        let p = artifacts().join(name);
        std::fs::write(&p, png).expect("write screenshot");
        p
    }

    /// End the session (Chromium quits) and chromedriver.
    pub(crate) async fn close(mut self) {
        let c = self.c.clone();
        // Leaving the page first ends its open SSE streams, which otherwise slow the quit.
        let _ = c.goto("about:blank").await;
        if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(10), c.close()).await {
            self.session.clear();
        }
        // Drop stops chromedriver.
    }
}

impl Drop for Browser {
    /// Also runs when a test panics: deleting the session makes chromedriver quit the
    /// Chromium it started, then chromedriver itself is killed by its pid.
    fn drop(&mut self) {
        if !self.session.is_empty() && !matches!(self.driver.try_wait(), Ok(Some(_))) {
            delete_session(self.port, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{id}` over a plain blocking socket (usable from `Drop`); errors ignored,
/// since the session may already be closed.
fn delete_session(port: u16, session: &str) {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    // chromedriver may keep the connection open despite `Connection: close`: bound the read.
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let req = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_ok() {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// `artifacts/` at the crate root (gitignored), created on demand.
pub(crate) fn artifacts() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&p).expect("artifacts dir");
    p
}
