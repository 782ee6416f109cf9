//! The page behind a real nginx at `/logs/` (`--base-path /logs/`): history, live lines and
//! the shared worker all load through the proxy, with nothing asked of the root.

use serde_json::json;

use super::support::{Browser, Server, run};
use super::{SECS2, SECS10, assert_clean, has_row, lines};
use crate::common::nginx::Nginx;

#[test]
fn the_page_follows_live_lines_through_nginx_under_a_base_path() {
    run(async {
        let srv = Server::start(
            |d| std::fs::write(d.join("app.log"), lines("boot", 3)).expect("write"),
            &["--base-path", "/logs/", "app.log"],
        );
        assert!(srv.url.ends_with("/logs/"), "printed URL: {}", srv.url);
        let upstream = srv
            .url
            .trim_start_matches("http://")
            .trim_end_matches("/logs/")
            .to_owned();
        let nginx = Nginx::start(&upstream);
        let b = Browser::start(1280, 800).await;
        b.open(&format!("{}/logs/", nginx.url)).await;
        b.wait_js("history", &has_row("boot 3"), SECS10).await;
        b.wait_js(
            "live status",
            "return /live/.test(document.querySelector('#status').textContent)",
            SECS10,
        )
        .await;
        srv.append("app.log", "through the proxy\n");
        b.wait_js("the appended line", &has_row("through the proxy"), SECS2)
            .await;
        // Every request the page made went under /logs/ (none to the root, which nginx
        // does not proxy).
        let outside = b
            .js("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname).filter(p => !p.startsWith('/logs/'))")
            .await;
        assert_eq!(outside, json!([]), "requests outside the base path");
        assert_clean(&b).await;
        b.close().await;
    });
}
