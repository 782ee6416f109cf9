//! The parse scenario: CPU per line of cometail's parsing engine, measured in-process.
//!
//! The engine (`cometail::parse`, `cometail::query`) is a set of pure functions, so its cost
//! per line is measured directly, apart from file reading and HTTP: lines of one format are
//! generated in memory (the same layout the writer appends), then each pass runs over all of
//! them and is timed. Passes: `facts` (shape, event time, level, plus the detector and the
//! record grouper, as ingest would run them), and `query` (`level>=error` and a word over
//! whole records). Each pass runs five times; the row holds the median. Figures are CPU time
//! of the measuring thread (`/proc/thread-self/schedstat`), so a machine shared with other
//! work inflates them far less than wall time would; wall time is reported beside them.

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

/// CPU time this thread has run, in ns (Linux `schedstat`), if readable.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `f`, returning (CPU ns, wall ns) per line over `lines` lines.
fn timed(lines: usize, f: impl FnOnce()) -> (f64, f64) {
    let (cpu0, t) = (thread_cpu_ns(), Instant::now());
    f();
    let wall = t.elapsed().as_nanos() as f64 / lines as f64;
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / lines as f64,
        _ => f64::NAN,
    };
    (cpu, wall)
}

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
    let has_time = format != LineFormat::Plain;
    if (first.ts == Some(reference)) != has_time {
        anyhow::bail!("{} lines parsed as {first:?}", format.name());
    }

    let (mut facts_cpu, mut facts_wall, mut query_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let q = query::parse("level>=error timeout")?;
    let mut levels = Vec::with_capacity(lines);
    for _ in 0..PASSES {
        levels.clear();
        let (cpu, wall) = timed(lines, || {
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
        });
        facts_cpu.push(cpu);
        facts_wall.push(wall);
        let (cpu, _) = timed(lines, || {
            let mut hits = 0usize;
            for (&(s, e), &level) in bounds.iter().zip(&levels) {
                let record = Record {
                    text: &buf[s..e],
                    level,
                };
                hits += usize::from(q.matches(&record));
            }
            black_box(hits);
        });
        query_cpu.push(cpu);
    }
    let facts = median(&mut facts_cpu).unwrap_or(f64::NAN);
    let wall = median(&mut facts_wall).unwrap_or(f64::NAN);
    let query = median(&mut query_cpu).unwrap_or(f64::NAN);
    Ok(Row::new(
        "parse",
        "cometail",
        format!("{} lines x {} B {}", lines, line_bytes, format.name()),
    )
    .m("facts_cpu_ns_per_line", facts)
    .m("facts_lines_per_cpu_s", 1e9 / facts)
    .m("facts_wall_ns_per_line", wall)
    .m("query_cpu_ns_per_line", query))
}
