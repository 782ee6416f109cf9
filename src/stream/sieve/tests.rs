//! Sifting (exact chunks and skims) against one exact read of every record, tested after.

use std::fs::File;
use std::io::Write as _;

use super::*;
use crate::parse::records::Caps;
use crate::parse::{Parser, Zone};
use crate::stream::records::Splits;

/// A random log: stamped records with levels in many spellings, continuation lines, untimed
/// lines, JSON and klog lines, blank lines, long lines (past `max_line_bytes`), lines longer
/// than the largest test block, `\r\n` endings; maybe without a last `\n`.
fn random_log(rng: &mut impl FnMut() -> u64, n: usize) -> Vec<u8> {
    let levels = ["ERROR", "info", "Warn", "[E]", "crit", "debug", "x"];
    let says = ["timeout", "Timeout", "fine", "disk"];
    let mut out = Vec::new();
    for i in 0..n {
        let level = levels[(rng() % levels.len() as u64) as usize];
        let say = says[(rng() % says.len() as u64) as usize];
        let line = match rng() % 12 {
            0..=3 => format!("2026-12-01T21:14:39Z {level} r{i} {say}"),
            4 => format!("\tat a.B(C.java:{i}) {level} {say}"),
            5 => format!("Caused by: {say} {level}"),
            6 => format!("untimed {level} {say}"),
            7 => format!(r#"{{"level":"{level}","msg":"{say} {i}"}}"#),
            8 => format!("E1201 21:14:39.123456 1 a.go:1] {say}"),
            9 => String::new(),
            10 => format!("2026-12-01T21:14:39Z {level} {say} {}", "y".repeat(100)),
            _ => match rng() % 3 {
                0 => format!("\t{level} {}", "z".repeat(1500)),
                1 => format!("2026-12-01T21:14:39Z {level} {say}\r"),
                _ => format!("\t{say} {}", "w".repeat(300)),
            },
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    if rng() % 2 == 0 {
        out.extend_from_slice(b"2026-12-01T21:14:39Z ERROR unterminated timeout");
    }
    out
}

/// A file holding a random log, its extent (with or without its unterminated end), its
/// `max_line_bytes` and caps, varied by `round`.
fn random_case(rng: &mut impl FnMut() -> u64, round: usize) -> (File, Extent, usize, Caps) {
    let n = 40 + (rng() % 400) as usize;
    let bytes = random_log(rng, n);
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(&bytes).expect("write");
    let extent = Extent {
        end: bytes.len() as u64,
        unterminated_ok: round % 3 != 0,
    };
    let max_line_bytes = [64, 4096][round % 2];
    let caps = Caps {
        lines: [1000, 3, 1][round % 3],
        bytes: max_line_bytes as u64,
    };
    (file, extent, max_line_bytes, caps)
}

/// `(start, text)` of the records `q` matches: by one exact read, then tested.
fn reference(file: &File, extent: Extent, how: Reading<'_>, q: &Query) -> Vec<(u64, String)> {
    let mut sieve = Sieve::new(q, u64::MAX);
    sieve.prefilter = None;
    let records = records_from(file, 0, extent, how, (usize::MAX, None)).expect("read");
    records
        .into_iter()
        .filter(|r| sieve.record(r, how.max_line_bytes))
        .map(|r| {
            (
                r.start(),
                record_text(&r, how.max_line_bytes).0.into_owned(),
            )
        })
        .collect()
}

/// One random file and query, with what one exact read finds for it.
struct Case<'a> {
    file: &'a File,
    extent: Extent,
    how: Reading<'a>,
    query: Query,
    want: Vec<(u64, String)>,
}

impl Case<'_> {
    /// `(start, text)` of a sifted record, as [`reference`] gives them.
    fn found(&self, r: &Record) -> (u64, String) {
        let text = record_text(r, self.how.max_line_bytes).0.into_owned();
        (r.start(), text)
    }
}

/// Runs `check` on `rounds` random files ([`random_case`]) and each of `queries`, with the
/// seeded generator that `check` draws its page limits and budgets from. `check` returns the
/// records its pages found, in file order; they must be the exact read's.
fn each_case(
    mut seed: u64,
    rounds: usize,
    queries: &[&str],
    mut check: impl FnMut(&mut dyn FnMut() -> u64, &Case<'_>) -> Vec<(u64, String)>,
) {
    let mut rng = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let parser = Parser::new(Zone::utc());
    let splits = Splits::default();
    for round in 0..rounds {
        let (file, extent, max_line_bytes, caps) = random_case(&mut rng, round);
        let how = Reading {
            parser: &parser,
            splits: &splits,
            caps,
            max_line_bytes,
            reference_ms: 0,
        };
        for q in queries {
            let query = crate::query::parse(q).expect("query");
            let want = reference(&file, extent, how, &query);
            let case = Case {
                file: &file,
                extent,
                how,
                query,
                want,
            };
            let got = check(&mut rng, &case);
            assert_eq!(got, case.want, "round {round}, q={q}");
        }
    }
}

/// A page limit and a sieve budget drawn from `rng`.
fn limit_and_budget(rng: &mut dyn FnMut() -> u64) -> (usize, u64) {
    let limit = [1, 3, 1000][(rng() % 3) as usize];
    (limit, [50, 700, u64::MAX][(rng() % 3) as usize])
}

#[test]
fn sifting_in_pages_finds_what_one_exact_read_does() {
    let queries = [
        "level>=error",
        "level>=warn",
        "timeout",
        "Timeout",
        "level<=info",
        "-disk",
    ];
    each_case(0x2545_f491_4f6c_dd1d, 60, &queries, |rng, case| {
        // Pages of varying limits and budgets, each going on after the last record examined,
        // as a cursor does.
        let (mut from, mut cut) = (0, None);
        let mut got = Vec::new();
        for _ in 0..10_000 {
            let (limit, budget) = limit_and_budget(rng);
            let mut sieve = Sieve::new(&case.query, budget);
            let sifted = sift_from(
                case.file,
                from,
                case.extent,
                case.how,
                (limit, cut),
                &mut sieve,
            )
            .expect("sift");
            got.extend(sifted.records.iter().map(|r| case.found(r)));
            if sifted.end {
                break;
            }
            let (start, end) = sifted.last.expect("a page that stops examined a record");
            (from, cut) = (start + 1, Some(end));
        }
        got
    });
}

#[test]
fn sifting_back_in_pages_finds_what_one_exact_read_does() {
    let queries = ["level>=error", "level>=warn", "Timeout", "-disk"];
    each_case(0x9e37_79b9_7f4a_7c15, 40, &queries, |rng, case| {
        // Pages of varying limits and budgets, each going on before the oldest record
        // examined, as a `before=` cursor does.
        let mut before = case.extent.end;
        let mut got = Vec::new();
        for _ in 0..10_000 {
            let (limit, budget) = limit_and_budget(rng);
            let mut sieve = Sieve::new(&case.query, budget);
            let back = sift_before(
                case.file,
                0,
                before,
                case.extent,
                case.how,
                limit,
                &mut sieve,
            )
            .expect("sift back");
            assert!(back.records.len() <= limit);
            got.extend(back.records.iter().rev().map(|r| case.found(r)));
            assert!(back.from < before || back.from == 0, "a page moves back");
            if back.from == 0 {
                break;
            }
            before = back.from;
        }
        got.reverse();
        got
    });
}
