//! Times on the page: the event-time column in the browser's zone and in UTC, level colours
//! and the level chooser, go-to-time and `#at=` links, day marks, and rows wrapped whole at
//! phone width (also an open row).

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::query::wait_view;
use super::support::{Browser, Server, run};
use super::{SECS2, SECS10, assert_clean, has_row, wait_live};

/// `return` expression: the row whose text contains `needle`, as `[time cell, class]`, or null.
fn row_of(needle: &str) -> String {
    format!(
        "const r = [...document.querySelectorAll('#log .row')].find(r => r.querySelector('.txt').textContent.includes({})); \
         return r ? [r.querySelector('.tc') ? r.querySelector('.tc').textContent : null, r.className] : null",
        Json::from(needle)
    )
}

/// `return` expression: does every row drawn show all of its text (none cut at the bottom or
/// the right edge)?
const ROWS_WHOLE: &str = "const rs = [...document.querySelectorAll('#log .row')]; \
    return rs.length > 0 && rs.every(r => { const t = r.querySelector('.txt'); \
      return t.scrollHeight <= r.clientHeight + 1 && t.scrollWidth <= t.clientWidth + 1; })";

/// The page's address now.
async fn url_of(b: &Browser) -> String {
    b.c.current_url().await.expect("url").to_string()
}

/// The page at `?s=app.log{params}` over an `app.log` holding `log`: a browser of `size` in
/// the time zone `zone` (the browser's own when `None`), once the row `last` is drawn and
/// the connection is live.
async fn open_log(
    log: String,
    size: (u32, u32),
    zone: Option<&str>,
    params: &str,
    last: &str,
) -> (Server, Browser) {
    let srv = Server::start(
        |d| std::fs::write(d.join("app.log"), log).expect("write"),
        &["app.log"],
    );
    let b = Browser::start(size.0, size.1).await;
    if let Some(zone) = zone {
        b.cdp(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": zone }),
        )
        .await;
    }
    b.open(&format!("{}?s=app.log{params}", srv.url)).await;
    b.wait_js("the last line", &has_row(last), SECS10).await;
    wait_live(&b).await;
    (srv, b)
}

#[test]
fn event_times_follow_the_zone_and_the_level_chooser_queries_the_whole_history() {
    run(async {
        // 3,000 lines stamped at +02:00, one a second; the only errors are among the first
        // lines, far before the 1,000 the page loads at first.
        let mut log = String::new();
        for i in 0..3000u32 {
            let level = match i {
                5 | 17 => "ERROR",
                _ if i % 100 == 90 => "WARN",
                _ if i % 10 == 3 => "DEBUG",
                _ => "INFO",
            };
            log.push_str(&format!(
                "2026-12-01T{:02}:{:02}:{:02}.{:03}+02:00 {level} request {i}\n",
                12 + i / 3600,
                (i / 60) % 60,
                i % 60,
                i % 1000
            ));
        }
        let (srv, b) = open_log(
            log,
            (1280, 800),
            Some("America/New_York"),
            "",
            "2026-12-01T12:49:59.999+02:00 INFO request 2999",
        )
        .await;
        // 12:49:59.999 at +02:00 is 10:49:59.999 UTC, 05:49:59.999 in New York (EST).
        let last = b.js(&row_of("request 2999")).await;
        assert_eq!(last[0], json!("2026-12-01 05:49:59.999"), "local time");
        assert!(last[1].as_str().unwrap().contains("lvl-info"), "{last}");
        let warn = b.js(&row_of("WARN request 2990")).await;
        assert!(warn[1].as_str().unwrap().contains("lvl-warn"), "{warn}");
        let colour = |needle: &str| {
            format!(
                "const r = [...document.querySelectorAll('#log .row')].find(r => r.textContent.includes({})); return getComputedStyle(r.querySelector('.txt')).color",
                Json::from(needle)
            )
        };
        assert_ne!(
            b.js(&colour("WARN request 2990")).await,
            b.js(&colour("INFO request 2999")).await,
            "a warning is coloured"
        );
        assert_eq!(
            b.js("return document.querySelector('#tz').title.includes('America/New_York')")
                .await,
            json!(true)
        );
        // UTC, remembered in the URL.
        b.js("document.querySelector('#tz').click()").await;
        b.wait_js(
            "the UTC column",
            &format!(
                "const r = (() => {{ {} }})(); return !!r && r[0] === '2026-12-01 10:49:59.999'",
                row_of("request 2999")
            ),
            SECS2,
        )
        .await;
        assert_eq!(
            b.js("return document.querySelector('#tz').textContent")
                .await,
            json!("UTC")
        );
        assert!(url_of(&b).await.contains("tz=utc"));

        // The level chooser writes `level>=error` into the query; the server answers from
        // the whole history, so the two early errors show.
        b.js("document.querySelector('.lv-error').click()").await;
        wait_view(&b, "level>=error", 2).await;
        assert_eq!(
            b.js("return window.__cometail.texts().map(t => t.split(' ').slice(1).join(' '))")
                .await,
            json!(["ERROR request 5", "ERROR request 17"])
        );
        assert_eq!(
            b.js("return document.querySelector('#query').value").await,
            json!("level>=error")
        );
        let pressed = b
            .js("return [...document.querySelectorAll('#levels .lv')].filter(x => x.getAttribute('aria-pressed') === 'true').map(x => x.dataset.level)")
            .await;
        assert_eq!(pressed, json!(["error", "fatal"]));
        assert!(url_of(&b).await.contains("query=level%3E%3Derror"));
        // Live lines are filtered on the server too: the info line written first never shows.
        srv.append(
            "app.log",
            "2026-12-01T13:00:00.000+02:00 INFO live info\n2026-12-01T13:00:01.000+02:00 FATAL live fatal\n",
        );
        b.wait_js(
            "the live fatal line",
            &has_row("2026-12-01T13:00:01.000+02:00 FATAL live fatal"),
            SECS10,
        )
        .await;
        assert_eq!(
            b.js("return window.__cometail.texts().length").await,
            json!(3)
        );
        // A reload of the URL opens the same view.
        let url = url_of(&b).await;
        b.open(&url).await;
        wait_view(&b, "level>=error", 3).await;
        assert_eq!(
            b.js(&row_of("live fatal")).await[0],
            json!("2026-12-01 11:00:01.000")
        );
        // "all" takes the level term out again.
        b.js("document.querySelector('.lv-all').click()").await;
        b.wait_js(
            "every level again",
            "const c = window.__cometail; return c.query() === '' && !c.busy() && c.texts().some(t => t.includes('live info'))",
            SECS10,
        )
        .await;
        b.screenshot("time-desktop.png").await;
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn go_to_time_and_an_at_link_open_the_same_place() {
    run(async {
        let log: String = (0..5000u32)
            .map(|i| {
                format!(
                    "2026-12-01T{:02}:{:02}:{:02}Z tick {i} {}\n",
                    i / 3600,
                    (i / 60) % 60,
                    i % 60,
                    if i % 2 == 0 { "even" } else { "odd" }
                )
            })
            .collect();
        let (srv, b) = open_log(
            log,
            (1280, 800),
            None,
            "&tz=utc",
            "2026-12-01T01:23:19Z tick 4999 odd",
        )
        .await;
        // Go to 01:00:00 (UTC, the zone shown).
        b.js("const g = document.querySelector('#goto'); g.value = '2026-12-01T01:00:00'; document.querySelector('#go').click()")
            .await;
        let marked_in_view = |text: &str| {
            format!(
                "const r = document.querySelector('#log .row.linked'); if (!r || r.querySelector('.txt').textContent !== {}) return false; \
                 const a = r.getBoundingClientRect(), l = document.querySelector('#log').getBoundingClientRect(); \
                 return !window.__cometail.busy() && a.top >= l.top && a.bottom <= l.bottom",
                Json::from(text)
            )
        };
        b.wait_js(
            "the line at 01:00:00",
            &marked_in_view("2026-12-01T01:00:00Z tick 3600 even"),
            SECS10,
        )
        .await;
        assert_eq!(
            b.js("return window.__cometail.following()").await,
            json!(false)
        );
        // The page before is loaded too.
        assert_eq!(
            b.js("return window.__cometail.texts().includes('2026-12-01T00:59:59Z tick 3599 odd')")
                .await,
            json!(true)
        );
        let url = url_of(&b).await;
        assert!(url.ends_with("#at=2026-12-01T01:00:00.000Z"), "{url}");
        // A link with a query and a time opens the first match at or after the time.
        let link = format!(
            "{}?s=app.log&tz=utc&query=odd#at=2026-12-01T01:00:00Z",
            srv.url
        );
        b.open(&link).await;
        b.wait_js(
            "the first odd line at 01:00:00",
            &marked_in_view("2026-12-01T01:00:01Z tick 3601 odd"),
            SECS10,
        )
        .await;
        assert_eq!(
            b.js("return window.__cometail.texts().every(t => t.endsWith(' odd'))")
                .await,
            json!(true)
        );
        // Another time in the hash moves there.
        b.js("location.hash = '#at=2026-12-01T00:10:00Z'").await;
        b.wait_js(
            "the line at 00:10:00",
            &marked_in_view("2026-12-01T00:10:01Z tick 601 odd"),
            SECS10,
        )
        .await;
        // A click on a time cell puts that time in the URL.
        b.js("const r = [...document.querySelectorAll('#log .row')].find(r => r.querySelector('.txt').textContent.includes('tick 605 ')); r.querySelector('.tc').click()")
            .await;
        let url = url_of(&b).await;
        assert!(url.ends_with("#at=2026-12-01T00:10:05.000Z"), "{url}");
        // End follows the live end again, and the time leaves the URL.
        b.c.find(fantoccini::Locator::Css("body"))
            .await
            .expect("body")
            .send_keys("\u{e010}")
            .await
            .expect("End");
        b.wait_js("following", "return window.__cometail.following()", SECS10)
            .await;
        assert!(!url_of(&b).await.contains("#at="));
        srv.append("app.log", "2026-12-01T02:00:00Z tick 5001 odd\n");
        b.wait_js(
            "a live line",
            &has_row("2026-12-01T02:00:00Z tick 5001 odd"),
            SECS10,
        )
        .await;
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn at_phone_width_wrapped_rows_show_all_their_text() {
    run(async {
        let mut log = String::new();
        for i in 0..60u32 {
            log.push_str(&format!(
                "2026-12-01T12:00:{:02}Z {} worker {i} {}\n",
                i,
                if i % 5 == 0 { "ERROR" } else { "INFO" },
                "wrapping text ".repeat(12)
            ));
            if i % 3 == 0 {
                log.push_str(&format!(
                    "{{\"ts\":\"2026-12-01T12:00:{i:02}.500Z\",\"level\":\"warn\",\"msg\":\"slow request {i}\",\"path\":\"/api/orders/{i}\",\"took_ms\":{}}}\n",
                    i * 37
                ));
            }
        }
        let last = "2026-12-01T12:00:59Z INFO worker 59 ".to_owned() + &"wrapping text ".repeat(12);
        let (_srv, b) = open_log(log, (390, 844), None, "&tz=utc", &last).await;
        b.wait_js("every line", "return window.__cometail.texts().length === 80 && document.querySelectorAll('#log .row').length > 5", SECS10)
            .await;
        // Wrapping is on by default on a phone, and every row is tall enough for its text.
        assert_eq!(
            b.js("return document.querySelector('#wrap').getAttribute('aria-pressed')")
                .await,
            json!("true")
        );
        b.wait_js("whole rows", ROWS_WHOLE, SECS2).await;
        // Short times on a phone.
        let t = b.js(&row_of("worker 59")).await;
        assert_eq!(t[0], json!("12:00:59.000"));
        b.screenshot("time-phone.png").await;
        // Measured again at phone width with wrapping on (a resize, a rotation), the character
        // cell stays right: rows used to be cut to half their lines here.
        b.resize(1280, 800).await;
        b.wait_js(
            "the desktop layout",
            "return document.querySelector('#log').clientWidth > 800",
            SECS2,
        )
        .await;
        b.resize(390, 844).await;
        b.wait_js(
            "the phone layout",
            "return document.querySelector('#log').clientWidth < 400",
            SECS2,
        )
        .await;
        b.wait_js(
            "whole rows after the resize",
            ROWS_WHOLE,
            Duration::from_secs(5),
        )
        .await;
        // An open JSON row stays whole too.
        b.js("const x = [...document.querySelectorAll('#log .row .xp')]; x[x.length - 1].click()")
            .await;
        b.wait_js(
            "the open row",
            "return !!document.querySelector('#log .row.open .detail')",
            SECS2,
        )
        .await;
        b.wait_js(
            "the open row whole",
            "const r = document.querySelector('#log .row.open'); const d = r.querySelector('.detail'); return d.getBoundingClientRect().bottom <= r.getBoundingClientRect().bottom + 1",
            SECS2,
        )
        .await;
        b.screenshot("time-phone-open.png").await;
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn the_day_change_is_marked_in_the_zone_shown() {
    run(async {
        // Every ten minutes from 23:00 UTC on 1 December to 06:00 on the 2nd.
        let log: String = (0..43u32)
            .map(|k| {
                let m = 23 * 60 + k * 10;
                let (day, h) = if m >= 24 * 60 {
                    (2, m / 60 - 24)
                } else {
                    (1, m / 60)
                };
                format!("2026-12-{day:02}T{h:02}:{:02}:00Z INFO step {k}\n", m % 60)
            })
            .collect();
        let (_srv, b) = open_log(
            log,
            (1280, 800),
            Some("America/New_York"),
            "&tz=utc",
            "2026-12-02T06:00:00Z INFO step 42",
        )
        .await;
        let marks = "return [...document.querySelectorAll('#log .row.newday')].map(r => [r.dataset.day, r.querySelector('.txt').textContent])";
        assert_eq!(
            b.js(marks).await,
            json!([["Wed, 2 Dec 2026", "2026-12-02T00:00:00Z INFO step 6"]])
        );
        // In New York the day changes five hours later.
        b.js("document.querySelector('#tz').click()").await;
        b.wait_js(
            "the mark in New York",
            "const r = document.querySelector('#log .row.newday'); return !!r && r.querySelector('.txt').textContent === '2026-12-02T05:00:00Z INFO step 36'",
            SECS2,
        )
        .await;
        assert_eq!(
            b.js(marks).await,
            json!([["Wed, 2 Dec 2026", "2026-12-02T05:00:00Z INFO step 36"]])
        );
        assert_clean(&b).await;
        b.close().await;
    });
}
