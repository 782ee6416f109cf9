//! Untrusted input: SSE framing, grep patterns, escaping for logs, and property tests of the parsers.

use super::*;

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
    fn any_cursor_text_parses_or_is_refused(s in "\\PC{0,80}", ident: u64, check: u32, life: u32, seq: u64, point: u64, len in 0..=0xff_ffffu32) {
        let _ = s.parse::<cometail::stream::Cursor>();
        let c = cometail::stream::Cursor { ident, check, life, seq, point, len };
        prop_assert_eq!(c.to_string().parse::<cometail::stream::Cursor>().ok(), Some(c));
    }
}
