//! The page under attack and behind credentials: hostile lines, file names and filters run
//! nothing and break no CSP; token auth trades the token for a cookie; TLS serves HTTP/2.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::support::{Browser, Server, run};
use super::*;

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
