//! cometail under a base path (`--base-path /logs/`), directly and behind a real nginx: every
//! URL lives under the prefix, the API and SSE flow through the proxy unbuffered, and the
//! token exchange and its cookie stay under the prefix.

use std::time::Duration;

use crate::common::nginx::Nginx;
use crate::common::sse::Connection;
use crate::common::{Server, append};

const SEC: Duration = Duration::from_secs(1);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(10 * SEC)
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_url_lives_under_the_base_path() {
    let s = Server::start(&["--base-path", "/logs", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "a\n");
    s.wait_last_at("/logs", "app.log", "a").await;
    let c = no_redirects();
    let get = |p: &str| c.get(format!("{}{p}", s.url)).send();
    for outside in ["/", "/api/streams", "/app.js", "/logsx/", "/other/logs/"] {
        assert_eq!(get(outside).await.unwrap().status(), 404, "{outside}");
    }
    let r = get("/logs?transport=poll").await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/logs/?transport=poll");
    let page = get("/logs/").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"src="app.js""#),
        "the page's URLs are relative: {html}"
    );
    assert!(
        !html.contains(r#"="/"#),
        "no root-relative URL in the page: {html}"
    );
    for asset in ["app.js", "conn.js", "relay.js", "filter.js", "style.css"] {
        let r = get(&format!("/logs/{asset}")).await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let body = r.text().await.unwrap();
        for root in ["\"/api", "`/api", "\"/relay.js", "\"/filter.js"] {
            assert!(!body.contains(root), "{asset} builds a root URL: {root}");
        }
    }
}

#[tokio::test]
async fn the_token_exchange_redirects_and_scopes_its_cookie_under_the_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let token = "0123456789abcdef0123";
    std::fs::write(dir.path().join("token"), token).unwrap();
    let s = Server::start_in(
        dir,
        &[
            "--base-path",
            "/ops/logs/",
            "--token-file",
            "{dir}/token",
            "{dir}/app.log",
        ],
    )
    .await;
    let r = no_redirects()
        .get(format!("{}/ops/logs/?token={token}&transport=poll", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ops/logs/?transport=poll");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Path=/ops/logs/;"), "{cookie}");
    let denied = no_redirects()
        .get(format!("{}/ops/logs/api/streams", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
}

#[tokio::test]
async fn the_api_and_sse_work_through_nginx_under_logs() {
    let s = Server::start(&["--base-path", "/logs/", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "first\n");
    s.wait_last_at("/logs", "app.log", "first").await;
    let upstream = s.url.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(&upstream);
    let c = &s.client;
    let base = format!("{}/logs", nginx.url);

    let list: serde_json::Value = c
        .get(format!("{base}/api/streams"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["streams"][0]["id"], "app.log", "{list}");
    let page = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("cometail"));

    let mut sse = Connection::open(c, &format!("{base}/api/streams/app.log/events"), None).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.headers["content-type"], "text/event-stream");
    let (first, _) = sse.entries(1, 5 * SEC).await;
    assert_eq!(first[0]["text"], "first");
    // Unbuffered: each appended line arrives on its own, while the response stays open.
    for text in ["second", "third"] {
        append(&s.path("app.log"), format!("{text}\n"));
        let (got, _) = sse.entries(1, 5 * SEC).await;
        assert_eq!(got[0]["text"], text);
    }
    let poll: serde_json::Value = c
        .get(format!("{base}/api/streams/app.log/lines?last=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(crate::common::texts(&poll), ["first", "second", "third"]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_stream_cap_counts_each_forwarded_client() {
    let s = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--max-streams-per-address",
        "1",
        "{dir}/app.log",
    ])
    .await;
    append(&s.path("app.log"), "a\n");
    s.wait_last("app.log", "a").await;
    let url = format!("{}/api/streams/app.log/events", s.url);
    let open = |client: &'static str| {
        s.client
            .get(&url)
            .header("accept", "text/event-stream")
            .header("x-forwarded-for", client)
            .send()
    };
    let first = open("10.0.0.1").await.unwrap();
    let other = open("10.0.0.2").await.unwrap();
    assert_eq!(
        (first.status().as_u16(), other.status().as_u16()),
        (200, 200)
    );
    assert_eq!(open("10.0.0.1").await.unwrap().status(), 429);
    drop((first, other));
}

#[tokio::test]
async fn a_forwarded_header_from_an_address_that_is_not_a_trusted_proxy_is_ignored() {
    // A proxy is trusted, but the connections come from 127.0.0.1, which is not it: their
    // `X-Forwarded-For` is the client's own to forge, so both count as 127.0.0.1.
    let s = Server::start(&[
        "--trusted-proxy",
        "192.0.2.1",
        "--max-streams-per-address",
        "1",
        "{dir}/app.log",
    ])
    .await;
    append(&s.path("app.log"), "a\n");
    s.wait_last("app.log", "a").await;
    let url = format!("{}/api/streams/app.log/events", s.url);
    let open = |client: &'static str| {
        s.client
            .get(&url)
            .header("accept", "text/event-stream")
            .header("x-forwarded-for", client)
            .send()
    };
    let first = open("10.0.0.1").await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(
        open("10.0.0.2").await.unwrap().status(),
        429,
        "a forged client address does not get a cap of its own"
    );
    drop(first);
}

#[test]
fn a_base_path_without_a_leading_slash_is_exit_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--base-path", "logs/", "app.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--base-path") && err.contains("must start with `/`"),
        "{err}"
    );
}
