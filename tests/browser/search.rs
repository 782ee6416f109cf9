//! The whole-history search panel (issue 12): a search typed in the filter box runs over the
//! rotated `.gz` file too, its matches stream into the panel newest first with a count, and a
//! match opens the view around it, in the rotated file.

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
        // With the filter cleared (the panel keeps its matches), a match deep in the rotated
        // file opens the view around it: the match and its context both ways.
        b.js("const q = document.querySelector('#q'); q.value = ''; q.dispatchEvent(new Event('input', { bubbles: true }))")
            .await;
        // As a user would, click once the cleared filter shows every line again.
        b.wait_js("the filter cleared", &has_row("new 2"), SECS10)
            .await;
        b.js("document.querySelectorAll('#slist li')[15].click()")
            .await;
        b.wait_js("the match in view", &has_row("old 5007 needle"), SECS10)
            .await;
        b.wait_js(
            "marked as linked",
            "return [...document.querySelectorAll('#log .row.linked .txt')].some(e => e.textContent === 'old 5007 needle')",
            SECS10,
        )
        .await;
        b.wait_js(
            "its context both ways",
            &has_rows(&["old 5006", "old 5008"]),
            SECS10,
        )
        .await;
        assert_clean(&b).await;
        b.close().await;
    });
}
