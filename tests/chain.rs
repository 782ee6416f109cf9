//! One history across the rotation chain (issue 12): rotated files, plain and gzip, rotated by
//! the real `logrotate` while the server runs, read back as one history byte for byte;
//! cursors that survive a rename and a compression; a member that leaves the chain; damaged
//! and unsafe siblings.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

/// The text of every rotated file and the followed file, oldest first (numbered names
/// descending, dated names ascending), decompressed: what the history must read back as.
fn files_text(dir: &Path) -> Vec<u8> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("app.log-"))
        .collect();
    names.sort();
    names.push("app.log".into());
    let mut out = Vec::new();
    for n in names {
        let bytes = std::fs::read(dir.join(&n)).unwrap();
        if n.ends_with(".gz") {
            let mut d = flate2::read::GzDecoder::new(&bytes[..]);
            std::io::Read::read_to_end(&mut d, &mut out).unwrap();
        } else {
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// Asserts `got == want` as text, reporting the first line that differs (not a byte dump).
fn same_text(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let (g, w) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    let (gl, wl): (Vec<&str>, Vec<&str>) = (g.lines().collect(), w.lines().collect());
    let i = gl.iter().zip(&wl).take_while(|(a, b)| a == b).count();
    panic!(
        "{what}: {} lines, want {}; first difference at line {i}: {:?} vs {:?}",
        gl.len(),
        wl.len(),
        gl.get(i),
        wl.get(i)
    );
}

/// `text` without the `==> … <==` notice lines a plain-text answer carries.
fn without_notices(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        if !(line.starts_with(b"==> ") && line.ends_with(b" <==\n")) {
            out.extend_from_slice(line);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dateext_chain_reads_back_byte_exact_and_its_downloads_equal_the_files() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), lines("a", 2000));
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
    s.wait_last("app.log", "a-001999 some text").await;
    let tags = [
        ("a", 2000),
        ("b", 1500),
        ("c", 1200),
        ("d", 800),
        ("e", 300),
    ];
    for (tag, n) in &tags[1..] {
        // `-%s` names each rotation by its second: the next one waits for a new second
        // (and 100 ms more: `time()` reads a coarser clock than `SystemTime`).
        let ms = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        let next = (ms() / 1000 + 1) * 1000 + 100;
        crate::common::wait_until("a new second", Duration::from_secs(3), || async {
            ms() >= next
        })
        .await;
        logrotate(
            s.dir.path(),
            "  compress\n  delaycompress\n  dateext\n  dateformat -%Y%m%d-%s",
        );
        append(&s.path("app.log"), lines(tag, *n));
        s.wait_last("app.log", &format!("{tag}-{:06} some text", n - 1))
            .await;
    }
    let gz = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".gz")
        })
        .count();
    assert_eq!(gz, 3, "three dated .gz files and one dated plain file");
    let expected = files_text(s.dir.path());
    let mut want_text = want(&tags).join("\n");
    want_text.push('\n');
    same_text(&expected, want_text.as_bytes(), "the files");
    // Paged back as one history: byte for byte the files' text, one marker per rotated file.
    let entries = all_history(&s, 700).await;
    let mut got = texts(&entries).join("\n");
    got.push('\n');
    same_text(got.as_bytes(), &expected, "the history");
    assert!(notices(&entries, "gap").is_empty());
    // A marker at the start of every file but the first the stream follows: the three
    // `.gz` as older history, the dated plain file and app.log as the rotations it saw.
    let markers = notices(&entries, "rotated");
    let older = markers
        .iter()
        .filter(|m| m.starts_with("older history: app.log-"));
    assert_eq!(
        older.filter(|m| m.ends_with(".gz")).count(),
        3,
        "{markers:?}"
    );
    assert_eq!(markers.len(), 5, "{markers:?}");
    // `/raw` after the first line, across every file, as a download: the files' bytes.
    let first = entries.iter().find(|e| e["text"].is_string()).unwrap();
    let cursor = first["cursor"].as_str().unwrap();
    let resp = s
        .client
        .get(format!(
            "{}/api/streams/app.log/raw?after={cursor}&limit=10000&download=1",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let body = resp.bytes().await.unwrap();
    let first_line = "a-000000 some text\n".len();
    same_text(
        &without_notices(&body),
        &expected[first_line..],
        "the download",
    );
    // With `q`: exactly the matching lines of every file.
    let body = s
        .client
        .get(format!(
            "{}/api/streams/app.log/raw?after={cursor}&limit=10000&q=00012",
            s.url
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let want_q: Vec<u8> = expected
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| l.windows(5).any(|w| w == b"00012"))
        .flatten()
        .copied()
        .collect();
    same_text(&without_notices(&body), &want_q, "the `q` download");
}

/// A renamed file the follower has not looked at since (a poll a minute away) holds more
/// than the stream's generation has read, fewer than 256 bytes: it is still the stream's own
/// file, not older history, so its lines are read once (issue 12: they came twice, from the
/// generation and again from `app.log.1`).
#[tokio::test(flavor = "multi_thread")]
async fn a_short_file_renamed_before_the_follower_looks_again_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "one\ntwo\n");
    let s = Server::start_in(
        dir,
        &[
            "--rotated-history",
            "--poll",
            "--poll-interval",
            "60s",
            "{dir}/app.log",
        ],
    )
    .await;
    s.wait_last("app.log", "two").await;
    std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    // The writer has not reopened: its line goes to the renamed file.
    append(&s.path("app.log.1"), "three\n");
    let entries = all_history(&s, 100).await;
    assert_eq!(texts(&entries), ["one", "two"], "{entries:?}");
    assert!(notices(&entries, "rotated").is_empty(), "{entries:?}");
}

/// An empty file renamed and replaced: one rotation, not an empty member with a marker of
/// its own beside the stream's `rotated` notice.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_file_renamed_is_one_rotation_in_history() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "");
    let s = Server::start_in(dir, &["--rotated-history", "{dir}/app.log"]).await;
    s.wait_following().await;
    std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    append(&s.path("app.log"), "new\n");
    s.wait_last("app.log", "new").await;
    let entries = all_history(&s, 100).await;
    assert_eq!(texts(&entries), ["new"]);
    assert_eq!(notices(&entries, "rotated").len(), 1, "{entries:?}");
}

/// logrotate's copytruncate: the copy holds the lines the truncated generation served; read
/// back, the history has each line once.
#[tokio::test(flavor = "multi_thread")]
async fn a_copytruncate_copy_is_not_read_twice() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), lines("a", 3000));
    let s = Server::start_in(dir, &["--rotated-history", "{dir}/app.log"]).await;
    s.wait_last("app.log", "a-002999 some text").await;
    logrotate(s.dir.path(), "  copytruncate");
    append(&s.path("app.log"), lines("b", 20));
    s.wait_last("app.log", "b-000019 some text").await;
    let entries = all_history(&s, 700).await;
    assert_eq!(
        texts(&entries),
        want(&[("a", 3000), ("b", 20)]),
        "{entries:?}"
    );
    assert_eq!(notices(&entries, "truncated").len(), 1, "{entries:?}");
}

/// The chain is on by default, as are the bare flag and `=true`; `=false` turns it off.
#[tokio::test(flavor = "multi_thread")]
async fn the_chain_is_on_by_default_and_false_turns_it_off() {
    for (args, want_texts) in [
        (&["{dir}/app.log"][..], vec!["old", "new"]),
        (
            &["--rotated-history", "{dir}/app.log"][..],
            vec!["old", "new"],
        ),
        (
            &["--rotated-history=true", "{dir}/app.log"][..],
            vec!["old", "new"],
        ),
        (
            &["--rotated-history=false", "{dir}/app.log"][..],
            vec!["new"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join("app.log.1"), "old\n");
        append(&dir.path().join("app.log"), "new\n");
        let s = Server::start_in(dir, args).await;
        s.wait_last("app.log", "new").await;
        assert_eq!(texts(&all_history(&s, 100).await), want_texts, "{args:?}");
    }
}
