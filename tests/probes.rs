//! `/healthz` and `/readyz`: answered without credentials, revealing nothing, under the base
//! path like every URL.

use crate::common::Server;

async fn get(s: &Server, path: &str) -> (u16, String) {
    let r = s
        .client
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn probes_answer_without_credentials_and_name_no_stream() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "0123456789abcdef0123").unwrap();
    let s = Server::start_in(
        dir,
        &[
            "--token-file",
            "{dir}/token",
            "{dir}/secret-app.log",
            "{dir}/missing.log",
        ],
    )
    .await;
    assert_eq!(get(&s, "/api/streams").await.0, 401);
    assert_eq!(get(&s, "/healthz").await, (200, "ok\n".to_owned()));
    // A missing file is a stream waiting for it, not a server that is not ready.
    assert_eq!(get(&s, "/readyz").await, (200, "ready\n".to_owned()));
    let r = s
        .client
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(r.headers().contains_key("content-security-policy"));
}

#[tokio::test]
async fn probes_live_under_the_base_path() {
    let s = Server::start(&["--base-path", "/logs/", "{dir}/app.log"]).await;
    assert_eq!(get(&s, "/logs/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(get(&s, "/logs/readyz").await, (200, "ready\n".to_owned()));
    assert_eq!(get(&s, "/healthz").await.0, 404);
}
