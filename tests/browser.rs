//! End-to-end tests of the page in a real headless Chromium (WebDriver via chromedriver),
//! against the real `cometail` binary following real files in a temp dir.
//!
//! Every wait polls a condition with a deadline; nothing sleeps to synchronise. The tests take
//! a static lock (see `support::run`), so they run one at a time inside this binary.

mod delivery;
mod filter;
mod follow;
mod formats;
mod hosts;
mod merged;
mod proxy;
mod query;
mod records;
mod render;
mod search;
mod security;
mod support;
mod tabs;
mod time;

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
