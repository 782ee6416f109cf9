//! End-to-end tests of the page in a real headless Chromium (WebDriver via chromedriver),
//! against the real `cometail` binary following real files in a temp dir.
//!
//! Every wait polls a condition with a deadline; nothing sleeps to synchronise. The tests take
//! a static lock (see `support::run`), so they run one at a time inside this binary.

mod follow;
mod support;
mod tabs;

use std::time::Duration;

use serde_json::{Value as Json, json};
use support::{Browser, Server, run};

const SECS2: Duration = Duration::from_secs(2);
const SECS10: Duration = Duration::from_secs(10);

fn lines(prefix: &str, n: usize) -> String {
    (1..=n).map(|i| format!("{prefix} {i}\n")).collect()
}

/// `return` expression: does some row in the DOM have exactly this text?
fn has_row(text: &str) -> String {
    format!(
        "return [...document.querySelectorAll('#log .row .txt')].some(e => e.textContent === {})",
        Json::from(text)
    )
}

/// `return` expression: is every one of these texts in some row?
fn has_rows(texts: &[&str]) -> String {
    format!(
        "const t = [...document.querySelectorAll('#log .row .txt')].map(e => e.textContent); return {}.every(x => t.includes(x))",
        json!(texts)
    )
}

async fn assert_clean(b: &Browser) {
    let (calls, csp) = b.trapped().await;
    assert!(calls.is_empty(), "script ran: {calls:?}");
    assert!(csp.is_empty(), "CSP violations: {csp:?}");
}

#[test]
fn appended_line_shows_within_two_seconds_and_markup_stays_text() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), lines("boot", 3)).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("history", &has_row("boot 3"), SECS10).await;
        b.wait_js(
            "live status",
            "return /live/.test(document.querySelector('#status').textContent)",
            SECS10,
        )
        .await;
        srv.append("app.log", "hello from the test\n");
        b.wait_js("the appended line", &has_row("hello from the test"), SECS2)
            .await;
        srv.append("app.log", "<img src=x onerror=alert(1)>\n");
        b.wait_js(
            "the markup line",
            &has_row("<img src=x onerror=alert(1)>"),
            SECS2,
        )
        .await;
        let imgs = b
            .js("return document.querySelectorAll('#log img').length")
            .await;
        assert_eq!(imgs, json!(0), "log text must never become elements");
        assert_clean(&b).await;
        b.close().await;
    });
}

/// A realistic log for screenshots: levels in ANSI colour, a rotation marker, a long line.
fn sample_log() -> String {
    let mut s = String::new();
    let paths = [
        "/api/orders",
        "/api/users/42",
        "/healthz",
        "/static/app.js",
        "/api/search?q=tail",
    ];
    for i in 0..400u32 {
        let (lvl, col) = match i % 17 {
            3 => ("WARN ", "\x1b[33m"),
            11 => ("ERROR", "\x1b[1;31m"),
            7 => ("DEBUG", "\x1b[2m"),
            _ => ("INFO ", "\x1b[32m"),
        };
        let ms = (i * 37) % 900 + 3;
        s.push_str(&format!(
            "2026-11-24T23:{:02}:{:02}.{:03}Z {col}{lvl}\x1b[0m \x1b[36mhttp\x1b[0m GET {} status={} took={ms}ms req=\x1b[38;5;141m{:08x}\x1b[0m\n",
            (i / 60) % 60,
            i % 60,
            (i * 7) % 1000,
            paths[i as usize % paths.len()],
            if i % 11 == 0 { 500 } else { 200 },
            i.wrapping_mul(2654435761)
        ));
    }
    s
}

#[test]
fn screenshots_are_written_as_artifacts() {
    run(async {
        let srv = Server::start(
            |d| {
                std::fs::write(d.join("api.log"), sample_log()).expect("write");
                std::fs::write(d.join("worker.log"), lines("job done", 40)).expect("write");
                std::fs::write(
                    d.join("nginx-access.log"),
                    lines("127.0.0.1 - - GET / 200", 40),
                )
                .expect("write");
            },
            &["api.log", "worker.log", "nginx-access.log", "missing.log"],
        );
        // (width, height, name, query): the plain view with a rotation marker, a merged view,
        // and a filtered view on a phone.
        let shots = [
            (1280, 800, "desktop", "?s=api.log"),
            (1280, 800, "desktop-merged", "?s=api.log,worker.log"),
            (390, 844, "phone", "?s=api.log&q=status%3D500"),
        ];
        let mut rotated = false;
        for (w, h, name, query) in shots {
            for theme in ["dark", "light"] {
                let b = Browser::start(w, h).await;
                b.open(&srv.url).await;
                b.js_args(
                    "localStorage.setItem('cometail.theme', arguments[0])",
                    vec![json!(theme)],
                )
                .await;
                b.open(&format!("{}{query}", srv.url)).await;
                b.wait_js(
                    "rows",
                    "return document.querySelectorAll('#log .row').length > 5",
                    SECS10,
                )
                .await;
                wait_live(&b).await;
                if !rotated {
                    rotated = true;
                    std::fs::rename(srv.path("api.log"), srv.path("api.log.1")).expect("mv");
                    let fresh = sample_log()
                        .lines()
                        .take(3)
                        .map(|l| format!("{l}\n"))
                        .collect::<String>();
                    std::fs::write(srv.path("api.log"), fresh).expect("write");
                    b.wait_js(
                        "the rotation marker",
                        "return !!document.querySelector('#log .row.m-rotated')",
                        SECS10,
                    )
                    .await;
                }
                let p = b.screenshot(&format!("{name}-{theme}.png")).await;
                let len = std::fs::metadata(&p).expect("screenshot written").len();
                assert!(len > 5_000, "{} is suspiciously small", p.display());
                assert_clean(&b).await;
                b.close().await;
            }
        }
    });
}

async fn wait_live(b: &Browser) {
    b.wait_js(
        "the live status",
        "return /^live/.test(document.querySelector('#status-text').textContent)",
        SECS10,
    )
    .await;
}

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

async fn set_filter(b: &Browser, q: &str) {
    b.js_args(
        "const i = document.querySelector('#q'); i.value = arguments[0]; i.dispatchEvent(new Event('input'))",
        vec![json!(q)],
    )
    .await;
    b.wait_js(
        "the filter to apply",
        &format!("return new URLSearchParams(location.search).get('q') === {} || ({} === '' && !new URLSearchParams(location.search).has('q'))", Json::from(q), Json::from(q)),
        SECS2,
    )
    .await;
}

async fn row_texts(b: &Browser) -> Vec<String> {
    b.rows().await
}

#[test]
fn filter_hides_non_matching_lines_and_highlights_matches() {
    run(async {
        let text = "alpha one\nbeta two\nAlpha three\ngamma 42\nbeta alpha\n";
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), text).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("lines", &has_row("beta alpha"), SECS10).await;
        // `/` focuses the filter; typing filters (plain text, case-insensitive by default).
        b.c.find(fantoccini::Locator::Css("body"))
            .await
            .expect("body")
            .send_keys("/")
            .await
            .expect("/");
        assert_eq!(b.js("return document.activeElement.id").await, json!("q"));
        b.c.find(fantoccini::Locator::Css("#q"))
            .await
            .expect("q")
            .send_keys("alpha")
            .await
            .expect("type");
        b.wait_js(
            "filtered",
            "return document.querySelectorAll('#log .row').length === 3",
            SECS2,
        )
        .await;
        assert_eq!(
            row_texts(&b).await,
            vec!["alpha one", "Alpha three", "beta alpha"]
        );
        let marks = b
            .js("return [...document.querySelectorAll('#log mark')].map(m => m.textContent)")
            .await;
        assert_eq!(marks, json!(["alpha", "Alpha", "alpha"]));
        // Case toggle.
        b.c.find(fantoccini::Locator::Css("#cs"))
            .await
            .expect("cs")
            .click()
            .await
            .expect("click");
        b.wait_js(
            "case-sensitive",
            "return document.querySelectorAll('#log .row').length === 2",
            SECS2,
        )
        .await;
        assert_eq!(row_texts(&b).await, vec!["alpha one", "beta alpha"]);
        // Regex.
        b.c.find(fantoccini::Locator::Css("#re"))
            .await
            .expect("re")
            .click()
            .await
            .expect("click");
        set_filter(&b, r"gam+a \d+").await;
        b.wait_js(
            "regex",
            "return document.querySelectorAll('#log .row').length === 1",
            SECS2,
        )
        .await;
        assert_eq!(row_texts(&b).await, vec!["gamma 42"]);
        assert_eq!(
            b.js("return document.querySelector('#log mark').textContent")
                .await,
            json!("gamma 42")
        );
        // New lines are filtered as they arrive.
        srv.append("app.log", "gammma 7\nnot this one\n");
        b.wait_js("a live match", &has_row("gammma 7"), SECS2).await;
        assert!(!row_texts(&b).await.contains(&"not this one".to_string()));
        // The view lives in the URL: a fresh load of it shows the same thing.
        let url = b.c.current_url().await.expect("url").to_string();
        assert!(
            url.contains("re=1") && url.contains("cs=1") && url.contains("s=app.log"),
            "{url}"
        );
        b.open(&url).await;
        b.wait_js(
            "the shared view",
            "return document.querySelectorAll('#log .row').length === 2",
            SECS10,
        )
        .await;
        assert_eq!(row_texts(&b).await, vec!["gamma 42", "gammma 7"]);
        assert_eq!(
            b.js("return document.querySelector('#q').value").await,
            json!(r"gam+a \d+")
        );
        // Esc clears the filter.
        b.c.find(fantoccini::Locator::Css("#q"))
            .await
            .expect("q")
            .send_keys("\u{e00c}")
            .await
            .expect("esc");
        b.wait_js(
            "unfiltered",
            "return document.querySelectorAll('#log .row').length === 7",
            SECS2,
        )
        .await;
        assert_eq!(
            b.js("return document.querySelectorAll('#log mark').length")
                .await,
            json!(0)
        );
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn a_catastrophic_regex_is_stopped_and_the_page_stays_responsive() {
    run(async {
        let text = format!("{}!\nok line\n", "a".repeat(40));
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), text).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=app.log&re=1", srv.url)).await;
        b.wait_js("lines", &has_row("ok line"), SECS10).await;
        set_filter(&b, "(a+)+$").await;
        b.wait_js(
            "the too-slow report",
            "const e = document.querySelector('#ferr'); return !e.hidden && /too slow/.test(e.textContent)",
            Duration::from_secs(5),
        )
        .await;
        // The filter is off again and the page still works.
        b.wait_js(
            "all lines back",
            "return document.querySelectorAll('#log .row').length === 2",
            SECS2,
        )
        .await;
        srv.append("app.log", "still live\n");
        b.wait_js("a live line", &has_row("still live"), SECS2)
            .await;
        b.close().await;
    });
}

#[test]
fn ansi_sgr_becomes_styled_spans_and_other_escapes_are_dropped() {
    run(async {
        let line = "\x1b[31mred\x1b[0m \x1b[1mbold\x1b[0m \x1b[38;5;208mo256\x1b[0m \x1b[38;2;1;2;3mtc\x1b[0m \
                    \x1b[48;2;200;100;50mbg\x1b[0m \x1b[7minv\x1b[0m \x1b[4mund\x1b[0m \x1b[3mit\x1b[0m \x1b[2mdim\x1b[0m \
                    \x1b[92mbright\x1b[0m \x1b]0;title\x07\x1b[2K\x1b[1;1Hplain\n";
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), line).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        let plain = "red bold o256 tc bg inv und it dim bright plain";
        b.wait_js("the line", &has_row(plain), SECS10).await;
        let q = |sel: &str| {
            format!(
                "const e = document.querySelector('#log .row .txt {sel}'); return e ? [e.textContent, getComputedStyle(e).color, getComputedStyle(e).backgroundColor, getComputedStyle(e).fontWeight, getComputedStyle(e).fontStyle, getComputedStyle(e).textDecorationLine, getComputedStyle(e).opacity] : null"
            )
        };
        let red = b.js(&q(".af1")).await;
        assert_eq!(red[0], json!("red"));
        let bold = b.js(&q(".a-b")).await;
        assert_eq!(
            (bold[0].clone(), bold[3].clone()),
            (json!("bold"), json!("700"))
        );
        let c256 = b.js(&q("span[style*=\"rgb(255, 135, 0)\"]")).await;
        assert_eq!(c256[0], json!("o256"));
        let tc = b.js(&q("span[style*=\"rgb(1, 2, 3)\"]")).await;
        assert_eq!(tc[0], json!("tc"));
        let bg = b
            .js(&q("span[style*=\"background-color: rgb(200, 100, 50)\"]"))
            .await;
        assert_eq!(bg[0], json!("bg"));
        let inv = b.js(&q(".ainv-fg")).await;
        assert_eq!(inv[0], json!("inv"));
        assert_eq!(b.js(&q(".a-u")).await[5], json!("underline"));
        assert_eq!(b.js(&q(".a-i")).await[4], json!("italic"));
        assert_eq!(b.js(&q(".a-d")).await[0], json!("dim"));
        assert_eq!(b.js(&q(".af10")).await[0], json!("bright"));
        let raw = b.js("return /[\\x00-\\x08\\x0b-\\x1f]/.test(document.querySelector('#log').textContent)").await;
        assert_eq!(raw, json!(false), "escape bytes leaked into the page");
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn the_picker_shows_streams_with_state_and_unread_and_the_merged_view_labels_lines() {
    run(async {
        let srv = Server::start(
            |d| {
                std::fs::create_dir(d.join("logs")).expect("mkdir");
                std::fs::write(d.join("logs/a.log"), "a first\n").expect("write");
                std::fs::write(d.join("logs/b.log"), "b first\n").expect("write");
            },
            &["logs/*.log", "missing.txt"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=a.log", srv.url)).await;
        b.wait_js("a.log", &has_row("a first"), SECS10).await;
        b.wait_js(
            "three streams",
            "return document.querySelectorAll('#streams li').length === 3",
            SECS10,
        )
        .await;
        b.wait_js(
            "the missing file's state",
            "const li = document.querySelector('#streams li[data-id=\"missing.txt\"]'); return !!li && li.dataset.state === 'waiting' && li.querySelector('.why').textContent.length > 0",
            SECS10,
        )
        .await;
        wait_live(&b).await;
        // Unread count for a stream not in view.
        srv.append("logs/b.log", &lines("b new", 3));
        b.wait_js(
            "b.log's unread badge",
            "return document.querySelector('#streams li[data-id=\"b.log\"] .badge').textContent === '3'",
            Duration::from_secs(5),
        )
        .await;
        // A new file matching the glob appears in the picker.
        std::fs::write(srv.path("logs/c.log"), "c first\n").expect("write");
        b.wait_js(
            "c.log in the picker",
            "return !!document.querySelector('#streams li[data-id=\"c.log\"]')",
            SECS10,
        )
        .await;
        // Choose b.log.
        b.c.find(fantoccini::Locator::Css(
            "#streams li[data-id=\"b.log\"] .sname",
        ))
        .await
        .expect("b")
        .click()
        .await
        .expect("click");
        b.wait_js("b.log's lines", &has_row("b new 3"), SECS10)
            .await;
        assert!(!row_texts(&b).await.contains(&"a first".to_string()));
        // Tick a.log as well: merged view, every line labelled with its stream.
        b.c.find(fantoccini::Locator::Css(
            "#streams li[data-id=\"a.log\"] input",
        ))
        .await
        .expect("a")
        .click()
        .await
        .expect("click");
        b.wait_js("the merged view", &has_row("a first"), SECS10)
            .await;
        wait_live(&b).await;
        srv.append("logs/a.log", "a live\n");
        srv.append("logs/b.log", "b live\n");
        b.wait_js("merged live lines", &has_rows(&["a live", "b live"]), SECS2)
            .await;
        let labels = b
            .js("return [...document.querySelectorAll('#log .row')].map(r => [r.querySelector('.lbl') && r.querySelector('.lbl').textContent, r.querySelector('.txt').textContent])")
            .await;
        let labels = labels.as_array().expect("rows");
        assert!(
            labels.iter().any(|r| r == &json!(["a.log", "a live"])),
            "{labels:?}"
        );
        assert!(
            labels.iter().any(|r| r == &json!(["b.log", "b live"])),
            "{labels:?}"
        );
        let url = b.c.current_url().await.expect("url").to_string();
        assert!(
            url.contains("s=a.log%2Cb.log") || url.contains("s=a.log,b.log"),
            "{url}"
        );
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn rotation_truncation_and_a_missing_file_show_marker_rows() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), lines("first", 5)).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("lines", &has_row("first 5"), SECS10).await;
        wait_live(&b).await;
        // Rename rotation: mv app.log app.log.1, then a new app.log.
        std::fs::rename(srv.path("app.log"), srv.path("app.log.1")).expect("mv");
        std::fs::write(srv.path("app.log"), "fresh 1\n").expect("write");
        b.wait_js("the new file's line", &has_row("fresh 1"), SECS10)
            .await;
        b.wait_js(
            "a rotation marker",
            "return !!document.querySelector('#log .row.marker.m-rotated')",
            SECS2,
        )
        .await;
        // Truncation (copytruncate): the file shrinks, then gets a short line.
        srv.append("app.log", &lines("filler", 50));
        b.wait_js("filler", &has_row("filler 50"), SECS2).await;
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(srv.path("app.log"))
            .expect("truncate");
        srv.append("app.log", "short\n");
        b.wait_js("the line after truncation", &has_row("short"), SECS10)
            .await;
        b.wait_js(
            "a truncation marker",
            "return !!document.querySelector('#log .row.marker.m-truncated')",
            SECS2,
        )
        .await;
        // The file goes away: a marker row says so.
        std::fs::remove_file(srv.path("app.log")).expect("rm");
        b.wait_js(
            "a missing-file marker",
            "return !!document.querySelector('#log .row.marker.m-waiting')",
            SECS10,
        )
        .await;
        let order = b.js("return window.__cometail.entries()").await;
        let order: Vec<String> = serde_json::from_value(order).expect("strings");
        let pos = |s: &str| {
            order
                .iter()
                .position(|x| x == s)
                .unwrap_or_else(|| panic!("{s} missing from {order:?}"))
        };
        assert!(
            pos("first 5") < pos("M:rotated") && pos("M:rotated") < pos("fresh 1"),
            "{order:?}"
        );
        assert!(
            pos("filler 50") < pos("M:truncated") && pos("M:truncated") < pos("short"),
            "{order:?}"
        );
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn theme_and_wrap_toggles_apply_and_are_remembered() {
    run(async {
        let long = format!("long {} end", "0123456789".repeat(300));
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), format!("short\n{long}\n")).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("lines", &has_row("short"), SECS10).await;
        let bg = "return getComputedStyle(document.body).backgroundColor";
        let theme0 = b.js("return document.documentElement.dataset.theme").await;
        let bg0 = b.js(bg).await;
        b.c.find(fantoccini::Locator::Css("#theme"))
            .await
            .expect("theme")
            .click()
            .await
            .expect("click");
        let theme1 = b.js("return document.documentElement.dataset.theme").await;
        assert_ne!(theme0, theme1);
        assert_ne!(bg0, b.js(bg).await, "the theme changes the colours");
        // Wrap off: one line per row, horizontal scrolling.
        let long_h = "return [...document.querySelectorAll('#log .row')].find(r => r.textContent.startsWith('long ')).getBoundingClientRect().height";
        let h0 = b.js(long_h).await.as_f64().expect("height");
        assert!(h0 < 30.0, "unwrapped row is {h0}px high");
        assert_eq!(
            b.js("const l = document.querySelector('#log'); return l.scrollWidth > l.clientWidth")
                .await,
            json!(true)
        );
        b.c.find(fantoccini::Locator::Css("#wrap"))
            .await
            .expect("wrap")
            .click()
            .await
            .expect("click");
        b.wait_js(
            "wrapped",
            &format!(
                "{}; return h > 100",
                long_h.replacen("return ", "const h = ", 1)
            ),
            SECS2,
        )
        .await;
        // The wrapped row is tall enough for all of its text (the height is computed, not measured).
        let fits = b.js("const r = [...document.querySelectorAll('#log .row')].find(r => r.textContent.startsWith('long ')); const t = r.querySelector('.txt'); return t.scrollHeight <= r.clientHeight + 1").await;
        assert_eq!(fits, json!(true), "wrapped text is clipped");
        assert_eq!(
            b.js("const l = document.querySelector('#log'); return l.scrollWidth <= l.clientWidth")
                .await,
            json!(true)
        );
        // Both are remembered.
        b.open(&srv.url).await;
        b.wait_js("lines", &has_row("short"), SECS10).await;
        assert_eq!(
            b.js("return document.documentElement.dataset.theme").await,
            theme1
        );
        assert_eq!(
            b.js("return document.querySelector('#wrap').getAttribute('aria-pressed')")
                .await,
            json!("true")
        );
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
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn xss_payloads_as_lines_file_names_and_filters_run_nothing_and_break_no_csp() {
    run(async {
        let corpus =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/xss.txt"))
                .expect("corpus");
        let payloads: Vec<&str> = corpus.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            payloads.len() >= 100,
            "the corpus has only {} payloads",
            payloads.len()
        );
        let srv = Server::start(
            |d| {
                std::fs::write(
                    d.join("app.log"),
                    format!("{corpus}\x1b[31m<img src=x onerror=alert(2)>\x1b[0m\n"),
                )
                .expect("write");
                std::fs::create_dir(d.join("x")).expect("mkdir");
                for p in &payloads {
                    let name: String = p.replace('/', "_").chars().take(120).collect();
                    if name.trim().is_empty() || name.starts_with('.') {
                        continue;
                    }
                    let _ = std::fs::write(d.join("x").join(name), format!("{p}\n"));
                }
            },
            &["app.log", "x/*"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=app.log", srv.url)).await;
        b.wait_js(
            "the corpus",
            "return window.__cometail.texts().length >= 100",
            SECS10,
        )
        .await;
        let texts: Vec<String> =
            serde_json::from_value(b.js("return window.__cometail.texts()").await).expect("texts");
        for p in &payloads {
            assert!(texts.iter().any(|t| t == p), "payload missing: {p}");
        }
        // Walk the whole log so every payload is rendered as a row at some point (the user
        // scrolls away from the end first: a script's scrolls would not stop following).
        b.wheel(-2000).await;
        b.wait_js("pause", "return !window.__cometail.following()", SECS2)
            .await;
        b.js("const l = document.querySelector('#log'); l.scrollTop = 0")
            .await;
        for _ in 0..20 {
            b.js("const l = document.querySelector('#log'); l.scrollTop += l.clientHeight")
                .await;
            b.wait_js(
                "a frame",
                "return new Promise(r => requestAnimationFrame(() => r(true)))",
                SECS2,
            )
            .await;
        }
        b.wait_js(
            "many streams (file names)",
            "return document.querySelectorAll('#streams li').length > 50",
            SECS10,
        )
        .await;
        // Open a few payload-named streams, then all of them merged.
        for i in [1, 5, 9, 40, 77] {
            b.js_args("const li = document.querySelectorAll('#streams li')[arguments[0]]; li && li.querySelector('.sname').click()", vec![json!(i)]).await;
            b.wait_js(
                "its line",
                "return document.querySelectorAll('#log .row').length >= 1",
                SECS10,
            )
            .await;
        }
        b.js("for (const cb of [...document.querySelectorAll('#streams li input')].slice(0, 30)) if (!cb.checked) cb.click()").await;
        b.wait_js(
            "the merged view",
            "return window.__cometail.view().length >= 2",
            SECS10,
        )
        .await;
        // Back to the corpus, and every payload typed as a filter, plain and regex.
        b.open(&format!("{}?s=app.log", srv.url)).await;
        b.wait_js(
            "the corpus",
            "return window.__cometail.texts().length >= 100",
            SECS10,
        )
        .await;
        for p in &payloads {
            set_filter(&b, p).await;
        }
        b.c.find(fantoccini::Locator::Css("#re"))
            .await
            .expect("re")
            .click()
            .await
            .expect("click");
        for p in &payloads {
            set_filter(&b, p).await;
        }
        // A handful typed for real.
        let q = b.c.find(fantoccini::Locator::Css("#q")).await.expect("q");
        for p in payloads.iter().take(5) {
            q.clear().await.expect("clear");
            q.send_keys(p).await.expect("type");
        }
        b.wait_js(
            "a frame",
            "return new Promise(r => setTimeout(() => r(true), 300))",
            SECS2,
        )
        .await;
        let elems = b.js("return document.querySelectorAll('#log img, #log script, #log iframe, #log svg, #log a, #log object, #log embed, #log style, #streams img, #streams script').length").await;
        assert_eq!(elems, json!(0), "payload markup became elements");
        assert_clean(&b).await;
        b.close().await;
    });
}

/// `return` expression: the status code of `fetch(path)` from the page (same origin, so the
/// browser sends its cookies).
fn fetch_status(path: &str) -> String {
    format!(
        "return fetch({}, {{ cache: 'no-store' }}).then(r => r.status, e => 'error: ' + e)",
        Json::from(path)
    )
}

/// Waits for the status text `live · SSE`: the page streams over `EventSource`.
async fn wait_sse(b: &Browser) {
    b.wait_js(
        "the live SSE status",
        "return document.querySelector('#status-text').textContent === 'live · SSE' && window.__cometail.status() === 'sse'",
        SECS10,
    )
    .await;
}

/// Appends `line` and waits (at most 2 s) for its row; returns how long it took.
async fn append_and_see(srv: &Server, b: &Browser, line: &str) -> Duration {
    let t = std::time::Instant::now();
    srv.append("app.log", &format!("{line}\n"));
    b.wait_js("the appended line", &has_row(line), SECS2).await;
    t.elapsed()
}

#[test]
fn token_auth_page_exchanges_the_token_for_a_cookie_and_streams_lines() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), lines("old", 3)).expect("write"),
            &["--auth", "token", "app.log"],
        );
        let (base, token) = srv
            .printed
            .split_once("?token=")
            .unwrap_or_else(|| panic!("no generated token in {:?}", srv.printed));
        assert_eq!(base, srv.url);
        assert_eq!(token.len(), 64, "32 random bytes, hex");

        let b = Browser::start(1280, 800).await;
        b.open(&srv.printed).await;
        // The 303 took the token out of the address bar (and so out of the history); the
        // page then records its view in the URL (`?s=app.log`).
        let url = b.c.current_url().await.expect("url").to_string();
        assert!(
            url.starts_with(&srv.url) && !url.contains("token") && !url.contains(token),
            "the token must leave the address bar: {url}"
        );
        assert_eq!(
            b.js("return performance.getEntriesByType('navigation')[0].name")
                .await,
            json!(srv.url),
            "the document was loaded from the URL without the token"
        );
        assert_eq!(
            b.js("return performance.getEntriesByType('navigation')[0].redirectCount")
                .await,
            json!(1),
            "the page was reached through the redirect"
        );
        // History entries keep the URL after the redirect. (Chromium also remembers the
        // `userTypedURL` of an entry, which is what was typed and not the server's to change.)
        let hist = b.cdp("Page.getNavigationHistory", json!({})).await;
        let urls: Vec<&str> = hist["value"]["entries"]
            .as_array()
            .expect("history entries")
            .iter()
            .filter_map(|e| e["url"].as_str())
            .collect();
        assert!(
            urls.iter().any(|u| u.starts_with(&srv.url)) && !urls.iter().any(|u| u.contains(token)),
            "no history entry may hold the token: {urls:?}"
        );
        assert_eq!(
            b.js("return document.cookie").await,
            json!(""),
            "the cookie is HttpOnly"
        );
        b.wait_js(
            "the existing lines",
            &has_rows(&["old 1", "old 2", "old 3"]),
            SECS10,
        )
        .await;
        // EventSource sends the cookie: SSE works without anything more.
        wait_sse(&b).await;
        let took = append_and_see(&srv, &b, "appended after the exchange").await;
        eprintln!("token auth: appended line shown after {took:?}");
        wait_sse(&b).await;
        assert_eq!(b.js(&fetch_status("/api/streams")).await, json!(200));
        assert_clean(&b).await;
        b.close().await;

        // A fresh profile has no cookie: neither the page nor the API is served.
        let b = Browser::start(1280, 800).await;
        b.c.goto(&srv.url).await.expect("goto");
        let loaded = format!(
            "return location.href === {} && document.readyState === 'complete'",
            Json::from(srv.url.as_str())
        );
        b.wait_js("the page without the token", &loaded, SECS10)
            .await;
        assert_eq!(
            b.js("return [!!window.__cometail, document.querySelectorAll('#log .row').length]")
                .await,
            json!([false, 0]),
            "no app and no log lines without the token"
        );
        let text = b.js("return document.body.innerText").await;
        assert!(
            text.as_str()
                .unwrap_or_default()
                .contains("authentication required"),
            "{text:?}"
        );
        assert!(
            !text.as_str().unwrap_or_default().contains("old 1"),
            "{text:?}"
        );
        assert_eq!(b.js(&fetch_status("/api/streams")).await, json!(401));
        assert_eq!(
            b.js(&fetch_status("/api/streams/app.log/lines")).await,
            json!(401)
        );
        let api = format!("{}api/streams", srv.url);
        b.c.goto(&api).await.expect("goto");
        let loaded = format!(
            "return location.href === {} && document.readyState === 'complete'",
            Json::from(api.as_str())
        );
        b.wait_js("/api/streams without the token", &loaded, SECS10)
            .await;
        let body = b.js("return document.body.innerText").await;
        let body: Json = serde_json::from_str(body.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
        assert_eq!(body["error"], json!("authentication required"), "{body}");
        assert_eq!(
            b.js("return performance.getEntriesByType('navigation')[0].responseStatus")
                .await,
            json!(401)
        );
        b.close().await;
    });
}

#[test]
fn tls_page_streams_over_http2() {
    run(async {
        let srv = Server::start(
            |d| {
                std::fs::write(d.join("app.log"), lines("secure", 3)).expect("write");
                let ck = rcgen::generate_simple_self_signed(vec![
                    "localhost".into(),
                    "127.0.0.1".into(),
                ])
                .expect("self-signed certificate");
                std::fs::write(d.join("cert.pem"), ck.cert.pem()).expect("write cert");
                std::fs::write(d.join("key.pem"), ck.signing_key.serialize_pem())
                    .expect("write key");
            },
            &["--tls-cert", "cert.pem", "--tls-key", "key.pem", "app.log"],
        );
        assert!(srv.url.starts_with("https://127.0.0.1:"), "{}", srv.url);
        let b = Browser::start_with(1280, 800, &["--ignore-certificate-errors"]).await;
        b.open(&srv.url).await;
        b.wait_js(
            "the existing lines",
            &has_rows(&["secure 1", "secure 2", "secure 3"]),
            SECS10,
        )
        .await;
        wait_sse(&b).await;
        let took = append_and_see(&srv, &b, "appended over TLS").await;
        eprintln!("TLS: appended line shown after {took:?}");
        assert_eq!(
            b.js("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
                .await,
            json!("h2")
        );
        // The API requests the page made went over HTTP/2 too.
        let api = b
            .js("return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/')).map(e => e.nextHopProtocol)")
            .await;
        let api = api.as_array().expect("array");
        assert!(!api.is_empty(), "no API request recorded");
        assert!(api.iter().all(|p| p == "h2"), "{api:?}");
        assert_eq!(b.js("return window.isSecureContext").await, json!(true));
        assert_clean(&b).await;
        b.close().await;
    });
}
