//! Faults from the failure matrix: the engine SIGKILLed and restarted while lines are written
//! and a reader follows; nothing lost, nothing doubled.

use super::{TRAVEL, chain, get, numbered, texts, write_lines};
use crate::common::nats::{Nats, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_killed_mid_stream_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 10);
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    let before = chain(&hub.url, "web-1~app.log", 10).await;
    let cursor = before.last().unwrap()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // A writer keeps writing through the outage.
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..40 {
                write_lines(&log, 11 + i * 10, 20 + i * 10);
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
        })
    };
    nats.kill9();
    // The fault window: the engine stays down while lines are written.
    std::thread::sleep(std::time::Duration::from_millis(500));
    nats.restart();
    writer.join().unwrap();
    let all = chain(&hub.url, "web-1~app.log", 410).await;
    assert_eq!(texts(&all), numbered(1, 410));
    assert!(all.iter().all(|e| e.get("notice").is_none()), "no gap");
    // The cursor minted before the crash still resolves exactly.
    let after = get(&format!(
        "{}/api/streams/web-1~app.log/lines?after={cursor}&limit=10000",
        hub.url
    ))
    .await
    .unwrap();
    assert_eq!(
        texts(after["entries"].as_array().unwrap()),
        numbered(11, 410)
    );
    let _ = TRAVEL;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_past_retention_are_an_explicit_gap_and_nothing_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 10);
    let args = ["--retention-bytes", "64K", log.to_str().unwrap()];
    let _agent = Role::agent(&nats.url, "web-1", &args);
    let hub = Role::hub(&nats.url, &[]);
    let old = chain(&hub.url, "web-1~app.log", 10).await;
    let cursor = old[4]["cursor"].as_str().unwrap().to_owned();
    // A live read makes the hub keep the view's newest entries in its cache: batches the
    // engine drops must leave that cache too, or this hub would answer unlike the others.
    let live = format!(
        "{}/api/streams/web-1~app.log/lines?after={}&wait=0",
        hub.url,
        old[9]["cursor"].as_str().unwrap()
    );
    assert!(get(&live).await.is_some());
    // About 150 KiB in small batches: the oldest batches fall out of the 64 KiB stream.
    let pad = "x".repeat(100);
    for chunk in 0..100 {
        let first = 11 + chunk * 10;
        let text: String = (first..first + 10)
            .map(|i| format!("line {i} {pad}\n"))
            .collect();
        crate::common::append(&log, text);
        let last = format!("line {} {pad}", first + 9);
        crate::common::wait_until("the batch reaches the hub", TRAVEL, || async {
            get(&format!(
                "{}/api/streams/web-1~app.log/lines?last=1",
                hub.url
            ))
            .await
            .is_some_and(|p| texts(p["entries"].as_array().unwrap()) == [last.clone()])
        })
        .await;
    }
    // A hub learns of the engine's evictions within its refresh (2 s).
    let after = |hub: String| {
        let cursor = cursor.clone();
        async move {
            get(&format!(
                "{hub}/api/streams/web-1~app.log/lines?after={cursor}&limit=10000"
            ))
            .await
            .unwrap()
        }
    };
    crate::common::wait_until("the evicted entries are a gap", TRAVEL, || async {
        after(hub.url.clone()).await["entries"][0]["notice"] == "gap"
    })
    .await;
    let page = after(hub.url.clone()).await;
    let fresh = Role::hub(&nats.url, &[]);
    assert_eq!(
        page,
        after(fresh.url.clone()).await,
        "every hub answers alike"
    );
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["notice"], "gap", "{:?}", entries[0]);
    assert!(
        entries[0]["detail"]
            .as_str()
            .unwrap()
            .contains("web-1:app.log"),
        "{:?}",
        entries[0]
    );
    let after_gap: Vec<usize> = texts(&entries[1..])
        .iter()
        .map(|t| t.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(after_gap[0] > 6, "the evicted lines are not served");
    let expected: Vec<usize> = (after_gap[0]..=1010).collect();
    assert_eq!(after_gap, expected, "the rest, once each, in order");
    assert_eq!(
        entries.iter().filter(|e| e.get("notice").is_some()).count(),
        1
    );
}
