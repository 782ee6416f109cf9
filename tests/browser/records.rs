//! Records and downloads: a Java stack trace shows as one row (its first line and
//! "[+N lines]") that opens to all of its lines, from history and live; the Download control
//! saves what the view shows (a stream's lines, a query's matches, a merged view) through
//! Chromium's real download.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::support::{Browser, Server, run, wait_sync};
use super::{SECS10, assert_clean, has_row, wait_live};

const TRACE: &str = "\
2026-12-01 10:00:00,000 INFO  [main] c.x.App - starting
2026-12-01 10:00:01,000 ERROR [main] c.x.Db - query failed
java.sql.SQLException: timeout
\tat com.x.Db.run(Db.java:42)
\tat com.x.App.main(App.java:7)
Caused by: java.net.SocketTimeoutException: Read timed out
\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)
\t... 3 more
2026-12-01 10:00:02,000 INFO  [main] c.x.App - retrying
";

#[test]
fn a_java_stack_trace_is_one_row_that_opens_to_all_its_lines() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), TRACE).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=app.log&tz=utc", srv.url)).await;
        b.wait_js(
            "the lines",
            &has_row("2026-12-01 10:00:02,000 INFO  [main] c.x.App - retrying"),
            SECS10,
        )
        .await;
        assert_eq!(
            b.rows().await,
            vec![
                "2026-12-01 10:00:00,000 INFO  [main] c.x.App - starting",
                "▸ 2026-12-01 10:00:01,000 ERROR [main] c.x.Db - query failed [+6 lines]",
                "2026-12-01 10:00:02,000 INFO  [main] c.x.App - retrying",
            ]
        );
        // The record is one error row, and opens to its six other lines.
        b.js("document.querySelector('#log .row .xp').click()")
            .await;
        b.wait_js(
            "the open record",
            "return !!document.querySelector('#log .row.open .detail')",
            SECS10,
        )
        .await;
        let detail = b
            .js("const r = document.querySelector('#log .row.open'); return [r.className, r.querySelector('.detail').textContent]")
            .await;
        assert!(
            detail[0].as_str().unwrap_or("").contains("error"),
            "{detail}"
        );
        let rest: Vec<&str> = TRACE.lines().skip(2).take(6).collect();
        assert_eq!(detail[1], json!(rest.join("\n")));
        // Live: a trace written in one go arrives as one record.
        wait_live(&b).await;
        srv.append(
            "app.log",
            "2026-12-01 10:00:03,000 WARN  [pool-1] c.x.Q - slow\njava.lang.IllegalStateException: busy\n\tat com.x.Q.take(Q.java:9)\n",
        );
        b.wait_js(
            "the live record",
            &has_row("▸ 2026-12-01 10:00:03,000 WARN  [pool-1] c.x.Q - slow [+2 lines]"),
            SECS10,
        )
        .await;
        assert_clean(&b).await;
        b.close().await;
    });
}

/// The one finished download in `dir` (Chromium writes `*.crdownload` until it is done).
fn downloaded(dir: &Path) -> (String, String) {
    let mut found: Option<PathBuf> = None;
    wait_sync("the download", Duration::from_secs(10), || {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        found = match files.as_slice() {
            [f] if f.extension().is_none_or(|x| x != "crdownload") => Some(f.clone()),
            _ => None,
        };
        found.is_some()
    });
    let f = found.expect("file");
    let text = std::fs::read_to_string(&f).expect("read the download");
    std::fs::remove_file(&f).expect("remove the download");
    let name = f
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    (name, text)
}

#[test]
fn download_saves_the_stream_the_query_results_and_a_merged_view() {
    run(async {
        let srv = Server::start(
            |d| {
                std::fs::write(d.join("app.log"), TRACE).expect("write");
                std::fs::write(d.join("b.log"), "2026-12-01T10:00:01.500Z INFO b between\n")
                    .expect("write");
            },
            &["app.log", "b.log"],
        );
        let dir = tempfile::tempdir().expect("download dir");
        let b = Browser::start(1280, 800).await;
        b.cdp(
            "Browser.setDownloadBehavior",
            json!({ "behavior": "allow", "downloadPath": dir.path().to_str().expect("utf-8 path") }),
        )
        .await;
        b.open(&format!("{}?s=app.log", srv.url)).await;
        b.wait_js(
            "the lines",
            &has_row("2026-12-01 10:00:02,000 INFO  [main] c.x.App - retrying"),
            SECS10,
        )
        .await;
        assert_eq!(
            b.js("return document.querySelector('#dl').getAttribute('href')")
                .await,
            json!("api/streams/app.log/raw?last=10000&download=1")
        );
        b.js("document.querySelector('#dl').click()").await;
        let (name, text) = downloaded(dir.path());
        assert_eq!((name.as_str(), text.as_str()), ("app.log.log", TRACE));
        // With a query: its matches only (the whole record of the match).
        b.js(
            "const i = document.querySelector('#query'); i.value = 'level>=error'; \
              i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))",
        )
        .await;
        b.wait_js(
            "the query's view",
            "return window.__cometail.query() === 'level>=error' && window.__cometail.texts().length === 1",
            SECS10,
        )
        .await;
        b.js("document.querySelector('#dl').click()").await;
        let (_, text) = downloaded(dir.path());
        let record: Vec<&str> = TRACE.lines().skip(1).take(7).collect();
        assert_eq!(text, record.join("\n") + "\n");
        // A merged view: what the page holds, in time order, each line with its stream.
        b.open(&format!("{}?s=app.log,b.log", srv.url)).await;
        b.wait_js(
            "the merged lines",
            &has_row("2026-12-01T10:00:01.500Z INFO b between"),
            SECS10,
        )
        .await;
        b.js("document.querySelector('#dl').click()").await;
        let (name, text) = downloaded(dir.path());
        assert_eq!(name, "merged.log");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10, "{text}");
        assert_eq!(
            lines[0],
            "[app.log] 2026-12-01 10:00:00,000 INFO  [main] c.x.App - starting"
        );
        assert_eq!(lines[8], "[b.log] 2026-12-01T10:00:01.500Z INFO b between");
        assert_eq!(
            lines[9],
            "[app.log] 2026-12-01 10:00:02,000 INFO  [main] c.x.App - retrying"
        );
        assert_clean(&b).await;
        b.close().await;
    });
}
