//! History pages: back to the first byte, across the cache, rotations and forgotten generations, bounded in bytes.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_back_to_the_first_byte_exactly() {
    let mut rng = Rng::new(0x5eed_0001);
    let mut content = Vec::new();
    for i in 0..3000 {
        match rng.below(10) {
            0 => content.extend(vec![b'L'; 1 + rng.below(200_000) as usize]),
            1 => content.extend_from_slice(b"bad \xff\xfe utf8 \xc3"),
            2 => content.extend_from_slice(b"crlf line\r"),
            3 => {}
            _ => content.extend_from_slice(format!("line {i} é ✓").as_bytes()),
        }
        content.push(b'\n');
    }
    content.extend_from_slice(b"no trailing newline");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("h.log"), &content).unwrap();
    let s = Server::start_in(dir, &["{dir}/h.log"]).await;
    let (expected, tail) = model_lines(&content);
    for limit in [1, 7, 1000] {
        let got = page_back(&s, "h.log", limit).await;
        assert_eq!(got.len(), expected.len(), "limit {limit}");
        assert!(
            got == expected,
            "limit {limit}: history differs from the file"
        );
    }
    // The unterminated last line is held until its newline arrives, then delivered once.
    let next = s.ok_json("/api/streams/h.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    append(&s.path("h.log"), "\n");
    let page = s
        .ok_json(&format!("/api/streams/h.log/lines?after={next}&wait=10"))
        .await;
    assert_eq!(texts(&page), [String::from_utf8(tail).unwrap()]);
    let got = page_back(&s, "h.log", 500).await;
    assert_eq!(got.len(), expected.len() + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_across_the_cache_and_a_rotation_to_the_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let before: String = (0..100).map(|i| format!("disk {i}\n")).collect();
    std::fs::write(dir.path().join("app.log"), &before).unwrap();
    let s = Server::start_in(dir, &["--rotate-grace", "100ms", "{dir}/app.log"]).await;
    let live: String = (0..50).map(|i| format!("live {i}\n")).collect();
    append(&s.path("app.log"), &live);
    s.wait_last("app.log", "live 49").await;
    std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    let new: String = (0..30).map(|i| format!("new {i}\n")).collect();
    append(&s.path("app.log"), &new);
    s.wait_last("app.log", "new 29").await;
    let mut expected: Vec<String> = (0..100).map(|i| format!("disk {i}")).collect();
    expected.extend((0..50).map(|i| format!("live {i}")));
    expected.push("<rotated>".into());
    expected.extend((0..30).map(|i| format!("new {i}")));
    for limit in [1, 7, 64, 1000] {
        assert_eq!(
            page_back(&s, "app.log", limit).await,
            expected,
            "limit {limit}"
        );
    }
    // Forward from the very first entry reproduces the same sequence.
    let first = s.ok_json("/api/streams/app.log/lines?last=1000").await["entries"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut got = vec!["disk 0".to_owned()];
    let mut next = first;
    loop {
        let page = s
            .ok_json(&format!("/api/streams/app.log/lines?after={next}&limit=9"))
            .await;
        if page["entries"].as_array().unwrap().is_empty() {
            break;
        }
        got.extend(texts(&page));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_cross_a_trimmed_cache_without_holes() {
    let s = Server::start(&["--cache-bytes", "64K", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "");
    let start = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines: Vec<String> = (0..3000)
        .map(|i| format!("line {i} {}", "p".repeat(i % 97)))
        .collect();
    for chunk in lines.chunks(100) {
        append(
            &s.path("app.log"),
            chunk.iter().map(|l| format!("{l}\n")).collect::<String>(),
        );
    }
    wait_until("all lines", 10 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines?last=1").await) == [lines[2999].clone()]
    })
    .await;
    // Forward from the start: the first pages come from disk, the last from the cache.
    let mut got = Vec::new();
    let mut next = start;
    loop {
        let page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?after={next}&limit=333"
            ))
            .await;
        if page["entries"].as_array().unwrap().is_empty() {
            break;
        }
        got.extend(texts(&page));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(got, lines);
    assert_eq!(page_back(&s, "app.log", 333).await, lines);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_at_the_end_of_history_survives_its_file_going_away_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "old 1\nold 2\n");
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    // The oldest line of a first load is the last one before the cache: read from disk.
    let next = s.ok_json("/api/streams/app.log/lines?last=2").await["entries"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Truncation releases that generation's file: its bytes are gone.
    std::fs::write(s.path("app.log"), "new 1\n").unwrap();
    let mut got = Vec::new();
    let mut next = next;
    let end = Instant::now() + 10 * SEC;
    while !got.contains(&"new 1".to_owned()) {
        assert!(Instant::now() < end, "new 1 arrives: {got:?}");
        let page = s
            .ok_json(&format!("/api/streams/app.log/lines?after={next}&wait=5"))
            .await;
        got.extend(texts(&page));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(
        got,
        ["old 2", "<truncated>", "new 1"],
        "nothing was missed: no gap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_into_forgotten_generations_get_one_gap_and_no_repeats() {
    let s = Server::start(&["--rotate-grace", "50ms", "{dir}/app.log"]).await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    append(&s.path("app.log"), "gen 0\n");
    wait_until("gen 0", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines").await) == ["gen 0"]
    })
    .await;
    let early = s.ok_json("/api/streams/app.log/lines").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    // More rotations than a stream remembers generations (64).
    for g in 1..=70 {
        std::fs::remove_file(s.path("app.log")).unwrap();
        append(&s.path("app.log"), format!("gen {g}\n"));
        s.wait_last("app.log", &format!("gen {g}")).await;
    }
    let mut got = Vec::new();
    let mut next = early;
    loop {
        let page = s
            .ok_json(&format!("/api/streams/app.log/lines?after={next}&limit=50"))
            .await;
        if page["entries"].as_array().unwrap().is_empty() {
            break;
        }
        got.extend(texts(&page).into_iter().filter(|t| t != "<rotated>"));
        next = page["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(got.iter().filter(|t| *t == "<gap>").count(), 1, "{got:?}");
    let lines: Vec<&String> = got.iter().filter(|t| t.starts_with("gen ")).collect();
    let mut sorted = lines.clone();
    sorted.dedup();
    assert_eq!(lines.len(), sorted.len(), "no line twice: {got:?}");
    assert_eq!(lines.last().map(|s| s.as_str()), Some("gen 70"));
}

#[tokio::test(flavor = "multi_thread")]
async fn history_keeps_a_renamed_file_when_a_newer_one_is_deleted_and_marks_what_is_gone() {
    let s = Server::start(&[
        "--rotate-grace",
        "50ms",
        "--cache-bytes",
        "64K",
        "{dir}/app.log",
    ])
    .await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    let initial: String = (0..2000)
        .map(|i| format!("initial {i} {}\n", "i".repeat(40)))
        .collect();
    append(&s.path("app.log"), initial);
    wait_until("initial", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines?last=1").await)
            == [format!("initial 1999 {}", "i".repeat(40))]
    })
    .await;
    // Rotate (app.log.1 keeps the first file), then delete the second file.
    std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
    append(&s.path("app.log"), "second\n");
    s.wait_last("app.log", "second").await;
    std::fs::remove_file(s.path("app.log")).unwrap();
    wait_until("deleted", 5 * SEC, || async {
        s.ok_json("/api/streams").await["streams"][0]["state"] == "waiting"
    })
    .await;
    append(&s.path("app.log"), "third\n");
    s.wait_last("app.log", "third").await;
    // The cache holds everything; paging from disk must agree. With a tiny page the first
    // file is read from app.log.1 (still retained although the second file was deleted).
    let all = page_back(&s, "app.log", 100).await;
    let first = format!("initial 0 {}", "i".repeat(40));
    assert_eq!(
        all.first(),
        Some(&first),
        "the first file is read from app.log.1"
    );
    assert_eq!(all.len(), 2000 + 4, "every line and both notices, once");
    assert!(all.contains(&"third".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_are_bounded_in_bytes_too() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!("{}\n", "b".repeat(500_000));
    std::fs::write(dir.path().join("big.log"), big.repeat(20)).unwrap();
    let s = Server::start_in(dir, &["{dir}/big.log"]).await;
    let resp = s
        .client
        .get(format!("{}/api/streams/big.log/lines?last=20", s.url))
        .send()
        .await
        .unwrap();
    let body = resp.bytes().await.unwrap();
    assert!(body.len() < 5 << 20, "page of {} bytes", body.len());
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        !texts(&page).is_empty() && page["prev"].is_string(),
        "more to page back to"
    );
}
