//! The whole-history search panel (issue 12): a search typed in the filter box runs over the
//! rotated `.gz` file too, its matches stream into the panel newest first with a count, and a
//! match opens the view around it, in the rotated file. In a merged view the panel searches
//! every stream (`/api/search?streams=`), names each match's stream, and a match opens its
//! stream around it.

use std::io::Write;

use serde_json::json;

use super::support::{Browser, Server, run};
use super::*;

#[test]
fn the_search_panel_lists_matches_from_rotated_files_and_jumps_to_one() {
    run(async {
        let srv = Server::start(
            |d| {
                let old: String = (0..20_000)
                    .map(|i| {
                        let word = if i % 1000 == 7 { " needle" } else { "" };
                        format!("old {i}{word}\n")
                    })
                    .collect();
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(old.as_bytes()).expect("compress");
                std::fs::write(d.join("app.log.1.gz"), enc.finish().expect("gzip")).expect("write");
                std::fs::write(d.join("app.log"), "new 1 needle\nnew 2\n").expect("write");
            },
            &["--rotated-history", "app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("lines", &has_row("new 2"), SECS10).await;
        b.c.find(fantoccini::Locator::Css("#q"))
            .await
            .expect("q")
            .send_keys("needle")
            .await
            .expect("type");
        b.c.find(fantoccini::Locator::Css("#hsearch"))
            .await
            .expect("button")
            .click()
            .await
            .expect("click");
        b.wait_js(
            "every match",
            "return /whole history searched/.test(document.querySelector('#scount').textContent)",
            SECS10,
        )
        .await;
        let got = b
            .js("return [...document.querySelectorAll('#slist li')].map(li => li.textContent)")
            .await;
        let mut want = vec!["new 1 needle".to_owned()];
        want.extend(
            (0..20)
                .rev()
                .map(|k| format!("old {} needle", k * 1000 + 7)),
        );
        assert_eq!(got, json!(want), "newest first, the rotated file included");
        // A match deep in the rotated file opens the view around it, the match and its
        // context both ways, even when the filter is cleared while that view still loads
        // (the race: the cleared filter must not anchor the filtered view's top row).
        let clear = "const q = document.querySelector('#q'); q.value = ''; q.dispatchEvent(new Event('input', { bubbles: true }))";
        b.js(&format!(
            "document.querySelectorAll('#slist li')[15].click(); {clear}"
        ))
        .await;
        // `return`: the match is a linked row with its neighbours drawn around it.
        let around = |text: &str, before: &str, after: &str| {
            format!(
                "const rows = [...document.querySelectorAll('#log .row')]; \
                 const t = rows.map(r => r.querySelector('.txt')?.textContent); \
                 const linked = rows.some(r => r.classList.contains('linked') && r.querySelector('.txt')?.textContent === {m}); \
                 return linked && [{b}, {m}, {a}].every(x => t.includes(x))",
                m = json!(text),
                b = json!(before),
                a = json!(after)
            )
        };
        b.wait_js(
            "the match and its context, the filter cleared meanwhile",
            &around("old 5007 needle", "old 5006", "old 5008"),
            SECS10,
        )
        .await;
        // The other order: the jump lands in the filtered view, then the filter is cleared.
        b.js("const q = document.querySelector('#q'); q.value = 'needle'; q.dispatchEvent(new Event('input', { bubbles: true }))")
            .await;
        b.wait_js(
            "filtered again",
            "return !document.querySelector('#log .row .txt') || ![...document.querySelectorAll('#log .row .txt')].some(e => e.textContent === 'old 5006')",
            SECS10,
        )
        .await;
        b.js("document.querySelectorAll('#slist li')[10].click()")
            .await;
        b.wait_js(
            "the jump shown filtered",
            "return [...document.querySelectorAll('#log .row.linked .txt')].some(e => e.textContent === 'old 10007 needle')",
            SECS10,
        )
        .await;
        b.js(clear).await;
        b.wait_js(
            "the match kept in view as the filter clears",
            &around("old 10007 needle", "old 10006", "old 10008"),
            SECS10,
        )
        .await;
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn a_merged_view_searches_every_stream_and_opens_a_match_in_its_stream() {
    run(async {
        let srv = Server::start(
            |d| {
                let old: String = (0..5_000)
                    .map(|i| {
                        let word = if i % 1000 == 3 { " needle" } else { "" };
                        format!("a-old {i}{word}\n")
                    })
                    .collect();
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(old.as_bytes()).expect("compress");
                std::fs::write(d.join("a.log.1.gz"), enc.finish().expect("gzip")).expect("write");
                std::fs::write(d.join("a.log"), "a-new needle\n").expect("write");
                let b: String = (0..3_000)
                    .map(|i| {
                        let word = if i % 1000 == 5 { " needle" } else { "" };
                        format!("b {i}{word}\n")
                    })
                    .collect();
                std::fs::write(d.join("b.log"), b).expect("write");
            },
            &["--rotated-history", "a.log", "b.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=a.log,b.log", srv.url)).await;
        // No line has a time and history has no arrival time, so every merge key ties and
        // ties go to the stream named first (docs/API.md): all of a.log, then all of b.log,
        // read back and forth alike. The view opens at the newest entry, b.log's last line.
        b.wait_js(
            "the merged view at its newest entry",
            "return window.__cometail.texts().slice(-1)[0] === 'b 2999' \
               && [...document.querySelectorAll('#log .row .txt')].some(e => e.textContent === 'b 2999')",
            SECS10,
        )
        .await;
        b.js("const q = document.querySelector('#q'); q.value = 'needle'; q.dispatchEvent(new Event('input', { bubbles: true }))")
            .await;
        b.js("document.querySelector('#hsearch').click()").await;
        b.wait_js(
            "every match of both streams",
            "return /whole history searched/.test(document.querySelector('#scount').textContent)",
            SECS10,
        )
        .await;
        let got = b
            .js("return [...document.querySelectorAll('#slist li')].map(li => [li.dataset.stream, li.querySelector('.sstream')?.textContent, li.lastChild.textContent])")
            .await;
        let mut want = vec![json!(["a.log", "a.log", "a-new needle"])];
        want.extend(
            (0..5)
                .rev()
                .map(|k| json!(["a.log", "a.log", format!("a-old {} needle", k * 1000 + 3)])),
        );
        want.extend(
            (0..3)
                .rev()
                .map(|k| json!(["b.log", "b.log", format!("b {} needle", k * 1000 + 5)])),
        );
        assert_eq!(
            got,
            json!(want),
            "each stream newest first, in the order named"
        );
        // A match of b.log opens b.log around it.
        b.js("document.querySelector('#slist li[data-stream=\"b.log\"]:last-child').click()")
            .await;
        b.wait_js(
            "b.log opened around its match",
            "return [...document.querySelectorAll('#log .row.linked .txt')].some(e => e.textContent === 'b 5 needle') \
               && ![...document.querySelectorAll('#log .row .txt')].some(e => e.textContent === 'a-new needle')",
            SECS10,
        )
        .await;
        // Its context, once the filter is cleared.
        b.js("const q = document.querySelector('#q'); q.value = ''; q.dispatchEvent(new Event('input', { bubbles: true }))")
            .await;
        b.wait_js(
            "the context",
            &has_rows(&["b 4", "b 5 needle", "b 6"]),
            SECS10,
        )
        .await;
        assert_clean(&b).await;
        b.close().await;
    });
}
