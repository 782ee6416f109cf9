//! `q` through the rotation chain: filtered pages read on from the followed file into its
//! rotated files (plain, `.gz`, a damaged `.gz`), backwards and forwards at several page
//! sizes, equal to the unfiltered history filtered by the same rule; and the rotated files
//! are sifted, not read entry by entry: a sparse word examines its hits' lines only.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::common::{Server, append, enc, xorshift};

/// `n` lines tagged `tag`: about one in 150 says `ERROR`, one in 200 holds `needle` (some
/// `Needle`, some `needle 7`), the rest are plain.
fn lines(tag: &str, n: usize, seed: u64) -> String {
    let mut next = xorshift(seed);
    let mut out = String::new();
    for i in 0..n {
        let r = next() % 600;
        let level = if r % 150 == 0 { "ERROR" } else { "info" };
        let word = match r % 200 {
            0 => " needle",
            1 => " Needle",
            2 => " needle 7",
            _ => "",
        };
        out.push_str(&format!("{tag}-{i:06} {level} some text{word}\n"));
    }
    out
}

fn gzip_to(path: &Path, text: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// Which entries a query keeps, by the test's own reading of the entry.
type Rule = Box<dyn Fn(&Value) -> bool>;

/// An entry as compared here: its text, or its notice and detail.
fn shown(e: &Value) -> String {
    match e.get("text") {
        Some(t) => t.as_str().unwrap().to_owned(),
        None => format!("<{}: {}>", e["notice"], e["detail"]),
    }
}

/// Pages back from the end with `q` (empty: no filter) until `prev` is null: every entry,
/// oldest first, and the entries the server says it examined.
async fn back(s: &Server, q: &str, limit: usize) -> (Vec<Value>, u64) {
    let base = "/api/streams/app.log/lines";
    let q = if q.is_empty() {
        String::new()
    } else {
        format!("&q={}", enc(q))
    };
    let mut out: Vec<Value> = Vec::new();
    let mut examined = 0;
    let mut page = s.ok_json(&format!("{base}?last={limit}{q}")).await;
    for _ in 0..10_000 {
        examined += page["scanned"]["entries"].as_u64().unwrap_or(0);
        out.splice(0..0, page["entries"].as_array().unwrap().clone());
        let Some(prev) = page["prev"].as_str() else {
            return (out, examined);
        };
        page = s
            .ok_json(&format!("{base}?before={prev}&limit={limit}{q}"))
            .await;
    }
    panic!("paging back with q={q} limit={limit} never ends");
}

/// Pages forward with `q` from `after` until a page examines nothing more: every entry.
async fn forward(s: &Server, q: &str, after: &str, limit: usize) -> Vec<Value> {
    let base = "/api/streams/app.log/lines";
    let mut out: Vec<Value> = Vec::new();
    let mut at = after.to_owned();
    for _ in 0..10_000 {
        let page = s
            .ok_json(&format!("{base}?after={at}&limit={limit}&q={}", enc(q)))
            .await;
        out.extend(page["entries"].as_array().unwrap().iter().cloned());
        let next = page["next"].as_str().unwrap().to_owned();
        if next == at {
            return out;
        }
        at = next;
    }
    panic!("paging forward with q={q} limit={limit} never ends");
}

#[tokio::test(flavor = "multi_thread")]
async fn q_pages_through_rotated_files_as_the_whole_history_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // Oldest first: a `.gz` cut in half (an interrupted compression), a whole `.gz`, two
    // plain rotated files, and the followed file.
    gzip_to(&p("app.log.4.gz"), lines("d4", 6000, 4).as_bytes());
    let cut = std::fs::OpenOptions::new()
        .write(true)
        .open(p("app.log.4.gz"))
        .unwrap();
    cut.set_len(cut.metadata().unwrap().len() / 2).unwrap();
    gzip_to(&p("app.log.3.gz"), lines("c3", 5000, 3).as_bytes());
    append(&p("app.log.2"), lines("b2", 4000, 2));
    append(&p("app.log.1"), lines("a1", 3000, 1));
    append(&p("app.log"), lines("now", 2000, 9));
    let s = Server::start_in(dir, &["{dir}/app.log"]).await;
    let (all, _) = back(&s, "", 1000).await;
    let total = all.iter().filter(|e| e.get("text").is_some()).count();
    assert!(total > 14_000, "{total} lines in the whole history");
    let notices: Vec<String> = all
        .iter()
        .filter(|e| e.get("text").is_none())
        .map(shown)
        .collect();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("gap") && n.contains("app.log.4.gz"))
            && notices
                .iter()
                .any(|n| n.contains("older history: app.log.3.gz")),
        "{notices:?}"
    );
    let text = |e: &Value| e["text"].as_str().map(str::to_owned);
    let level = |e: &Value| e["level"].as_str().unwrap_or("").to_owned();
    let cases: [(&str, Rule); 5] = [
        (
            "needle",
            Box::new(move |e| text(e).is_some_and(|t| t.to_lowercase().contains("needle"))),
        ),
        (
            "level>=error",
            Box::new(move |e| ["error", "fatal"].contains(&level(e).as_str())),
        ),
        (
            "/needle 7/",
            Box::new(move |e| text(e).is_some_and(|t| t.contains("needle 7"))),
        ),
        (
            "Needle -b2",
            Box::new(move |e| text(e).is_some_and(|t| t.contains("Needle") && !t.contains("b2"))),
        ),
        ("-some", Box::new(|_| false)),
    ];
    for (q, rule) in &cases {
        let want: Vec<String> = all
            .iter()
            .filter(|e| e.get("text").is_none() || rule(e))
            .map(shown)
            .collect();
        let lines_wanted = want.len() - notices.len();
        assert!(
            *q == "-some" || (lines_wanted > 5 && lines_wanted < total / 20),
            "q={q}: {lines_wanted} matching lines is not a sparse filter"
        );
        for limit in [1, 7, 100, 1000] {
            if limit == 1 && lines_wanted > 300 {
                continue;
            }
            let (got, examined) = back(&s, q, limit).await;
            let got: Vec<String> = got.iter().map(shown).collect();
            assert_eq!(got, want, "q={q} limit={limit}, backwards");
            if *q == "needle" && limit == 1000 {
                // Sifted: the rotated files' lines the prefilter rules out are passed over
                // (before, every line of them was built and tested: `examined` >= total).
                assert!(
                    examined < (total / 4) as u64,
                    "q={q}: {examined} of {total} lines examined"
                );
            }
        }
        // Forwards from the oldest file's first line (after its cursor), to the end.
        let first = all.iter().position(|e| e.get("text").is_some()).unwrap();
        let from = all[first]["cursor"].as_str().unwrap();
        let want_forward: Vec<String> = all[first + 1..]
            .iter()
            .filter(|e| e.get("text").is_none() || rule(e))
            .map(shown)
            .collect();
        for limit in [3, 1000] {
            let got: Vec<String> = forward(&s, q, from, limit)
                .await
                .iter()
                .map(shown)
                .collect();
            assert_eq!(got, want_forward, "q={q} limit={limit}, forwards");
        }
    }
}
