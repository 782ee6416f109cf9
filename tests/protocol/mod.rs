//! The Comet protocol's guarantees over a real socket: exact resume across random
//! disconnects and restarts, history to the first byte, SSE framing, slow clients bounded,
//! the multiplexed and plain-text endpoints.

mod bad_clients;
mod pages;
mod resume;
mod streaming;

use std::time::{Duration, Instant};

use crate::common::sse::{Connection, Parser};
use crate::common::{Server, append, texts, wait_until};
use serde_json::Value;

const SEC: Duration = Duration::from_secs(1);

/// A small deterministic generator (xorshift), so failures replay from the printed seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What readers should see for `bytes`: the complete lines, CR of CR LF dropped, decoded
/// lossily (the contract's rules), and the unterminated tail.
fn model_lines(bytes: &[u8]) -> (Vec<String>, Vec<u8>) {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let mut line = &rest[..i];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        lines.push(String::from_utf8_lossy(line).into_owned());
        rest = &rest[i + 1..];
    }
    (lines, rest.to_vec())
}

fn line_texts(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Pages backwards from the end with `before` until `prev` is null; returns all texts.
async fn page_back(s: &Server, id: &str, limit: usize) -> Vec<String> {
    let mut page = s
        .ok_json(&format!(
            "/api/streams/{id}/lines?last={limit}&limit={limit}"
        ))
        .await;
    let mut all: Vec<Vec<String>> = vec![texts(&page)];
    let mut pages = 0;
    while let Some(prev) = page["prev"].as_str() {
        page = s
            .ok_json(&format!(
                "/api/streams/{id}/lines?before={prev}&limit={limit}"
            ))
            .await;
        all.push(texts(&page));
        pages += 1;
        assert!(pages < 100_000, "paging must end");
    }
    all.into_iter().rev().flatten().collect()
}
