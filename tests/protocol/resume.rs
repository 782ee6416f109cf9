//! Resume: restarts, deleted generations, missing files, and random disconnects of long polls and SSE.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn restart_resumes_the_old_cursor_exactly() {
    let s = Server::start(&["{dir}/app.log"]).await;
    append(&s.path("app.log"), "a\nb\n");
    wait_until("a and b", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines").await) == ["a", "b"]
    })
    .await;
    let cursor = s.ok_json("/api/streams/app.log/lines").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = s.stop().await;
    append(&dir.path().join("app.log"), "c\nd\n");
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    append(&s.path("app.log"), "e\n");
    s.wait_last("app.log", "e").await;
    let page = s
        .ok_json(&format!("/api/streams/app.log/lines?after={cursor}"))
        .await;
    assert_eq!(texts(&page), ["c", "d", "e"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_into_a_deleted_generation_gets_a_gap_then_the_oldest_entries() {
    let s = Server::start(&[
        "--cache-bytes",
        "64K",
        "--rotate-grace",
        "100ms",
        "{dir}/app.log",
    ])
    .await;
    append(&s.path("app.log"), "");
    s.wait_following().await;
    append(&s.path("app.log"), "first\n");
    wait_until("first", 5 * SEC, || async {
        texts(&s.ok_json("/api/streams/app.log/lines").await) == ["first"]
    })
    .await;
    let old = s.ok_json("/api/streams/app.log/lines").await["entries"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Rotate twice, deleting the rotated files, while writing more than the cache holds.
    for round in 0..2 {
        std::fs::rename(s.path("app.log"), s.path("app.log.1")).unwrap();
        std::fs::remove_file(s.path("app.log.1")).unwrap();
        let body: String = (0..2000)
            .map(|i| format!("round {round} line {i} {}\n", "x".repeat(40)))
            .collect();
        append(&s.path("app.log"), body);
        wait_until("rotation seen", 10 * SEC, || async {
            texts(&s.ok_json("/api/streams/app.log/lines?last=1").await)
                == [format!("round {round} line 1999 {}", "x".repeat(40))]
        })
        .await;
    }
    let page = s
        .ok_json(&format!("/api/streams/app.log/lines?after={old}&limit=5"))
        .await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["notice"], "gap", "{page}");
    assert!(
        entries[1..]
            .iter()
            .all(|e| e.get("text").is_some() || e.get("notice").is_some())
    );
    // Following `next` from the gap delivers the rest in order, without a second gap.
    let mut next = page["next"].as_str().unwrap().to_owned();
    let mut seen = line_texts(&entries[1..]);
    loop {
        let page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?after={next}&limit=1000"
            ))
            .await;
        let e = page["entries"].as_array().unwrap();
        if e.is_empty() {
            break;
        }
        assert!(
            e.iter().all(|e| e.get("notice").is_none_or(|n| n != "gap")),
            "one gap only"
        );
        seen.extend(line_texts(e));
        next = page["next"].as_str().unwrap().to_owned();
    }
    let last: Vec<_> = seen.iter().rev().take(2000).rev().cloned().collect();
    let expected: Vec<String> = (0..2000)
        .map(|i| format!("round 1 line {i} {}", "x".repeat(40)))
        .collect();
    assert_eq!(last, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_waits_for_a_missing_file() {
    let s = Server::start(&["{dir}/later.log"]).await;
    let page = s.ok_json("/api/streams/later.log/lines").await;
    let next = page["next"].as_str().unwrap().to_owned();
    let poll = tokio::spawn({
        let url = format!("{}/api/streams/later.log/lines?after={next}&wait=20", s.url);
        let client = s.client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(&s.path("later.log"), "hello\n");
    let page = tokio::time::timeout(10 * SEC, poll).await.unwrap().unwrap();
    assert_eq!(texts(&page), ["hello"]);
}

/// A writer appends numbered lines and rotates the file now and then; returns every line
/// written, in order.
async fn write_with_rotations(dir: std::path::PathBuf, lines: usize, seed: u64) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        let mut rng = Rng::new(seed);
        let path = dir.join("app.log");
        let mut written = Vec::new();
        let mut rotations = 0;
        let mut last_rotation = 0;
        for i in 0..lines {
            let line = format!("line {i} {}", "z".repeat(rng.below(60) as usize));
            append(&path, format!("{line}\n"));
            written.push(line);
            // Rotations are random but at least 300 lines apart, and the writer pauses after
            // each: a file created and rotated away again before the follower's next look
            // cannot be seen by anyone (see ARCHITECTURE.md, "The follower's states").
            if i >= last_rotation + 300 && rng.below(300) == 0 {
                rotations += 1;
                last_rotation = i;
                std::fs::rename(&path, dir.join(format!("app.log.{rotations}"))).unwrap();
                append(&path, "");
                std::thread::sleep(Duration::from_millis(20));
            }
            if rng.below(20) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        written
    })
    .await
    .unwrap()
}

/// A writer appending lines with rotations, and the bookkeeping of a reader that drops its
/// connection at random points: what it got, how many drops, when to stop.
struct Disconnects {
    writer: Option<tokio::task::JoinHandle<Vec<String>>>,
    written: Option<Vec<String>>,
    got: Vec<String>,
    drops: usize,
    deadline: Instant,
}

impl Disconnects {
    /// Starts the writer on a server following an empty `app.log`; returns the harness and
    /// the cursor to start reading from.
    async fn start(s: &Server, seed: u64) -> (Self, String) {
        append(&s.path("app.log"), "");
        let start = s.ok_json("/api/streams/app.log/lines?last=0").await["next"]
            .as_str()
            .unwrap()
            .to_owned();
        let writer = tokio::spawn(write_with_rotations(s.dir.path().to_path_buf(), 6000, seed));
        let run = Self {
            writer: Some(writer),
            written: None,
            got: Vec::new(),
            drops: 0,
            deadline: Instant::now() + 60 * SEC,
        };
        (run, start)
    }

    /// Whether to read on: until every written line arrived and 1,000 drops were exercised.
    async fn go_on(&mut self) -> bool {
        if self.written.is_none() && self.writer.as_ref().is_some_and(|w| w.is_finished()) {
            self.written = Some(self.writer.take().unwrap().await.unwrap());
        }
        if let Some(w) = &self.written {
            if self.got.len() >= w.len() && self.drops >= 1000 {
                return false;
            }
        }
        assert!(
            Instant::now() < self.deadline,
            "reader kept up within the deadline ({} lines)",
            self.got.len()
        );
        true
    }

    /// Asserts that the reader got every written line once, in order.
    fn check(self, how: &str) {
        let written = self.written.unwrap();
        let got = self.got;
        assert!(self.drops >= 1000, "exercised {} disconnects", self.drops);
        if let Some(i) = got.iter().zip(&written).position(|(a, b)| a != b) {
            panic!(
                "first difference at {i}: got {:?}, written {:?}",
                &got[i.saturating_sub(2)..(i + 3).min(got.len())],
                &written[i.saturating_sub(2)..(i + 3).min(written.len())]
            );
        }
        assert_eq!(got.len(), written.len(), "nothing lost, nothing doubled");
        eprintln!(
            "{how}: {} random disconnects, {} lines",
            self.drops,
            got.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_disconnects_through_long_poll_lose_and_double_nothing() {
    let s = Server::start(&["--rotate-grace", "200ms", "{dir}/app.log"]).await;
    let (mut run, mut next) = Disconnects::start(&s, 7).await;
    let mut rng = Rng::new(99);
    while run.go_on().await {
        let limit = 1 + rng.below(8);
        let url = format!(
            "{}/api/streams/app.log/lines?after={next}&wait=5&limit={limit}",
            s.url
        );
        // Drop the request at a random point: before it is sent, while it is held, or while
        // the answer is read. The cursor only moves when a whole answer was read.
        let cut = Duration::from_micros(rng.below(1000));
        let attempt = tokio::time::timeout(cut, async {
            let resp = s.client.get(&url).send().await.ok()?;
            resp.json::<Value>().await.ok()
        })
        .await;
        match attempt {
            Ok(Some(page)) => {
                run.got
                    .extend(line_texts(page["entries"].as_array().unwrap()));
                next = page["next"].as_str().unwrap().to_owned();
            }
            _ => run.drops += 1,
        }
    }
    run.check("long poll");
}

#[tokio::test(flavor = "multi_thread")]
async fn random_disconnects_through_sse_lose_and_double_nothing() {
    use futures_util::StreamExt;
    let s = Server::start(&["--rotate-grace", "200ms", "{dir}/app.log"]).await;
    let (mut run, mut last_id) = Disconnects::start(&s, 11).await;
    let mut rng = Rng::new(1234);
    let url = format!("{}/api/streams/app.log/events", s.url);
    while run.go_on().await {
        // Read a random number of bytes of the stream, then drop the connection; events are
        // taken only when complete, as a browser does.
        let budget = if rng.below(2) == 0 {
            rng.below(4000)
        } else {
            rng.below(300_000)
        } as usize;
        run.drops += 1;
        let Ok(resp) = s
            .client
            .get(&url)
            .header("last-event-id", &last_id)
            .send()
            .await
        else {
            continue;
        };
        let mut body = resp.bytes_stream();
        let mut parser = Parser::default();
        let mut read = 0;
        let cut = Instant::now() + Duration::from_millis(rng.below(25));
        while read < budget {
            let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(cut.into(), body.next()).await else {
                break;
            };
            let take = chunk.len().min(budget - read);
            read += take;
            for event in parser.feed(&chunk[..take]) {
                run.got
                    .extend(line_texts(event.json()["entries"].as_array().unwrap()));
                last_id = event.id.clone();
            }
        }
    }
    run.check("sse");
}
