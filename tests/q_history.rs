//! `q` over history read back from disk (a small cache, so nearly every page comes from the
//! file): multi-line records, every level spelling the parser accepts, pages of every size,
//! equal to a reference evaluation of the whole file's records.

use cometail::parse::records::{Caps, Grouper, MAX_LINES, Role};
use cometail::parse::{Parser, Zone};

use crate::common::{Server, append, enc, texts, xorshift};

/// A log of `n` records in every shape that carries a level, each level written in the ways
/// the parser accepts (words in any case, `[E]`, klog letters, syslog `<PRI>`, JSON strings,
/// escapes and numbers, logfmt values quoted and escaped), with continuation lines (some
/// holding level words and query words, which count for their record, not as levels).
fn spelled_log(n: usize, seed: u64) -> Vec<String> {
    let mut next = xorshift(seed);
    let words = [
        "ERROR",
        "error",
        "Err",
        "eror",
        "SEVERE",
        "FATAL",
        "Critical",
        "crit",
        "PANIC",
        "emerg",
        "Alert",
        "emergency",
        "WARN",
        "warning",
        "wrn",
        "INFO",
        "notice",
        "debug",
        "TRACE",
        "verbose",
        "[E]",
        "[f]",
        "[c]",
        "[W]",
        "[i]",
        "ERROR_CODE",
        "err2",
    ];
    let json_levels = [
        "\"error\"",
        "\"ERROR\"",
        "\" fatal \"",
        "\"\\u0065rror\"",
        "\"warn\"",
        "\"info\"",
        "50",
        "60",
        "40",
        "30",
        "5e1",
    ];
    let logfmt_levels = ["err", "\"e\\rror\"", "FATAL", "warn", "info", "\"crit\""];
    let said = ["disk full", "timeout", "Timeout", "user bob", "fine"];
    let mut lines = vec!["an untimed ERROR line before any record".to_owned()];
    for i in 0..n {
        let pick = |r: u64, len: usize| (r % len as u64) as usize;
        let say = said[pick(next(), said.len())];
        let status = 200 + (next() % 4) * 100;
        lines.push(match next() % 6 {
            0 | 1 => format!(
                "2026-12-01T21:14:39.{:03}Z {} record {i} {say}",
                i % 1000,
                words[pick(next(), words.len())]
            ),
            2 => format!(
                r#"{{"ts":1796159679,"level":{},"msg":"{say} {i}","status":{status}}}"#,
                json_levels[pick(next(), json_levels.len())]
            ),
            3 => format!(
                "ts=1796159679 level={} status={status} msg=\"{say} {i}\"",
                logfmt_levels[pick(next(), logfmt_levels.len())]
            ),
            4 => format!(
                "{}1201 21:14:39.123456   12 main.go:34] {say} {i}",
                ["I", "W", "E", "F"][pick(next(), 4)]
            ),
            _ => format!(
                "<{}>1 2026-12-01T21:14:39Z host app 1 - - {say} {i}",
                [11, 12, 14, 8, 10, 165][pick(next(), 6)]
            ),
        });
        match next() % 7 {
            0 => lines.push(format!("\tat a.B(C.java:{i}) ERROR timeout")),
            1 => {
                lines.push("Caused by: disk full error".to_owned());
                lines.push("\t... 3 more".to_owned());
            }
            _ => {}
        }
    }
    lines
}

/// The reference: the file's records (grouped by the library's own rule), those `q` matches,
/// evaluated one by one over the whole file.
fn reference(lines: &[String], q: &str) -> Vec<String> {
    let query = cometail::query::parse(q).unwrap();
    let parser = Parser::new(Zone::utc());
    let mut grouper = Grouper::new(Caps {
        lines: MAX_LINES,
        bytes: 1 << 20,
    });
    let mut records: Vec<(String, Option<cometail::parse::Level>)> = Vec::new();
    for line in lines {
        let facts = parser.facts(line.as_bytes(), 0);
        match (
            grouper.push(facts.start, line.len() as u64),
            records.last_mut(),
        ) {
            (Role::Join, Some(r)) => {
                r.0.push('\n');
                r.0.push_str(line);
            }
            _ => records.push((line.clone(), facts.level)),
        }
    }
    records
        .into_iter()
        .filter(|(text, level)| {
            query.matches(&cometail::query::Record {
                text: text.as_bytes(),
                level: *level,
            })
        })
        .map(|(text, _)| text)
        .collect()
}

const QUERIES: [&str; 7] = [
    "level>=error",
    "level>=warn",
    "level=fatal",
    "timeout",
    "Timeout -level>=error",
    "level<=info disk",
    "status>=400 level>=warn",
];

#[tokio::test(flavor = "multi_thread")]
async fn q_through_history_on_disk_equals_a_reference_over_the_records() {
    let lines = spelled_log(12_000, 5);
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), lines.join("\n") + "\n");
    let s = Server::start_in(
        dir,
        &["--timezone", "UTC", "--cache-bytes", "64K", "{dir}/app.log"],
    )
    .await;
    s.wait_following().await;
    // The first entry's cursor, paging back to the start without a filter.
    let mut page = s.ok_json("/api/streams/app.log/lines?last=1").await;
    while let Some(prev) = page["prev"].as_str() {
        page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?before={prev}&limit=10000"
            ))
            .await;
    }
    let first = &page["entries"][0];
    assert_eq!(first["text"].as_str(), Some(lines[0].as_str()));
    let origin = first["cursor"].as_str().unwrap().to_owned();
    let mut limits = [1usize, 7, 50, 333, 2, 10_000].into_iter().cycle();
    for q in QUERIES {
        let mut want = reference(&lines, q);
        // Paging starts after the first record (the untimed line), which some queries match.
        if want.first() == Some(&lines[0]) {
            want.remove(0);
        }
        assert!(
            want.len() > 50 && want.len() < lines.len() * 3 / 4,
            "{q} must select some records: {}",
            want.len()
        );
        let mut got = Vec::new();
        let mut after = origin.clone();
        for _ in 0..20_000 {
            let limit = limits.next().unwrap();
            let page = s
                .ok_json(&format!(
                    "/api/streams/app.log/lines?after={after}&limit={limit}&q={}",
                    enc(q)
                ))
                .await;
            let texts = texts(&page);
            assert!(texts.len() <= limit, "{q}: {} > {limit}", texts.len());
            let next = page["next"].as_str().unwrap().to_owned();
            let cut = page["scanned"]["budget"].as_bool().unwrap();
            if texts.is_empty() && !cut {
                assert_eq!(
                    next, after,
                    "{q}: an empty page at the end keeps the cursor"
                );
                break;
            }
            after = next;
            got.extend(texts);
        }
        assert_eq!(got.len(), want.len(), "forward q={q}");
        assert_eq!(got, want, "forward q={q}");
        // Back from the end to the start (the first record included), in pages of every
        // size, sifted back through the file.
        let want = reference(&lines, q);
        let got = all_back(&s, q, &mut limits).await;
        assert_eq!(got.len(), want.len(), "backward q={q}");
        assert_eq!(got, want, "backward q={q}");
    }
}

/// Every entry `q` passes, paged back with `last=` then `before=prev` until `prev` is null,
/// with page sizes taken from `limits`; oldest first.
async fn all_back(s: &Server, q: &str, limits: &mut impl Iterator<Item = usize>) -> Vec<String> {
    let mut got: Vec<String> = Vec::new();
    let limit = limits.next().unwrap();
    let mut page = s
        .ok_json(&format!(
            "/api/streams/app.log/lines?last={limit}&q={}",
            enc(q)
        ))
        .await;
    let mut limit = limit;
    for _ in 0..20_000 {
        let texts = texts(&page);
        assert!(texts.len() <= limit, "{q}: {} > {limit}", texts.len());
        got.splice(0..0, texts);
        let Some(prev) = page["prev"].as_str() else {
            return got;
        };
        limit = limits.next().unwrap();
        page = s
            .ok_json(&format!(
                "/api/streams/app.log/lines?before={prev}&limit={limit}&q={}",
                enc(q)
            ))
            .await;
    }
    panic!("{q}: paging back never reached the start");
}

#[tokio::test(flavor = "multi_thread")]
async fn q_back_through_rotated_files_equals_a_reference() {
    // The first part of the log rotated away (`app.log.1`, read line by line as rotated
    // history is), the rest in `app.log` (read by records); `q` pages back through both.
    let lines = spelled_log(6_000, 9);
    let split = lines.len() / 2;
    let (old, new) = lines.split_at(split);
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log.1"), old.join("\n") + "\n");
    append(&dir.path().join("app.log"), new.join("\n") + "\n");
    let s = Server::start_in(
        dir,
        &[
            "--timezone",
            "UTC",
            "--cache-bytes",
            "64K",
            "--rotated-history",
            "{dir}/app.log",
        ],
    )
    .await;
    s.wait_following().await;
    let mut limits = [3usize, 500, 1, 77, 10_000].into_iter().cycle();
    for q in QUERIES {
        // Rotated files are read line by line: each line of `app.log.1` is its own entry.
        let mut want: Vec<String> = old
            .iter()
            .filter(|l| !reference(std::slice::from_ref(*l), q).is_empty())
            .cloned()
            .collect();
        want.insert(0, "<rotated>".to_owned());
        want.extend(reference(new, q));
        let got = all_back(&s, q, &mut limits).await;
        assert_eq!(got.len(), want.len(), "backward q={q}");
        assert_eq!(got, want, "backward q={q}");
    }
}
