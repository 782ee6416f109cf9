//! TLS, HTTP/2, the Host allow-list, same-origin checks and the security headers on every answer.

use super::*;

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
