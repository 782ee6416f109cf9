//! The parse scenario: CPU per line of cometail's parsing engine, measured in-process.
//!
//! The engine (`cometail::parse`, `cometail::query`) is a set of pure functions, so its cost
//! per line is measured directly, apart from file reading and HTTP: lines of one format are
//! generated in memory (the same layout the writer appends), then each pass runs over all of
//! them and is timed. Passes: `facts` (shape, event time, level, plus the detector and the
//! record grouper, as ingest would run them), and `query` (`level>=error` and a word over
//! whole records). Each pass runs five times; the row holds the median.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use cometail::parse::detect::Detector;
use cometail::parse::records::{Caps, Grouper, MAX_LINES};
use cometail::parse::{Parser, Zone};
use cometail::query::{self, Record};

use crate::marks::{LineFormat, format_line_as};
use crate::report::Row;
use crate::stats::median;

/// Nanoseconds of the first line's stamp (2026-12-01T21:14:39Z); one line per millisecond.
const START_NS: u64 = 1_796_159_679_000_000_000;
/// Passes per figure; the median is reported.
const PASSES: usize = 5;

/// Measures the engine on `lines` lines of `format`, each `line_bytes` long.
///
/// # Errors
/// The generated lines do not parse as the format says (a broken engine, not a slow one).
pub(crate) fn parse(format: LineFormat, lines: usize, line_bytes: usize) -> Result<Row> {
    let mut buf = Vec::with_capacity(lines * line_bytes);
    let mut bounds = Vec::with_capacity(lines);
    for i in 0..lines as u64 {
        let start = buf.len();
        format_line_as(
            &mut buf,
            i + 1,
            START_NS + i * 1_000_000,
            line_bytes,
            format,
        );
        bounds.push((start, buf.len() - 1));
    }
    let parser = Parser::new(Zone::system());
    let reference = (START_NS / 1_000_000) as i64;
    let caps = Caps {
        lines: MAX_LINES,
        bytes: 1 << 20,
    };

    // Check once that the engine sees what the format carries.
    let first = parser.facts(&buf[bounds[0].0..bounds[0].1], reference);
    let timed = format != LineFormat::Plain;
    if (first.ts == Some(reference)) != timed {
        anyhow::bail!("{} lines parsed as {first:?}", format.name());
    }

    let mut facts_ns = Vec::new();
    let mut query_ns = Vec::new();
    let q = query::parse("level>=error timeout")?;
    let mut levels = Vec::with_capacity(lines);
    for _ in 0..PASSES {
        levels.clear();
        let t = Instant::now();
        let mut detector = Detector::new();
        let mut grouper = Grouper::new(caps);
        for &(s, e) in &bounds {
            let line = &buf[s..e];
            let f = parser.facts(line, reference);
            detector.observe(&f, line.is_empty());
            black_box(grouper.push(f.start, line.len() as u64));
            levels.push(f.level);
        }
        black_box(detector.shape());
        facts_ns.push(t.elapsed().as_nanos() as f64 / lines as f64);

        let t = Instant::now();
        let mut hits = 0usize;
        for (&(s, e), &level) in bounds.iter().zip(&levels) {
            let record = Record {
                text: &buf[s..e],
                level,
            };
            hits += usize::from(q.matches(&record));
        }
        black_box(hits);
        query_ns.push(t.elapsed().as_nanos() as f64 / lines as f64);
    }
    let facts = median(&mut facts_ns).unwrap_or(f64::NAN);
    let query = median(&mut query_ns).unwrap_or(f64::NAN);
    Ok(Row::new(
        "parse",
        "cometail",
        format!("{} lines x {} B {}", lines, line_bytes, format.name()),
    )
    .m("facts_ns_per_line", facts)
    .m("facts_lines_per_s", 1e9 / facts)
    .m("query_ns_per_line", query))
}
