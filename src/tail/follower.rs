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
use std::time::{Instant, SystemTime};

use super::event::{Event, FileState, FollowOptions, Notice, NoticeKind, Step};
use super::generation::Generation;
use super::identity::FileId;
use super::open::{LiveStart, OpenFile, Read, last_line_start};
use super::skipped;

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
    /// The files of the last [`SEEN`] generations opened, newest last: a file beside the path
    /// that is none of them was never read (see [`skipped`]).
    seen: std::collections::VecDeque<FileId>,
    /// When a step last saw the path name the open file.
    named_at: SystemTime,
}

/// How many generations' files [`Follower`] remembers as read.
const SEEN: usize = 16;

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
                        self.named_at = SystemTime::now();
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
        let (generation, _) = self.retained.as_ref()?;
        if generation.id != *id || generation.seq + 1 != self.next_seq {
            return None;
        }
        let (generation, file) = self.retained.take()?;
        let open = OpenFile::resume(generation.clone(), file.clone(), self.opts.max_line_bytes);
        if open.is_none() {
            self.retained = Some((generation, file));
        }
        open
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
mod tests;
