//! Whole-history search at the edges (issue 12): a generation the follower let go while its
//! file is still on disk under another name is searched (once, with or without the rotated
//! chain), and a line longer than the scanner's 64 MiB is marked in the matches, not skipped
//! silently, in plain and `.gz` files, in both orders.

use std::io::Write;
use std::path::Path;

use crate::common::{Server, append, enc};
use crate::search::{run, text};

fn last_line(t: &str) -> String {
    t.lines().last().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generation_let_go_but_still_on_disk_is_searched_once() {
    for chained in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let parts = [("a", 3000), ("b", 2000), ("c", 1000)];
        let texts: Vec<String> = parts.iter().map(|(t, n)| text(t, *n)).collect();
        append(&dir.path().join("app.log"), &texts[0]);
        let mut args = vec!["--rotate-grace", "100ms", "{dir}/app.log"];
        if chained {
            args.insert(0, "--rotated-history");
        }
        let s = Server::start_in(dir, &args).await;
        s.wait_last("app.log", &last_line(&texts[0])).await;
        // Two rotations by renaming: the follower keeps the current file and the one before,
        // so the first generation's file is let go; it is still there, as app.log.2.
        for t in &texts[1..] {
            if s.path("app.log.1").exists() {
                std::fs::rename(s.path("app.log.1"), s.path("app.log.2")).unwrap();
            }
            std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
            append(&s.path("app.log"), t);
            s.wait_last("app.log", &last_line(t)).await;
        }
        let reference: Vec<String> = texts
            .iter()
            .flat_map(|t| t.lines())
            .filter(|l| l.to_lowercase().contains("needle"))
            .map(str::to_owned)
            .collect();
        assert!(reference.iter().any(|l| l.starts_with("a-")));
        let oldest = run(&s, &format!("q={}&order=oldest&limit=10000", enc("needle"))).await;
        assert_eq!(oldest.texts, reference, "chained: {chained}");
        let newest = run(&s, &format!("q={}&limit=10000", enc("needle"))).await;
        let mut want = reference.clone();
        want.reverse();
        assert_eq!(newest.texts, want, "chained: {chained}");
        assert_eq!(newest.done["matches"], reference.len());
    }
}

/// `tag-1 NEEDLE first`, a line of 80 MiB with `NEEDLE` inside, `tag-2 NEEDLE second`.
fn with_a_long_line(tag: &str) -> Vec<u8> {
    let mut out = format!("{tag}-1 NEEDLE first\n").into_bytes();
    let mut long = vec![b'y'; 80 << 20];
    long[40 << 20..(40 << 20) + 8].copy_from_slice(b" NEEDLE ");
    out.extend_from_slice(&long);
    out.extend_from_slice(format!("\n{tag}-2 NEEDLE second\n").as_bytes());
    out
}

fn gzip_to(path: &Path, text: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_longer_than_the_scanner_is_marked_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    gzip_to(&dir.path().join("app.log.2.gz"), &with_a_long_line("g"));
    std::fs::write(dir.path().join("app.log.1"), with_a_long_line("p")).unwrap();
    append(&dir.path().join("app.log"), "live NEEDLE now\n");
    let s = Server::start_in(dir, &["--rotated-history", "{dir}/app.log"]).await;
    s.wait_last("app.log", "live NEEDLE now").await;
    let oldest_first = [
        "g-1 NEEDLE first",
        "g-2 NEEDLE second",
        "p-1 NEEDLE first",
        "p-2 NEEDLE second",
        "live NEEDLE now",
    ];
    for order in ["oldest", "newest"] {
        let got = run(&s, &format!("q=NEEDLE&order={order}&limit=100")).await;
        let mut want: Vec<&str> = oldest_first.to_vec();
        if order == "newest" {
            want.reverse();
        }
        assert_eq!(got.texts, want, "{order}");
        assert_eq!(got.done["matches"], 5, "{order}");
        assert_eq!(got.done["next"], serde_json::Value::Null, "{order}");
        // One mark per long line, where it lies: between its file's first and second match.
        let at: Vec<usize> = got.marks.iter().map(|(i, _)| *i).collect();
        let want_at = if order == "oldest" { [1, 3] } else { [2, 4] };
        assert_eq!(at, want_at, "{order}: {:?}", got.marks);
        let names: Vec<bool> = got
            .marks
            .iter()
            .map(|(_, d)| d.contains("app.log.2.gz") && d.contains("not searched"))
            .collect();
        let gz_mark = if order == "oldest" { 0 } else { 1 };
        assert!(names[gz_mark], "{:?}", got.marks);
        assert!(
            got.marks[1 - gz_mark].1.contains("app.log.1"),
            "{:?}",
            got.marks
        );
    }
    // A limit counts matches only: the marks ride along.
    let two = run(&s, "q=NEEDLE&order=oldest&limit=2").await;
    assert_eq!(two.texts, oldest_first[..2]);
    assert_eq!(two.marks.len(), 1);
    assert!(two.done["next"].is_string());
}
