//! Understanding the log on the page: the event-time column in the browser's zone and in UTC,
//! level colours and the level chooser, JSON fields (expanded, clicked into the query), the
//! server-side query over the whole history and live, go-to-time and `#at=` links, and rows
//! wrapped whole at phone width.

use std::time::Duration;

use serde_json::{Value as Json, json};

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

/// Set the query box and apply it (Enter), as typing would.
async fn set_query(b: &Browser, q: &str) {
    b.js_args(
        "const i = document.querySelector('#query'); i.value = arguments[0]; \
         i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))",
        vec![json!(q)],
    )
    .await;
}

/// Wait until the open view carries `q` and has loaded `n` lines.
async fn wait_view(b: &Browser, q: &str, n: usize) {
    b.wait_js(
        &format!("the view of {q:?} with {n} lines"),
        &format!(
            "const c = window.__cometail; return c.query() === {} && !c.busy() && c.texts().length === {n}",
            Json::from(q)
        ),
        SECS10,
    )
    .await;
}

async fn url_of(b: &Browser) -> String {
    b.c.current_url().await.expect("url").to_string()
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
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), log).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.cdp(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": "America/New_York" }),
        )
        .await;
        b.open(&format!("{}?s=app.log", srv.url)).await;
        b.wait_js(
            "the last line",
            &has_row("2026-12-01T12:49:59.999+02:00 INFO request 2999"),
            SECS10,
        )
        .await;
        wait_live(&b).await;
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
fn json_fields_expand_and_a_click_on_one_queries_the_server() {
    run(async {
        let line = |i: u32| {
            format!(
                "{{\"ts\":\"2026-12-01T12:{:02}:{:02}.000Z\",\"level\":\"{}\",\"msg\":\"GET /item/{i}\",\"status\":{},\"user\":{{\"id\":{}}}}}\n",
                (i / 60) % 60,
                i % 60,
                if i % 9 == 0 { "warn" } else { "info" },
                if i % 250 == 9 { 500 } else { 200 },
                i % 5
            )
        };
        let srv = Server::start(
            |d| {
                std::fs::write(d.join("json.log"), (0..2000).map(line).collect::<String>())
                    .expect("write")
            },
            &["json.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=json.log&tz=utc", srv.url)).await;
        let row = "[...document.querySelectorAll('#log .row')].find(r => { const m = r.querySelector('.msg'); return m && m.textContent === 'GET /item/1999'; })";
        b.wait_js("the last line", &format!("return !!{row}"), SECS10)
            .await;
        wait_live(&b).await;
        // The message, then the fields as chips (time and level are columns already).
        let chips = b
            .js(&format!(
                "return [...{row}.querySelectorAll('.fk')].map(c => c.textContent)"
            ))
            .await;
        assert_eq!(chips, json!(["status=200", "user.id=4"]));
        assert_eq!(
            b.js(&format!("return {row}.querySelector('.tc').textContent"))
                .await,
            json!("2026-12-01 12:33:19.000")
        );
        // Expanded, the row shows the whole object, and is tall enough for it.
        let h0 = b
            .js(&format!("return {row}.getBoundingClientRect().height"))
            .await;
        b.js(&format!("{row}.querySelector('.xp').click()")).await;
        b.wait_js(
            "the open row",
            &format!("const r = {row}; return !!r && !!r.querySelector('.detail')"),
            SECS2,
        )
        .await;
        let open = b
            .js(&format!(
                "const r = {row}; const d = r.querySelector('.detail'); \
                 return [d.textContent, r.getBoundingClientRect().height, d.scrollHeight <= d.clientHeight + 1]"
            ))
            .await;
        let detail = open[0].as_str().unwrap();
        assert!(
            detail.contains("\"user\": {") && detail.contains("\"id\": 4"),
            "{detail}"
        );
        let lines = detail.lines().count() as f64;
        assert!(
            open[1].as_f64().unwrap() >= (lines + 1.0) * h0.as_f64().unwrap() - 1.0,
            "an open row of {lines} lines is {} px high",
            open[1]
        );
        assert_eq!(open[2], json!(true), "the detail is cut");
        // A click on a field queries the server: every line with it, also those before the
        // 1,000 first loaded.
        b.js(&format!(
            "[...{row}.querySelectorAll('.fk')].find(c => c.textContent === 'user.id=4').click()"
        ))
        .await;
        wait_view(&b, "user.id=4", 400).await;
        assert_eq!(
            b.js("return window.__cometail.texts().every(t => t.includes('\"id\":4'))")
                .await,
            json!(true)
        );
        assert_eq!(
            b.js("return window.__cometail.texts()[0]").await,
            json!(line(4).trim_end())
        );
        // Alt-click: lines without that value.
        b.js(&format!(
            "[...{row}.querySelectorAll('.fk')].find(c => c.textContent === 'status=200').dispatchEvent(new MouseEvent('click', {{bubbles: true, altKey: true}}))"
        ))
        .await;
        wait_view(&b, "user.id=4 status!=200", 8).await;
        // A query the server refuses is shown with its bad part marked; the view stays.
        set_query(&b, "user.id=4 level>=loud").await;
        b.wait_js(
            "the refusal",
            "const e = document.querySelector('#qerr'); return !e.hidden && /unknown level/.test(e.textContent) && e.querySelector('mark').textContent === 'loud'",
            SECS10,
        )
        .await;
        assert_eq!(
            b.js("return window.__cometail.query()").await,
            json!("user.id=4 status!=200")
        );
        // Live lines pass the same query on the server.
        srv.append("json.log", &format!("{}{}", line(2004), line(2009)));
        b.wait_js(
            "the live match",
            "return window.__cometail.texts().some(t => t.includes('GET /item/2009'))",
            SECS10,
        )
        .await;
        assert_eq!(
            b.js("return window.__cometail.texts().some(t => t.includes('GET /item/2004'))")
                .await,
            json!(false)
        );
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
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), log).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=app.log&tz=utc", srv.url)).await;
        b.wait_js(
            "the last line",
            &has_row("2026-12-01T01:23:19Z tick 4999 odd"),
            SECS10,
        )
        .await;
        wait_live(&b).await;
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
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), log).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(390, 844).await;
        b.open(&format!("{}?s=app.log&tz=utc", srv.url)).await;
        b.wait_js("the last line", "return window.__cometail.texts().length === 80 && document.querySelectorAll('#log .row').length > 5", SECS10)
            .await;
        wait_live(&b).await;
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
fn a_record_of_several_lines_shows_its_first_line_and_opens_to_all() {
    run(async {
        // Docker's json-file: one entry whose text is a stack trace of three lines.
        let log = concat!(
            r#"{"log":"Exception in thread main\n\tat a.b.C(C.java:1)\n\tat a.b.D(D.java:2)\n","stream":"stderr","time":"2026-12-01T12:00:00.000000000Z"}"#,
            "\n",
            r#"{"log":"plain next\n","stream":"stdout","time":"2026-12-01T12:00:01.000000000Z"}"#,
            "\n"
        );
        let srv = Server::start(
            |d| std::fs::write(d.join("docker.log"), log).expect("write"),
            &["docker.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=docker.log&tz=utc", srv.url)).await;
        b.wait_js("the lines", &has_row("plain next"), SECS10).await;
        assert_eq!(
            b.rows().await,
            vec!["▸ Exception in thread main [+2 lines]", "plain next"]
        );
        let heights = "return [...document.querySelectorAll('#log .row')].map(r => Math.round(r.getBoundingClientRect().height))";
        let closed = b.js(heights).await;
        assert_eq!(closed[0], closed[1], "a closed record is one line");
        b.js("document.querySelector('#log .row .xp').click()")
            .await;
        b.wait_js(
            "the open record",
            "return !!document.querySelector('#log .row.open .detail')",
            SECS2,
        )
        .await;
        assert_eq!(
            b.js("return document.querySelector('#log .row.open .detail').textContent")
                .await,
            json!("\tat a.b.C(C.java:1)\n\tat a.b.D(D.java:2)")
        );
        let open = b.js(heights).await;
        assert_eq!(
            open[0].as_i64(),
            closed[0].as_i64().map(|h| 3 * h),
            "{open}"
        );
        // The next row moved down to make room, and comes back when the record closes.
        b.js("document.querySelector('#log .row .xp').click()")
            .await;
        b.wait_js(
            "the closed record",
            "return !document.querySelector('#log .row.open')",
            SECS2,
        )
        .await;
        assert_eq!(b.js(heights).await, closed);
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn tabs_with_different_queries_share_the_worker_and_each_gets_its_own_lines() {
    run(async {
        let srv = Server::start(
            |d| {
                std::fs::write(
                    d.join("a.log"),
                    "2026-12-01T12:00:00Z INFO first\n2026-12-01T12:00:01Z ERROR second\n",
                )
                .expect("write");
            },
            &["a.log"],
        );
        let b = Browser::start(1280, 800).await;
        let errors = b.c.window().await.expect("first tab");
        b.open(&format!("{}?s=a.log&query=level%3E%3Derror", srv.url))
            .await;
        let all = b.c.new_window(true).await.expect("new tab").handle;
        b.c.switch_to_window(all.clone()).await.expect("switch");
        b.open(&format!("{}?s=a.log", srv.url)).await;
        for tab in [&errors, &all] {
            b.c.switch_to_window(tab.clone()).await.expect("switch");
            b.wait_js(
                "live over the shared connection",
                "return window.__cometail.shared() && window.__cometail.status() === 'sse'",
                SECS10,
            )
            .await;
        }
        srv.append(
            "a.log",
            "2026-12-01T12:00:02Z INFO third\n2026-12-01T12:00:03Z ERROR fourth\n",
        );
        let texts = "return window.__cometail.texts().map(t => t.split(' ').slice(2).join(' '))";
        b.c.switch_to_window(all.clone()).await.expect("switch");
        b.wait_js(
            "every line",
            "return window.__cometail.texts().length === 4",
            SECS10,
        )
        .await;
        assert_eq!(
            b.js(texts).await,
            json!(["first", "second", "third", "fourth"])
        );
        b.c.switch_to_window(errors.clone()).await.expect("switch");
        b.wait_js(
            "the new error",
            "return window.__cometail.texts().length === 2",
            SECS10,
        )
        .await;
        assert_eq!(b.js(texts).await, json!(["second", "fourth"]));
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn a_merged_view_orders_history_by_event_time_and_takes_the_query() {
    run(async {
        let stamp = |s: u32| format!("2026-12-01T12:00:{s:02}Z");
        let srv = Server::start(
            |d| {
                let a: String = [0, 2, 4, 6]
                    .iter()
                    .map(|&s| format!("{} INFO a at {s}\n", stamp(s)))
                    .collect();
                let b: String = [1, 3, 5, 7]
                    .iter()
                    .map(|&s| {
                        format!(
                            "{} {} b at {s}\n",
                            stamp(s),
                            if s == 5 { "ERROR" } else { "INFO" }
                        )
                    })
                    .collect();
                std::fs::write(d.join("a.log"), a).expect("write");
                std::fs::write(d.join("b.log"), b).expect("write");
            },
            &["a.log", "b.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=a.log,b.log", srv.url)).await;
        let texts = "return window.__cometail.texts().map(t => t.split(' ').slice(2).join(' '))";
        b.wait_js(
            "both streams",
            "return window.__cometail.texts().length === 8",
            SECS10,
        )
        .await;
        assert_eq!(
            b.js(texts).await,
            json!([
                "a at 0", "b at 1", "a at 2", "b at 3", "a at 4", "b at 5", "a at 6", "b at 7"
            ])
        );
        set_query(&b, "level>=warn").await;
        wait_view(&b, "level>=warn", 1).await;
        assert_eq!(b.js(texts).await, json!(["b at 5"]));
        assert_eq!(
            b.js("return window.__cometail.view()").await,
            json!(["a.log", "b.log"])
        );
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn a_sparse_query_searches_back_until_it_finds_its_matches() {
    run(async {
        // 200,000 lines with one match near the start. On this machine's debug builds the
        // first scan stops at its budget (200 ms) long before it: the page then reads on
        // back by itself, as scrolling up would, until the match (and the start) is found.
        let mut log = String::with_capacity(200_000 * 64);
        for i in 0..200_000u32 {
            let word = if i == 10 { "needle" } else { "filler" };
            log.push_str(&format!(
                "2026-12-01T00:00:00Z INFO {word} line {i} ........\n"
            ));
        }
        let srv = Server::start(
            |d| std::fs::write(d.join("big.log"), log).expect("write"),
            &["big.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=big.log&query=needle", srv.url)).await;
        b.wait_js(
            "the early match",
            "return window.__cometail.texts().length === 1 && window.__cometail.atStart()",
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(
            b.js("return window.__cometail.texts()").await,
            json!(["2026-12-01T00:00:00Z INFO needle line 10 ........"])
        );
        assert_eq!(
            b.js("return document.querySelector('#top-note').textContent")
                .await,
            json!("start of file · no earlier matches")
        );
        assert_clean(&b).await;
        b.close().await;
    });
}
