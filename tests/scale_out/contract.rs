//! A hub answers as a standalone server does (found by a new-user review): unknown ids are
//! `404` with a JSON reason while announced ones that have no entries yet wait; `download`,
//! `grep` and `until` work; a file an agent starts following is listed with its state from
//! its first entries, not as `stale` until the agent's next heartbeat.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{TRAVEL, chain, client, get, texts};
use crate::common::nats::{Nats, Role};
use crate::common::{append, wait_until};

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// The status of `GET url` and its body as JSON (`Null` when it is not JSON).
async fn answer(url: &str) -> (u16, Value) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The body of `GET url` as text.
async fn text(url: &str) -> String {
    let resp = client().get(url).send().await.unwrap();
    resp.text().await.unwrap()
}

/// The `Content-Disposition` of `GET url` (which must answer 200).
async fn disposition(url: &str) -> String {
    let resp = client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let value = resp.headers().get("content-disposition");
    value.map_or_else(String::new, |v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_404_and_announced_files_without_entries_wait() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    let later = dir.path().join("later.log");
    append(&log, "a1\n");
    let _agent = Role::agent(
        &nats.url,
        "web-1",
        &[log.to_str().unwrap(), later.to_str().unwrap()],
    );
    let hub = Role::hub(&nats.url, &[]);
    chain(&hub.url, "web-1~app.log", 1).await;
    // `later.log` does not exist: its agent announces it as `waiting`.
    let listing = format!("{}/api/streams", hub.url);
    wait_until("later.log listed as waiting", TRAVEL, || async {
        get(&listing).await.is_some_and(|l| {
            l["streams"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|f| f["id"] == "web-1~later.log" && f["state"] == "waiting")
            })
        })
    })
    .await;
    let h = &hub.url;
    for path in [
        "api/streams/web-1~nope.log/lines?last=5",
        "api/streams/web-9~app.log/lines?last=0",
        "api/streams/web-1~nope.log/raw?last=5",
        "api/streams/web-1~nope.log/raw?last=5&download=1",
        "api/streams/web-1~nope.log/raw?follow=1",
        "api/streams/web-1~nope.log/events",
        "api/streams/web-1~nope.log/lines?at=0",
        "api/streams/web-9~*/lines?last=5",
        "api/streams/*~nope.log/events",
        "api/events?streams=web-1~app.log,web-1~nope.log",
        "api/lines?streams=web-1~app.log,web-9~app.log",
    ] {
        let (status, why) = answer(&format!("{h}/{path}")).await;
        assert_eq!(status, 404, "{path}: {why}");
        assert!(
            why["error"]
                .as_str()
                .is_some_and(|e| e.contains("no stream")),
            "{path}: {why}"
        );
    }
    // Known ids: a file with entries, one announced without any, and the views over them.
    for path in [
        "api/streams/web-1~app.log/lines?last=5",
        "api/streams/web-1~later.log/lines?last=5",
        "api/streams/*~later.log/lines?last=5",
        "api/streams/web-1~*/lines?last=5",
        "api/streams/*~*/lines?last=5",
    ] {
        let (status, why) = answer(&format!("{h}/{path}")).await;
        assert_eq!(status, 200, "{path}: {why}");
    }
    // A long poll on the announced file waits for its first entries, as a standalone
    // server's poll waits for a file that does not exist yet.
    let base = format!("{h}/api/streams/web-1~later.log/lines");
    let (_, empty) = answer(&format!("{base}?last=5")).await;
    assert_eq!(empty["entries"], serde_json::json!([]));
    let next = empty["next"].as_str().unwrap().to_owned();
    let poll = tokio::spawn({
        let url = format!("{base}?after={next}&wait=20");
        async move { answer(&url).await }
    });
    append(&later, "late 1\n");
    let (status, page) = poll.await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(texts(page["entries"].as_array().unwrap()), ["late 1"]);
}

/// Starts an engine, an agent of `web-1` following `app.log` with three access lines and a
/// hub, and waits for the lines on the hub; also returns the hub's base URL of the file.
async fn three_lines(dir: &std::path::Path) -> (Nats, Role, Role, String) {
    let nats = Nats::start(dir);
    let log = dir.join("app.log");
    append(&log, "GET /a 200\nGET /b 500 error\nGET /c 200\n");
    let agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    chain(&hub.url, "web-1~app.log", 3).await;
    let base = format!("{}/api/streams/web-1~app.log", hub.url);
    (nats, agent, hub, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_is_an_attachment_as_on_a_standalone_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_nats, _agent, _hub, base) = three_lines(dir.path()).await;
    // An attachment named after the id (`~` is not in the safe set), with the range.
    for (path, name) in [
        ("lines?last=5&download=1", "web-1_app.log.json"),
        ("raw?last=5&download=true", "web-1_app.log.log"),
        ("lines?at=1000&download=1", "web-1_app.log-1000.json"),
    ] {
        assert_eq!(
            disposition(&format!("{base}/{path}")).await,
            format!("attachment; filename=\"{name}\""),
            "{path}"
        );
    }
    assert_eq!(disposition(&format!("{base}/lines?last=5")).await, "");
    let (status, _) = answer(&format!("{base}/lines?last=5&download=yes")).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grep_and_until_cut_pages_as_on_a_standalone_server() {
    let dir = tempfile::tempdir().unwrap();
    let start = now_ms();
    let (_nats, _agent, hub, base) = three_lines(dir.path()).await;
    let log = dir.path().join("app.log");
    // `grep`: the page as read, lines that do not match dropped; `next` stays the last
    // entry scanned.
    let (status, page) = answer(&format!("{base}/lines?last=5&grep=500")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        texts(page["entries"].as_array().unwrap()),
        ["GET /b 500 error"]
    );
    let all = chain(&hub.url, "web-1~app.log", 3).await;
    assert_eq!(
        page["next"], all[2]["cursor"],
        "next is after every line scanned"
    );
    let raw = text(&format!("{base}/raw?last=5&grep=(?i)ERROR")).await;
    assert_eq!(raw, "GET /b 500 error\n");
    let (status, why) = answer(&format!("{base}/lines?grep=(")).await;
    assert_eq!(status, 400, "{why}");
    // A long poll with `grep` waits past lines that do not match.
    let next = page["next"].as_str().unwrap().to_owned();
    let poll = tokio::spawn({
        let url = format!("{base}/lines?after={next}&wait=20&grep=error");
        async move { answer(&url).await }
    });

    // `until`: the range ends before the first batch stored at or after it. The first
    // three lines were stored before `until`, the next ones after it.
    let until = now_ms() + 1;
    wait_until(
        "the clock passes `until`",
        Duration::from_secs(5),
        || async { now_ms() > until },
    )
    .await;
    append(&log, "GET /d 200\nGET /e 503 error\n");
    let (_, polled) = poll.await.unwrap();
    assert_eq!(
        texts(polled["entries"].as_array().unwrap()),
        ["GET /e 503 error"]
    );
    chain(&hub.url, "web-1~app.log", 5).await;
    let (status, page) = answer(&format!("{base}/lines?last=100&until={until}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        texts(page["entries"].as_array().unwrap()),
        ["GET /a 200", "GET /b 500 error", "GET /c 200"]
    );
    let raw = text(&format!("{base}/raw?at={start}&until={until}&grep=200")).await;
    assert_eq!(raw, "GET /a 200\nGET /c 200\n");
    // A long poll bounded by `until` answers at once, as on a standalone server.
    let last = page["next"].as_str().unwrap();
    let asked = tokio::time::Instant::now();
    let (status, page) = answer(&format!("{base}/lines?after={last}&wait=20&until={until}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "a bounded long poll waited {:?}",
        asked.elapsed()
    );
    let (status, why) = answer(&format!("{base}/lines?at={until}&until={start}")).await;
    assert_eq!(status, 400, "until before at: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_is_listed_with_its_state_before_the_next_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    append(&logs.join("a.log"), "a1\n");
    let pattern = logs.join("*.log");
    // The default heartbeat: a file whose listing waited for the next beat would show as
    // `stale` for up to 15 s.
    let _agent = Role::agent_every(&nats.url, "web-1", "15s", &[pattern.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    chain(&hub.url, "web-1~a.log", 1).await;
    let listing = format!("{}/api/streams", hub.url);
    let state = |id: &'static str| {
        let listing = listing.clone();
        async move {
            let l = get(&listing).await?;
            l["streams"]
                .as_array()?
                .iter()
                .find(|f| f["id"] == id)
                .map(|f| (f["state"].as_str().unwrap_or("").to_owned(), f.clone()))
        }
    };
    wait_until("a.log listed", TRAVEL, || async {
        state("web-1~a.log").await.is_some()
    })
    .await;
    append(&logs.join("b.log"), "b1\n");
    // Listed with the agent's state (`waiting` for a moment, "not looked at yet", if the
    // beat is quicker than the follower), then `following`: never `stale`.
    let end = tokio::time::Instant::now() + TRAVEL;
    loop {
        match state("web-1~b.log").await {
            Some((s, _)) if s == "following" => break,
            Some((s, file)) => assert_ne!(s, "stale", "a new file on a live host: {file}"),
            None => {}
        }
        assert!(tokio::time::Instant::now() < end, "b.log never following");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (a, file) = state("web-1~a.log").await.unwrap();
    assert_eq!(a, "following", "{file}");
}
