//! How lines and streams look: ANSI styles, the stream picker and the merged view, marker
//! rows for rotation, truncation and missing files, theme and wrap.

use std::time::Duration;

use serde_json::json;

use super::support::{Browser, Server, run};
use super::*;

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
fn the_picker_shows_an_exited_command_with_its_exit_status() {
    run(async {
        let srv = Server::start(|_| {}, &["--cmd", "svc=sh -c 'echo up; exit 7'"]);
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=svc", srv.url)).await;
        b.wait_js(
            "the command's state in the picker",
            "const li = document.querySelector('#streams li[data-id=\"svc\"]'); return !!li && li.dataset.state === 'exited' && li.querySelector('.why').textContent.includes('exit status: 7')",
            SECS10,
        )
        .await;
        b.close().await;
    });
}
