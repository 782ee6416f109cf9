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
//! Late lines: a writer may go on writing to the rotated file after the switch (several
//! processes logging to one file, nginx workers reopening it one by one). While that file is
//! retained (until the next rotation or its deletion), each step in `Following` also looks at
//! its size ([`Follower::read_late`]); lines past where it was left are delivered as a *late
//! segment*, a generation of their own opened by a `late` notice, and the followed file then
//! goes on in a new generation (a segment too, without a notice). So both files' lines are
//! delivered, each file's in its own order, and the stream interleaves them in the order they
//! were read; a segment is opened at most every [`LATE_EVERY`], so a writer that never reopens
//! costs two generations per interval, not two per line.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::event::{Event, FileState, FollowOptions, Notice, NoticeKind, Step};
use super::generation::Generation;
use super::identity::FileId;
use super::open::{LiveStart, OpenFile, Read, last_line_start};
use super::skipped;
use std::os::unix::fs::MetadataExt;

/// Follows one path; see the module documentation.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    opts: FollowOptions,
    /// Sequence number of the next generation.
    next_seq: u64,
    phase: Phase,
    /// The previous generation's file, still readable for history while it has a name, and
    /// still read for late lines.
    retained: Option<Retained>,
    /// Earlier generations of the open file, ended where a late segment interrupted it; they
    /// share its fate (retained with it, released with it).
    earlier: Vec<Arc<Generation>>,
    /// The state last reported, `None` before the first report.
    state: Option<FileState>,
    /// A step has run: only the very first look starts at the file's last line.
    looked: bool,
    /// The files of the last [`SEEN`] generations opened, newest last: a file beside the path
    /// that is none of them was never read (see [`skipped`]).
    seen: std::collections::VecDeque<FileId>,
    /// When a step last saw the path name the open file.
    named_at: SystemTime,
}

/// How many generations' files [`Follower`] remembers as read.
const SEEN: usize = 16;

/// Least time between two late segments of the rotated file (see the module docs). The first
/// late lines are read at once; later ones wait for the rest of the interval.
pub(crate) const LATE_EVERY: Duration = Duration::from_millis(500);

/// Most segments one file is cut into; past it, the oldest are forgotten by the follower
/// (the stream forgets generations on its own, see `stream::MAX_GENERATIONS`).
const MAX_SEGMENTS: usize = 64;

/// The rotated file the follower left, kept open for history and for late lines.
#[derive(Debug)]
struct Retained {
    /// Its generations, oldest first: the one ended at the switch, then its late segments
    /// (and the followed file's earlier segments ended before it was left).
    segments: Vec<Arc<Generation>>,
    file: Arc<File>,
    /// When its last late segment was opened (or when it was left).
    late_at: Instant,
    /// Its size when late lines were last looked for: a partial line left there is not
    /// looked at again until more bytes come.
    looked: u64,
}

impl Retained {
    /// The generation that read it last.
    fn newest(&self) -> Option<&Arc<Generation>> {
        self.segments.last()
    }

    fn release(&self) {
        for g in &self.segments {
            g.release();
        }
    }
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
            earlier: Vec::new(),
            state: None,
            looked: false,
            seen: std::collections::VecDeque::new(),
            named_at: SystemTime::UNIX_EPOCH,
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
        self.retained.as_ref().and_then(Retained::newest)
    }

    /// The inode whose writes should wake the follower besides its path's: the renamed file
    /// being drained, or the rotated file while late lines are expected in it (within a few
    /// `LATE_EVERY` of the switch or of its last late lines): its writes should wake the
    /// follower then, and only then (routing by inode costs every event in the directory a
    /// `stat`).
    pub fn late_watch(&self, now: Instant) -> Option<u64> {
        if let Phase::Draining { old, .. } = &self.phase {
            // The file being drained comes first; late lines wait for the switch.
            return Some(old.generation().id.ino);
        }
        self.retained
            .as_ref()
            .filter(|r| now < r.late_at + 20 * LATE_EVERY)
            .and_then(Retained::newest)
            .map(|g| g.id.ino)
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
                        self.named_at = SystemTime::now();
                        self.set_state(FileState::Following, &mut step.events);
                        self.read_late(&mut open, now, &mut step);
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

    /// No file open: opens the one the path names, if any; the file followed last, come back,
    /// is read on from where it ended.
    fn closed(&mut self, step: &mut Step) -> Phase {
        match look(&self.path) {
            Look::File(meta) => {
                if let Some(mut open) = self.resume(&FileId::of(&meta)) {
                    self.named_at = SystemTime::now();
                    self.set_state(FileState::Following, &mut step.events);
                    step.more |= self.read(&mut open, &mut step.events);
                    return Phase::Following(open);
                }
                let notice = (self.next_seq > 0).then(|| Notice {
                    kind: NoticeKind::Rotated,
                    detail: format!("{} was created again", self.path.display()),
                });
                self.open(File::open(&self.path), notice, step)
            }
            Look::Absent(state) => {
                self.set_state(state, &mut step.events);
                Phase::Closed
            }
        }
    }

    /// The retained generation, continued, when it is the file `id` and the last generation
    /// this follower opened (a later one would have to be interleaved with it).
    fn resume(&mut self, id: &FileId) -> Option<OpenFile> {
        let generation = self.retained.as_ref()?.newest()?;
        if generation.id != *id || generation.seq + 1 != self.next_seq {
            return None;
        }
        let mut retained = self.retained.take()?;
        let generation = retained.segments.pop()?;
        let open = OpenFile::resume(
            generation.clone(),
            retained.file.clone(),
            self.opts.max_line_bytes,
        );
        if open.is_some() {
            self.earlier = retained.segments;
        } else {
            retained.segments.push(generation);
            self.retained = Some(retained);
        }
        open
    }

    /// Reads the lines written to the retained (rotated) file since it was left, as a late
    /// segment, then goes on with `open` in a new generation; see the module documentation.
    fn read_late(&mut self, open: &mut OpenFile, now: Instant, step: &mut Step) {
        let Some(retained) = self.retained.as_mut() else {
            return;
        };
        let Some(newest) = retained.newest().cloned() else {
            return;
        };
        // A deleted or shrunk file has no late lines to give (its history goes with it).
        let size = retained
            .file
            .metadata()
            .ok()
            .filter(|m| m.nlink() > 0)
            .map_or(0, |m| m.len());
        if size <= newest.end().max(retained.looked) {
            return;
        }
        if now < retained.late_at + LATE_EVERY {
            // Read at the end of the interval: look again soon.
            step.draining = true;
            return;
        }
        retained.late_at = now;
        retained.looked = size;
        let mut late = OpenFile::segment(
            &newest,
            retained.file.clone(),
            self.next_seq,
            self.opts.max_line_bytes,
        );
        let notice = Notice {
            kind: NoticeKind::Late,
            detail: format!(
                "lines written to the rotated file (previously {}) after the path named a new one",
                self.path.display()
            ),
        };
        let mut lines = Vec::new();
        match late.read(&mut lines) {
            Read::More => step.more = true,
            // Rewritten or unreadable: what it held past the segment's start is not late lines
            // of this stream any more; nothing was delivered from it.
            Read::AtEnd | Read::Truncated { .. } | Read::Failed(_) => {}
        }
        if lines.is_empty() {
            // Only a partial line so far.
            return;
        }
        step.events.push(late.opened(Some(notice)));
        step.events.append(&mut lines);
        // Its partial last line stays unread: the next segment starts at its start.
        let late = late.generation().clone();
        late.finish(late.end());
        retained.segments.push(late);
        if retained.segments.len() > MAX_SEGMENTS {
            retained.segments.remove(0).release();
        }
        self.next_seq += 1;
        // The followed file goes on after the late lines, in stream order.
        let ended = open.continued(self.next_seq);
        self.next_seq += 1;
        self.earlier.push(ended);
        if self.earlier.len() > MAX_SEGMENTS {
            self.earlier.remove(0).release();
        }
        step.events.push(open.opened(None));
        step.more |= self.read(open, &mut step.events);
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
                    self.named_at = SystemTime::now();
                    self.set_state(FileState::Following, &mut step.events);
                    return Phase::Following(old);
                }
                let known = next.as_ref().is_some_and(|n| n.id == id);
                if next.is_some() && !known {
                    // The held file was rotated away before we switched to it: it is done
                    // being written; finish the old one and move on.
                    let phase = self.switch(old, (since, now), next, true, step);
                    step.more = true;
                    return phase;
                }
                if !known {
                    next = Next::open(&self.path);
                }
                let has_data = next.as_ref().and_then(Next::len).unwrap_or(meta.len()) > 0;
                if has_data || grace_over {
                    self.switch(old, (since, now), next, true, step)
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
                    let phase = self.switch(old, (since, now), next, false, step);
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
        (since, now): (Instant, Instant),
        next: Option<Next>,
        path_named: bool,
        step: &mut Step,
    ) -> Phase {
        if self.read(&mut old, &mut step.events) {
            // Not read to its end yet (a step reads at most `STEP_BYTES`): switch later.
            step.more = true;
            return Phase::Draining { old, since, next };
        }
        let mut segments = std::mem::take(&mut self.earlier);
        if let Some((generation, file)) = old.finish(&mut step.events) {
            // The newest rotated file replaces the one retained before.
            segments.push(generation);
            let kept = Retained {
                segments,
                file,
                late_at: now,
                looked: 0,
            };
            if let Some(older) = self.retained.replace(kept) {
                older.release();
            }
        } else {
            for g in segments {
                g.release();
            }
        }
        let file = match next {
            Some(next) => Ok(next.file),
            None if path_named => File::open(&self.path),
            None => return Phase::Closed,
        };
        let notice = self.replaced(file.as_ref().ok());
        self.open(file, Some(notice), step)
    }

    /// The notice for a new file under the path, after the generation being left: a
    /// `gap` when files the path named in between were never read (replaced faster than the
    /// follower looked), naming them; otherwise `rotated`.
    fn replaced(&self, next: Option<&File>) -> Notice {
        let detail = format!("{} now names a new file", self.path.display());
        let skipped = next
            .and_then(|f| f.metadata().ok())
            .map(|meta| {
                let seen: Vec<FileId> = self.seen.iter().copied().collect();
                skipped::between(&self.path, self.named_at, &FileId::of(&meta), &seen)
            })
            .unwrap_or_default();
        if skipped.is_empty() {
            return Notice {
                kind: NoticeKind::Rotated,
                detail,
            };
        }
        let names: Vec<_> = skipped.iter().map(|n| n.to_string_lossy()).collect();
        Notice {
            kind: NoticeKind::Gap,
            detail: format!(
                "{detail}; {} file(s) it named in between were replaced before they could be \
                 read, now: {}",
                skipped.len(),
                names.join(", ")
            ),
        }
    }

    /// Starts a new generation on `file` and reads it.
    fn open(&mut self, file: io::Result<File>, notice: Option<Notice>, step: &mut Step) -> Phase {
        let opened = file.and_then(|file| {
            let meta = file.metadata()?;
            let from = if self.opts.start_at_end && !self.looked {
                last_line_start(&file, meta.len())?
            } else {
                LiveStart::at(0)
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
        self.named_at = SystemTime::now();
        let id = open.generation().id;
        if !self.seen.contains(&id) {
            if self.seen.len() == SEEN {
                self.seen.pop_front();
            }
            self.seen.push_back(id);
        }
        let notice = notice.filter(|_| self.opts.announce_rotation);
        step.events.push(open.opened(notice));
        self.set_state(FileState::Following, &mut step.events);
        step.more |= self.read(&mut open, &mut step.events);
        Phase::Following(open)
    }

    /// Reads what was appended to `open`, starting a new generation at each truncation;
    /// returns whether more is left to read.
    fn read(&mut self, open: &mut OpenFile, events: &mut Vec<Event>) -> bool {
        loop {
            match open.read(events) {
                Read::AtEnd => return false,
                Read::More => return true,
                Read::Truncated { meta, detail } => {
                    // What a copy of the file still holds is read before the truncation is
                    // acted on (copytruncate loses nothing that reached the copy).
                    open.read_from_copy(&self.path, events);
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    // The bytes on disk are no longer those of its earlier segments either.
                    for g in self.earlier.drain(..) {
                        g.release();
                    }
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
        let deleted = self.retained.as_ref().is_some_and(|r| {
            r.file
                .metadata()
                .map(|m| std::os::unix::fs::MetadataExt::nlink(&m) == 0)
                .unwrap_or(true)
        });
        if deleted {
            if let Some(retained) = self.retained.take() {
                retained.release();
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
mod tests;
