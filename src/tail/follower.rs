//! The follower: one path, followed the way `tail -F` does, as a state machine.
//!
//! [`Follower::step`] looks at the file once: it reads what was appended, notices truncation,
//! and notices when the path names another file (rename rotation, delete and recreate, a
//! re-pointed symlink) or none at all. It returns [`Event`]s and never waits; the caller decides
//! when to step again (a file event or a poll tick), so the whole behaviour is testable
//! without a runtime and both wake-up back ends drive exactly the same logic.
//!
//! The states ([`Phase`], see ARCHITECTURE.md for the picture) own what each needs:
//! - `Closed`: no file open; the path is `waiting` (missing) or in `error` (a directory, no
//!   permission…). When a regular file appears it is opened from its first byte, or, at the
//!   very first look, from the start of its last line (like `tail`, history stays on disk).
//! - `Following`: the path names the open file; each step reads to the end. A file that shrank,
//!   or whose first bytes changed, was truncated: a new generation starts at byte 0 with a
//!   `truncated` notice ([`OpenFile`] reports it, the follower restarts the generation).
//! - `Draining`: the path names another file or none; the old file is still read, so lines a
//!   writer adds after the rename are kept, and the file the path names now is held. The one
//!   switch rule ([`Follower::draining`]): once the held file has data or `grace` passes, the
//!   old generation is read to its end and finished (its unterminated last line becomes a
//!   line) and the next file is followed from its first byte after a `rotated` notice.
//!
//! Known limit: once the new file has data, lines a *second* writer still appends to the old
//! file are not read (stream order would have to interleave two generations).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::event::{Event, FileState, FollowOptions, Notice, NoticeKind, Step};
use super::generation::Generation;
use super::identity::FileId;
use super::open::{OpenFile, Read, last_line_start};

/// Follows one path; see the module documentation.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    opts: FollowOptions,
    /// Sequence number of the next generation.
    next_seq: u64,
    phase: Phase,
    /// The previous generation, still readable for history while its file has a name.
    retained: Option<(Arc<Generation>, Arc<File>)>,
    /// The state last reported, `None` before the first report.
    state: Option<FileState>,
    /// A step has run: only the very first look starts at the file's last line.
    looked: bool,
    buf: Vec<u8>,
}

/// Where the follower is. Each state owns the data it needs, so the states the design forbids
/// (a held next file with nothing being drained, a loss time without an open file) cannot be
/// represented.
#[derive(Debug)]
enum Phase {
    /// No file is open; the reported state says whether the path is waiting or in error.
    Closed,
    /// The path names the open file.
    Following(OpenFile),
    /// The path stopped naming `old` at `since`; `old` is still read until the switch.
    Draining {
        old: OpenFile,
        since: Instant,
        next: Option<Next>,
    },
}

/// The file the path named when it stopped naming the followed one, opened at once: if it is
/// rotated away too before the switch (two quick rotations), its lines are still read, where
/// GNU `tail -F` loses them.
#[derive(Debug)]
struct Next {
    file: File,
    /// The identity of what was really opened.
    id: FileId,
}

impl Next {
    /// Opens the file the path names now.
    fn open(path: &Path) -> Option<Self> {
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok().filter(fs::Metadata::is_file)?;
        let id = FileId::of(&meta);
        Some(Self { file, id })
    }

    fn len(&self) -> Option<u64> {
        self.file.metadata().ok().map(|m| m.len())
    }
}

impl Follower {
    /// A follower of `path`; nothing is opened until the first step.
    pub fn new(path: impl Into<PathBuf>, opts: FollowOptions) -> Self {
        Self {
            path: path.into(),
            opts,
            next_seq: 0,
            phase: Phase::Closed,
            retained: None,
            state: None,
            looked: false,
            buf: Vec::new(),
        }
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation being followed (or drained after a rotation), if a file is open.
    ///
    /// While it is open its inode cannot be reused, so comparing its `id` with the path's
    /// [`FileId`] tells exactly whether the path still names the followed file.
    pub fn current(&self) -> Option<&Arc<Generation>> {
        match &self.phase {
            Phase::Closed => None,
            Phase::Following(open) | Phase::Draining { old: open, .. } => Some(open.generation()),
        }
    }

    /// The previous generation, kept open for history while its file still has a name (a
    /// rotated `app.log.1`). At most one per follower: a follower holds at most two files
    /// open, the current one and this one. It is let go at the first step after its file is
    /// deleted, and when the next rotation retains another.
    pub fn retained(&self) -> Option<&Arc<Generation>> {
        self.retained.as_ref().map(|(g, _)| g)
    }

    /// Looks at the file once; see the module documentation.
    pub fn step(&mut self, now: Instant) -> Step {
        let mut step = Step::default();
        self.release_deleted_retained();
        // The open file is read before the path is looked at, so that bytes written before a
        // rotation are read before the rotation is acted on.
        self.phase = match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Closed => self.closed(&mut step),
            Phase::Following(mut open) => {
                step.more = self.read(&mut open, &mut step.events);
                match look(&self.path) {
                    Look::File(meta) if open.is(&FileId::of(&meta)) => {
                        self.set_state(FileState::Following, &mut step.events);
                        Phase::Following(open)
                    }
                    other => self.draining(open, now, None, other, now, &mut step),
                }
            }
            Phase::Draining {
                mut old,
                since,
                next,
            } => {
                step.more = self.read(&mut old, &mut step.events);
                let other = look(&self.path);
                self.draining(old, since, next, other, now, &mut step)
            }
        };
        self.looked = true;
        step
    }

    /// No file open: opens the one the path names, if any.
    fn closed(&mut self, step: &mut Step) -> Phase {
        match look(&self.path) {
            Look::File(_) => {
                let detail = (self.next_seq > 0)
                    .then(|| format!("{} was created again", self.path.display()));
                self.open(File::open(&self.path), detail, step)
            }
            Look::Absent(state) => {
                self.set_state(state, &mut step.events);
                Phase::Closed
            }
        }
    }

    /// The path stopped naming `old` at `since` and now shows `look`: the switch rule. The
    /// next file is switched to once it has data or the grace has expired; until then `old`
    /// is drained.
    fn draining(
        &mut self,
        old: OpenFile,
        since: Instant,
        mut next: Option<Next>,
        look: Look,
        now: Instant,
        step: &mut Step,
    ) -> Phase {
        let grace_over = now >= since + self.opts.grace;
        match look {
            Look::File(meta) => {
                let id = FileId::of(&meta);
                if old.is(&id) {
                    // The path names the followed file again (renamed back).
                    self.set_state(FileState::Following, &mut step.events);
                    return Phase::Following(old);
                }
                let known = next.as_ref().is_some_and(|n| n.id == id);
                if next.is_some() && !known {
                    // The held file was rotated away before we switched to it: it is done
                    // being written; finish the old one and move on.
                    let phase = self.switch(old, since, next, true, step);
                    step.more = true;
                    return phase;
                }
                if !known {
                    next = Next::open(&self.path);
                }
                let has_data = next.as_ref().and_then(Next::len).unwrap_or(meta.len()) > 0;
                if has_data || grace_over {
                    self.switch(old, since, next, true, step)
                } else {
                    step.draining = true;
                    Phase::Draining { old, since, next }
                }
            }
            Look::Absent(state) => {
                // The path is gone (again); a held file is still switched to by the same rule,
                // so that a writer still finishing the old file within the grace keeps its lines.
                let held = next.is_some();
                let has_data = next.as_ref().and_then(Next::len).unwrap_or(0) > 0;
                let phase = if has_data || grace_over {
                    let phase = self.switch(old, since, next, false, step);
                    step.more |= held;
                    phase
                } else {
                    step.draining = true;
                    Phase::Draining { old, since, next }
                };
                self.set_state(state, &mut step.events);
                phase
            }
        }
    }

    /// Ends `old` once it is read to its end, then follows `next` (or, when nothing is held and
    /// `path_named`, the file at the path) from its first byte.
    fn switch(
        &mut self,
        mut old: OpenFile,
        since: Instant,
        next: Option<Next>,
        path_named: bool,
        step: &mut Step,
    ) -> Phase {
        if self.read(&mut old, &mut step.events) {
            // Not read to its end yet (a step reads at most `STEP_BYTES`): switch later.
            step.more = true;
            return Phase::Draining { old, since, next };
        }
        if let Some(kept) = old.finish(&mut step.events) {
            // The newest rotated file replaces the one retained before.
            if let Some((older, _)) = self.retained.replace(kept) {
                older.release();
            }
        }
        let detail = format!("{} now names a new file", self.path.display());
        match next {
            Some(next) => self.open(Ok(next.file), Some(detail), step),
            None if path_named => self.open(File::open(&self.path), Some(detail), step),
            None => Phase::Closed,
        }
    }

    /// Starts a new generation on `file` and reads it.
    fn open(&mut self, file: io::Result<File>, detail: Option<String>, step: &mut Step) -> Phase {
        let opened = file.and_then(|file| {
            let meta = file.metadata()?;
            let from = if self.opts.start_at_end && !self.looked {
                last_line_start(&file, meta.len())?
            } else {
                0
            };
            Ok((file, meta, from))
        });
        let (file, meta, from) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                self.set_state(FileState::Error(describe(&e)), &mut step.events);
                return Phase::Closed;
            }
        };
        if !meta.is_file() {
            return Phase::Closed;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut open = match OpenFile::start(file, &meta, seq, from, self.opts.max_line_bytes) {
            Ok(open) => open,
            Err(e) => {
                self.set_state(FileState::Error(describe(&e)), &mut step.events);
                return Phase::Closed;
            }
        };
        let notice = detail
            .filter(|_| self.opts.announce_rotation)
            .map(|detail| Notice {
                kind: NoticeKind::Rotated,
                detail,
            });
        step.events.push(open.opened(notice));
        self.set_state(FileState::Following, &mut step.events);
        step.more |= self.read(&mut open, &mut step.events);
        Phase::Following(open)
    }

    /// Reads what was appended to `open`, starting a new generation at each truncation;
    /// returns whether more is left to read.
    fn read(&mut self, open: &mut OpenFile, events: &mut Vec<Event>) -> bool {
        loop {
            match open.read(&mut self.buf, events) {
                Read::AtEnd => return false,
                Read::More => return true,
                Read::Truncated { meta, detail } => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    events.push(open.restart(seq, &meta, detail));
                }
                Read::Failed(e) => {
                    self.set_state(FileState::Error(describe(&e)), events);
                    return false;
                }
            }
        }
    }

    /// Lets go of the retained generation once its file was deleted, so that no deleted file
    /// stays open.
    fn release_deleted_retained(&mut self) {
        let deleted = self.retained.as_ref().is_some_and(|(_, file)| {
            file.metadata()
                .map(|m| std::os::unix::fs::MetadataExt::nlink(&m) == 0)
                .unwrap_or(true)
        });
        if deleted {
            if let Some((generation, _)) = self.retained.take() {
                generation.release();
            }
        }
    }

    fn set_state(&mut self, state: FileState, events: &mut Vec<Event>) {
        if self.state.as_ref() != Some(&state) {
            self.state = Some(state.clone());
            events.push(Event::State(state));
        }
    }
}

/// What the path names.
enum Look {
    File(fs::Metadata),
    Absent(FileState),
}

fn look(path: &Path) -> Look {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => Look::File(meta),
        Ok(meta) if meta.is_dir() => Look::Absent(FileState::Error("is a directory".into())),
        Ok(_) => Look::Absent(FileState::Error("not a regular file".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent_missing = path
                .parent()
                .is_some_and(|p| !p.as_os_str().is_empty() && !p.exists());
            let reason = if parent_missing {
                "directory does not exist"
            } else {
                "file does not exist"
            };
            Look::Absent(FileState::Waiting(reason.into()))
        }
        Err(e) => Look::Absent(FileState::Error(describe(&e))),
    }
}

/// A short reason for an I/O error, for the stream's state.
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::NotFound => "file does not exist".into(),
        io::ErrorKind::NotADirectory => "a path component is not a directory".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    use super::super::open::STEP_BYTES;

    fn texts(step: &Step) -> Vec<String> {
        let mut out = Vec::new();
        for e in &step.events {
            match e {
                Event::Lines { lines, .. } => out.extend(
                    lines
                        .iter()
                        .map(|l| String::from_utf8_lossy(&l.head).into_owned()),
                ),
                Event::Opened {
                    notice: Some(n), ..
                } => out.push(format!("<{}>", n.kind.as_str())),
                _ => {}
            }
        }
        out
    }

    fn append(path: &Path, bytes: &[u8]) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open");
        f.write_all(bytes).expect("write");
    }

    #[test]
    fn starts_at_the_last_line_then_follows_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        append(&path, b"old1\nold2\npart");
        let mut f = Follower::new(&path, FollowOptions::default());
        let now = Instant::now();
        assert!(texts(&f.step(now)).is_empty());
        append(&path, b"ial\nnew\n");
        assert_eq!(texts(&f.step(now)), ["partial", "new"]);
    }

    #[test]
    fn truncation_restarts_at_the_first_byte_with_a_notice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        append(&path, b"one\ntwo\n");
        let mut f = Follower::new(
            &path,
            FollowOptions {
                start_at_end: false,
                ..Default::default()
            },
        );
        let now = Instant::now();
        assert_eq!(texts(&f.step(now)), ["one", "two"]);
        fs::write(&path, b"3\n").expect("truncate");
        assert_eq!(texts(&f.step(now)), ["<truncated>", "3"]);
        // Truncated and regrown past the old offset before the next look: caught by the prefix.
        fs::write(&path, b"rewritten past the old end\n").expect("rewrite");
        assert_eq!(
            texts(&f.step(now)),
            ["<truncated>", "rewritten past the old end"]
        );
    }

    #[test]
    fn rename_rotation_drains_the_old_file_then_reads_the_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        append(&path, b"");
        let mut f = Follower::new(&path, FollowOptions::default());
        let now = Instant::now();
        f.step(now);
        append(&path, b"a\n");
        fs::rename(&path, dir.path().join("a.log.1")).expect("rename");
        append(&dir.path().join("a.log.1"), b"late\n");
        append(&path, b"");
        let s = f.step(now);
        assert_eq!(texts(&s), ["a", "late"]);
        assert!(s.draining);
        append(&dir.path().join("a.log.1"), b"later\n");
        append(&path, b"b\n");
        assert_eq!(texts(&f.step(now)), ["later", "<rotated>", "b"]);
    }

    #[test]
    fn deleted_file_is_released_after_grace_and_recreation_is_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        append(&path, b"");
        let grace = Duration::from_millis(10);
        let mut f = Follower::new(
            &path,
            FollowOptions {
                grace,
                ..Default::default()
            },
        );
        let now = Instant::now();
        f.step(now);
        append(&path, b"x\nunterminated");
        fs::remove_file(&path).expect("rm");
        assert_eq!(texts(&f.step(now)), ["x"]);
        assert_eq!(texts(&f.step(now + grace)), ["unterminated"]);
        assert!(matches!(f.phase, Phase::Closed) && f.retained.is_none());
        append(&path, b"y\n");
        assert_eq!(texts(&f.step(now + grace)), ["<rotated>", "y"]);
    }

    /// Steps until a step reports nothing more to read, collecting what it delivered.
    fn drain(f: &mut Follower, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            let s = f.step(now);
            out.extend(texts(&s));
            if !s.more {
                return out;
            }
        }
        panic!("the follower kept asking for more");
    }

    #[test]
    fn rotation_with_more_unread_than_one_step_reads_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        append(&path, b"");
        let mut f = Follower::new(&path, FollowOptions::default());
        let now = Instant::now();
        f.step(now);
        // Three steps' worth of lines (12 MiB), then a rotation with data in the new file.
        let line = format!("{}\n", "x".repeat(1023));
        let n = 3 * STEP_BYTES / line.len();
        append(&path, line.repeat(n).as_bytes());
        append(&path, b"last old\n");
        fs::rename(&path, dir.path().join("a.log.1")).expect("rename");
        append(&path, b"new\n");
        let got = drain(&mut f, now);
        assert_eq!(got.len(), n + 3, "every old line, the notice, the new line");
        assert_eq!(got[n..], ["last old", "<rotated>", "new"]);
    }

    #[test]
    fn deleted_file_with_more_unread_than_one_step_is_read_to_its_end_after_grace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        append(&path, b"");
        let grace = Duration::from_millis(10);
        let opts = FollowOptions {
            grace,
            ..Default::default()
        };
        let mut f = Follower::new(&path, opts);
        let now = Instant::now();
        f.step(now);
        let line = format!("{}\n", "y".repeat(1023));
        let n = 3 * STEP_BYTES / line.len();
        // Deleted before the follower looks: the first step sees the loss, then reads.
        let mut w = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        w.write_all(line.repeat(n).as_bytes()).expect("write");
        fs::remove_file(&path).expect("rm");
        w.write_all(b"late\n").expect("write");
        let mut got = drain(&mut f, now);
        got.extend(drain(&mut f, now + grace));
        assert_eq!(got.len(), n + 1);
        assert_eq!(got[n], "late");
        assert!(matches!(f.phase, Phase::Closed));
    }

    #[test]
    fn truncation_drops_a_held_partial_line_instead_of_tearing_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        append(&path, b"");
        let mut f = Follower::new(&path, FollowOptions::default());
        let now = Instant::now();
        f.step(now);
        append(&path, b"whole\nhalf of a li");
        assert_eq!(texts(&f.step(now)), ["whole"]);
        fs::write(&path, b"ne\nnext\n").expect("truncate and rewrite");
        let s = f.step(now);
        assert_eq!(texts(&s), ["<truncated>", "ne", "next"]);
        let detail = s.events.iter().find_map(|e| match e {
            Event::Opened {
                notice: Some(n), ..
            } => Some(n.detail.clone()),
            _ => None,
        });
        assert!(
            detail.is_some_and(|d| d.contains("partial last line of 12 bytes was lost")),
            "the notice says what was lost"
        );
    }

    #[test]
    fn same_size_rewrite_within_one_timestamp_tick_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        append(&path, b"");
        let mut f = Follower::new(&path, FollowOptions::default());
        let now = Instant::now();
        f.step(now);
        append(&path, b"aaaa\n");
        assert_eq!(texts(&f.step(now)), ["aaaa"]);
        // Same size, and (on a coarse clock) most likely the same mtime.
        fs::write(&path, b"bbbb\n").expect("rewrite");
        assert_eq!(texts(&f.step(now)), ["<truncated>", "bbbb"]);
    }

    #[test]
    fn missing_file_and_directory_are_states_not_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/a.log");
        let mut f = Follower::new(&path, FollowOptions::default());
        let s = f.step(Instant::now());
        assert!(
            matches!(&s.events[..], [Event::State(FileState::Waiting(r))] if r == "directory does not exist")
        );
        fs::create_dir_all(&path).expect("mkdir");
        let s = f.step(Instant::now());
        assert!(
            matches!(&s.events[..], [Event::State(FileState::Error(r))] if r == "is a directory")
        );
        fs::remove_dir(&path).expect("rmdir");
        append(&path, b"z\n");
        assert_eq!(texts(&f.step(Instant::now())), ["z"]);
    }
}
