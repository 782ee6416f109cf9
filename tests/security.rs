//! Every defence of SECURITY.md, over a real socket: exposure, authentication, TLS, Host and
//! Origin checks, headers, traversal, limits, slowloris, SSE framing, untrusted patterns, and
//! property tests of the request-facing parsers.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::net::{self, Resp};
use crate::common::sse::Connection;
use crate::common::{Server, append, enc, texts, wait_until};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SEC: Duration = Duration::from_secs(1);
const TOKEN: &str = "0123456789abcdef-test-token";

fn addr(s: &Server) -> SocketAddr {
    s.url
        .trim_start_matches("http://")
        .parse()
        .expect("the server URL is IP:port")
}

/// A temp dir holding `app.log` (two lines) and a token file.
fn dir_with_token() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "one\ntwo\n");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    dir
}

/// An argon2id PHC string for `password`, cheap to verify (tests only).
fn cheap_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"cometail-salt-16").unwrap();
    a.hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn basic(user: &str, password: &str) -> String {
    use base64ct::Encoding;
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{user}:{password}").as_bytes())
    )
}

fn assert_security_headers(r: &Resp, what: &str) {
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert!(r.header("cache-control").is_some(), "{what}: cache-control");
    assert!(
        !r.headers
            .iter()
            .any(|(n, _)| n.starts_with("access-control-")),
        "{what}: no CORS header"
    );
}

// ---------------------------------------------------------------- exposure

#[test]
fn default_bind_is_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0"])
        .arg(dir.path().join("app.log"))
        .env_remove("COMETAIL_BIND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("cometail: serving on http://127.0.0.1:"),
        "{line:?}"
    );
}

#[test]
fn public_bind_without_auth_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--bind", "0.0.0.0", "--port", "0"])
        .arg(dir.path().join("app.log"))
        .env_remove("COMETAIL_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("--public-without-auth"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "it never started serving");
}

#[test]
fn public_bind_with_the_explicit_opt_out_starts_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--bind", "0.0.0.0", "--port", "0", "--public-without-auth"])
        .arg(dir.path().join("app.log"))
        .env("RUST_LOG", "cometail=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Other warnings (a file that does not exist yet) may come first.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("without authentication"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.contains("without authentication")),
        "{seen:?}"
    );
}

#[test]
fn a_token_from_the_environment_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0"])
        .arg(dir.path().join("app.log"))
        .env("COMETAIL_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        !line.contains(TOKEN),
        "a given token is not printed: {line}"
    );
    let a: SocketAddr = line
        .trim()
        .trim_start_matches("cometail: serving on http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (without, with) = rt.block_on(async {
        (
            net::get(a, "/api/streams", &[]).await.status,
            net::get(
                a,
                "/api/streams",
                &[("Authorization", &format!("Bearer {TOKEN}"))],
            )
            .await
            .status,
        )
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((without, with), (401, 200));
}

#[test]
fn secrets_are_refused_on_the_command_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--token", "abc", "x.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "there is no --token VALUE flag");
}

// ---------------------------------------------------------------- authentication

#[tokio::test(flavor = "multi_thread")]
async fn generated_token_is_printed_in_the_url_and_works() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "x\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cometail"))
        .args(["--port", "0", "--auth", "token"])
        .arg(dir.path().join("app.log"))
        .env_remove("COMETAIL_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line.trim().trim_start_matches("cometail: serving on ");
    let (base, token) = url
        .split_once("/?token=")
        .expect("the URL carries the token");
    assert_eq!(token.len(), 64, "32 random bytes, hex");
    let a: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let without = net::get(a, "/api/streams", &[]).await;
    let bearer = format!("Bearer {token}");
    let with = net::get(a, "/api/streams", &[("Authorization", &bearer)]).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(without.status, 401);
    assert_eq!(with.status, 200, "{}", with.body);
}

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
async fn repeated_failures_are_slowed_down_with_429_and_retry_after() {
    let s = Server::start_in(
        dir_with_token(),
        &["--token-file", "{dir}/token", "{dir}/app.log"],
    )
    .await;
    let a = addr(&s);
    let wrong = [("Authorization", "Bearer wrong-wrong-wrong-wrong")];
    for i in 0..4 {
        assert_eq!(
            net::get(a, "/api/streams", &wrong).await.status,
            401,
            "try {i}"
        );
    }
    let fifth = net::get(a, "/api/streams", &wrong).await;
    assert_eq!(fifth.status, 429);
    let blocked = net::get(
        a,
        "/api/streams",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(blocked.status, 429, "even the right token waits");
    let retry: u64 = blocked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert!(blocked.body.contains("\"error\""));
    assert_security_headers(&blocked, "429");
    tokio::time::sleep(Duration::from_secs(retry) + Duration::from_millis(100)).await;
    let after = net::get(
        a,
        "/api/streams",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(after.status, 200, "the wait is over");
}

// ---------------------------------------------------------------- TLS

#[tokio::test(flavor = "multi_thread")]
async fn tls_speaks_http2_sends_hsts_and_secures_the_cookie() {
    let dir = dir_with_token();
    let cert = net::write_test_cert(dir.path());
    let s = net::start_raw(
        dir,
        &[
            "--tls-cert",
            "{dir}/cert.pem",
            "--tls-key",
            "{dir}/key.pem",
            "--token-file",
            "{dir}/token",
            "{dir}/app.log",
        ],
    )
    .await;
    // HTTP/2 by ALPN.
    let h2 = net::tls_connector(&cert, &[b"h2", b"http/1.1"]);
    let tls = net::tls_connect(&h2, s.addr).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("https://127.0.0.1:{}/api/streams", s.addr.port()))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(
        resp.headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        Some(cometail::http::HSTS)
    );
    // HTTP/1.1 over TLS: the cookie gets `Secure`.
    let h1 = net::tls_connector(&cert, &[b"http/1.1"]);
    let mut tls = net::tls_connect(&h1, s.addr).await;
    net::send_request(&mut tls, s.addr, "GET", &format!("/?token={TOKEN}"), &[]).await;
    let r = net::read_response(&mut tls).await.unwrap();
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    net::send_request(&mut tcp, s.addr, "GET", "/api/streams", &[]).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(5 * SEC, tcp.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"), "no plain-text service");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_tls_handshake_is_dropped_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let _cert = net::write_test_cert(dir.path());
    let s = net::start_raw(
        dir,
        &[
            "--tls-cert",
            "{dir}/cert.pem",
            "--tls-key",
            "{dir}/key.pem",
            "--header-timeout",
            "500ms",
            "{dir}/app.log",
        ],
    )
    .await;
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap(); // the start of a ClientHello
    assert!(net::closed_within(&mut tcp, 5 * SEC).await);
}

// ---------------------------------------------------------------- browser-side defences

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_host_is_refused_as_dns_rebinding() {
    let s = Server::start(&["--allowed-host", "logs.example.com", "{dir}/app.log"]).await;
    let a = addr(&s);
    let port = a.port();
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        "10.0.0.1".to_owned(),
        "a b".to_owned(),
    ] {
        let r = net::get(a, "/api/streams", &[("Host", &host)]).await;
        assert_eq!(r.status, 421, "{host}");
        assert_security_headers(&r, "421");
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "logs.example.com".to_owned(),
        format!("LOGS.example.com:{port}"),
    ] {
        let r = net::get(a, "/api/streams", &[("Host", &host)]).await;
        assert_eq!(r.status, 200, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_authority_and_bodies_are_checked_like_http1() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let a = addr(&s);
    let tcp = TcpStream::connect(a).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut send = |uri: String, body: &'static str| {
        let req = hyper::Request::get(uri)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                body.as_bytes(),
            )))
            .unwrap();
        sender.send_request(req)
    };
    let evil = send(format!("http://evil.example:{}/api/streams", a.port()), "")
        .await
        .unwrap();
    assert_eq!(evil.status(), 421, "`:authority` is checked");
    let own = send(format!("http://127.0.0.1:{}/api/streams", a.port()), "")
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let body = send(format!("http://127.0.0.1:{}/api/streams", a.port()), "x=1")
        .await
        .unwrap();
    assert_eq!(body.status(), 413, "a request with data");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_origin_is_refused_on_every_api_and_stream_request() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "x\n");
    let a = addr(&s);
    let own = format!("http://{a}");
    for path in [
        "/api/streams",
        "/api/streams/app.log/lines",
        "/api/streams/app.log/raw",
        "/api/streams/app.log/events",
        "/api/events?streams=app.log",
    ] {
        for origin in [
            "http://evil.example",
            "null",
            &format!("http://127.0.0.1:{}", a.port() + 1),
        ] {
            let r = net::get(a, path, &[("Origin", origin)]).await;
            assert_eq!(r.status, 403, "{path} from {origin}");
            assert_security_headers(&r, "403");
        }
        let r = net::get(a, path, &[("Sec-Fetch-Site", "cross-site")]).await;
        assert_eq!(r.status, 403, "{path} cross-site");
        if !path.contains("events") && !path.contains("raw") {
            let r = net::get(a, path, &[("Origin", &own)]).await;
            assert_eq!(r.status, 200, "{path} from its own origin");
            assert!(r.header("access-control-allow-origin").is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn security_headers_are_on_every_route_and_log_data_is_not_stored() {
    let s = Server::start_in(dir_with_token(), &["{dir}/app.log"]).await;
    let a = addr(&s);
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16);
    let cases: &[Case] = &[
        ("GET", "/", &[], 200),
        ("GET", "/app.js", &[], 200),
        ("GET", "/api/streams", &[], 200),
        ("GET", "/api/streams/app.log/lines", &[], 200),
        ("GET", "/api/streams/app.log/raw", &[], 200),
        ("GET", "/api/streams/app.log/lines?after=", &[], 400),
        ("GET", "/api/streams/nope/lines", &[], 404),
        ("GET", "/no/such/path", &[], 404),
        ("GET", "/.hidden", &[], 404),
        ("DELETE", "/api/streams", &[], 405),
        ("GET", "/api/streams", &[("Content-Length", "3")], 413),
        ("GET", "/api/streams", &[("Host", "evil.example")], 421),
        (
            "GET",
            "/api/streams",
            &[("Origin", "http://evil.example")],
            403,
        ),
    ];
    for (method, path, headers, status) in cases {
        let r = net::request(a, method, path, headers).await;
        assert_eq!(r.status, *status, "{method} {path}");
        assert_security_headers(&r, &format!("{method} {path}"));
        if path.starts_with("/api/") {
            assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        }
    }
    for path in ["/api/streams/app.log/events", "/api/events?streams=app.log"] {
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", path, &[]).await;
        let r = net::read_response(&mut tcp).await.unwrap();
        assert_eq!(r.status, 200);
        assert_security_headers(&r, path);
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let s = Server::start_in(
        dir_with_token(),
        &["--token-file", "{dir}/token", "{dir}/app.log"],
    )
    .await;
    let r = net::get(addr(&s), "/api/streams", &[]).await;
    assert_eq!(r.status, 401);
    assert_security_headers(&r, "401");
}

// ---------------------------------------------------------------- only what was named

/// Over 1,000 traversal strings (11 ways to say `..` × 8 separators × 3 targets × 4 depths,
/// plus the secret's absolute path), for every place a path segment reaches a handler.
fn traversal_targets(secret: &str) -> Vec<String> {
    let ups = [
        "..",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "....",
        "..;",
        "%c0%ae%c0%ae",
        "%252e%252e",
        "..%00",
        "%uff0e%uff0e",
    ];
    let seps = ["/", "%2f", "%2F", "%5c", "\\", "%252f", "//", "%c0%af"];
    let ends = [
        "etc/passwd".to_owned(),
        secret.trim_start_matches('/').to_owned(),
        "Cargo.toml".to_owned(),
    ];
    let mut out = Vec::new();
    for up in ups {
        for sep in seps {
            for end in &ends {
                for depth in 1..=4 {
                    let end = end.replace('/', sep);
                    out.push(format!("{}{end}", format!("{up}{sep}").repeat(depth)));
                }
            }
        }
    }
    out.push(secret.to_owned());
    out.push(enc(secret));
    out.push(format!("%2f{}", enc(secret.trim_start_matches('/'))));
    out
}

/// Percent-encodes what a request line cannot carry raw (keeps `%`, `/`, `.`, `\` as given).
fn raw_target(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"%/.-_~;\\".contains(&b) {
                if b == b'\\' {
                    "%5C".to_owned()
                } else {
                    (b as char).to_string()
                }
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_traversal_attempts_get_404_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ui")).unwrap();
    std::fs::write(dir.path().join("ui/index.html"), "page").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "TOP-SECRET-CANARY").unwrap();
    append(&dir.path().join("app.log"), "line\n");
    let secret = dir.path().join("secret.txt").display().to_string();
    let s = Server::start_in(dir, &["--assets", "{dir}/ui", "{dir}/app.log"]).await;
    let targets = traversal_targets(&secret);
    let places: [fn(&str) -> String; 6] = [
        |t| format!("/{t}"),
        |t| format!("/ui/{t}"),
        |t| format!("/api/streams/{t}/lines"),
        |t| format!("/api/streams/{t}/raw"),
        |t| format!("/api/streams/{t}/events"),
        |t| format!("/api/{t}"),
    ];
    // One keep-alive connection per place, in parallel.
    let mut tasks = Vec::new();
    for place in places {
        let targets = targets.clone();
        let a = addr(&s);
        tasks.push(tokio::spawn(async move {
            let mut conn = net::Conn::open(a).await;
            for t in &targets {
                let target = place(&raw_target(t));
                let r = conn.get(&target).await;
                assert_eq!(r.status, 404, "{target}: {}", r.body);
                assert!(!r.body.contains("TOP-SECRET-CANARY"));
            }
            targets.len()
        }));
    }
    let mut count = 0;
    for t in tasks {
        count += t.await.unwrap();
    }
    assert!(targets.len() >= 1000, "{} strings", targets.len());
    assert!(count >= 6000, "{count} attempts");
    // The stream list still names only what the command line named.
    let list = s.ok_json("/api/streams").await;
    assert_eq!(list["streams"].as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------- limits

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_get_413_and_oversized_heads_431() {
    let s = Server::start(&["--max-header-bytes", "8K", "{dir}/app.log"]).await;
    let a = addr(&s);
    for headers in [
        &[("Content-Length", "10")][..],
        &[("Transfer-Encoding", "chunked")][..],
    ] {
        let r = net::request(a, "POST", "/api/streams", headers).await;
        assert_eq!(r.status, 413, "{headers:?}");
        assert!(r.body.contains("\"error\""));
    }
    let big = "x".repeat(10_000);
    let r = net::get(a, "/api/streams", &[("X-Big", &big)]).await;
    assert_eq!(r.status, 431);
    let long_target = format!("/api/streams?{}", "a".repeat(10_000));
    assert_eq!(net::get(a, &long_target, &[]).await.status, 431);
    let many: Vec<(String, String)> = (0..150)
        .map(|i| (format!("X-H{i}"), "v".to_owned()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(net::get(a, "/api/streams", &many).await.status, 431);
    // And the server still serves.
    assert_eq!(net::get(a, "/api/streams", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_cap_answers_503() {
    let s = Server::start(&["--max-connections", "3", "{dir}/app.log"]).await;
    let a = addr(&s);
    // The test client's pooled connection may hold a permit; fill the rest with idle sockets.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(a).await.unwrap());
    }
    let mut tcp = TcpStream::connect(a).await.unwrap();
    let r = tokio::time::timeout(5 * SEC, net::read_response(&mut tcp))
        .await
        .expect("answered, not hung")
        .expect("a response");
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_heads_are_closed_at_the_header_timeout() {
    let s = Server::start(&["--header-timeout", "500ms", "{dir}/app.log"]).await;
    let a = addr(&s);
    let mut silent = TcpStream::connect(a).await.unwrap();
    let mut partial = TcpStream::connect(a).await.unwrap();
    partial
        .write_all(b"GET /api/streams HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut preface = TcpStream::connect(a).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let start = Instant::now();
    assert!(net::closed_within(&mut silent, 5 * SEC).await, "silent");
    assert!(
        net::closed_within(&mut partial, 5 * SEC).await,
        "partial head"
    );
    assert!(
        net::closed_within(&mut preface, 5 * SEC).await,
        "half a preface"
    );
    assert!(start.elapsed() < 3 * SEC);
}

#[tokio::test(flavor = "multi_thread")]
async fn open_streams_per_address_are_capped_with_429() {
    let s = Server::start(&["--max-streams-per-address", "2", "{dir}/app.log"]).await;
    let a = addr(&s);
    let mut open = Vec::new();
    for path in [
        "/api/streams/app.log/events",
        "/api/streams/app.log/raw?follow=1",
    ] {
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", path, &[]).await;
        let r = net::read_response(&mut tcp).await.unwrap();
        assert_eq!(r.status, 200, "{path}");
        open.push(tcp);
    }
    for path in [
        "/api/events?streams=app.log",
        "/api/streams/app.log/raw?f%6Fllow=1",
    ] {
        let r = net::get(a, path, &[]).await;
        assert_eq!(r.status, 429, "{path}");
        assert!(r.header("retry-after").is_some());
    }
    // Reads that are not streams are not counted.
    assert_eq!(
        net::get(a, "/api/streams/app.log/raw", &[]).await.status,
        200
    );
    // Closing a stream frees its place.
    drop(open.pop());
    wait_until("a place frees up", 5 * SEC, || async {
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", "/api/streams/app.log/events", &[]).await;
        net::read_response(&mut tcp)
            .await
            .is_some_and(|r| r.status == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_clients_are_not_stream_capped_by_default() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let a = addr(&s);
    let mut open = Vec::new();
    for _ in 0..40 {
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", "/api/streams/app.log/events", &[]).await;
        assert_eq!(net::read_response(&mut tcp).await.unwrap().status, 200);
        open.push(tcp);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn held_long_polls_are_capped_with_503() {
    let s = Server::start(&["--max-long-polls", "1", "{dir}/app.log"]).await;
    let a = addr(&s);
    let next = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/streams/app.log/lines?after={next}&wait=30");
    let mut held = TcpStream::connect(a).await.unwrap();
    net::send_request(&mut held, a, "GET", &path, &[]).await;
    wait_until("the second long poll is refused", 5 * SEC, || async {
        net::get(a, &path, &[]).await.status == 503
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slowloris_does_not_delay_a_real_client() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let a = addr(&s);
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut tcp) = TcpStream::connect(a).await else {
                return;
            };
            let head = b"GET /api/streams HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
            for b in head.iter().chain(std::iter::repeat(&b'a')) {
                if tcp.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    () = stop.cancelled() => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let start = Instant::now();
        let mut tcp = TcpStream::connect(a).await.unwrap();
        net::send_request(&mut tcp, a, "GET", "/api/streams", &[]).await;
        let mut first = [0u8; 1];
        tcp.read_exact(&mut first).await.unwrap();
        let took = start.elapsed();
        assert!(took < SEC, "first byte after {took:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
}

// ---------------------------------------------------------------- framing

#[tokio::test(flavor = "multi_thread")]
async fn sse_frames_stay_intact_for_lines_with_cr_lf_and_nul() {
    let s = Server::start(&["-n", "0", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "");
    let url = format!("{}/api/streams/app.log/events", s.url);
    let mut conn = Connection::open(&s.client, &url, None).await;
    assert_eq!(conn.status, 200);
    append(
        &s.path("app.log"),
        b"a\rb\nnul\0here\ndata: forged\r\nevent: x\n\n\x1b[31mred\n".as_slice(),
    );
    let (entries, _) = conn.entries(6, 10 * SEC).await;
    let got: Vec<&str> = entries
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "a\rb",
            "nul\0here",
            "data: forged",
            "event: x",
            "",
            "\u{1b}[31mred"
        ][..],
        "every line is one entry, whatever it holds"
    );
    let _ = texts;
}

// ---------------------------------------------------------------- untrusted patterns

#[tokio::test(flavor = "multi_thread")]
async fn grep_filters_lines_and_raw_and_notices_pass() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "GET /a 200\nPOST /b 500\nGET /c 404\n");
    wait_until("lines are read", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines?last=10").await).len() == 3
    })
    .await;
    let page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?last=10&grep={}",
            enc("^GET ")
        ))
        .await;
    assert_eq!(texts(&page), ["GET /a 200", "GET /c 404"]);
    let raw = s
        .client
        .get(format!(
            "{}/api/streams/app.log/raw?grep={}",
            s.url,
            enc("(?i)post")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(raw, "POST /b 500\n");
    // `next` covers everything scanned, so a filtered long poll continues after it.
    let next = page["next"].as_str().unwrap().to_owned();
    let waiter = {
        let client = s.client.clone();
        let url = format!(
            "{}/api/streams/app.log/lines?after={next}&wait=10&grep=500",
            s.url
        );
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(&s.path("app.log"), "GET /d 200\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(&s.path("app.log"), "GET /e 500\n");
    let body: serde_json::Value = serde_json::from_str(&waiter.await.unwrap()).unwrap();
    assert_eq!(
        texts(&body),
        ["GET /e 500"],
        "skips what does not match, keeps waiting"
    );
    // A truncation notice passes any filter.
    std::fs::write(s.path("app.log"), "z\n").unwrap();
    wait_until(
        "the truncation notice passes the filter",
        5 * SEC,
        || async {
            let p = s
                .ok_json(&format!(
                    "/api/streams/app.log/lines?after={next}&grep=nomatch"
                ))
                .await;
            texts(&p).iter().any(|t| t == "<truncated>")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_limits_hold_for_catastrophic_patterns() {
    let s = Server::start(&["{dir}/app.log"]).await;
    let line = format!("{}!\n", "a".repeat(50_000));
    for _ in 0..20 {
        append(&s.path("app.log"), &line);
    }
    for pattern in ["a{1000}{1000}", "(?:a{100}){100}{100}", "\\w{5000}"] {
        let (status, body) = s
            .get_json(&format!("/api/streams/app.log/lines?grep={}", enc(pattern)))
            .await;
        assert_eq!(status, 400, "{pattern}: {body}");
    }
    let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
    let (status, _) = s
        .get_json(&format!("/api/streams/app.log/lines?grep={}", enc(&deep)))
        .await;
    assert_eq!(status, 400, "deep nesting");
    let long = "a".repeat(2000);
    assert_eq!(
        s.get_json(&format!("/api/streams/app.log/lines?grep={long}"))
            .await
            .0,
        400
    );
    for pattern in ["(a+)+$", "(a|aa)+$", "(.*a){12}$", "^(a|a?)+$"] {
        let start = Instant::now();
        let (status, _) = s
            .get_json(&format!(
                "/api/streams/app.log/lines?last=20&grep={}",
                enc(pattern)
            ))
            .await;
        assert_eq!(status, 200, "{pattern}");
        assert!(
            start.elapsed() < 3 * SEC,
            "{pattern}: {:?}",
            start.elapsed()
        );
    }
}

// ---------------------------------------------------------------- own logs

#[test]
fn control_characters_from_requests_are_escaped_before_logging() {
    let hostile = "GET /\x1b[2J\r\nFAKE LOG LINE\0";
    let escaped = cometail::logging::escape_for_log(hostile);
    assert!(!escaped.chars().any(char::is_control), "{escaped}");
    assert!(escaped.contains("\\r\\n"));
}

// ---------------------------------------------------------------- property tests

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The splitter yields the same lines however the bytes are cut into reads, and never
    /// panics on any bytes or line limit.
    #[test]
    fn the_line_splitter_is_independent_of_read_boundaries(
        bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(0u8), any::<u8>()], 0..400),
        cuts in proptest::collection::vec(0usize..400, 0..8),
        max in 16usize..64,
    ) {
        let split = |pieces: &[&[u8]]| {
            let mut s = cometail::tail::Splitter::new(0, max);
            let mut out = Vec::new();
            for p in pieces {
                s.push(p, |l| out.push((l.start, l.len, l.head.clone())));
            }
            if let Some(l) = s.finish() {
                out.push((l.start, l.len, l.head.clone()));
            }
            out
        };
        let whole = split(&[&bytes]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut at = 0;
        for c in cuts {
            pieces.push(&bytes[at..c]);
            at = c;
        }
        pieces.push(&bytes[at..]);
        prop_assert_eq!(&whole, &split(&pieces));
        for (_, len, head) in &whole {
            let _ = cometail::tail::line_text(head, *len, max);
        }
    }

    /// Cursors: any string parses to a cursor or an error, and a cursor survives a round trip.
    #[test]
    fn any_cursor_text_parses_or_is_refused(s in "\\PC{0,80}", ident: u64, check: u32, life: u32, seq: u64, point: u64) {
        let _ = s.parse::<cometail::stream::Cursor>();
        let c = cometail::stream::Cursor { ident, check, life, seq, point };
        prop_assert_eq!(c.to_string().parse::<cometail::stream::Cursor>().ok(), Some(c));
    }
}
