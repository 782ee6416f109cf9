//! Agents and hubs on a real NATS JetStream engine (`nats-server -js`, Debian's 2.9.10): every
//! line once, in order, across agent restarts, an engine SIGKILL and a hub SIGKILL; the same
//! cursor for the same entry on every hub; views over several hosts. The failure matrix these
//! tests cover is in docs/SCALE-OUT.md.

mod api;
mod auth;
mod bad_input;
mod command_line;
mod contract;
mod fanout;
mod faults;
mod lab;
mod merged;
mod races;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::append;
use crate::common::nats::{Nats, Role, two_logs};

/// Deadline for anything to travel file → agent → engine → hub.
const TRAVEL: Duration = Duration::from_secs(60);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `GET url` as JSON, or `None` while the hub cannot answer (starting, engine down).
async fn get(url: &str) -> Option<Value> {
    let resp = client().get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

/// Line texts of entries.
fn texts(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e["text"].as_str().map(str::to_owned))
        .collect()
}

/// Every entry of `id` on `hub` from the start, following `next` (long polls) until
/// `count` line entries have come or the deadline passes.
async fn chain(hub: &str, id: &str, count: usize) -> Vec<Value> {
    chain_within(hub, id, count, TRAVEL).await
}

/// [`chain`] with its own deadline.
async fn chain_within(hub: &str, id: &str, count: usize, deadline: Duration) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    let end = tokio::time::Instant::now() + deadline;
    while texts(&out).len() < count {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out with {} of {count} lines: {:?}",
            texts(&out).len(),
            texts(&out).last()
        );
        let url = match &after {
            None => format!("{hub}/api/streams/{id}/lines?last=10000"),
            Some(c) => format!("{hub}/api/streams/{id}/lines?after={c}&wait=2"),
        };
        let Some(page) = get(&url).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        out.extend(page["entries"].as_array().unwrap().iter().cloned());
        after = Some(page["next"].as_str().unwrap().to_owned());
    }
    out
}

fn numbered(from: usize, to: usize) -> Vec<String> {
    (from..=to).map(|i| format!("line {i}")).collect()
}

fn write_lines(path: &Path, from: usize, to: usize) {
    let text: String = numbered(from, to)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    append(path, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_resumes_from_the_engine_without_loss_or_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 3);
    let agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    assert_eq!(
        texts(&chain(&hub.url, "web-1~app.log", 3).await),
        numbered(1, 3)
    );
    agent.kill9();
    // Written while no agent runs: read from the file after the restart.
    write_lines(&log, 4, 200);
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    write_lines(&log, 201, 300);
    let all = chain(&hub.url, "web-1~app.log", 300).await;
    assert_eq!(texts(&all), numbered(1, 300));
    assert!(all.iter().all(|e| e.get("notice").is_none()), "no gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_mint_the_same_cursors_and_resume_each_others() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 50);
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let (a, b) = (Role::hub(&nats.url, &[]), Role::hub(&nats.url, &[]));
    let on_a = chain(&a.url, "web-1~app.log", 50).await;
    let on_b = chain(&b.url, "web-1~app.log", 50).await;
    assert_eq!(on_a, on_b, "every entry has the same cursor on both hubs");
    // A cursor minted by hub A, resumed on hub B, forward and backward.
    let mid = on_a[19]["cursor"].as_str().unwrap();
    let after = get(&format!(
        "{}/api/streams/web-1~app.log/lines?after={mid}",
        b.url
    ))
    .await
    .unwrap();
    assert_eq!(
        texts(after["entries"].as_array().unwrap()),
        numbered(21, 50)
    );
    let before = get(&format!(
        "{}/api/streams/web-1~app.log/lines?before={mid}&limit=5",
        b.url
    ))
    .await
    .unwrap();
    assert_eq!(
        texts(before["entries"].as_array().unwrap()),
        numbered(15, 19)
    );
    // SSE: a client of hub A that dies resumes on hub B with its Last-Event-ID.
    let url = |h: &str| format!("{h}/api/streams/web-1~app.log/events?last=0");
    let mut sse = crate::common::sse::Connection::open(&client(), &url(&a.url), None).await;
    let first = sse.next(TRAVEL).await.unwrap();
    write_lines(&log, 51, 60);
    let (got, id) = sse.entries(10, TRAVEL).await;
    assert_eq!(texts(&got), numbered(51, 60));
    assert!(!first.id.is_empty());
    a.kill9();
    write_lines(&log, 61, 70);
    let mut sse = crate::common::sse::Connection::open(&client(), &url(&b.url), Some(&id)).await;
    let (got, _) = sse.entries(10, TRAVEL).await;
    assert_eq!(
        texts(&got),
        numbered(61, 70),
        "nothing lost or doubled on the other hub"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_merge_hosts_and_the_listing_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let (log1, log2) = two_logs(dir.path(), "a1\n", "b1\n");
    let _a1 = Role::agent(&nats.url, "web-1.example.com", &[log1.to_str().unwrap()]);
    let _a2 = Role::agent(&nats.url, "web-2", &[log2.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    let view = chain(&hub.url, "*~app.log", 2).await;
    let mut pairs: Vec<(String, String)> = view
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap().to_owned(),
                e["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("web-1.example.com~app.log".to_owned(), "a1".to_owned()),
            ("web-2~app.log".to_owned(), "b1".to_owned())
        ]
    );
    let listing = format!("{}/api/streams", hub.url);
    crate::common::wait_until("both hosts listed as following", TRAVEL, || async {
        get(&listing).await.is_some_and(|l| {
            l["streams"]
                .as_array()
                .is_some_and(|s| s.len() == 2 && s.iter().all(|f| f["state"] == "following"))
        })
    })
    .await;
    let listed = get(&listing).await.unwrap();
    let views: Vec<&str> = listed["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        views,
        ["*~app.log", "web-1.example.com~*", "web-2~*", "*~*"]
    );
    let status = client()
        .get(format!("{}/api/streams/app.log/lines", hub.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404, "a standalone id is not a hub's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_engine_settings_are_usage_errors() {
    let (code, err) = Role::run(&[
        "agent",
        "--nats",
        "nats://127.0.0.1:1",
        "--engine-stream",
        "a.b",
        "x.log",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--engine-stream"), "{err}");
    let (code, err) = Role::run(&["hub", "--nats", "nats://127.0.0.1:1", "x.log"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cometail agent"), "{err}");
}
