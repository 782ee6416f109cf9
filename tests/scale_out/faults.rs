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
