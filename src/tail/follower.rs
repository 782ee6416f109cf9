//! The follower: one path, followed the way `tail -F` does, as a state machine.
//!
//! [`Follower::step`] looks at the file once: it reads what was appended, notices truncation,
//! and notices when the path names another file (rename rotation, delete and recreate, a
//! re-pointed symlink) or none at all. It returns [`Event`]s and never waits; the caller decides
//! when to step again (a file event or a poll tick), so the whole behaviour is testable
//! without a runtime and both wake-up back ends drive exactly the same logic.
//!
//! States and transitions (see ARCHITECTURE.md for the picture):
//! - no file open: the path is `waiting` (missing) or in `error` (a directory, no permission…);
//!   when a regular file appears it is opened from its first byte, or, at the very first look,
//!   from the start of its last line (like `tail`, history stays on disk);
//! - following: each step reads to the end; a file that shrank, or whose first bytes changed,
//!   was truncated: a new generation starts at byte 0 with a `truncated` notice;
//! - draining: the path names another file or none; the old file is still read, so lines a
//!   writer adds after the rename are kept, until the new file has data or `grace` passes.
//!   Then the old generation ends (its unterminated last line, if any, becomes a line) and the
//!   new file is followed from its first byte after a `rotated` notice.
//!
//! Known limit: once the new file has data, lines a *second* writer still appends to the old
//! file are not read (stream order would have to interleave two generations).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::generation::{Generation, read_full_at};
use super::identity::{FileId, PREFIX_BYTES};
use super::lines::{RawLine, Splitter};

/// How a follower behaves; fixed for its life.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Longest line kept whole; longer lines are cut.
    pub max_line_bytes: usize,
    /// How long a rotated-away or deleted file is still read.
    pub grace: Duration,
    /// Whether a new file under the path is announced with a `rotated` notice (not for the
    /// stdin spool, whose files are an implementation detail).
    pub announce_rotation: bool,
    /// Whether the file present at the first look is read from its last line (`tail`) rather
    /// than from its first byte.
    pub start_at_end: bool,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            max_line_bytes: 1 << 20,
            grace: Duration::from_secs(3),
            announce_rotation: true,
            start_at_end: true,
        }
    }
}

/// What a notice says happened to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The path now names a new file.
    Rotated,
    /// The file shrank or was rewritten; reading restarted at its start.
    Truncated,
    /// Entries were skipped that cannot be replayed.
    Gap,
}

impl NoticeKind {
    /// The word used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Truncated => "truncated",
            Self::Gap => "gap",
        }
    }
}

/// A notice with its human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// Details for people.
    pub detail: String,
}

/// The state of the followed path, as shown to readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// A file is open and followed.
    Following,
    /// No file to follow yet; the reason says why.
    Waiting(String),
    /// The path cannot be followed for now; the reason says why. Following resumes by itself.
    Error(String),
}

/// What a step found.
#[derive(Debug)]
pub enum Event {
    /// A generation begins; its entries follow. `notice` comes before its first line, and
    /// live delivery starts at byte `from` (bytes before it are history on disk).
    Opened {
        /// The new generation.
        generation: Arc<Generation>,
        /// The notice that opens it, if it replaces another.
        notice: Option<Notice>,
        /// First byte delivered live.
        from: u64,
    },
    /// Complete lines of `generation`, in order.
    Lines {
        /// Their generation.
        generation: Arc<Generation>,
        /// The lines, in file order.
        lines: Vec<RawLine>,
    },
    /// The state of the path changed.
    State(FileState),
}

/// The outcome of one [`Follower::step`].
#[derive(Debug, Default)]
pub struct Step {
    /// What happened, in order.
    pub events: Vec<Event>,
    /// The step stopped early with more bytes to read: step again at once.
    pub more: bool,
    /// A replaced or deleted file is being drained: step again soon.
    pub draining: bool,
}

/// Most bytes read in one step, so that a step stays short and its events stay small.
const STEP_BYTES: usize = 4 << 20;
const CHUNK_BYTES: usize = 256 << 10;

/// Follows one path; see the module documentation.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    opts: FollowOptions,
    next_seq: u64,
    cur: Option<Current>,
    /// When the path stopped naming the current file.
    lost_since: Option<Instant>,
    /// The previous generation, still readable for history while its file has a name.
    retained: Option<(Arc<Generation>, Arc<File>)>,
    /// The file the path named when it stopped naming the current one, opened at once: if
    /// it is rotated away too before the switch (two quick rotations), its lines are still
    /// read, where GNU `tail -F` loses them.
    pending: Option<(File, FileId)>,
    state: Option<FileState>,
    looked: bool,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Current {
    generation: Arc<Generation>,
    file: Arc<File>,
    /// Next byte to read; `splitter` has seen every byte before it.
    offset: u64,
    splitter: Splitter,
}

impl Follower {
    /// A follower of `path`; nothing is opened until the first step.
    pub fn new(path: impl Into<PathBuf>, opts: FollowOptions) -> Self {
        Self {
            path: path.into(),
            opts,
            next_seq: 0,
            cur: None,
            lost_since: None,
            retained: None,
            pending: None,
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
        self.cur.as_ref().map(|c| &c.generation)
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
        if self.cur.is_some() {
            step.more = self.read_current(&mut step.events);
        }
        match look(&self.path) {
            Look::File(meta) => {
                let id = FileId::of(&meta);
                match &self.cur {
                    Some(cur) if same_file(&cur.generation.id, &id) => {
                        self.lost_since = None;
                        self.pending = None;
                        self.set_state(FileState::Following, &mut step.events);
                    }
                    Some(_) => {
                        let since = *self.lost_since.get_or_insert(now);
                        let known = self
                            .pending
                            .as_ref()
                            .is_some_and(|(_, p)| same_file(p, &id));
                        if !known && self.pending.is_some() {
                            // The pending file was rotated away before we switched to it:
                            // it is done being written; finish the current one and move on.
                            step.more |= self.switch_to_pending(&mut step.events);
                            step.more = true;
                        } else {
                            if !known {
                                self.pending = open_pending(&self.path);
                            }
                            let has_data = self.pending_len().unwrap_or(meta.len()) > 0;
                            if has_data || now >= since + self.opts.grace {
                                step.more |= self.switch_to_pending(&mut step.events);
                            } else {
                                step.draining = true;
                            }
                        }
                    }
                    None => {
                        let detail = (self.next_seq > 0)
                            .then(|| format!("{} was created again", self.path.display()));
                        step.more |= self.open(&mut step.events, detail);
                    }
                }
            }
            Look::Absent(state) => {
                if self.cur.is_some() && self.pending.is_some() {
                    // The path is gone again, but the file it named is held: switch to it by
                    // the usual rule (it has data, or the grace expired), so that a writer still
                    // finishing the old file within the grace keeps its lines.
                    let since = *self.lost_since.get_or_insert(now);
                    if self.pending_len().unwrap_or(0) > 0 || now >= since + self.opts.grace {
                        step.more |= self.switch_to_pending(&mut step.events);
                        step.more = true;
                    } else {
                        step.draining = true;
                    }
                } else if self.cur.is_some() {
                    let since = *self.lost_since.get_or_insert(now);
                    if now < since + self.opts.grace {
                        step.draining = true;
                    } else if self.read_current(&mut step.events) {
                        // Bytes written before the grace expired are still read in full.
                        step.more = true;
                    } else {
                        self.close_current(&mut step.events);
                    }
                }
                self.set_state(state, &mut step.events);
            }
        }
        self.looked = true;
        step
    }

    /// Size of the pending file.
    fn pending_len(&self) -> Option<u64> {
        self.pending
            .as_ref()
            .and_then(|(f, _)| f.metadata().ok())
            .map(|m| m.len())
    }

    /// Ends the current generation once it is read to its end, then follows the pending file
    /// (or the path, when nothing is pending) from its first byte; returns whether more is
    /// left to read.
    fn switch_to_pending(&mut self, events: &mut Vec<Event>) -> bool {
        if self.read_current(events) {
            // Not read to its end yet (a step reads at most `STEP_BYTES`): switch later.
            return true;
        }
        self.close_current(events);
        let detail = format!("{} now names a new file", self.path.display());
        match self.pending.take() {
            Some((file, _)) => self.open_file(Ok(file), events, Some(detail)),
            None => self.open(events, Some(detail)),
        }
    }

    /// Opens the file at the path as a new generation; returns whether more is left to read.
    fn open(&mut self, events: &mut Vec<Event>, detail: Option<String>) -> bool {
        self.open_file(File::open(&self.path), events, detail)
    }

    /// Starts a new generation on `file`; returns whether more is left to read.
    fn open_file(
        &mut self,
        file: std::io::Result<File>,
        events: &mut Vec<Event>,
        detail: Option<String>,
    ) -> bool {
        let opened = file.and_then(|file| {
            let meta = file.metadata()?;
            let size = meta.len();
            let from = if self.opts.start_at_end && !self.looked {
                last_line_start(&file, size)?
            } else {
                0
            };
            Ok((file, meta, from))
        });
        let (file, meta, from) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                self.set_state(FileState::Error(describe(&e)), events);
                return false;
            }
        };
        if !meta.is_file() {
            return false;
        }
        let file = Arc::new(file);
        let generation = Arc::new(Generation::new(
            self.next_seq,
            FileId::of(&meta),
            file.clone(),
            from,
        ));
        self.next_seq += 1;
        if let Err(e) = generation.fill_prefix(&file, meta.len()) {
            self.set_state(FileState::Error(describe(&e)), events);
            return false;
        }
        let notice = detail
            .filter(|_| self.opts.announce_rotation)
            .map(|detail| Notice {
                kind: NoticeKind::Rotated,
                detail,
            });
        events.push(Event::Opened {
            generation: generation.clone(),
            notice,
            from,
        });
        self.cur = Some(Current {
            generation,
            file,
            offset: from,
            splitter: Splitter::new(from, self.opts.max_line_bytes),
        });
        self.lost_since = None;
        self.set_state(FileState::Following, events);
        self.read_current(events)
    }

    /// Reads what was appended to the current file; returns whether more is left to read.
    fn read_current(&mut self, events: &mut Vec<Event>) -> bool {
        let Some(cur) = self.cur.as_mut() else {
            return false;
        };
        let meta = match cur.file.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                let state = FileState::Error(describe(&e));
                self.set_state(state, events);
                return false;
            }
        };
        // No shortcut on an unchanged (size, mtime): timestamps are coarse (a clock tick), so
        // a truncate-and-rewrite to the same size within one tick would go unnoticed. The
        // prefix check below costs one read of at most `PREFIX_BYTES`.
        if meta.len() < cur.offset || !prefix_unchanged(cur, meta.len()) {
            let detail = if meta.len() < cur.offset {
                format!("file shrank from {} to {} bytes", cur.offset, meta.len())
            } else {
                "file was rewritten from its start".to_owned()
            };
            self.truncated(events, &meta, detail);
            return self.read_current(events);
        }
        if let Err(e) = cur.generation.fill_prefix(&cur.file, meta.len()) {
            let state = FileState::Error(describe(&e));
            self.set_state(state, events);
            return false;
        }
        let mut lines = Vec::new();
        let mut read = 0usize;
        let mut more = false;
        // To undo this step's reads if the file turns out to have been rewritten under them.
        let before = (cur.offset, cur.splitter.clone());
        self.buf.resize(CHUNK_BYTES, 0);
        loop {
            match read_full_at(&cur.file, &mut self.buf, cur.offset) {
                Ok(0) => break,
                Ok(n) => {
                    // Cursors of these lines carry a checksum of the generation's first bytes:
                    // keep the prefix covering everything read, from the very bytes split.
                    cur.generation.extend_prefix(cur.offset, &self.buf[..n]);
                    cur.splitter.push(&self.buf[..n], |l| lines.push(l));
                    cur.offset += n as u64;
                    read += n;
                    if read >= STEP_BYTES {
                        more = true;
                        break;
                    }
                }
                Err(e) => {
                    // A read error is a state of the stream, not of the process; what was read
                    // so far is still delivered.
                    let state = FileState::Error(describe(&e));
                    flush(cur, &mut lines, events);
                    self.set_state(state, events);
                    return false;
                }
            }
        }
        // The check above and the reads are not atomic: truncated and rewritten in between,
        // the file fed the new content's bytes, from the old offset on, to the old generation
        // (a line skipped, or torn). Look at its first bytes again: if they changed, what was
        // just read may be new content, so it is dropped and the file is reread from byte 0.
        // (Lines truncated away right after being read are dropped too: the model allows
        // truncation to lose lines, never to tear or skip them.)
        if read > 0 {
            let rewritten = match cur.file.metadata() {
                Ok(now) => now.len() < cur.offset || !prefix_unchanged(cur, now.len()),
                Err(_) => false,
            };
            if rewritten {
                (cur.offset, cur.splitter) = before;
                if let Ok(now) = cur.file.metadata() {
                    let detail = "file was rewritten from its start".to_owned();
                    self.truncated(events, &now, detail);
                    return self.read_current(events);
                }
            }
        }
        flush(cur, &mut lines, events);
        more
    }

    /// The current file was truncated: end its generation and start a new one at byte 0.
    fn truncated(&mut self, events: &mut Vec<Event>, meta: &fs::Metadata, detail: String) {
        let Some(cur) = self.cur.take() else {
            return;
        };
        // Unlike a rotated file, a truncated one cannot be read to its end: the rest of a
        // partial last line is gone (or is now at the start of the file). Delivering the held
        // bytes as a line would tear it, so they are dropped and the notice says so.
        let pending = cur.splitter.pending_len();
        let detail = if pending > 0 {
            format!("{detail}; a partial last line of {pending} bytes was lost")
        } else {
            detail
        };
        cur.generation.finish(cur.splitter.line_start());
        // The bytes on disk are no longer the old generation's.
        cur.generation.release();
        let generation = Arc::new(Generation::new(
            self.next_seq,
            FileId::of(meta),
            cur.file.clone(),
            0,
        ));
        self.next_seq += 1;
        events.push(Event::Opened {
            generation: generation.clone(),
            notice: Some(Notice {
                kind: NoticeKind::Truncated,
                detail,
            }),
            from: 0,
        });
        self.cur = Some(Current {
            generation,
            file: cur.file,
            offset: 0,
            splitter: Splitter::new(0, self.opts.max_line_bytes),
        });
    }

    /// Ends the current generation for good (rotated away, deleted, replaced).
    fn close_current(&mut self, events: &mut Vec<Event>) {
        let Some(mut cur) = self.cur.take() else {
            return;
        };
        end_generation(&mut cur, events);
        let named = cur.file.metadata().map(|m| m.nlink() > 0).unwrap_or(false);
        if named {
            // The newest rotated file replaces the one retained before.
            if let Some((old, _)) = self.retained.replace((cur.generation, cur.file)) {
                old.release();
            }
        } else {
            // A deleted file has no history to offer; an older rotated file still does.
            cur.generation.release();
        }
        self.lost_since = None;
    }

    /// Lets go of the retained generation once its file was deleted, so that no deleted file
    /// stays open.
    fn release_deleted_retained(&mut self) {
        let deleted = self
            .retained
            .as_ref()
            .is_some_and(|(_, file)| file.metadata().map(|m| m.nlink() == 0).unwrap_or(true));
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

fn flush(cur: &Current, lines: &mut Vec<RawLine>, events: &mut Vec<Event>) {
    if !lines.is_empty() {
        cur.generation.advance(cur.splitter.line_start());
        events.push(Event::Lines {
            generation: cur.generation.clone(),
            lines: std::mem::take(lines),
        });
    }
}

/// Delivers the generation's unterminated last line, if any, and marks it finished.
fn end_generation(cur: &mut Current, events: &mut Vec<Event>) {
    if let Some(line) = cur.splitter.finish() {
        events.push(Event::Lines {
            generation: cur.generation.clone(),
            lines: vec![line],
        });
    }
    cur.generation.finish(cur.splitter.line_start());
}

/// Whether the file's first bytes are still those the generation started with.
fn prefix_unchanged(cur: &Current, size: u64) -> bool {
    let n = cur.generation.prefix_len().min(PREFIX_BYTES);
    if n == 0 || size < n as u64 {
        return size >= n as u64;
    }
    let mut head = vec![0; n];
    match read_full_at(&cur.file, &mut head, 0) {
        Ok(got) => cur.generation.prefix_matches(&head[..got]) && got == n,
        // Unreadable now: let the read that follows report it.
        Err(_) => true,
    }
}

/// Opens the file the path names now, with the identity of what was really opened.
fn open_pending(path: &Path) -> Option<(File, FileId)> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok().filter(fs::Metadata::is_file)?;
    Some((file, FileId::of(&meta)))
}

fn same_file(a: &FileId, b: &FileId) -> bool {
    a == b
}

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

/// Offset where the file's last line starts (just past its last `\n`, or 0).
///
/// Looks back at most 64 MiB; a longer unterminated last line is skipped (reading starts at the
/// end), since it would be cut to `max_line_bytes` anyway.
fn last_line_start(file: &File, size: u64) -> io::Result<u64> {
    const LOOK_BACK: u64 = 64 << 20;
    let mut buf = vec![0u8; 64 << 10];
    let mut end = size;
    while end > 0 && size - end < LOOK_BACK {
        let start = end.saturating_sub(buf.len() as u64);
        let len = usize::try_from(end - start).unwrap_or(buf.len());
        let n = read_full_at(file, &mut buf[..len], start)?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(if end == 0 { 0 } else { size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
        assert!(f.cur.is_none() && f.retained.is_none());
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
        assert!(f.cur.is_none());
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
