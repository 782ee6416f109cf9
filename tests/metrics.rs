//! `/metrics`: checked by Debian's `promtool`, scraped by a real Prometheus whose figures
//! move as lines are appended, negotiated between OpenMetrics and the classic text format,
//! and behind authentication when it is on. A missing tool is a failure, never a skip
//! (`scripts/test.sh` installs the `prometheus` package).

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::sse::Connection;
use crate::common::{Server, append, wait_until};

const SEC: Duration = Duration::from_secs(1);

async fn scrape(s: &Server, accept: Option<&str>) -> (String, String) {
    let mut req = s.client.get(format!("{}/metrics", s.url));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, r.text().await.unwrap())
}

/// The value of the sample line that starts with `series ` (name and labels as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

pub(crate) fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus; scripts/test.sh does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success() && said.trim().is_empty(), said)
}

#[tokio::test]
async fn promtool_accepts_the_metrics_and_they_count_lines_streams_and_long_polls() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "one\ntwo\n");
    s.wait_last("app.log", "two").await;
    let mut sse = Connection::open(
        &s.client,
        &format!("{}/api/streams/app.log/events", s.url),
        None,
    )
    .await;
    sse.entries(1, 5 * SEC).await;
    let page = s.ok_json("/api/streams/app.log/lines?last=1").await;
    let next = page["next"].as_str().unwrap().to_owned();
    let poll = tokio::spawn({
        let (client, url) = (s.client.clone(), s.url.clone());
        async move {
            client
                .get(format!(
                    "{url}/api/streams/app.log/lines?after={next}&wait=10"
                ))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    wait_until("the long poll is held", 5 * SEC, || async {
        sample(&scrape(&s, None).await.1, "cometail_held_long_polls") == Some(1.0)
    })
    .await;

    let (ct, text) = scrape(&s, None).await;
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
    assert_eq!(
        sample(&text, r#"cometail_stream_lines_total{stream="app.log"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"cometail_stream_bytes_total{stream="app.log"}"#),
        Some(8.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"cometail_stream_state{stream="app.log",state="following"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"cometail_open_streams{transport="sse"}"#),
        Some(1.0)
    );
    assert!(sample(&text, "process_open_fds").is_some_and(|n| n > 0.0));
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help"
        );
    }

    // The appended line ends the long poll and is counted.
    append(&s.path("app.log"), "three\n");
    assert_eq!(poll.await.unwrap(), 200);
    drop(sse);
    wait_until(
        "the closed stream is no longer counted",
        5 * SEC,
        || async {
            sample(
                &scrape(&s, None).await.1,
                r#"cometail_open_streams{transport="sse"}"#,
            ) == Some(0.0)
        },
    )
    .await;
    let (ct, om) = scrape(
        &s,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .await;
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE cometail_stream_lines counter\n"));
    assert_eq!(
        sample(&om, r#"cometail_stream_lines_total{stream="app.log"}"#),
        Some(3.0)
    );
}

/// Each kind of notice is counted per stream: a rename rotation (`rotated`), lines written
/// to the renamed file after the new one has data (`late`), a truncation (`truncated`).
#[tokio::test]
async fn notices_are_counted_by_kind_late_segments_included() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let (path, rotated) = (s.path("app.log"), s.path("app.log.1"));
    append(&path, "one\n");
    s.wait_last("app.log", "one").await;
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::fs::rename(&path, &rotated).unwrap();
    append(&path, "new\n");
    s.wait_last("app.log", "new").await;
    // A writer that has not reopened writes on to the renamed file.
    writer.write_all(b"late\n").unwrap();
    s.wait_last("app.log", "late").await;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "t\n");
    s.wait_last("app.log", "t").await;
    let notices = |text: &str, kind: &str| {
        sample(
            text,
            &format!(r#"cometail_stream_notices_total{{stream="app.log",kind="{kind}"}}"#),
        )
    };
    let (_, text) = scrape(&s, None).await;
    assert_eq!(notices(&text, "rotated"), Some(1.0), "{text}");
    assert_eq!(notices(&text, "late"), Some(1.0), "{text}");
    assert_eq!(notices(&text, "truncated"), Some(1.0), "{text}");
    assert_eq!(notices(&text, "gap"), Some(0.0), "{text}");
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
}

#[tokio::test]
async fn metrics_need_credentials_when_auth_is_on_and_count_failures() {
    let dir = tempfile::tempdir().unwrap();
    let token = "0123456789abcdef0123";
    std::fs::write(dir.path().join("token"), token).unwrap();
    let s = Server::start_in(dir, &["--token-file", "{dir}/token", "{dir}/app.log"]).await;
    let url = format!("{}/metrics", s.url);
    assert_eq!(s.client.get(&url).send().await.unwrap().status(), 401);
    let wrong = s
        .client
        .get(&url)
        .bearer_auth("x".repeat(20))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let text = s
        .client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&text, "cometail_auth_failures_total"),
        Some(1.0),
        "{text}"
    );
}

/// A Prometheus server of its own (the package's service is never used), killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: cometail\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (apt-get install prometheus; scripts/test.sh does)");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The value of an instant query's only sample, if there is one.
    async fn value(&self, client: &reqwest::Client, query: &str) -> Option<f64> {
        let r = client
            .get(format!(
                "{}/api/v1/query?query={}",
                self.url,
                crate::common::enc(query)
            ))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_real_prometheus_sees_the_line_count_move_as_lines_are_appended() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "a\nb\n");
    s.wait_last("app.log", "b").await;
    let prometheus = Prometheus::start(s.url.trim_start_matches("http://"));
    let query = r#"cometail_stream_lines_total{job="cometail",stream="app.log"}"#;
    let c = &s.client;
    wait_until("Prometheus scraped 2 lines", 60 * SEC, || async {
        prometheus.value(c, query).await == Some(2.0)
    })
    .await;
    append(&s.path("app.log"), "c\nd\ne\n");
    wait_until("Prometheus scraped 5 lines", 20 * SEC, || async {
        prometheus.value(c, query).await == Some(5.0)
    })
    .await;
    assert_eq!(
        prometheus.value(c, r#"up{job="cometail"}"#).await,
        Some(1.0)
    );
}

/// Starts the real binary with `args` and `{dir}/app.log`; returns it, its dir, the main URL
/// and the metrics URL it printed.
fn start_with_metrics_bind(args: &[&str]) -> (Running, tempfile::TempDir, String, String) {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0", "--metrics-bind", "127.0.0.1:0"])
        .args(args.iter().map(|a| a.replace("{dir}", &d)))
        .arg(dir.path().join("app.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut metrics) = (None, None);
    while url.is_none() || metrics.is_none() {
        let mut line = String::new();
        // The server prints its URLs before it serves: a read returns or the child is gone.
        assert!(out.read_line(&mut line).unwrap() > 0, "cometail exited");
        let found = line.split_whitespace().find(|w| w.starts_with("http://"));
        match found {
            Some(u) if line.contains("metrics on") => metrics = Some(u.to_owned()),
            Some(u) => url = Some(u.trim_end_matches('/').to_owned()),
            None => {}
        }
    }
    (Running(child), dir, url.unwrap(), metrics.unwrap())
}

/// The binary, killed when dropped (also when an assertion fails first).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn metrics_bind_serves_metrics_without_auth_to_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "0123456789abcdef0123").unwrap();
    let token_arg = token_file.display().to_string();
    let (_child, logs, url, metrics) =
        start_with_metrics_bind(&["--token-file", &token_arg, "--base-path", "/logs/"]);
    let client = reqwest::Client::new();
    let get = |u: String| {
        let client = client.clone();
        async move { client.get(u).send().await.unwrap() }
    };
    assert_eq!(get(format!("{url}/metrics")).await.status(), 401);
    let scraped = get(metrics.clone()).await;
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
    let base = metrics.trim_end_matches("/metrics");
    assert_eq!(get(format!("{base}/api/streams")).await.status(), 404);
    assert_eq!(get(format!("{base}/healthz")).await.status(), 200);

    append(&logs.path().join("app.log"), "x\n");
    let target = base.trim_start_matches("http://");
    let prometheus = Prometheus::start(target);
    let query = r#"cometail_stream_lines_total{job="cometail",stream="app.log"}"#;
    wait_until(
        "Prometheus scraped the metrics listener",
        60 * SEC,
        || async { prometheus.value(&client, query).await.is_some() },
    )
    .await;
    let before = prometheus.value(&client, query).await.unwrap();
    append(&logs.path().join("app.log"), "y\nz\n");
    wait_until("Prometheus saw 2 more lines", 20 * SEC, || async {
        prometheus.value(&client, query).await == Some(before + 2.0)
    })
    .await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_counted_behind_and_back_when_it_reads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "first\n");
    s.wait_last("app.log", "first").await;
    let lag =
        |text: &str, name: &str, le: &str| sample(text, &format!("{name}{{at_most=\"{le}\"}}"));
    let addr = s.url.trim_start_matches("http://").to_owned();
    // A client that reads its response head, then stops reading: once the socket buffers are
    // full, the server cannot send it more, and it falls behind.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr.parse().unwrap()).await.unwrap();
    slow.write_all(
        format!("GET /api/streams/app.log/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 512];
    let _ = slow.read(&mut head).await.unwrap();
    wait_until("the client is counted, caught up", 5 * SEC, || async {
        let text = scrape(&s, None).await.1;
        lag(&text, "cometail_clients_behind_entries", "0") == Some(1.0)
    })
    .await;

    let line = format!("{}\n", "x".repeat(200));
    append(&s.path("app.log"), line.repeat(40_000));
    let (_, text) = scrape(&s, None).await;
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
    wait_until(
        "the client is behind by 1,000+ entries, 1+ s",
        20 * SEC,
        || async {
            let text = scrape(&s, None).await.1;
            lag(&text, "cometail_clients_behind_entries", "1000") == Some(0.0)
                && lag(&text, "cometail_clients_behind_entries", "+Inf") == Some(1.0)
                && lag(&text, "cometail_clients_behind_seconds", "1.0") == Some(0.0)
        },
    )
    .await;

    // It reads everything: it is caught up again.
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    append(&s.path("app.log"), "last\n");
    wait_until("the client caught up", 20 * SEC, || async {
        let text = scrape(&s, None).await.1;
        lag(&text, "cometail_clients_behind_entries", "0") == Some(1.0)
            && lag(&text, "cometail_clients_behind_seconds", "0.0") == Some(1.0)
    })
    .await;
    reader.abort();
}

/// A raw follow and a time-merged SSE connection that stop reading are counted behind, like
/// plain SSE clients.
#[tokio::test]
async fn raw_and_merged_clients_that_stop_reading_are_counted_behind() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start(&["{dir}/app.log", "{dir}/b.log"]).await;
    append(&s.path("app.log"), "first\n");
    append(&s.path("b.log"), "first\n");
    s.wait_last("app.log", "first").await;
    s.wait_last("b.log", "first").await;
    let lag =
        |text: &str, name: &str, le: &str| sample(text, &format!("{name}{{at_most=\"{le}\"}}"));
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for path in [
        "/api/streams/app.log/raw?follow=1",
        "/api/events?streams=app.log,b.log&order=time&last=0",
    ] {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket.connect(addr.parse().unwrap()).await.unwrap();
        client
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut head = [0u8; 512];
        let _ = client.read(&mut head).await.unwrap();
        slow.push(client);
    }
    wait_until("both clients are counted, caught up", 5 * SEC, || async {
        let text = scrape(&s, None).await.1;
        lag(&text, "cometail_clients_behind_entries", "0") == Some(2.0)
    })
    .await;
    let line = format!("{}\n", "x".repeat(200));
    append(&s.path("app.log"), line.repeat(40_000));
    wait_until("both are 1,000+ entries behind", 20 * SEC, || async {
        let text = scrape(&s, None).await.1;
        lag(&text, "cometail_clients_behind_entries", "1000") == Some(0.0)
            && lag(&text, "cometail_clients_behind_entries", "+Inf") == Some(2.0)
    })
    .await;
    drop(slow);
}

#[tokio::test]
async fn searches_count_the_bytes_they_examine() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let text: String = (0..2_000).map(|i| format!("line {i} ok\n")).collect();
    append(&s.path("app.log"), &text);
    s.wait_last("app.log", "line 1999 ok").await;
    let bytes = |t: &str| sample(t, "cometail_search_scanned_bytes_total").unwrap_or(-1.0);
    let before = bytes(&scrape(&s, None).await.1);
    assert_eq!(before, 0.0, "no search yet");
    let body = s
        .client
        .get(format!("{}/api/streams/app.log/search?q=timeout", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("event: done"), "{body}");
    let (_, metrics) = scrape(&s, None).await;
    assert_eq!(bytes(&metrics), text.len() as f64, "{body}");
    let (ok, said) = promtool_check(&metrics);
    assert!(ok, "promtool check metrics: {said}");
}
