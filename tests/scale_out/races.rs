//! Reads that race the agents' writes: a "newest entries" page (`last=`) taken while batches
//! are being stored, then resumed from its `next`, must hold every entry once. Reading the
//! stream's last sequence after the subjects' heads once passed a batch stored in between by
//! for good (docs/SCALE-OUT.md, "the agent that published nothing").

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{chain, get, write_lines};
use crate::common::nats::{Nats, Role};

/// Line numbers of `entries` by file id (`"line 7"` in `web-1~app.log` → 7).
fn numbers(entries: &[Value], into: &mut BTreeMap<String, Vec<usize>>) {
    for e in entries {
        let (Some(id), Some(text)) = (e["stream"].as_str(), e["text"].as_str()) else {
            continue;
        };
        let n = text.strip_prefix("line ").unwrap().parse().unwrap();
        into.entry(id.to_owned()).or_default().push(n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newest_page_taken_during_writes_resumes_without_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let logs = [one.join("app.log"), two.join("app.log")];
    write_lines(&logs[0], 1, 1);
    write_lines(&logs[1], 1, 1);
    let _a1 = Role::agent(&nats.url, "web-1", &[logs[0].to_str().unwrap()]);
    let _a2 = Role::agent(&nats.url, "web-2", &[logs[1].to_str().unwrap()]);
    let hub = Role::hub(&nats.url, &[]);
    chain(&hub.url, "*~app.log", 2).await;
    const LINES: usize = 300;
    let writer = {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for i in 2..=LINES {
                for log in &logs {
                    write_lines(log, i, i);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // Newest pages of the view taken while both agents publish.
    let mut pages = Vec::new();
    while !writer.is_finished() {
        if let Some(page) = get(&format!("{}/api/streams/*~app.log/lines?last=20", hub.url)).await {
            pages.push(page);
        }
    }
    writer.join().unwrap();
    assert!(pages.len() >= 10, "only {} pages taken", pages.len());
    chain(&hub.url, "*~app.log", 2 * LINES).await;
    for page in &pages {
        let next = page["next"].as_str().unwrap();
        let rest = get(&format!(
            "{}/api/streams/*~app.log/lines?after={next}&limit=10000",
            hub.url
        ))
        .await
        .unwrap();
        let mut by_file = BTreeMap::new();
        numbers(page["entries"].as_array().unwrap(), &mut by_file);
        numbers(rest["entries"].as_array().unwrap(), &mut by_file);
        for id in ["web-1~app.log", "web-2~app.log"] {
            let got = by_file.get(id).cloned().unwrap_or_default();
            let from = got.first().copied().unwrap_or(LINES + 1);
            let missing: Vec<usize> = (from..=LINES).filter(|n| !got.contains(n)).collect();
            assert!(missing.is_empty(), "{id}: lines {missing:?} passed by");
            let whole: Vec<usize> = (from..=LINES).collect();
            assert_eq!(
                got, whole,
                "{id}: the page and its resume, once each, in order"
            );
        }
    }
}
