//! Authentication: tokens, cookies, Basic users, and the failure throttle (also behind a trusted proxy).

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn token_auth_accepts_the_token_and_refuses_others() {
    let s = Server::start_in(
        dir_with_token(),
        &["--token-file", "{dir}/token", "{dir}/app.log"],
    )
    .await;
    let a = addr(&s);
    let missing = net::get(a, "/api/streams/app.log/lines", &[]).await;
    assert_eq!(missing.status, 401);
    assert!(missing.body.contains("\"error\""), "JSON reason");
    assert!(
        missing
            .header("www-authenticate")
            .is_some_and(|w| w.starts_with("Bearer"))
    );
    let wrong = net::get(
        a,
        "/api/streams/app.log/lines",
        &[("Authorization", "Bearer 0123456789abcdef-test-tokeX")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let right = net::get(
        a,
        "/api/streams/app.log/lines",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(right.status, 200);
    assert!(right.body.contains("\"two\""));
    // The page, the SSE stream and the raw endpoint all need it.
    for path in [
        "/",
        "/app.js",
        "/api/streams/app.log/events",
        "/api/streams/app.log/raw",
    ] {
        assert_eq!(net::get(a, path, &[]).await.status, 401, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_trades_the_token_for_a_strict_cookie_and_drops_it_from_the_url() {
    let s = Server::start_in(
        dir_with_token(),
        &["--token-file", "{dir}/token", "{dir}/app.log"],
    )
    .await;
    let a = addr(&s);
    let r = net::get(a, &format!("/?transport=poll&token={TOKEN}"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/?transport=poll"));
    let cookie = r.header("set-cookie").expect("a cookie").to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure without TLS: {cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is not the token itself"
    );
    assert!(cookie.starts_with(&format!("cometail-{}=", a.port())));
    let pair = cookie.split(';').next().unwrap();
    let page = net::get(a, "/", &[("Cookie", pair)]).await;
    assert_eq!(page.status, 200);
    // EventSource cannot set headers: the cookie is enough for SSE.
    let mut tcp = TcpStream::connect(a).await.unwrap();
    net::send_request(
        &mut tcp,
        a,
        "GET",
        "/api/streams/app.log/events",
        &[("Cookie", pair)],
    )
    .await;
    let head = net::read_response(&mut tcp).await.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    // A wrong token in the URL is a failure, and a stale cookie is cleared.
    assert_eq!(net::get(a, "/?token=nope", &[]).await.status, 401);
    let stale = net::get(
        a,
        "/",
        &[("Cookie", &format!("cometail-{}=stale", a.port()))],
    )
    .await;
    assert_eq!(stale.status, 401);
    assert!(
        stale
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_accepts_users_from_the_hash_file_and_refuses_others() {
    let dir = dir_with_token();
    std::fs::write(
        dir.path().join("users"),
        format!(
            "# users\nalice:{}\n\nbob:{}\n",
            cheap_hash("correct horse"),
            cheap_hash("battery")
        ),
    )
    .unwrap();
    let s = Server::start_in(dir, &["--users-file", "{dir}/users", "{dir}/app.log"]).await;
    let a = addr(&s);
    let challenge = net::get(a, "/api/streams", &[]).await;
    assert_eq!(challenge.status, 401);
    assert_eq!(
        challenge.header("www-authenticate"),
        Some("Basic realm=\"cometail\", charset=\"UTF-8\"")
    );
    for (user, pw, status) in [
        ("alice", "correct horse", 200),
        ("bob", "battery", 200),
        ("alice", "battery", 401),
        ("mallory", "battery", 401),
        ("alice", "", 401),
    ] {
        let r = net::get(a, "/api/streams", &[("Authorization", &basic(user, pw))]).await;
        assert_eq!(r.status, status, "{user}:{pw}");
    }
    // Twice the same right credentials: the second is answered from the verified cache.
    let r = net::get(
        a,
        "/api/streams",
        &[("Authorization", &basic("alice", "correct horse"))],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn users_file_with_a_bad_line_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), "alice:plaintext\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .arg("--users-file")
        .arg(dir.path().join("users"))
        .arg(dir.path().join("app.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 1") && !stderr.contains("plaintext"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_are_slowed_down_but_the_right_token_is_always_accepted() {
    let s = Server::start_in(
        dir_with_token(),
        &["--token-file", "{dir}/token", "{dir}/app.log"],
    )
    .await;
    let a = addr(&s);
    let wrong = [("Authorization", "Bearer wrong-wrong-wrong-wrong")];
    let right = format!("Bearer {TOKEN}");
    for i in 0..4 {
        assert_eq!(
            net::get(a, "/api/streams", &wrong).await.status,
            401,
            "try {i}"
        );
    }
    for i in 0..6 {
        let blocked = net::get(a, "/api/streams", &wrong).await;
        assert_eq!(blocked.status, 429, "failure {}", i + 5);
        let retry: u64 = blocked.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        assert!(blocked.body.contains("\"error\""));
        assert_security_headers(&blocked, "429");
    }
    // Behind a reverse proxy every user shares this address: the right token still works,
    // at once, after ten failures from it.
    let started = std::time::Instant::now();
    let ok = net::get(a, "/api/streams", &[("Authorization", &right)]).await;
    assert_eq!(ok.status, 200, "the right token is never locked out");
    assert!(started.elapsed() < Duration::from_secs(1));
    // A success forgets the address's failures: the next wrong one is free again.
    assert_eq!(net::get(a, "/api/streams", &wrong).await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_passwords_slow_their_user_name_not_the_other_users() {
    let dir = dir_with_token();
    std::fs::write(
        dir.path().join("users"),
        format!(
            "alice:{}\nbob:{}\n",
            cheap_hash("correct horse"),
            cheap_hash("battery")
        ),
    )
    .unwrap();
    let s = Server::start_in(dir, &["--users-file", "{dir}/users", "{dir}/app.log"]).await;
    let a = addr(&s);
    let guess = basic("alice", "guess");
    let mut last = 0;
    for _ in 0..5 {
        last = net::get(a, "/api/streams", &[("Authorization", &guess)])
            .await
            .status;
    }
    assert_eq!(last, 429, "the fifth failure is slowed");
    let started = std::time::Instant::now();
    let bob = net::get(
        a,
        "/api/streams",
        &[("Authorization", &basic("bob", "battery"))],
    )
    .await;
    assert_eq!(
        bob.status, 200,
        "another user from the same address gets in"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "and is not slowed"
    );
    // Alice's own right password is accepted too, once her name's block (1 s) is waited out.
    let started = std::time::Instant::now();
    let alice = net::get(
        a,
        "/api/streams",
        &[("Authorization", &basic("alice", "correct horse"))],
    )
    .await;
    assert_eq!(alice.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------- TLS

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_failures_count_per_forwarded_client() {
    let wrong = "Bearer wrong-wrong-wrong-wrong";
    let attempt = |a: SocketAddr, client: &'static str| async move {
        net::get(
            a,
            "/api/streams",
            &[("Authorization", wrong), ("X-Forwarded-For", client)],
        )
        .await
        .status
    };
    let proxied = Server::start_in(
        dir_with_token(),
        &[
            "--token-file",
            "{dir}/token",
            "--trusted-proxy",
            "127.0.0.1",
            "{dir}/app.log",
        ],
    )
    .await;
    let a = addr(&proxied);
    for _ in 0..5 {
        attempt(a, "203.0.113.7").await;
    }
    assert_eq!(attempt(a, "203.0.113.7").await, 429, "the failing client");
    assert_eq!(
        attempt(a, "198.51.100.2").await,
        401,
        "another client is not slowed"
    );
    // Without --trusted-proxy, the header is the client's to forge and is ignored.
    let direct = Server::start_in(
        dir_with_token(),
        &["--token-file", "{dir}/token", "{dir}/app.log"],
    )
    .await;
    let a = addr(&direct);
    for _ in 0..5 {
        attempt(a, "203.0.113.7").await;
    }
    assert_eq!(attempt(a, "198.51.100.2").await, 429);
}
