//! `order=time` on a hub: several hosts' files merged by the event time their agents parsed,
//! history and live, resumed exactly from the event id, against a real engine.

use super::{TRAVEL, chain, client, get, texts};
use crate::common::append;
use crate::common::nats::{Role, two_hosts};
use crate::common::sse::Connection;

/// `10:00:SS` on 2026-12-01, UTC, then `what`.
fn at(second: u32, what: &str) -> String {
    format!("2026-12-01T10:00:{second:02}Z INFO {what}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_merges_hosts_by_event_time_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = two_hosts(
        dir.path(),
        &[at(0, "a0"), at(2, "a2"), at(4, "a4")].concat(),
        &[at(1, "b1"), at(3, "b3"), at(5, "b5")].concat(),
    );
    let (nats, log1, log2) = (&hosts.nats, &hosts.log1, &hosts.log2);
    // Two agents' publishes of lines written 1 ms apart reach the hub further apart under a
    // loaded run than the default hold of 250 ms.
    let hub = Role::hub(&nats.url, &["--merge-delay", "3s"]);
    chain(&hub.url, "*~app.log", 6).await;
    let url = format!(
        "{}/api/events?streams=web-1~app.log,web-2~app.log&order=time&last=3",
        hub.url
    );
    let words = |entries: &[serde_json::Value]| -> Vec<String> {
        texts(entries)
            .iter()
            .map(|t| t.rsplit(' ').next().unwrap().to_owned())
            .collect()
    };
    let mut sse = Connection::open(&client(), &url, None).await;
    assert_eq!(sse.status, 200);
    let (history, _) = sse.entries(6, TRAVEL).await;
    assert_eq!(words(&history), ["a0", "b1", "a2", "b3", "a4", "b5"]);
    // The merged pages the page reads history from: the newest four, then back from them.
    let pages = format!("{}/api/lines?streams=web-1~app.log,web-2~app.log", hub.url);
    let newest = get(&format!("{pages}&last=4")).await.unwrap();
    let entries = newest["entries"].as_array().unwrap();
    assert_eq!(words(entries), ["a2", "b3", "a4", "b5"]);
    assert_eq!(entries[0]["stream"], "web-1~app.log");
    let prev = newest["prev"].as_str().unwrap();
    let older = get(&format!("{pages}&before={prev}")).await.unwrap();
    assert_eq!(words(older["entries"].as_array().unwrap()), ["a0", "b1"]);
    // Written in the reverse of their event times, within the merge delay.
    append(log2, at(7, "b7"));
    append(log1, at(6, "a6"));
    let (live, id) = sse.entries(2, TRAVEL).await;
    assert_eq!(words(&live), ["a6", "b7"]);
    assert!(live.iter().all(|e| e.get("late").is_none()), "{live:?}");
    drop(sse);
    // Written while disconnected: the event id resumes both hosts, in time order again.
    append(log2, at(9, "b9"));
    append(log1, at(8, "a8"));
    let mut sse = Connection::open(&client(), &url, Some(&id)).await;
    let (resumed, _) = sse.entries(2, TRAVEL).await;
    assert_eq!(words(&resumed), ["a8", "b9"]);
    // Older than what was sent: at once, marked late.
    append(log1, at(3, "a3-late"));
    let (late, _) = sse.entries(1, TRAVEL).await;
    assert_eq!(words(&late), ["a3-late"]);
    assert_eq!(late[0]["late"], true, "{late:?}");
    let bad = client()
        .get(format!(
            "{}/api/events?streams=web-1~app.log,web-2~app.log&order=size",
            hub.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // A view and a file it covers would read that file's entries twice: refused.
    for path in ["api/lines", "api/events"] {
        let url = format!("{}/{path}?streams=web-1~app.log,*~app.log", hub.url);
        let overlap = client().get(url).send().await.unwrap();
        assert_eq!(overlap.status(), 400, "{path}");
        let why: serde_json::Value = overlap.json().await.unwrap();
        assert!(why["error"].as_str().unwrap().contains("overlap"), "{why}");
    }
}
