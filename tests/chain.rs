//! One history across the rotation chain (issue 12): rotated files, plain and gzip, rotated by
//! the real `logrotate` while the server runs, read back as one history byte for byte;
//! cursors that survive a rename and a compression; a member that leaves the chain; damaged
//! and unsafe siblings.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{Server, append};

fn lines(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag}-{i:06} some text\n"))
        .collect()
}

fn gzip_to(path: &Path, text: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// Runs the real logrotate on `app.log` with `options`, forced.
fn logrotate(dir: &Path, options: &str) {
    let conf = dir.join("rotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{}/app.log {{\n  rotate 10\n  missingok\n  create\n{options}\n}}\n",
            dir.display()
        ),
    )
    .unwrap();
    let status = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.join("state"))
        .arg(&conf)
        .status()
        .expect("logrotate is installed (scripts/test.sh installs it)");
    assert!(status.success());
}

/// Pages `before=` from the end until `prev` is null; returns every entry, oldest first.
async fn all_history(s: &Server, limit: usize) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut page = s
        .ok_json(&format!("/api/streams/app.log/lines?last={limit}"))
        .await;
    let mut round = 0;
    loop {
        let entries = page["entries"].as_array().unwrap().clone();
        out.splice(0..0, entries);
        let Some(prev) = page["prev"].as_str() else {
            return out;
        };
        round += 1;
        page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?before={prev}&limit={limit}"
            ))
            .await;
        assert!(round < 1000, "paging back never ends");
    }
}

fn texts(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e["text"].as_str().map(str::to_owned))
        .collect()
}

fn notices(entries: &[Value], kind: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["notice"] == kind)
        .map(|e| e["detail"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn want(tags: &[(&str, usize)]) -> Vec<String> {
    tags.iter()
        .flat_map(|(t, n)| lines(t, *n).lines().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn history_runs_back_through_a_chain_logrotate_rotates_while_following() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), lines("a", 3000));
    let s = Server::start_in(
        dir,
        &[
            "--rotated-history",
            "--rotate-grace",
            "100ms",
            "{dir}/app.log",
        ],
    )
    .await;
    s.wait_last("app.log", "a-002999 some text").await;
    let tags = [
        ("a", 3000),
        ("b", 2000),
        ("c", 2500),
        ("d", 1000),
        ("e", 500),
    ];
    for (tag, n) in &tags[1..] {
        logrotate(s.dir.path(), "  compress\n  delaycompress");
        append(&s.path("app.log"), lines(tag, *n));
        s.wait_last("app.log", &format!("{tag}-{:06} some text", n - 1))
            .await;
    }
    // app.log (e), app.log.1 (d), app.log.2.gz (c), .3.gz (b), .4.gz (a): three generations
    // were compressed (new inodes) after cometail saw them rotate.
    assert!(s.path("app.log.4.gz").exists() && s.path("app.log.1").exists());
    let entries = all_history(&s, 700).await;
    assert_eq!(texts(&entries), want(&tags), "every line once, in order");
    assert!(
        notices(&entries, "gap").is_empty(),
        "{:?}",
        notices(&entries, "gap")
    );
    let markers = notices(&entries, "rotated");
    assert!(
        markers.contains(&"older history: app.log.4.gz".to_owned()),
        "{markers:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_survive_a_rename_and_a_compression() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    append(&p("app.log.2"), lines("old", 2000));
    append(&p("app.log.1"), lines("mid", 2000));
    append(&p("app.log"), lines("new", 10));
    let s = Server::start_in(dir, &["--rotated-history", "{dir}/app.log"]).await;
    s.wait_last("app.log", "new-000009 some text").await;
    let entries = all_history(&s, 1000).await;
    let at = |text: &str| {
        entries
            .iter()
            .find(|e| e["text"] == text)
            .and_then(|e| e["cursor"].as_str())
            .unwrap()
            .to_owned()
    };
    let in_mid = at("mid-001000 some text");
    let in_old = at("old-000500 some text");
    // logrotate's next turn: .2 -> .3.gz (compressed: a new inode), .1 -> .2.
    let text = std::fs::read(s.path("app.log.2")).unwrap();
    gzip_to(&s.path("app.log.3.gz"), &text);
    std::fs::remove_file(s.path("app.log.2")).unwrap();
    std::fs::rename(s.path("app.log.1"), s.path("app.log.2")).unwrap();
    for (cursor, next, before) in [
        (&in_mid, "mid-001001 some text", "mid-000999 some text"),
        (&in_old, "old-000501 some text", "old-000499 some text"),
    ] {
        let page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?after={cursor}&limit=1"
            ))
            .await;
        assert_eq!(texts(page["entries"].as_array().unwrap()), [next]);
        let page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?before={cursor}&limit=1"
            ))
            .await;
        assert_eq!(texts(page["entries"].as_array().unwrap()), [before]);
    }
    // Reading on from the oldest file runs into the newer ones and the followed file.
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?after={in_old}&limit=10000"
        ))
        .await;
    let got = texts(page["entries"].as_array().unwrap());
    assert_eq!(got.len(), 1499 + 2000 + 10);
    assert_eq!(got.last().unwrap(), "new-000009 some text");
    // `rotate N` deletes the oldest file: its cursors get a gap, never another line.
    std::fs::remove_file(s.path("app.log.3.gz")).unwrap();
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?before={in_old}&limit=5"
        ))
        .await;
    let got = page["entries"].as_array().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["notice"], "gap");
    assert_eq!(page["prev"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_and_unsafe_siblings_leave_the_rest_readable() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // .7.gz: truncated mid-way (an interrupted logrotate); .6.gz: plain text despite its name;
    // .5: a directory; .4: a symlink loop; .3: a symlink to a file nobody named.
    let truncated = lines("cut", 20_000);
    gzip_to(&p("app.log.7.gz"), truncated.as_bytes());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(p("app.log.7.gz"))
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
    append(&p("app.log.6.gz"), lines("plain", 100));
    std::fs::create_dir(p("app.log.5")).unwrap();
    std::os::unix::fs::symlink(p("app.log.4"), p("app.log.4")).unwrap();
    append(&p("secret"), "do not serve\n");
    std::os::unix::fs::symlink(p("secret"), p("app.log.3")).unwrap();
    append(&p("app.log.1"), lines("one", 100));
    append(&p("app.log"), lines("now", 10));
    let s = Server::start_in(dir, &["--rotated-history", "{dir}/app.log"]).await;
    s.wait_last("app.log", "now-000009 some text").await;
    let entries = all_history(&s, 5000).await;
    let got = texts(&entries);
    let cut: Vec<&String> = got.iter().filter(|t| t.starts_with("cut-")).collect();
    assert!(!cut.is_empty() && cut.len() < 20_000, "{}", cut.len());
    // Whole lines only, in order, up to the damage.
    let want_cut = want(&[("cut", cut.len())]);
    assert_eq!(cut, want_cut.iter().collect::<Vec<_>>());
    let rest: Vec<String> = got.into_iter().filter(|t| !t.starts_with("cut-")).collect();
    assert_eq!(rest, want(&[("plain", 100), ("one", 100), ("now", 10)]));
    let gaps = notices(&entries, "gap");
    assert!(
        gaps.iter().any(|g| g.contains("app.log.7.gz")),
        "the damage is told: {gaps:?}"
    );
    assert!(!entries.iter().any(|e| e["text"] == "do not serve"));
}
