//! Unit tests of a stream fed by hand-made follower events over real files: the cache and its
//! trimming, cursor resolution, and reads that cross from disk into the cache.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Cursor, Entry, MemoryBudget, ORIGIN, Page, Query, Stream, StreamId, StreamLimits};
use crate::tail::{Event, FileId, Generation, Notice, NoticeKind, RawLine};

const MAX_LINE: usize = 1 << 10;

fn stream(cache_bytes: usize) -> Stream {
    let limits = StreamLimits {
        cache_bytes,
        max_line_bytes: MAX_LINE,
        record_lines: crate::parse::records::MAX_LINES,
    };
    let budget = Arc::new(MemoryBudget::new(1 << 30));
    Stream::new(StreamId::from_name("t"), "t".into(), limits, budget)
}

/// A followed file: the bytes written so far and its generation, as the follower keeps them.
struct Followed {
    file: File,
    generation: Arc<Generation>,
    written: u64,
}

impl Followed {
    /// Creates `path` afresh and opens generation `seq` of it, empty.
    fn create(path: &Path, seq: u64) -> Self {
        let file = File::create(path).expect("create");
        let reader = Arc::new(File::open(path).expect("open"));
        let id = FileId::of(&reader.metadata().expect("stat"));
        Self {
            file,
            generation: Arc::new(Generation::new(seq, id, reader, 0)),
            written: 0,
        }
    }

    fn opened(&self, notice: Option<NoticeKind>) -> Event {
        Event::Opened {
            generation: self.generation.clone(),
            notice: notice.map(|kind| Notice {
                kind,
                detail: "test".into(),
            }),
            from: self.written,
        }
    }

    /// Appends `texts` as lines and returns them as the follower would deliver them.
    fn append(&mut self, texts: &[String]) -> Event {
        let mut lines = Vec::new();
        for text in texts {
            writeln!(self.file, "{text}").expect("write");
            lines.push(RawLine {
                start: self.written,
                len: text.len() as u64,
                head: text.as_bytes().to_vec(),
            });
            self.written += text.len() as u64 + 1;
        }
        self.file.flush().expect("flush");
        let reader = self.generation.file().expect("held");
        self.generation
            .fill_prefix(&reader, self.written)
            .expect("prefix");
        self.generation.advance(self.written);
        Event::Lines {
            generation: self.generation.clone(),
            lines,
        }
    }
}

fn feed(stream: &Stream, events: Vec<Event>) {
    stream.apply(stream.prepare(events));
}

fn texts(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:05}")).collect()
}

/// Each entry as a line's text, or `==> kind` for a notice.
fn shown(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e.text() {
            Some(t) => String::from_utf8_lossy(t).into_owned(),
            None => String::from_utf8_lossy(&e.line)
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

/// Every entry after `from`, page by page, reading from disk where needed.
fn read_all_after(stream: &Stream, from: Cursor, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = from;
    for _ in 0..100_000 {
        let Page {
            entries, next: n, ..
        } = stream.read(&Query::After(next), limit);
        if entries.is_empty() {
            return out;
        }
        out.extend(shown(&entries));
        next = n;
    }
    panic!("reading after {from:?} never ended: {out:?}");
}

#[test]
fn trimming_across_generations_keeps_every_entry_readable_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stream(4 << 10);
    let mut old = Followed::create(&dir.path().join("a.log"), 0);
    let a = texts("a", 0..50);
    feed(&s, vec![old.opened(None), old.append(&a)]);
    // The writer rotates: the new file gets as many lines again, which pushes every entry of
    // the old generation, and some of the new one, out of the 4 KiB cache.
    std::fs::rename(dir.path().join("a.log"), dir.path().join("a.log.1")).expect("rename");
    old.generation.finish(old.written);
    let mut new = Followed::create(&dir.path().join("a.log"), 1);
    let b = texts("b", 0..120);
    feed(
        &s,
        vec![new.opened(Some(NoticeKind::Rotated)), new.append(&b)],
    );

    let first = s.read(&Query::After(ORIGIN), 1).entries[0].cursor;
    assert!(
        s.read_cached(&Query::After(first), 10).is_none(),
        "the old generation is no longer cached"
    );
    let mut want = vec![a[0].clone()];
    want.extend(a[1..].iter().cloned());
    want.push("==> rotated".into());
    want.extend(b.iter().cloned());
    assert_eq!(read_all_after(&s, ORIGIN, 7), want);

    // Paging back from the end crosses the cache, the new file on disk and the old one.
    let mut back = Vec::new();
    let mut page = s.read(&Query::Last(9), 9);
    loop {
        back.splice(0..0, shown(&page.entries));
        let Some(prev) = page.prev else { break };
        page = s.read(&Query::Before(prev), 9);
    }
    assert_eq!(back, want);
}

#[test]
fn cursors_resolve_exactly_within_a_run_and_by_content_across_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.log");
    let lines = texts("x", 0..10);
    // Generation 0 of the file, then the file truncated and rewritten with the same bytes:
    // generation 1 has the same identity and the same first bytes.
    let s = stream(1 << 20);
    let mut g0 = Followed::create(&path, 0);
    feed(&s, vec![g0.opened(None), g0.append(&lines)]);
    let in_g0 = s.read(&Query::After(ORIGIN), 3).entries[2].cursor;
    g0.generation.release();
    g0.generation.finish(g0.written);
    let mut g1 = Followed::create(&path, 1);
    feed(
        &s,
        vec![g1.opened(Some(NoticeKind::Truncated)), g1.append(&lines)],
    );

    // Within the run, the cursor names generation 0 exactly (its entries are still cached):
    // the reader continues there and then through the truncation, and never lands in the
    // middle of the look-alike generation 1.
    let got = read_all_after(&s, in_g0, 100);
    let mut want: Vec<String> = lines[3..].to_vec();
    want.push("==> truncated".into());
    want.extend(lines.iter().cloned());
    assert_eq!(got, want);

    // A restarted server (a new stream, a new life) follows the same file: the old cursor is
    // resolved by identity and first bytes, into the newest generation that matches.
    let restarted = stream(1 << 20);
    let mut again = Followed {
        file: std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open"),
        generation: Arc::new(Generation::new(
            0,
            g1.generation.id,
            g1.generation.file().expect("held"),
            g1.written,
        )),
        written: g1.written,
    };
    let reader = again.generation.file().expect("held");
    again
        .generation
        .fill_prefix(&reader, again.written)
        .expect("prefix");
    feed(&restarted, vec![again.opened(None)]);
    let more = texts("y", 0..2);
    feed(&restarted, vec![again.append(&more)]);
    let in_g1 = s.read(&Query::After(ORIGIN), 100).entries;
    let third = in_g1
        .iter()
        .find(|e| e.text() == Some(lines[2].as_bytes()) && e.gen_seq == 1)
        .expect("generation 1 has the line")
        .cursor;
    assert_ne!(third.life, restarted.read(&Query::Last(1), 1).next.life);
    let mut want: Vec<String> = lines[3..].to_vec();
    want.extend(more.iter().cloned());
    assert_eq!(read_all_after(&restarted, third, 4), want);

    // Another file's cursor (another identity) is a gap, whatever its sequence number.
    let foreign = Cursor {
        ident: third.ident ^ 1,
        ..third
    };
    assert_eq!(
        shown(&restarted.read(&Query::After(foreign), 1).entries),
        ["==> gap"]
    );
}

#[test]
fn a_read_crossing_from_disk_into_a_cache_being_trimmed_loses_and_repeats_nothing() {
    const LINES: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Arc::new(stream(2 << 10));
    let mut file = Followed::create(&dir.path().join("busy.log"), 0);
    let all = texts("line ", 0..LINES);
    feed(&s, vec![file.opened(None), file.append(&all[..100])]);

    // Deterministic first: a reader reads a page from disk, the cache is then trimmed far
    // past its position, and the next page continues exactly where the first stopped.
    let page = s.read(&Query::After(ORIGIN), 10);
    assert_eq!(shown(&page.entries), all[..10]);
    feed(&s, vec![file.append(&all[100..200])]);
    let page = s.read(&Query::After(page.next), 10);
    assert_eq!(shown(&page.entries), all[10..20]);

    // Then racing: the follower appends in small batches (each trims the 2 KiB cache) while
    // a reader pages from the start, each page crossing from disk into the cache.
    let writer = {
        let s = s.clone();
        let rest = all[200..].to_vec();
        std::thread::spawn(move || {
            for batch in rest.chunks(7) {
                feed(&s, vec![file.append(batch)]);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    let mut next = ORIGIN;
    while got.len() < LINES {
        assert!(
            Instant::now() < deadline,
            "read {} of {LINES} lines",
            got.len()
        );
        let page = s.read(&Query::After(next), 13);
        got.extend(shown(&page.entries));
        next = page.next;
    }
    writer.join().expect("writer");
    assert_eq!(got.len(), LINES, "no line twice, no notice");
    assert!(got == all, "every line, in order");
}

#[test]
fn streams_sharing_a_budget_keep_to_their_share_and_give_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = Arc::new(MemoryBudget::new(256 << 10));
    let limits = StreamLimits {
        cache_bytes: 1 << 20,
        max_line_bytes: MAX_LINE,
        record_lines: crate::parse::records::MAX_LINES,
    };
    let quiet = Stream::new(StreamId::from_name("q"), "q".into(), limits, budget.clone());
    let busy = Stream::new(StreamId::from_name("b"), "b".into(), limits, budget.clone());
    let mut q = Followed::create(&dir.path().join("q.log"), 0);
    let mut b = Followed::create(&dir.path().join("b.log"), 0);
    // The quiet stream fills most of the budget while it is not over.
    let early = texts("q", 0..400);
    feed(&quiet, vec![q.opened(None), q.append(&early)]);
    let filled = budget.used();
    assert!(filled > 128 << 10 && filled <= 256 << 10, "{filled}");
    // The busy one pushes the total over: it trims itself to its half at once, the quiet one
    // at the sweep; then the total is within the budget.
    feed(&busy, vec![b.opened(None)]);
    for n in 0..20 {
        feed(&busy, vec![b.append(&texts(&format!("b{n}-"), 0..100))]);
    }
    quiet.enforce_budget();
    assert!(budget.used() <= 256 << 10, "{} used", budget.used());
    // Nothing trimmed is lost: it is read back from disk.
    assert_eq!(read_all_after(&quiet, ORIGIN, 100), early);
    drop((quiet, busy));
    assert_eq!(budget.used(), 0, "dropped streams give their memory back");
}

#[test]
fn a_generation_let_go_is_found_again_by_identity_and_a_foreign_cursor_is_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.log");
    let limits = StreamLimits {
        cache_bytes: 4 << 10,
        max_line_bytes: MAX_LINE,
        record_lines: crate::parse::records::MAX_LINES,
    };
    let s = Stream::new(
        StreamId::from_name("r.log"),
        path.display().to_string(),
        limits,
        Arc::new(MemoryBudget::new(1 << 30)),
    );
    let mut g0 = Followed::create(&path, 0);
    let a = texts("a", 0..100);
    feed(&s, vec![g0.opened(None), g0.append(&a)]);
    // Rotated twice: the follower lets generation 0 go while its file lives on as r.log.2.
    std::fs::rename(&path, dir.path().join("r.log.2")).expect("rename");
    g0.generation.finish(g0.written);
    g0.generation.release();
    let mut g1 = Followed::create(&path, 1);
    let b = texts("b", 0..100);
    feed(
        &s,
        vec![g1.opened(Some(NoticeKind::Rotated)), g1.append(&b)],
    );
    let mut back = Vec::new();
    let mut page = s.read(&Query::Last(30), 30);
    loop {
        back.splice(0..0, shown(&page.entries));
        let Some(prev) = page.prev else { break };
        page = s.read(&Query::Before(prev), 30);
    }
    let mut want = a.clone();
    want.push("==> rotated".into());
    want.extend(b.iter().cloned());
    assert_eq!(back, want, "history continues in the file found again");

    // Gone for good: the top of history says so.
    std::fs::remove_file(dir.path().join("r.log.2")).expect("remove");
    let page = s.read(&Query::Last(150), 150);
    assert_eq!(
        shown(&page.entries).first().map(String::as_str),
        Some("==> gap")
    );
    assert!(page.prev.is_none());

    // A cursor of another stream is a gap, read forwards or backwards.
    let other = stream(1 << 20);
    let mut o = Followed::create(&dir.path().join("o.log"), 0);
    feed(&other, vec![o.opened(None), o.append(&texts("o", 0..5))]);
    let foreign = other.read(&Query::Last(1), 1).entries[0].cursor;
    for query in [Query::After(foreign), Query::Before(foreign)] {
        let page = s.read(&query, 10);
        assert_eq!(
            shown(&page.entries).first().map(String::as_str),
            Some("==> gap"),
            "{query:?}"
        );
    }
}

/// Every entry before the end, page by page backwards, in stream order.
fn read_all_before(stream: &Stream, limit: usize) -> Vec<String> {
    let mut page = stream.read(&Query::Last(limit), limit);
    let mut out = shown(&page.entries);
    for _ in 0..100_000 {
        let Some(prev) = page.prev else {
            return out;
        };
        page = stream.read(&Query::Before(prev), limit);
        let mut older = shown(&page.entries);
        older.append(&mut out);
        out = older;
    }
    panic!("reading backwards never ended: {out:?}");
}

#[test]
fn late_segments_read_back_from_disk_exactly_as_they_were_delivered() {
    use crate::tail::follower::LATE_EVERY;
    use crate::tail::{FollowOptions, Follower};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let rotated = dir.path().join("a.log.1");
    let lines = |prefix: &str, range| -> Vec<u8> {
        texts(prefix, range)
            .iter()
            .flat_map(|t| format!("{t}\n").into_bytes())
            .collect()
    };
    // The same events feed a stream that keeps everything in memory (what was delivered
    // live) and one whose 4 KiB cache sends most reads to the disk.
    let live = stream(1 << 30);
    let small = stream(4 << 10);
    let mut f = Follower::new(
        &path,
        FollowOptions {
            start_at_end: false,
            ..Default::default()
        },
    );
    let mut step = |now: Instant| {
        let events = f.step(now).events;
        feed(&live, events.clone());
        feed(&small, events);
    };
    let t0 = Instant::now();
    std::fs::write(&path, lines("a", 0..40)).expect("write");
    step(t0);
    std::fs::rename(&path, &rotated).expect("rename");
    std::fs::write(&path, lines("n", 0..40)).expect("write");
    step(t0);
    // Late lines in the rotated file, twice, each time after more lines of the new file.
    for round in 1..=2 {
        let mut old = std::fs::OpenOptions::new()
            .append(true)
            .open(&rotated)
            .expect("open");
        old.write_all(&lines(&format!("late{round}-"), 0..30))
            .expect("write");
        let mut new = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        new.write_all(&lines(&format!("n{round}-"), 0..30))
            .expect("write");
        step(t0 + round * LATE_EVERY);
    }
    live.close_record();
    small.close_record();

    let delivered = read_all_after(&live, ORIGIN, 10_000);
    let late1 = delivered
        .iter()
        .position(|t| t == "late1-00000")
        .expect("late lines");
    assert!(
        delivered[late1 - 1].contains("late") && delivered[late1 - 2] == "n1-00029",
        "a `late` notice opens the late lines, after the new file's lines read before them: {:?}",
        &delivered[late1 - 2..=late1]
    );
    let mut sorted = delivered.clone();
    sorted.sort();
    sorted.dedup();
    // The two `late` notices read alike; every line is there once.
    assert_eq!(sorted.len(), delivered.len() - 1, "nothing doubled");
    assert_eq!(delivered.len(), 40 + 1 + 40 + 2 * (30 + 1 + 30));
    let differs = |got: &[String]| {
        let at = got
            .iter()
            .zip(&delivered)
            .take_while(|(a, b)| a == b)
            .count();
        (got.len() != delivered.len() || at < got.len()).then(|| {
            (
                at,
                got[at.saturating_sub(2)..]
                    .iter()
                    .take(6)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        })
    };
    for page in [1, 7, 100] {
        let forwards = read_all_after(&small, ORIGIN, page);
        assert_eq!(
            differs(&forwards),
            None,
            "forwards, {page} a page: (where, read)"
        );
        let backwards = read_all_before(&small, page);
        assert_eq!(
            differs(&backwards),
            None,
            "backwards, {page} a page: (where, read)"
        );
    }
}

#[test]
fn an_earlier_runs_cursor_into_a_file_not_yet_reread_that_far_waits_instead_of_a_gap() {
    use crate::tail::{FollowOptions, Follower};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    // More than one step reads (4 MiB), so the second run needs two steps to reach the end.
    let text: String = (0..50_000)
        .map(|i| format!("{i:07} {}\n", "x".repeat(92)))
        .collect();
    std::fs::write(&path, &text).expect("write");
    let opts = FollowOptions {
        start_at_end: false,
        ..Default::default()
    };
    let read_through = |s: &Stream, f: &mut Follower| {
        let step = f.step(Instant::now());
        let more = step.more;
        feed(s, step.events);
        more
    };
    let first = stream(64 << 20);
    let mut f = Follower::new(&path, opts.clone());
    while read_through(&first, &mut f) {}
    first.close_record();
    let last = first.read(&Query::Last(10), 10);
    let cursor = last.entries[0].cursor;
    let want = shown(&last.entries[1..]);

    // A restart: a new stream (another `life`) reads the same file from byte 0.
    let second = stream(64 << 20);
    let mut f = Follower::new(&path, opts);
    assert!(
        read_through(&second, &mut f),
        "one step does not reach the end"
    );
    let page = second.read(&Query::After(cursor), 100);
    assert!(
        page.entries.is_empty(),
        "not read that far yet: nothing, and no gap: {:?}",
        shown(&page.entries)
    );
    assert_eq!(page.next, cursor);
    while read_through(&second, &mut f) {}
    second.close_record();
    assert_eq!(
        shown(&second.read(&Query::After(cursor), 100).entries),
        want
    );
}
