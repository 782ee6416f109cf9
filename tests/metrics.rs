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

fn promtool_check(text: &str) -> (bool, String) {
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
