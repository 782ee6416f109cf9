//! The hub's cache and fan-out: viewers of a file are fed from one engine reader per hub per
//! view, so the engine's load does not grow with the viewers (`hub/view.rs`).

use super::{TRAVEL, chain, client, texts, write_lines};
use crate::common::nats::{Nats, Role};
use crate::common::sse::Connection;

/// A figure from the hub's `/metrics` (classic text format).
async fn figure(hub: &str, name: &str) -> u64 {
    let text = client()
        .get(format!("{hub}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}")) as u64
}

/// Appends `count` lines one at a time, each once every viewer has the one before, and
/// returns the engine reads the hub made meanwhile.
async fn engine_reads_for(
    hub: &str,
    log: &std::path::Path,
    viewers: &mut [Connection],
    from: usize,
    count: usize,
) -> u64 {
    let before = figure(hub, "cometail_hub_engine_reads_total").await;
    for i in from..from + count {
        write_lines(log, i, i);
        for v in viewers.iter_mut() {
            let (got, _) = v.entries(1, TRAVEL).await;
            assert_eq!(texts(&got), [format!("line {i}")]);
        }
    }
    figure(hub, "cometail_hub_engine_reads_total").await - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_viewers_cost_the_engine_what_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let log = dir.path().join("app.log");
    write_lines(&log, 1, 3);
    let _agent = Role::agent(&nats.url, "web-1", &[log.to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    chain(&hub.url, "web-1~app.log", 3).await;
    let url = format!("{}/api/streams/web-1~app.log/events?last=0", hub.url);
    let open = || async {
        let mut c = Connection::open(&client(), &url, None).await;
        assert_eq!(c.status, 200);
        c.next(TRAVEL).await.expect("the first (empty) page");
        c
    };
    let mut viewers = vec![open().await];
    let alone = engine_reads_for(&hub.url, &log, &mut viewers, 4, 10).await;
    for _ in 1..40 {
        viewers.push(open().await);
    }
    let crowd = engine_reads_for(&hub.url, &log, &mut viewers, 14, 10).await;
    eprintln!("engine reads for 10 appends: 1 viewer {alone}, 40 viewers {crowd}");
    // Read per viewer, the crowd would cost at least 40 x 2 reads per append (a get of the
    // cursor's batch and a next): 800. Read per view, it costs what one viewer does, give or
    // take the wake-ups' timing.
    assert!(
        crowd <= 2 * alone + 40,
        "engine reads grew with the viewers: 1 viewer {alone}, 40 viewers {crowd}"
    );
    assert_eq!(figure(&hub.url, "cometail_hub_views").await, 1);
    // Long polls of the same file are fed from the same view.
    assert_eq!(texts(&chain(&hub.url, "web-1~app.log", 23).await).len(), 23);
    assert_eq!(figure(&hub.url, "cometail_hub_views").await, 1);
}
