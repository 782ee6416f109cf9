//! Model-based test of the follower, in the style of vector's file-source tests: random
//! sequences of writes (whole and partial lines), rename rotations, deletions, truncations,
//! pauses and reads run against a real file and an in-memory model of what was written.
//!
//! The [`Follower`] state machine is driven directly (`step(now)` with a controlled clock for
//! the grace period), so a case takes about a millisecond. The checks:
//! - every delivered line is a line that was written (none torn), in write order (none
//!   reordered), at most once (none doubled): the delivered lines are a subsequence of the
//!   written ones;
//! - every written line is delivered (none lost), except lines of a file content that was
//!   later truncated (a tailer cannot read bytes that are gone; `tail -F` loses them too);
//! - after the grace period no deleted file stays open, and the follower holds at most two
//!   files (the current one and the retained previous generation).
//!
//! "Written line" means a run of bytes between newlines *within one file content*: a partial
//! line left at the end of a rotated or deleted file is a line of its own (the follower
//! delivers it when it finishes that file), and its rest, written to the new file, is another.
//!
//! The writer behaves as a writer must for any tailer to keep up: it keeps writing to a
//! renamed or deleted file only within the grace period (it reopens the path before the clock
//! passes it), and a file is rotated away only once the follower has opened it, or has at
//! least looked at the path since the file appeared there while the writer already writes to
//! it (two rotations in quick succession: the follower holds a file from its first look).
//!
//! Runs 1,000 cases by default. More: `FOLLOW_MODEL_CASES=100000 cargo test --release --test
//! follow_model` (`PROPTEST_CASES` works too; `FOLLOW_MODEL_CASES` wins); 100,000 cases take
//! about a minute in release.
//!
//! A smaller model test runs the same ledger through the real server in both back ends (a
//! server per case, lines read over HTTP): `FOLLOW_SERVER_MODEL_CASES` cases each, 8 by
//! default.

mod server;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cometail::tail::{Event, FileId, FollowOptions, Follower, line_text};
use proptest::prelude::*;

const GRACE: Duration = Duration::from_secs(3);
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Op {
    /// Finish the pending partial line, if any, then write `n` whole lines in one write.
    Write(u8),
    /// Write part of a line: the start of a new one, or the rest of the pending one without
    /// its newline when it was only started.
    WritePartial(u8),
    /// Rename the file to `a.log.1` (replacing an older one); the writer keeps its handle.
    Rename,
    /// Delete the file; the writer keeps its handle.
    Delete,
    /// Create an empty file at the path (logrotate `create`), if there is none.
    CreateEmpty,
    /// The writer reopens the path (creating it if needed).
    Reopen,
    /// Truncate the file at the path to zero (copytruncate); the writer appends on.
    Truncate,
    /// The follower looks (and reads until it has nothing more).
    Step,
    /// Time passes without a look.
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..5).prop_map(Op::Write),
        3 => (8u8..17).prop_map(Op::WritePartial),
        2 => Just(Op::Rename),
        1 => Just(Op::Delete),
        1 => Just(Op::CreateEmpty),
        2 => Just(Op::Reopen),
        1 => Just(Op::Truncate),
        6 => Just(Op::Step),
        2 => (0u16..4000).prop_map(Op::Advance),
    ]
}

/// The line with id `id`: the id at both ends, so that either piece of a split line is unique.
fn line(id: u64) -> String {
    let h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    format!("L{id:06}:{h:08x}:{id:06}E")
}

/// One unit of written content: a line, or a partial line that ended its file content.
#[derive(Debug, Clone)]
struct Unit {
    text: String,
    complete: bool,
    /// The content it belongs to was truncated away (it may be lost).
    may_be_lost: bool,
}

/// What was written, file by file, as units in the order their first byte was written.
#[derive(Debug, Default)]
struct Ledger {
    units: Vec<Unit>,
    /// Per model file: indices into `units` of its current content's units, first to last.
    files: Vec<Vec<usize>>,
}

impl Ledger {
    /// A new (empty) file; returns its index.
    fn new_file(&mut self) -> usize {
        self.files.push(Vec::new());
        self.files.len() - 1
    }

    /// Records `bytes` appended to file `idx`.
    fn record(&mut self, idx: usize, bytes: &str) {
        let mut pieces = bytes.split('\n').peekable();
        while let Some(piece) = pieces.next() {
            let ends_line = pieces.peek().is_some();
            let open_unit = self.files[idx]
                .last()
                .copied()
                .filter(|&u| !self.units[u].complete);
            let u = match open_unit {
                Some(u) => u,
                None if piece.is_empty() && !ends_line => continue,
                None => {
                    self.units.push(Unit {
                        text: String::new(),
                        complete: false,
                        may_be_lost: false,
                    });
                    self.files[idx].push(self.units.len() - 1);
                    self.units.len() - 1
                }
            };
            self.units[u].text.push_str(piece);
            self.units[u].complete = ends_line;
        }
    }

    /// File `idx` was truncated to zero: its content so far may be lost.
    fn truncate(&mut self, idx: usize) {
        for &u in &self.files[idx] {
            self.units[u].may_be_lost = true;
            // Whatever is written next starts a new line.
            self.units[u].complete = true;
        }
        self.files[idx].clear();
    }

    /// Delivered ⊆ written, in order (none torn, doubled or reordered), and nothing lost but
    /// what truncation may lose.
    fn check(&self, delivered: &[String]) -> Result<(), TestCaseError> {
        // Units are unique, so a greedy match decides.
        let mut matched = vec![false; self.units.len()];
        let mut next = 0;
        for d in delivered {
            let Some(i) = (next..self.units.len()).find(|&i| self.units[i].text == *d) else {
                let known = self.units.iter().any(|u| u.text == *d);
                return Err(TestCaseError::fail(format!(
                    "delivered {d:?} is {} (delivered {delivered:?}; written {:?})",
                    if known {
                        "doubled or out of order"
                    } else {
                        "not a written line (torn)"
                    },
                    self.units.iter().map(|u| &u.text).collect::<Vec<_>>()
                )));
            };
            matched[i] = true;
            next = i + 1;
        }
        for (u, m) in self.units.iter().zip(&matched) {
            prop_assert!(
                *m || u.may_be_lost,
                "written line {:?} was lost (delivered {delivered:?})",
                u.text
            );
        }
        Ok(())
    }
}

struct World {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    path: PathBuf,
    rotated: PathBuf,
    follower: Follower,
    now: Instant,
    /// What was written.
    ledger: Ledger,
    /// Model file at the path / at the rotated name.
    at_path: Option<usize>,
    at_rotated: Option<usize>,
    /// The writer's handle and model file.
    writer: Option<(File, usize)>,
    /// When the writer's file stopped being the one at the path.
    detached_at: Option<Instant>,
    /// The line being written in pieces, and how many bytes of it are written.
    pending: Option<(String, usize)>,
    /// The follower has looked since the file now at the path appeared there.
    path_seen: bool,
    next_id: u64,
    delivered: Vec<String>,
}

impl World {
    fn new(exists: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        let opts = FollowOptions {
            max_line_bytes: MAX_LINE,
            grace: GRACE,
            announce_rotation: true,
            start_at_end: false,
        };
        let mut w = Self {
            dir: dir.path().to_path_buf(),
            rotated: dir.path().join("a.log.1"),
            follower: Follower::new(&path, opts),
            path,
            _dir: dir,
            now: Instant::now(),
            ledger: Ledger::default(),
            at_path: None,
            at_rotated: None,
            writer: None,
            detached_at: None,
            pending: None,
            path_seen: false,
            next_id: 0,
            delivered: Vec::new(),
        };
        if exists {
            w.reopen();
        }
        w.step();
        w
    }

    fn reopen(&mut self) {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .expect("open for writing");
        let idx = match self.at_path {
            Some(idx) => idx,
            None => {
                self.path_seen = false;
                self.ledger.new_file()
            }
        };
        self.at_path = Some(idx);
        self.writer = Some((file, idx));
        self.detached_at = None;
    }

    /// Writes `bytes` through the writer, opening the path first if it has no handle.
    fn write(&mut self, bytes: &str) {
        if self.writer.is_none() {
            self.reopen();
        }
        let (file, idx) = self.writer.as_mut().expect("a writer");
        file.write_all(bytes.as_bytes()).expect("write");
        let idx = *idx;
        self.ledger.record(idx, bytes);
    }

    fn write_lines(&mut self, n: u8) {
        let mut out = String::new();
        if let Some((l, done)) = self.pending.take() {
            out.push_str(&l[done..]);
            out.push('\n');
        }
        for _ in 0..n {
            out.push_str(&line(self.next_id));
            out.push('\n');
            self.next_id += 1;
        }
        self.write(&out);
    }

    fn write_partial(&mut self, cut: u8) {
        let piece = match self.pending.take() {
            Some((l, done)) if done < 17 => {
                // The rest up to (not including) the last 7 bytes, so that a piece with the
                // newline still follows.
                let to = (l.len() - 7).max(done + 1);
                let piece = l[done..to].to_owned();
                self.pending = Some((l, to));
                piece
            }
            Some(p) => {
                self.pending = Some(p);
                return;
            }
            None => {
                let l = line(self.next_id);
                self.next_id += 1;
                let cut = usize::from(cut);
                let piece = l[..cut].to_owned();
                self.pending = Some((l, cut));
                piece
            }
        };
        self.write(&piece);
    }

    /// Whether the file at the path may be rotated away without the follower missing it:
    /// the follower has opened it, or (two rotations in quick succession) has looked at the
    /// path since it appeared and the writer already writes to it (so the file before it is
    /// complete; the follower holds the new one from that look on).
    fn may_rotate(&self) -> bool {
        let Ok(meta) = fs::metadata(&self.path) else {
            return false;
        };
        let opened = self
            .follower
            .current()
            .is_some_and(|g| g.id == FileId::of(&meta));
        let writer_on_it =
            self.writer.is_some() && self.writer.as_ref().map(|(_, i)| *i) == self.at_path;
        opened || (self.path_seen && writer_on_it)
    }

    fn detach(&mut self) {
        if self.writer.as_ref().map(|(_, i)| *i) == self.at_path && self.writer.is_some() {
            self.detached_at.get_or_insert(self.now);
        }
        self.at_path = None;
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write(n) => self.write_lines(n),
            Op::WritePartial(cut) => self.write_partial(cut),
            Op::Rename => {
                if self.may_rotate() {
                    fs::rename(&self.path, &self.rotated).expect("rename");
                    self.at_rotated = self.at_path;
                    self.detach();
                }
            }
            Op::Delete => {
                if self.may_rotate() {
                    fs::remove_file(&self.path).expect("delete");
                    self.detach();
                }
            }
            Op::CreateEmpty => {
                if self.at_path.is_none() {
                    File::create(&self.path).expect("create");
                    self.at_path = Some(self.ledger.new_file());
                    self.path_seen = false;
                }
            }
            Op::Reopen => self.reopen(),
            Op::Truncate => {
                if let Some(idx) = self.at_path {
                    OpenOptions::new()
                        .write(true)
                        .open(&self.path)
                        .and_then(|f| f.set_len(0))
                        .expect("truncate");
                    self.ledger.truncate(idx);
                }
            }
            Op::Step => self.step(),
            Op::Advance(ms) => {
                let to = self.now + Duration::from_millis(u64::from(ms));
                // A writer writes to a renamed or deleted file only within the grace period.
                if self.detached_at.is_some_and(|t| to >= t + GRACE) {
                    self.reopen();
                }
                self.now = to;
            }
        }
    }

    fn step(&mut self) {
        self.path_seen |= self.at_path.is_some();
        for _ in 0..10_000 {
            let step = self.follower.step(self.now);
            for e in &step.events {
                if let Event::Lines { lines, .. } = e {
                    for l in lines {
                        let (text, cut) = line_text(&l.head, l.len, MAX_LINE);
                        assert!(!cut, "no line here is longer than the limit");
                        self.delivered.push(text.into());
                    }
                }
            }
            if !step.more {
                return;
            }
        }
        panic!("the follower kept asking for more");
    }

    /// Ends the case: the writer finishes its line on the path and writes a last one, and the
    /// clock runs past the grace period until the follower is quiet.
    fn finish(&mut self) {
        if self.detached_at.is_some() || self.writer.is_none() {
            self.reopen();
        }
        self.write_lines(1);
        self.step();
        for _ in 0..4 {
            self.now += GRACE + Duration::from_millis(1);
            self.step();
        }
        self.writer = None;
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.ledger.check(&self.delivered)?;
        // No deleted file open past the grace period; at most current + retained.
        let fds = crate::common::files::open_fds_under(&self.dir);
        prop_assert!(
            fds.iter().all(|f| !f.ends_with("(deleted)")),
            "a deleted file is still open: {fds:?}"
        );
        prop_assert!(fds.len() <= 2, "more than two files open: {fds:?}");
        if self.follower.retained().is_none() {
            prop_assert!(fds.len() <= 1, "more than the current file open: {fds:?}");
        }
        Ok(())
    }
}

fn cases() -> u32 {
    ["FOLLOW_MODEL_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn follower_loses_doubles_tears_and_reorders_no_line(
        exists in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut world = World::new(exists);
        for op in &ops {
            world.apply(op);
        }
        world.finish();
        world.check()?;
    }
}

/// A hand-written sequence that exercises every operation once, so that a change that breaks
/// the harness itself shows up even if the random cases happen to avoid it.
#[test]
fn every_operation_in_one_sequence() {
    let mut w = World::new(true);
    for op in [
        Op::Write(2),
        Op::Step,
        Op::WritePartial(10),
        Op::Step,
        Op::Rename,
        Op::WritePartial(10),
        Op::Write(1),
        Op::Step,
        Op::CreateEmpty,
        Op::Step,
        Op::Reopen,
        Op::Write(1),
        Op::Step,
        Op::Truncate,
        Op::Write(2),
        Op::Step,
        Op::Delete,
        Op::Write(1),
        Op::Advance(2000),
        Op::Step,
        Op::Advance(2000),
        Op::Write(1),
        Op::Step,
    ] {
        w.apply(&op);
    }
    w.finish();
    w.check().expect("the model holds");
    assert!(w.delivered.len() >= 8, "delivered {:?}", w.delivered);
}
