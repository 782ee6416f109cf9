//! Reading what lines say, on the server's side: JSON fields (expanded, clicked into the
//! query), the query box over the whole history and live (also across tabs sharing the worker,
//! and in a merged view), a sparse query that searches back by itself, and records of several
//! lines.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::support::{Browser, Server, run};
use super::{SECS2, SECS10, assert_clean, has_row, wait_live};

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
pub(super) async fn wait_view(b: &Browser, q: &str, n: usize) {
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

#[test]
fn a_bad_query_from_a_link_shows_the_servers_reason_as_a_typed_one_does() {
    run(async {
        let lines: String = (0..50)
            .map(|i| {
                let level = if i % 10 == 0 { "WARN" } else { "INFO" };
                format!("2026-12-01T10:00:{i:02}Z {level} line {i}\n")
            })
            .collect();
        let srv = Server::start(
            |d| {
                std::fs::write(d.join("app.log"), &lines).expect("write");
                std::fs::write(d.join("other.log"), &lines).expect("write");
            },
            &["app.log", "other.log"],
        );
        let b = Browser::start(1280, 800).await;
        // The link carries a query the server refuses: the reason, its bad part marked, and
        // the view without it (it used to open filtered and show "no matches").
        b.open(&format!("{}?s=app.log&query=level%3E%3Dloud", srv.url))
            .await;
        b.wait_js(
            "the refusal",
            "const e = document.querySelector('#qerr'); return !e.hidden && /unknown level/.test(e.textContent) && e.querySelector('mark').textContent === 'loud'",
            SECS10,
        )
        .await;
        wait_view(&b, "", 50).await;
        assert_eq!(
            b.js("return [document.querySelector('#query').value, document.querySelector('#query').classList.contains('bad'), document.querySelector('#log').textContent.includes('no matches')]")
                .await,
            json!(["level>=loud", true, false])
        );
        // Corrected in the box, it applies and the reason goes.
        set_query(&b, "level>=warn").await;
        wait_view(&b, "level>=warn", 5).await;
        assert_eq!(
            b.js("return document.querySelector('#qerr').hidden").await,
            json!(true)
        );
        // A merged view's link is checked too.
        b.open(&format!(
            "{}?s=app.log,other.log&query=level%3E%3Dloud",
            srv.url
        ))
        .await;
        b.wait_js(
            "the merged view's refusal",
            "const e = document.querySelector('#qerr'); return !e.hidden && /unknown level/.test(e.textContent)",
            SECS10,
        )
        .await;
        wait_view(&b, "", 100).await;
        assert_clean(&b).await;
        b.close().await;
    });
}
