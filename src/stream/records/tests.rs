//! The record rule over real files: live grouping (with timer closes at random points)
//! equals what history reads back, forwards and backwards, page by page.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::parse::Zone;
use crate::tail::FileId;

/// A line of kind `k`: 0 starts a record, 1 continues one, 2 is a plain line (no stamp,
/// not indented: it continues a record too, by the rule).
fn text(k: u8, n: usize) -> String {
    match k {
        0 => format!("2026-12-01 10:00:{:02}.{n:03} ERROR failure {n}", n % 60),
        1 => format!("\tat com.example.Frame{n}(Frame.java:{n})"),
        _ => format!("plain {n}"),
    }
}

/// `(first line's start, line count, headless)` of each record.
type Shape = Vec<(u64, usize, bool)>;

fn shape(records: &[Record]) -> Shape {
    records
        .iter()
        .map(|r| (r.start(), r.lines.len(), r.headless))
        .collect()
}

struct Case {
    file: File,
    generation: Arc<Generation>,
    lines: Vec<RawLine>,
    end: u64,
}

fn case(kinds: &[u8]) -> Case {
    let mut f = tempfile::NamedTempFile::new().expect("tempfile");
    let mut lines = Vec::new();
    let mut at = 0;
    for (n, &k) in kinds.iter().enumerate() {
        let t = text(k, n);
        writeln!(f, "{t}").expect("write");
        lines.push(RawLine {
            start: at,
            len: t.len() as u64,
            head: t.into_bytes(),
        });
        at += lines.last().map_or(0, |l| l.len + 1);
    }
    let file = f.reopen().expect("reopen");
    let meta = file.metadata().expect("stat");
    let generation = Arc::new(Generation::new(
        0,
        FileId::of(&meta),
        Arc::new(f.reopen().expect("reopen")),
        at,
    ));
    Case {
        file,
        generation,
        lines,
        end: at,
    }
}

fn reading<'a>(parser: &'a Parser, splits: &'a Splits, caps: Caps) -> Reading<'a> {
    Reading {
        parser,
        splits,
        caps,
        max_line_bytes: 1 << 10,
        reference_ms: 0,
    }
}

/// Feeds the lines to [`Live`], closing by the timer before the lines marked so.
fn live(c: &Case, closes: &[bool], parser: &Parser, splits: &Splits, caps: Caps) -> Shape {
    let mut live = Live::new(caps);
    let mut out = Vec::new();
    let now = Instant::now();
    for (raw, &close) in c.lines.iter().zip(closes) {
        if close {
            out.extend(live.close_now());
        }
        let line = Line::read(raw.clone(), parser, 0, 1 << 10, &Splits::default());
        live.push(&c.generation, line, (splits, 0, now), &mut out);
    }
    out.extend(live.close_now());
    let records: Vec<Record> = out.into_iter().map(|c| c.record).collect();
    shape(&records)
}

fn forward_pages(c: &Case, how: Reading<'_>, page: usize) -> Shape {
    let extent = Extent {
        end: c.end,
        unterminated_ok: false,
    };
    let mut got = Vec::new();
    let mut from = 0;
    loop {
        let records = records_from(&c.file, from, extent, how, (page, None)).expect("read");
        let Some(last) = records.last() else { break };
        from = last.start() + 1;
        got.extend(shape(&records));
    }
    got
}

fn backward_pages(c: &Case, how: Reading<'_>, page: usize) -> Shape {
    let extent = Extent {
        end: c.end,
        unterminated_ok: false,
    };
    let mut got: Shape = Vec::new();
    let mut before = c.end;
    loop {
        let (records, top) = records_before(&c.file, before, extent, how, page).expect("read");
        let mut s = shape(&records);
        s.append(&mut got);
        got = s;
        match records.first() {
            Some(first) if top == Top::More => before = first.start(),
            _ => break,
        }
    }
    got
}

#[test]
fn a_stack_trace_is_one_record_and_plain_text_never_groups() {
    let parser = Parser::new(Zone::utc());
    let splits = Splits::default();
    let caps = Caps {
        lines: 1000,
        bytes: 1 << 10,
    };
    let c = case(&[2, 2, 0, 1, 1, 2, 0, 0, 1]);
    let got = forward_pages(&c, reading(&parser, &splits, caps), 100);
    let counts: Vec<usize> = got.iter().map(|r| r.1).collect();
    assert_eq!(counts, [1, 1, 4, 1, 2]);
    let extent = Extent {
        end: c.end,
        unterminated_ok: false,
    };
    let records = records_from(
        &c.file,
        0,
        extent,
        reading(&parser, &splits, caps),
        (3, None),
    )
    .expect("read");
    let e = crate::stream::Entry::record(1, &c.generation, &records[2], 1 << 10, None);
    let json: serde_json::Value = serde_json::from_slice(&e.json).expect("json");
    assert_eq!(json["text"].as_str().map(|t| t.lines().count()), Some(4));
    assert_eq!(json["level"], "error");
    assert!(json["ts"].is_i64());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn live_records_equal_history_read_forwards_and_backwards(
        ops in proptest::collection::vec((0u8..3, 0u8..6), 1..120),
        max_lines in 1usize..6,
        max_bytes in 40u64..200,
        page in 1usize..7,
    ) {
        let kinds: Vec<u8> = ops.iter().map(|o| o.0).collect();
        let closes: Vec<bool> = ops.iter().map(|o| o.1 == 0).collect();
        let c = case(&kinds);
        let parser = Parser::new(Zone::utc());
        let caps = Caps { lines: max_lines, bytes: max_bytes };
        let splits = Splits::default();
        let want = live(&c, &closes, &parser, &splits, caps);
        let covered: usize = want.iter().map(|r| r.1).sum();
        prop_assert_eq!(covered, kinds.len());
        let how = reading(&parser, &splits, caps);
        prop_assert_eq!(&forward_pages(&c, how, page), &want);
        prop_assert_eq!(&backward_pages(&c, how, page), &want);
    }
}

/// A cut read (a cursor that carries its entry's length) hands out the rest of a record that
/// runs past where the reader stopped as one headless record, and nothing before it; lines
/// that stand alone stay alone.
#[test]
fn a_cut_read_continues_a_grown_record_headless_and_leaves_plain_lines_alone() {
    let parser = Parser::new(Zone::utc());
    let splits = Splits::default();
    let caps = Caps {
        lines: 1000,
        bytes: 1 << 10,
    };
    let how = reading(&parser, &splits, caps);
    // 2, 2, then a record of a start and three frames, then a start.
    let c = case(&[2, 2, 0, 1, 1, 1, 0]);
    let extent = Extent {
        end: c.end,
        unterminated_ok: false,
    };
    let l = &c.lines;
    // The reader had the record's first two lines (the live timer closed it there).
    let own = l[2].start + 1;
    let got = records_from(&c.file, own, extent, how, (10, Some(l[4].start))).expect("read");
    assert_eq!(shape(&got), [(l[4].start, 2, true), (l[6].start, 1, false)]);
    // Stopped at the record's end: exactly the point rule's answer.
    let whole = records_from(&c.file, own, extent, how, (10, Some(l[6].start))).expect("read");
    let plain = records_from(&c.file, own, extent, how, (10, None)).expect("read");
    assert_eq!(shape(&whole), shape(&plain));
    // Plain lines never group, cut or not.
    let got = records_from(&c.file, 1, extent, how, (10, Some(l[1].start))).expect("read");
    assert_eq!(got[0].start(), l[1].start);
    assert_eq!((got[0].lines.len(), got[0].headless), (1, false));
}
