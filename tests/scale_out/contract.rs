//! A hub answers as a standalone server does (found by a new-user review): a file an agent
//! starts following is listed with its state from its first entries, not as `stale` until
//! the agent's next heartbeat.

use std::time::Duration;

use super::{TRAVEL, chain, get};
use crate::common::nats::{Nats, Role};
use crate::common::{append, wait_until};

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
