//! A hub answers as a standalone server does (found by a new-user review): unknown ids are
//! `404` with a JSON reason while announced ones that have no entries yet wait; a file an
//! agent starts following is listed with its state from its first entries, not as `stale`
//! until the agent's next heartbeat.

use std::time::Duration;

use serde_json::Value;

use super::{TRAVEL, chain, client, get, texts};
use crate::common::nats::{Nats, Role};
use crate::common::{append, wait_until};

/// The status of `GET url` and its body as JSON (`Null` when it is not JSON).
async fn answer(url: &str) -> (u16, Value) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
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
