//! Following the live end is the user's choice: only the user scrolling away or pressing a key
//! changes it, never a resize, a wrap toggle or rows changing height; and the keyboard
//! shortcuts work whatever control has focus, except in text fields.
//!
//! Scrolling here is real input (CDP `Input.dispatchMouseEvent` wheel events, keys through
//! WebDriver); a script setting `scrollTop` stands only for a scroll no input event announced.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value as Json, json};

use super::support::{Browser, Server, run};
use super::{SECS2, SECS10, assert_clean, has_row, lines, wait_live};

/// `return` expression: is the row with exactly this text wholly inside the log's box?
fn shows_row(text: &str) -> String {
    format!(
        "const l = document.querySelector('#log').getBoundingClientRect(); \
         return [...document.querySelectorAll('#log .row')].some(r => {{ \
           if (r.querySelector('.txt').textContent !== {}) return false; \
           const b = r.getBoundingClientRect(); \
           return b.top >= l.top - 1 && b.bottom <= l.bottom + 1; }})",
        Json::from(text)
    )
}

async fn following(b: &Browser) -> bool {
    b.js("return window.__cometail.following()").await == json!(true)
}

/// A log longer than any screen, with some lines long enough to wrap on a phone.
fn mixed(prefix: &str, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| {
            if i % 7 == 3 {
                format!("{prefix} {i} {}\n", "wrapping text ".repeat(20))
            } else {
                format!("{prefix} {i}\n")
            }
        })
        .collect()
}

async fn click(b: &Browser, css: &str) {
    b.c.find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

#[test]
fn scrolling_up_pauses_and_the_new_lines_control_resumes() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), lines("line", 500)).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("the last line", &has_row("line 500"), SECS10)
            .await;
        wait_live(&b).await;
        assert!(following(&b).await);
        // A scroll off the end that no input event announced (a scrollbar drag where the
        // browser reports no pointer, find in page) pauses as well; coming back to the end
        // that way does not follow again (only input or a key does).
        b.js("const l = document.querySelector('#log'); l.scrollTop = l.scrollTop - 600")
            .await;
        b.wait_js("pause", "return !window.__cometail.following()", SECS2)
            .await;
        b.js("const l = document.querySelector('#log'); l.scrollTop = l.scrollHeight")
            .await;
        b.wait_js(
            "a frame",
            "return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
            SECS2,
        )
        .await;
        assert!(!following(&b).await, "no input: still paused");
        b.wheel(5000).await;
        b.wait_js("follow", "return window.__cometail.following()", SECS2)
            .await;
        b.wheel(-2000).await;
        b.wait_js(
            "pause",
            "return window.__cometail.following() === false",
            SECS2,
        )
        .await;
        let top_before = b
            .js("return document.querySelector('#log').scrollTop")
            .await;
        srv.append("app.log", &lines("more", 5));
        b.wait_js(
            "the new-lines control",
            "const n = document.querySelector('#newlines'); return !n.hidden && /5 new lines/.test(n.textContent)",
            SECS2,
        )
        .await;
        let top_after = b
            .js("return document.querySelector('#log').scrollTop")
            .await;
        assert_eq!(top_before, top_after, "a paused view must not move");
        assert!(
            !b.rows().await.contains(&"more 5".to_string()),
            "paused: the end is off screen"
        );
        click(&b, "#newlines").await;
        b.wait_js(
            "follow again",
            "return window.__cometail.following() === true",
            SECS2,
        )
        .await;
        b.wait_js("the newest line on screen", &shows_row("more 5"), SECS2)
            .await;
        b.wait_js(
            "the control hides",
            "return document.querySelector('#newlines').hidden",
            SECS2,
        )
        .await;
        // Scrolling back down to the end follows again too.
        b.wheel(-600).await;
        b.wait_js("pause", "return !window.__cometail.following()", SECS2)
            .await;
        b.wheel(5000).await;
        b.wait_js("follow", "return window.__cometail.following()", SECS2)
            .await;
        // Keys: g pauses at the start, G follows again.
        b.js("document.querySelector('#log').focus()").await;
        b.c.find(Locator::Css("#log"))
            .await
            .expect("log")
            .send_keys("g")
            .await
            .expect("g");
        b.wait_js("the start of the file", &has_row("line 1"), SECS2)
            .await;
        assert!(!following(&b).await, "g leaves the live end");
        b.c.find(Locator::Css("#log"))
            .await
            .expect("log")
            .send_keys("G")
            .await
            .expect("G");
        b.wait_js("the end again", &shows_row("more 5"), SECS2)
            .await;
        assert!(following(&b).await);
        assert_clean(&b).await;
        b.close().await;
    });
}

/// True when no visible control of the top bars reaches past the viewport's right edge.
const CONTROLS_ON_SCREEN: &str = "return [...document.querySelectorAll(\
    '.bar button, .bar input, .bar a, .qbar button, .qbar input, .qbar a')]\
    .every(e => { const r = e.getBoundingClientRect(); \
    const w = Math.min(innerWidth, document.documentElement.clientWidth, visualViewport.width); \
    return r.width === 0 || r.right <= w + 0.5; })";

#[test]
fn a_resize_to_phone_width_and_back_keeps_following() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), mixed("line", 1, 2000)).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("the last line", &shows_row("line 2000"), SECS10)
            .await;
        wait_live(&b).await;
        for (round, wrap) in [(1, false), (2, true)] {
            if wrap {
                click(&b, "#wrap").await;
            }
            b.resize(390, 844).await;
            b.wait_js(
                "the phone layout",
                "return document.querySelector('#log').clientWidth < 400",
                SECS2,
            )
            .await;
            // Every control of the two bars is on the screen (they wrap, none is cut off).
            b.wait_js(
                "the bars' controls within the phone's width",
                CONTROLS_ON_SCREEN,
                SECS2,
            )
            .await;
            b.resize(1280, 800).await;
            b.wait_js(
                "the desktop layout",
                "return document.querySelector('#log').clientWidth > 800",
                SECS2,
            )
            .await;
            let line = format!("after resize {round}");
            srv.append("app.log", &format!("{line}\n"));
            b.wait_js(&line, &shows_row(&line), SECS2).await;
            assert!(following(&b).await, "round {round}: still following");
            assert_eq!(
                b.js("return document.querySelector('#newlines').hidden")
                    .await,
                json!(true),
                "round {round}: no new-lines control"
            );
        }
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn twelve_resizes_and_wrap_toggles_while_100000_lines_arrive_keep_following() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), mixed("old", 1, 2000)).expect("write"),
            &["app.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&srv.url).await;
        b.wait_js("the last line", &shows_row("old 2000"), SECS10)
            .await;
        wait_live(&b).await;
        let sizes = [(390, 844), (1024, 700), (844, 390), (1280, 800)];
        let total = 100_000;
        let chunk = total / 12 + 1;
        let mut next = 1;
        for i in 0..12 {
            let n = chunk.min(total + 1 - next);
            srv.append("app.log", &mixed("live", next, n));
            next += n;
            if i % 2 == 0 {
                let (w, h) = sizes[(i / 2) % sizes.len()];
                b.resize(w, h).await;
            } else {
                click(&b, "#wrap").await;
            }
        }
        assert_eq!(next, total + 1);
        b.resize(1280, 800).await;
        let last = format!("live {total}");
        b.wait_js(
            "the last line in view",
            &shows_row(&last),
            Duration::from_secs(90),
        )
        .await;
        assert!(following(&b).await, "still following");
        assert_eq!(
            b.js("return document.querySelector('#newlines').hidden")
                .await,
            json!(true),
            "no new-lines control"
        );
        assert_clean(&b).await;
        b.close().await;
    });
}

#[test]
fn shortcuts_work_whatever_control_has_focus_except_in_text_fields() {
    run(async {
        let srv = Server::start(
            |d| {
                std::fs::write(d.join("a.log"), lines("alpha", 300)).expect("write");
                std::fs::write(d.join("b.log"), lines("beta", 3)).expect("write");
            },
            &["a.log", "b.log"],
        );
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}?s=a.log", srv.url)).await;
        b.wait_js("the last line", &shows_row("alpha 300"), SECS10)
            .await;
        wait_live(&b).await;
        // `/` from a stream's checkbox reaches the filter.
        b.js("document.querySelector('#streams input[type=checkbox]').focus()")
            .await;
        b.c.active_element()
            .await
            .expect("focus")
            .send_keys("/")
            .await
            .expect("/");
        b.wait_js(
            "the filter focused",
            "return document.activeElement === document.querySelector('#q')",
            SECS2,
        )
        .await;
        assert_eq!(
            b.js("return window.__cometail.view()").await,
            json!(["a.log"]),
            "the key did not tick the checkbox"
        );
        // In the filter, letters are text, not shortcuts.
        b.c.active_element()
            .await
            .expect("focus")
            .send_keys("g")
            .await
            .expect("g");
        b.wait_js(
            "g typed",
            "return document.querySelector('#q').value === 'g'",
            SECS2,
        )
        .await;
        assert!(following(&b).await, "g in the filter is not a shortcut");
        // Escape clears the filter and leaves it; the wrap button gets focus; g and G work.
        b.c.active_element()
            .await
            .expect("focus")
            .send_keys("\u{e00c}")
            .await
            .expect("escape");
        b.js("document.querySelector('#wrap').focus()").await;
        b.c.active_element()
            .await
            .expect("focus")
            .send_keys("g")
            .await
            .expect("g");
        b.wait_js("the first line", &shows_row("alpha 1"), SECS2)
            .await;
        assert!(!following(&b).await);
        b.c.active_element()
            .await
            .expect("focus")
            .send_keys("G")
            .await
            .expect("G");
        b.wait_js("follow", "return window.__cometail.following()", SECS2)
            .await;
        b.wait_js("the last line", &shows_row("alpha 300"), SECS2)
            .await;
        assert_clean(&b).await;
        b.close().await;
    });
}
