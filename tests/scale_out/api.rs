//! The rest of the standalone API on a hub: the multiplexed `/api/events`, `/raw` (with
//! `follow`), `q=`, `at=`, `/metrics` and the probes, `--unix-socket` and `--metrics-bind`,
//! against a real engine.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{TRAVEL, chain, client, get, numbered, texts, write_lines};
use crate::common::append;
use crate::common::nats::{Nats, Role, free_port, two_hosts};
use crate::common::net::get_unix;
use crate::common::sse::Connection;
use crate::common::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_carries_two_hosts_and_resumes_both() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = two_hosts(dir.path(), "a0\n", "b0\n");
    let (log1, log2) = (&hosts.log1, &hosts.log2);
    let hub = Role::hub(&hosts.nats.url, &[]);
    chain(&hub.url, "*~app.log", 2).await;
    let url = format!(
        "{}/api/events?streams=web-1~app.log,web-2~app.log&last=0",
        hub.url
    );
    let mut sse = Connection::open(&client(), &url, None).await;
    assert_eq!(sse.status, 200);
    // The two (empty) first pages name both ids.
    sse.next(TRAVEL).await.unwrap();
    let second = sse.next(TRAVEL).await.unwrap();
    assert!(
        second.id.contains("web-1~app.log:") && second.id.contains("web-2~app.log:"),
        "{}",
        second.id
    );
    append(log1, "a1\n");
    append(log2, "b1\n");
    let mut got: Vec<(String, String)> = Vec::new();
    let mut id = String::new();
    while got.len() < 2 {
        let e = sse.next(TRAVEL).await.expect("an event");
        let data = e.json();
        for entry in data["entries"].as_array().unwrap() {
            got.push((
                data["stream"].as_str().unwrap().to_owned(),
                entry["text"].as_str().unwrap().to_owned(),
            ));
        }
        id = e.id;
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("web-1~app.log".to_owned(), "a1".to_owned()),
            ("web-2~app.log".to_owned(), "b1".to_owned())
        ]
    );
    drop(sse);
    // Written while disconnected: the Last-Event-ID resumes both, nothing lost or doubled.
    append(log1, "a2\n");
    append(log2, "b2\n");
    let mut sse = Connection::open(&client(), &url, Some(&id)).await;
    let mut again: Vec<String> = Vec::new();
    while again.len() < 2 {
        let e = sse.next(TRAVEL).await.expect("an event");
        again.extend(texts(e.json()["entries"].as_array().unwrap()));
    }
    again.sort();
    assert_eq!(again, ["a2", "b2"]);
    let bad = client()
        .get(format!("{}/api/events?streams=nope", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 404);
    let bad = client()
        .get(format!("{}/api/events?streams=", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_q_and_at_read_the_engine_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    append(&log, "GET /a 200\nGET /b 500 error\nGET /c 200\n");
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    chain(&hub.url, "web-1~app.log", 3).await;
    let base = format!("{}/api/streams/web-1~app.log", hub.url);
    let raw = client()
        .get(format!("{base}/raw?last=2"))
        .send()
        .await
        .unwrap();
    assert!(
        raw.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(raw.text().await.unwrap(), "GET /b 500 error\nGET /c 200\n");
    let page = get(&format!("{base}/lines?last=100&q=error"))
        .await
        .unwrap();
    assert_eq!(
        texts(page["entries"].as_array().unwrap()),
        ["GET /b 500 error"]
    );
    let bad = client()
        .get(format!("{base}/lines?q=%22unclosed"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // A long poll with `q` waits past lines that do not match.
    let next = page["next"].as_str().unwrap().to_owned();
    let poll = tokio::spawn({
        let url = format!("{base}/lines?after={next}&wait=20&q=error");
        async move { get(&url).await.unwrap() }
    });
    // `at`: the instant after the first three lines reached the engine.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    append(&log, "GET /d 200\n");
    append(&log, "GET /e 503 error\n");
    let polled = poll.await.unwrap();
    assert_eq!(
        texts(polled["entries"].as_array().unwrap()),
        ["GET /e 503 error"]
    );
    let at = get(&format!("{base}/lines?at={now}")).await.unwrap();
    assert_eq!(
        texts(at["entries"].as_array().unwrap()),
        ["GET /d 200", "GET /e 503 error"]
    );
    // `raw?follow=1` streams new lines as text.
    let mut follow = client()
        .get(format!("{base}/raw?last=0&follow=1"))
        .send()
        .await
        .unwrap();
    write_lines(&log, 1, 3);
    let mut text = String::new();
    let end = tokio::time::Instant::now() + TRAVEL;
    while text.lines().count() < 3 {
        let chunk = tokio::time::timeout_at(end, follow.chunk())
            .await
            .expect("raw lines within the deadline")
            .unwrap()
            .expect("the response goes on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(text.lines().collect::<Vec<_>>(), numbered(1, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness_follow_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    append(&log, "x\n");
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    chain(&hub.url, "web-1~app.log", 1).await;
    let status = |path: &'static str| {
        let url = format!("{}{path}", hub.url);
        async move { client().get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(status("/readyz").await, 200);
    let metrics = client()
        .get(format!("{}/metrics", hub.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "cometail_hub_engine_reads_total",
        "cometail_hub_views",
        "cometail_hub_engine_up 1",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    nats.kill9();
    wait_until("the hub says it is not ready", TRAVEL, || async {
        status("/readyz").await == 503
    })
    .await;
    assert_eq!(status("/healthz").await, 200, "alive, though not ready");
    nats.restart();
    wait_until("ready again", TRAVEL, || async {
        status("/readyz").await == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_started_before_its_engine_answers_at_once_and_serves_once_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hub = Role::hub_starting(&format!("nats://127.0.0.1:{port}"), &[]);
    // Every request gets an answer while the engine is not there: none hangs.
    let answer = |path: &'static str| {
        let url = format!("{}{path}", hub.url);
        async move {
            let resp = tokio::time::timeout(TRAVEL, client().get(url).send())
                .await
                .expect("answered at once, not held")
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    assert_eq!(answer("/healthz").await.0, 200, "alive while it waits");
    assert_eq!(answer("/readyz").await.0, 503);
    let refused = client().get(format!("{}/", hub.url)).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    for (name, value) in [("retry-after", "1"), ("x-content-type-options", "nosniff")] {
        assert_eq!(refused.headers()[name], value, "{name}");
    }
    let (status, body) = answer("/api/streams").await;
    assert_eq!(status, 503);
    let reason: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        reason["error"]
            .as_str()
            .unwrap()
            .contains("waiting for its engine"),
        "{body}"
    );
    // The engine comes, then an agent (which creates the stream): the hub serves it.
    let nats = Nats::start_with(dir.path(), port, &[]);
    let log = dir.path().join("app.log");
    append(&log, "first\n");
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    chain(&hub.url, "web-1~app.log", 1).await;
    assert_eq!(answer("/readyz").await.0, 200);
    let page = get(&format!(
        "{}/api/streams/web-1~app.log/lines?last=5",
        hub.url
    ))
    .await
    .expect("a page");
    assert_eq!(texts(page["entries"].as_array().unwrap()), ["first"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_filters_by_the_level_and_time_its_agents_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    append(
        &log,
        "2026-12-01T10:00:00Z INFO started\n2026-12-01T10:00:01Z ERROR disk full\n\
         2026-12-01T10:00:02Z WARN slow\n2026-12-01T10:00:03Z DEBUG tick\n",
    );
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    let all = chain(&hub.url, "web-1~app.log", 4).await;
    // The event time rides with each entry; the hub reads it as its own (`ts`).
    assert_eq!(all[1]["ts"], 1_796_119_201_000_i64, "{all:?}");
    let base = format!("{}/api/streams/web-1~app.log", hub.url);
    // Before the hub took the agents' levels as the entries' own, `level>=` matched nothing.
    let page = get(&format!("{base}/lines?last=100&q=level%3E%3Dwarn"))
        .await
        .unwrap();
    assert_eq!(
        texts(page["entries"].as_array().unwrap()),
        [
            "2026-12-01T10:00:01Z ERROR disk full",
            "2026-12-01T10:00:02Z WARN slow"
        ]
    );
    let page = get(&format!(
        "{base}/lines?last=100&q=level%3C%3Dinfo%20-started"
    ))
    .await
    .unwrap();
    assert_eq!(
        texts(page["entries"].as_array().unwrap()),
        ["2026-12-01T10:00:03Z DEBUG tick"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_serves_its_unix_socket_and_its_metrics_listener() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let (log, socket) = (dir.path().join("app.log"), dir.path().join("hub.sock"));
    write_lines(&log, 1, 2);
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let metrics = format!("127.0.0.1:{}", free_port());
    let hub = Role::hub(
        &nats.url,
        &[
            "--unix-socket",
            socket.to_str().unwrap(),
            "--metrics-bind",
            &metrics,
        ],
    );
    chain(&hub.url, "web-1~app.log", 2).await;
    // The whole application on the Unix socket, as on TCP.
    let (status, body) = get_unix(&socket, "/api/streams/web-1~app.log/lines?last=1").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("line 2"), "{body}");
    // `/metrics` and the probes alone on the metrics listener, the hub's figures included.
    let scraped = client()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("cometail_hub_engine_up 1"), "{text}");
    let ready = client()
        .get(format!("http://{metrics}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let lines = client()
        .get(format!("http://{metrics}/api/streams"))
        .send()
        .await
        .unwrap();
    assert_eq!(lines.status(), 404, "only /metrics and the probes");
}
