//! The merged view in event-time order: history paged back to the first line of both streams,
//! live entries ordered by the server (`order=time`, and the long-polling fallback too), a
//! reconnect that resumes with nothing lost or doubled, and go-to-time.

use serde_json::{Value as Json, json};

use super::support::{Browser, Server, run};
use super::{SECS10, assert_clean, wait_live};

/// `2026-12-01T10:00:00Z` plus `s` seconds.
fn stamp(s: u32) -> String {
    format!(
        "2026-12-01T{:02}:{:02}:{:02}Z",
        10 + s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// One line of `name` at second `s`.
fn line(name: &str, s: u32, what: &str) -> String {
    format!("{} INFO {name} {what} {s}", stamp(s))
}

/// `a.log` holds the even seconds below 3,000, `b.log` the odd ones: 3,000 lines in time order.
fn two_streams() -> (Server, Vec<String>) {
    let srv = Server::start(
        |d| {
            for (name, first) in [("a", 0u32), ("b", 1)] {
                let text: String = (first..3000)
                    .step_by(2)
                    .map(|s| line(name, s, "at") + "\n")
                    .collect();
                std::fs::write(d.join(format!("{name}.log")), text).expect("write");
            }
        },
        // A generous hold, so that a line of one stream still sorts in on a loaded machine.
        &["--merge-delay", "3s", "a.log", "b.log"],
    );
    let want = (0..3000)
        .map(|s| line(if s % 2 == 0 { "a" } else { "b" }, s, "at"))
        .collect();
    (srv, want)
}

async fn texts(b: &Browser) -> Vec<String> {
    serde_json::from_value(b.js("return window.__cometail.texts()").await).expect("texts")
}

/// The page holds exactly `want`, in order (a short report where it does not).
async fn assert_exactly(b: &Browser, want: &[String]) {
    let got = texts(b).await;
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "lines differ at {i} of {} (want {}): got {:?}, want {:?}",
            got.len(),
            want.len(),
            &got[i.saturating_sub(2)..got.len().min(i + 3)],
            &want[i.saturating_sub(2)..want.len().min(i + 3)]
        );
    }
}

#[test]
fn a_merged_view_pages_back_in_time_order_and_resumes_live_exactly() {
    run(async {
        let (srv, mut want) = two_streams();
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=a.log,b.log", srv.url)).await;
        b.wait_js(
            "the last line",
            "return window.__cometail.texts().slice(-1)[0] === '2026-12-01T10:49:59Z INFO b at 2999'",
            SECS10,
        )
        .await;
        wait_live(&b).await;
        // The first page holds the streams' last 1,000 lines, merged by the server.
        assert_exactly(&b, &want[2000..]).await;
        // `g` pages back to the start of both.
        b.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'g', bubbles: true}))")
            .await;
        b.wait_js(
            "the start of both streams",
            "return window.__cometail.atStart() && window.__cometail.texts().length === 3000",
            SECS10,
        )
        .await;
        assert_exactly(&b, &want).await;
        assert_eq!(
            b.js("return document.querySelector('#top-note').textContent")
                .await,
            json!("start of the streams")
        );
        // Live: a.log's line is written first but is a second later than b.log's; the server
        // should hold it until b.log has one, then send both in time order.
        srv.append("a.log", &(line("a", 5001, "live") + "\n"));
        srv.append("b.log", &(line("b", 5000, "live") + "\n"));
        b.wait_js(
            "both live lines",
            "return window.__cometail.texts().length === 3002",
            SECS10,
        )
        .await;
        // The server sends them in time order (over SSE, and over the long-polling fallback
        // too: `poll_mode_keeps_live_lines_in_time_order`).
        want.push(line("b", 5000, "live"));
        want.push(line("a", 5001, "live"));
        assert_exactly(&b, &want).await;
        // Down, both streams write interleaved seconds; after the reconnect every line comes
        // once, in time order.
        b.js("window.__cometail.disconnect()").await;
        b.wait_js(
            "the reconnecting status",
            "return /reconnecting/.test(document.querySelector('#status-text').textContent)",
            SECS10,
        )
        .await;
        for (name, first) in [("a", 6000u32), ("b", 6001)] {
            let text: String = (first..6200)
                .step_by(2)
                .map(|s| line(name, s, "down") + "\n")
                .collect();
            srv.append(&format!("{name}.log"), &text);
        }
        want.extend((6000..6200).map(|s| line(if s % 2 == 0 { "a" } else { "b" }, s, "down")));
        b.js("window.__cometail.reconnect()").await;
        srv.append("a.log", &(line("a", 7000, "after") + "\n"));
        srv.append("b.log", &(line("b", 7001, "after") + "\n"));
        b.wait_js(
            "the lines after the reconnect",
            "return window.__cometail.texts().length >= 3204",
            SECS10,
        )
        .await;
        want.push(line("a", 7000, "after"));
        want.push(line("b", 7001, "after"));
        assert_exactly(&b, &want).await;
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn go_to_time_in_a_merged_view_pages_back_to_it() {
    run(async {
        let (srv, want) = two_streams();
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=a.log,b.log&tz=utc", srv.url)).await;
        wait_live(&b).await;
        // 10:05:00 is second 300, far before the first page (from second 2000 on).
        b.js("const g = document.querySelector('#goto'); g.value = '2026-12-01T10:05:00'; document.querySelector('#go').click()")
            .await;
        let marked = format!(
            "const r = document.querySelector('#log .row.linked'); if (!r || r.querySelector('.txt').textContent !== {}) return false; \
             const a = r.getBoundingClientRect(), l = document.querySelector('#log').getBoundingClientRect(); \
             return !window.__cometail.busy() && a.top >= l.top && a.bottom <= l.bottom",
            Json::from(line("a", 300, "at"))
        );
        b.wait_js("the line at 10:05:00", &marked, SECS10).await;
        // The window runs contiguously from before that time to the live end.
        let got = texts(&b).await;
        let from = want.len() - got.len();
        assert!(from < 300, "starts at {from}");
        assert_exactly(&b, &want[from..]).await;
        assert_eq!(
            b.js("return window.__cometail.following()").await,
            json!(false)
        );
        let url = b.c.current_url().await.expect("url").to_string();
        assert!(url.ends_with("#at=2026-12-01T10:05:00.000Z"), "{url}");
        // Live lines still arrive (below, not followed).
        srv.append("b.log", &(line("b", 5000, "live") + "\n"));
        b.wait_js(
            "a live line",
            &format!(
                "return window.__cometail.texts().slice(-1)[0] === {}",
                Json::from(line("b", 5000, "live"))
            ),
            SECS10,
        )
        .await;
        assert_clean(&b).await;
        b.close().await;
    });
}

/// The long-polling fallback (forced here; the page falls back to it when SSE does not open
/// within 5 s, as on a loaded machine) polls the streams as one, in time order. It used to
/// poll each stream on its own and show lines in the order the polls returned: the cause of
/// the live pairs seen out of order in the test above.
#[test]
fn poll_mode_keeps_live_lines_in_time_order() {
    run(async {
        let (srv, mut want) = two_streams();
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=a.log,b.log&transport=poll", srv.url))
            .await;
        b.wait_js(
            "the last line",
            "return window.__cometail.texts().slice(-1)[0] === '2026-12-01T10:49:59Z INFO b at 2999'",
            SECS10,
        )
        .await;
        b.wait_js(
            "the long-polling status",
            "return document.querySelector('#status-text').textContent === 'live · long polling'",
            SECS10,
        )
        .await;
        want.drain(..2000);
        for k in 0..3u32 {
            // The later line first, to either file in turn.
            let s = 5000 + 10 * k;
            let (later, earlier) = if k % 2 == 0 {
                (line("a", s + 1, "live"), line("b", s, "live"))
            } else {
                (line("b", s + 1, "live"), line("a", s, "live"))
            };
            let (first, second) = if k % 2 == 0 {
                ("a.log", "b.log")
            } else {
                ("b.log", "a.log")
            };
            srv.append(first, &(later.clone() + "\n"));
            srv.append(second, &(earlier.clone() + "\n"));
            want.push(earlier);
            want.push(later);
            b.wait_js(
                "the live pair",
                &format!("return window.__cometail.texts().length === {}", want.len()),
                SECS10,
            )
            .await;
            assert_exactly(&b, &want).await;
        }
        assert_clean(&b).await;
        b.close().await;
    });
}
