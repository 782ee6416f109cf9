//! Every line reaches the page once, in order: across forced disconnects, over long polling,
//! from history back to a 100,000-line file's first line, and to a linked line.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::support::{Browser, Server, run};
use super::*;

/// Lines shown once each and in order: the texts the page holds equal `want` exactly.
async fn assert_exactly(b: &Browser, want: &[String]) {
    let got: Vec<String> =
        serde_json::from_value(b.js("return window.__cometail.texts()").await).expect("texts");
    if got != want {
        let dup = got.len().saturating_sub(want.len());
        panic!(
            "lines differ: got {} (extra {dup}), want {}\nfirst got: {:?}",
            got.len(),
            want.len(),
            &got[..got.len().min(5)]
        );
    }
}

fn nothing_lost(transport: &str) {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), lines("before", 10)).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=app.log{transport}", srv.url)).await;
        b.wait_js("history", &has_row("before 10"), SECS10).await;
        wait_live(&b).await;
        srv.append("app.log", &lines("live", 20));
        b.wait_js("live lines", &has_row("live 20"), SECS2).await;
        b.js("window.__cometail.disconnect()").await;
        b.wait_js(
            "the reconnecting status",
            "return /reconnecting/.test(document.querySelector('#status-text').textContent)",
            SECS2,
        )
        .await;
        srv.append("app.log", &lines("while down", 300));
        b.js("window.__cometail.reconnect()").await;
        srv.append("app.log", &lines("after", 10));
        b.wait_js(
            "the lines after the reconnect",
            "return window.__cometail.texts().includes('after 10')",
            SECS10,
        )
        .await;
        let want: Vec<String> = [
            lines("before", 10),
            lines("live", 20),
            lines("while down", 300),
            lines("after", 10),
        ]
        .concat()
        .lines()
        .map(str::to_string)
        .collect();
        assert_exactly(&b, &want).await;
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn nothing_is_lost_or_repeated_across_a_forced_disconnect() {
    nothing_lost("");
}

#[test]
fn long_polling_resumes_without_loss_too() {
    nothing_lost("&transport=poll");
}

#[test]
fn long_polling_takes_over_when_sse_does_not_deliver() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), lines("old", 3)).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        // What a broken proxy looks like to the page: every SSE request fails.
        b.cdp("Network.enable", json!({})).await;
        b.cdp("Network.setBlockedURLs", json!({ "urls": ["*/events*"] }))
            .await;
        // The tab's own connection (the blocked URLs apply to this page, not to the shared
        // worker; relay.js runs the same conn.js fallback).
        b.open(&format!("{}?conn=tab", srv.url)).await;
        b.wait_js(
            "the long-polling status",
            "return document.querySelector('#status-text').textContent === 'live · long polling'",
            SECS10,
        )
        .await;
        srv.append("app.log", "over long polling\n");
        b.wait_js("the line", &has_row("over long polling"), SECS2)
            .await;
        let want: Vec<String> = ["old 1", "old 2", "old 3", "over long polling"]
            .map(String::from)
            .to_vec();
        assert_exactly(&b, &want).await;
        b.close().await;
    });
}

#[test]
fn a_hundred_thousand_lines_keep_the_dom_small_and_history_reaches_the_first_line() {
    run(async {
        let srv = Server::start(
            |d| {
                let body: String = (1..=100_000)
                    .map(|i| format!("row {i:06} some payload text to make the file realistic\n"))
                    .collect();
                std::fs::write(d.join("big.log"), body).expect("write");
            },
            &["big.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        let last = "row 100000 some payload text to make the file realistic";
        let first = "row 000001 some payload text to make the file realistic";
        b.wait_js("the last line", &has_row(last), SECS10).await;
        // The user scrolls away from the end (a script's scrolls would not stop following).
        b.wheel(-2000).await;
        b.wait_js("pause", "return !window.__cometail.following()", SECS2)
            .await;
        // Scroll to the top again and again: each time the page fetches an older page.
        let end = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let before = b.js("return window.__cometail.retained()").await;
            b.js("document.querySelector('#log').scrollTop = 0").await;
            if b.js(&has_row(first)).await == json!(true) {
                break;
            }
            assert!(
                std::time::Instant::now() < end,
                "history never reached the first line"
            );
            let grew = format!(
                "return (window.__cometail.retained() !== {before} || window.__cometail.atStart()) && !window.__cometail.busy()"
            );
            b.wait_js("a history page", &grew, Duration::from_secs(30))
                .await;
        }
        let rows = b
            .js("return window.__cometail.rowsInDom()")
            .await
            .as_u64()
            .expect("count");
        let retained = b
            .js("return window.__cometail.retained()")
            .await
            .as_u64()
            .expect("count");
        assert!(rows < 5_000, "{rows} row elements in the DOM");
        assert!(retained >= 50_000, "retained only {retained}");
        assert!(retained <= 110_000, "retention is unbounded: {retained}");
        assert_eq!(
            b.js("return window.__cometail.atStart()").await,
            json!(true)
        );
        assert!(
            b.js("return document.querySelector('#top-note').textContent")
                .await
                .as_str()
                .unwrap_or("")
                .contains("start of file")
        );
        // Back to the end (the far end was dropped from memory and is fetched again).
        b.c.find(fantoccini::Locator::Css("#log"))
            .await
            .expect("log")
            .send_keys("G")
            .await
            .expect("G");
        b.wait_js("the last line again", &has_row(last), SECS10)
            .await;
        let rows = b
            .js("return window.__cometail.rowsInDom()")
            .await
            .as_u64()
            .expect("count");
        assert!(rows < 5_000, "{rows} row elements in the DOM");
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn clicking_a_line_links_it_and_the_link_brings_it_back() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), lines("line", 3000)).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("lines", &has_row("line 3000"), SECS10).await;
        // Click a line: the URL gets its cursor.
        b.js("[...document.querySelectorAll('#log .row')].find(r => r.textContent.startsWith('line 2990')).querySelector('.txt').click()").await;
        let cursor = b.js("return window.__cometail.cursorOf('line 2990')").await;
        let cursor = cursor.as_str().expect("cursor").to_string();
        b.wait_js(
            "the hash",
            &format!(
                "return location.hash === '#' + {}",
                Json::from(cursor.clone())
            ),
            SECS2,
        )
        .await;
        // A line far back (outside the initial `last=` window) opens around it.
        let c10 = b
            .js("return fetch('/api/streams/app.log/lines?last=2000&limit=2000').then(r => r.json()).then(d => d.entries[9].cursor)")
            .await;
        let c10 = c10.as_str().expect("cursor").to_string();
        b.open(&format!("{}?s=app.log#{c10}", srv.url)).await;
        b.wait_js(
            "the linked line on screen",
            "const r = document.querySelector('#log .row.linked'); if (!r) return false; const a = r.getBoundingClientRect(), l = document.querySelector('#log').getBoundingClientRect(); return a.top >= l.top && a.bottom <= l.bottom",
            SECS10,
        )
        .await;
        assert_eq!(
            b.js("return document.querySelector('#log .row.linked .txt').textContent")
                .await,
            json!("line 1010")
        );
        // The end is still reachable and live.
        srv.append("app.log", "newest\n");
        b.c.find(fantoccini::Locator::Css("#log"))
            .await
            .expect("log")
            .send_keys("G")
            .await
            .expect("G");
        b.wait_js("the end", &has_row("newest"), SECS10).await;
        let texts: Vec<String> =
            serde_json::from_value(b.js("return window.__cometail.texts()").await).expect("texts");
        assert_eq!(texts.iter().filter(|t| *t == "newest").count(), 1);
        // A link whose hash is no cursor of the stream (mistyped, or from another log) opens
        // the end of the log, says why, and follows.
        b.open(&format!("{}?s=app.log#app.log", srv.url)).await;
        b.wait_js("the end after a bad link", &has_row("newest"), SECS10)
            .await;
        b.wait_js(
            "the reason",
            "const t = document.querySelector('#toast'); return !t.hidden && /names no line/.test(t.textContent)",
            SECS2,
        )
        .await;
        wait_live(&b).await;
        srv.append("app.log", "after a bad link\n");
        b.wait_js(
            "live after a bad link",
            &has_row("after a bad link"),
            SECS10,
        )
        .await;
        assert_clean(&b).await;
        b.close().await;
    });
}
