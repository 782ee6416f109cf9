//! The filter: plain text and regexes, highlights, and a catastrophic regex stopped in its
//! worker while the page stays responsive.

use std::time::Duration;

use serde_json::json;

use super::support::{Browser, Server, run};
use super::*;

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
