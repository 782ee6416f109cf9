//! All tabs of the page in one browser share one live connection (ui/relay.js, a
//! SharedWorker): twelve tabs over plain HTTP/1.1, where a browser opens at most six
//! connections per host, all show new lines, count unread lines of other streams, and keep
//! doing so when the tab that started the shared connection closes.
//!
//! The server's side is observed from outside with its per-address cap on open streams: run
//! with `--max-streams-per-address 2`, a probe stream from the same address is accepted while
//! the browser holds at most one, and a second probe is refused (429) while it holds one.

use std::time::Duration;

use fantoccini::wd::WindowHandle;
use serde_json::Value as Json;

use super::support::{Browser, Server, run};
use super::{SECS10, lines};

const TABS: usize = 12;

/// The statuses of two probe streams opened beside the browser's (same address, 127.0.0.1).
async fn probe(srv: &Server) -> (u16, u16) {
    let url = format!("{}api/streams/a.log/events", srv.url);
    let client = reqwest::Client::new();
    let first = client.get(&url).send().await.expect("probe 1");
    let second = client.get(&url).send().await.expect("probe 2");
    let statuses = (first.status().as_u16(), second.status().as_u16());
    drop(first);
    drop(second);
    statuses
}

/// Wait, in every tab in turn, until `script` is true there.
async fn in_every_tab(b: &Browser, tabs: &[WindowHandle], what: &str, script: &str) {
    for (i, h) in tabs.iter().enumerate() {
        b.c.switch_to_window(h.clone()).await.expect("switch");
        b.wait_js(&format!("tab {}: {what}", i + 1), script, SECS10)
            .await;
    }
}

fn has_text(text: &str) -> String {
    format!(
        "return window.__cometail.texts().includes({})",
        Json::from(text)
    )
}

#[test]
fn twelve_tabs_share_one_connection_and_live_on_when_the_first_closes() {
    run(async {
        let srv = Server::start(
            |d| {
                std::fs::write(d.join("a.log"), lines("a", 20)).expect("write");
                std::fs::write(d.join("b.log"), lines("b", 3)).expect("write");
            },
            &["--max-streams-per-address", "2", "a.log", "b.log"],
        );
        assert!(srv.url.starts_with("http://"), "plain HTTP/1.1");
        let b = Browser::start(1280, 800).await;
        let page = format!("{}?s=a.log", srv.url);
        let mut tabs = vec![b.c.window().await.expect("first tab")];
        b.open(&page).await;
        for _ in 1..TABS {
            let tab = b.c.new_window(true).await.expect("new tab").handle;
            b.c.switch_to_window(tab.clone()).await.expect("switch");
            b.open(&page).await;
            tabs.push(tab);
        }
        in_every_tab(
            &b,
            &tabs,
            "live over the shared connection",
            "return window.__cometail.shared() && window.__cometail.status() === 'sse'",
        )
        .await;
        in_every_tab(&b, &tabs, "history", &has_text("a 20")).await;
        assert_eq!(
            probe(&srv).await,
            (200, 429),
            "the browser holds exactly one stream"
        );

        srv.append("a.log", "new in a\n");
        in_every_tab(&b, &tabs, "the new line", &has_text("new in a")).await;
        srv.append("b.log", &lines("new in b", 2));
        in_every_tab(
            &b,
            &tabs,
            "two unread lines of b.log",
            "const b = document.querySelector('#streams li[data-id=\"b.log\"] .badge'); return !!b && b.textContent === '2'",
        )
        .await;

        // The tab that started the shared connection closes; the others live on.
        b.c.switch_to_window(tabs[0].clone()).await.expect("switch");
        b.c.close_window().await.expect("close the first tab");
        let rest = tabs.split_off(1);
        srv.append("a.log", "after the first tab closed\n");
        in_every_tab(
            &b,
            &rest,
            "the line after the first tab closed",
            &has_text("after the first tab closed"),
        )
        .await;
        assert_eq!(probe(&srv).await, (200, 429), "still exactly one stream");
        // Each tab got each line once.
        for (i, h) in rest.iter().enumerate() {
            b.c.switch_to_window(h.clone()).await.expect("switch");
            let texts: Vec<String> =
                serde_json::from_value(b.js("return window.__cometail.texts()").await)
                    .expect("texts");
            let want: Vec<String> = lines("a", 20)
                .lines()
                .chain(["new in a", "after the first tab closed"])
                .map(str::to_string)
                .collect();
            assert_eq!(texts, want, "tab {}", i + 2);
        }
        b.close().await;
    });
}

#[test]
fn tabs_opened_while_lines_stream_in_get_every_line_once() {
    run(async {
        let srv = Server::start(
            |d| {
                std::fs::write(d.join("a.log"), lines("a", 10)).expect("write");
                std::fs::write(d.join("b.log"), lines("b", 3)).expect("write");
            },
            &["a.log", "b.log"],
        );
        let b = Browser::start(1280, 800).await;
        let mut tabs = vec![b.c.window().await.expect("first tab")];
        b.open(&format!("{}?s=a.log", srv.url)).await;
        in_every_tab(&b, &tabs, "history", &has_text("a 10")).await;
        // A writer appends 1,200 lines in 60 batches while more tabs open, so that each new
        // tab's first page ends somewhere other than where the shared connection stands.
        let path = srv.path("a.log");
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .expect("open");
            for batch in 0..60 {
                let text: String = (1..=20)
                    .map(|i| format!("live {}\n", batch * 20 + i))
                    .collect();
                f.write_all(text.as_bytes()).expect("append");
                std::thread::sleep(Duration::from_millis(25)); // load pacing, not a wait
            }
        });
        // Tabs on the same stream, on the other stream (a.log counted as unread), merged.
        for query in ["?s=a.log", "?s=b.log", "?s=a.log,b.log", "?s=a.log"] {
            let tab = b.c.new_window(true).await.expect("new tab").handle;
            b.c.switch_to_window(tab.clone()).await.expect("switch");
            b.open(&format!("{}{query}", srv.url)).await;
            tabs.push(tab);
        }
        writer.join().expect("writer");
        let want: Vec<String> = lines("a", 10)
            .lines()
            .map(str::to_string)
            .chain((1..=1200).map(|i| format!("live {i}")))
            .collect();
        for (i, h) in tabs.iter().enumerate() {
            if i == 2 {
                continue; // b.log alone
            }
            b.c.switch_to_window(h.clone()).await.expect("switch");
            b.wait_js(
                &format!("tab {}: the last line", i + 1),
                &has_text("live 1200"),
                SECS10,
            )
            .await;
            let texts: Vec<String> = serde_json::from_value(
                b.js("return window.__cometail.texts().filter(t => !t.startsWith('b '))")
                    .await,
            )
            .expect("texts");
            // A tab opened late loaded the last 1,000 lines, then every line after them once.
            let from = if i == 0 {
                0
            } else {
                want.len().saturating_sub(1000)
            };
            let got = texts.len();
            assert!(
                got >= want.len() - from && want.ends_with(&texts),
                "tab {}: {got} lines are not the file's last ones, each once (first: {:?})",
                i + 1,
                texts.first()
            );
        }
        // Tab 3 counts a.log's lines since it opened: seven more are seven more.
        b.c.switch_to_window(tabs[2].clone()).await.expect("switch");
        let badge = "const b = document.querySelector('#streams li[data-id=\"a.log\"] .badge'); \
                     return b && !b.hidden ? Number(b.textContent) : 0";
        let before = b.js(badge).await.as_u64().expect("count");
        srv.append("a.log", &lines("more", 7));
        b.wait_js(
            "tab 3: seven more unread lines of a.log",
            &format!("return (() => {{ {badge} }})() === {}", before + 7),
            SECS10,
        )
        .await;
        b.close().await;
    });
}
