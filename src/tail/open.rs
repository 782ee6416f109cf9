//! Reading one open file generation: from its offset to its end, in bounded steps.
//!
//! An [`OpenFile`] owns the file handle, the generation it feeds, the next offset and the
//! splitter holding the partial last line. [`OpenFile::read`] reads what was appended and
//! says what happened ([`Read`]); it never decides what the follower does next. A truncation is
//! reported, not acted on: the follower restarts the generation ([`OpenFile::restart`]) and
//! reads again.
//!
//! Invariant: `splitter` has seen every byte in `[from, offset)` of the file, and the
//! generation's committed end is the splitter's line start after each read.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use super::event::{Event, Notice, NoticeKind};
use super::generation::{Generation, read_full_at};
use super::identity::{FileId, PREFIX_BYTES};
use super::lines::{RawLine, Splitter};

/// Most bytes read in one step, so that a step stays short and its events stay small.
pub(crate) const STEP_BYTES: usize = 4 << 20;
/// Largest single read; a read is sized to what the file holds past the offset.
const CHUNK_BYTES: usize = 256 << 10;
/// How many bytes just before the offset are kept to notice a truncation past the prefix.
const TAIL_BYTES: usize = 64;

/// What one [`OpenFile::read`] found.
#[derive(Debug)]
pub(crate) enum Read {
    /// Read to the end of the file.
    AtEnd,
    /// Stopped at `STEP_BYTES` with more to read.
    More,
    /// The file shrank or its first bytes changed: nothing of this read was delivered.
    Truncated {
        /// The file's metadata when the truncation was seen.
        meta: Metadata,
        /// What was seen, for the notice.
        detail: String,
    },
    /// The file cannot be read; what was read before the error was delivered.
    Failed(io::Error),
}

/// One open generation of a followed file; see the module documentation.
#[derive(Debug)]
pub(crate) struct OpenFile {
    generation: Arc<Generation>,
    file: Arc<File>,
    /// Next byte to read; `splitter` has seen every byte before it.
    offset: u64,
    splitter: Splitter,
    /// The last bytes before `offset` (at most `TAIL_BYTES`, fewer only when fewer were read):
    /// if they change, the file was truncated and regrown past the offset between two looks,
    /// which the prefix alone cannot see once the offset is past it.
    tail: Vec<u8>,
}

/// Where live delivery of a new generation starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiveStart {
    /// The first byte delivered live.
    pub(crate) offset: u64,
    /// `offset` is inside a line whose start was not found (see [`last_line_start`]).
    pub(crate) mid_line: bool,
}

impl LiveStart {
    /// At the start of a line.
    pub(crate) fn at(offset: u64) -> Self {
        Self {
            offset,
            mid_line: false,
        }
    }
}

impl OpenFile {
    /// Starts generation `seq` on `file`, delivering live from byte `from`.
    ///
    /// # Errors
    /// Fails when the file's first bytes cannot be read.
    pub(crate) fn start(
        file: File,
        meta: &Metadata,
        seq: u64,
        from: LiveStart,
        max_line_bytes: usize,
    ) -> io::Result<Self> {
        let LiveStart {
            offset: from,
            mid_line,
        } = from;
        let file = Arc::new(file);
        let generation = Arc::new(Generation::new(seq, FileId::of(meta), file.clone(), from));
        generation.fill_prefix(&file, meta.len())?;
        Ok(Self {
            generation,
            file,
            offset: from,
            splitter: if mid_line {
                Splitter::mid_line(from, max_line_bytes)
            } else {
                Splitter::new(from, max_line_bytes)
            },
            tail: Vec::new(),
        })
    }

    /// Continues `generation`, which ended on `file` at `generation.end()`, when the file came
    /// back under the path with the same identity after an absence (renamed away and back, its
    /// directory unreadable for a while): nothing is replayed. `None` when the file no longer
    /// starts with the generation's first bytes or is shorter than what was delivered.
    pub(crate) fn resume(
        generation: Arc<Generation>,
        file: Arc<File>,
        max_line_bytes: usize,
    ) -> Option<Self> {
        let offset = generation.end();
        let open = Self {
            generation,
            file,
            offset,
            splitter: Splitter::new(offset, max_line_bytes),
            tail: Vec::new(),
        };
        let size = open.file.metadata().ok()?.len();
        if size < offset || !open.prefix_unchanged(size) {
            return None;
        }
        open.generation.resume();
        Some(open)
    }

    /// Goes on reading `file`, which generation `earlier` read up to its end, as generation
    /// `seq` (a segment: see `generation.rs`): lines written to a rotated file after the
    /// follower left it. When `earlier` ended inside a line (its unterminated last line was
    /// delivered when the file was left), the rest of that line comes out marked as cut, never
    /// as a whole line.
    pub(crate) fn segment(
        earlier: &Generation,
        file: Arc<File>,
        seq: u64,
        max_line_bytes: usize,
    ) -> Self {
        let generation = Arc::new(Generation::segment(seq, earlier, file.clone()));
        let offset = generation.start();
        let mut last = [0u8; 1];
        let mid_line = offset > 0
            && read_full_at(&file, &mut last, offset - 1).is_ok_and(|n| n == 1 && last[0] != b'\n');
        Self {
            generation,
            file,
            offset,
            splitter: if mid_line {
                Splitter::mid_line(offset, max_line_bytes)
            } else {
                Splitter::new(offset, max_line_bytes)
            },
            tail: Vec::new(),
        }
    }

    /// Ends this generation at its last complete line and goes on with the same file as
    /// generation `seq` from there (the held partial line is read again); returns the ended
    /// generation. The followed file's lines after a late segment of the rotated one.
    pub(crate) fn continued(&mut self, seq: u64) -> Arc<Generation> {
        let end = self.splitter.line_start();
        self.generation.finish(end);
        let next = Arc::new(Generation::segment(
            seq,
            &self.generation,
            self.file.clone(),
        ));
        self.offset = end;
        self.splitter = Splitter::new(end, self.splitter.max_line_bytes());
        self.tail.clear();
        std::mem::replace(&mut self.generation, next)
    }

    /// The generation this file feeds.
    pub(crate) fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// Whether this is the file `id` describes.
    pub(crate) fn is(&self, id: &FileId) -> bool {
        self.generation.id == *id
    }

    /// The event that announces this generation.
    pub(crate) fn opened(&self, notice: Option<Notice>) -> Event {
        Event::Opened {
            generation: self.generation.clone(),
            notice,
            from: self.offset,
        }
    }

    /// Reads what was appended, pushing complete lines to `events`, at most `STEP_BYTES`.
    ///
    /// The read buffer is sized to what the file holds past the offset and freed on return,
    /// so an idle follower holds no buffer.
    pub(crate) fn read(&mut self, events: &mut Vec<Event>) -> Read {
        let meta = match self.file.metadata() {
            Ok(meta) => meta,
            Err(e) => return Read::Failed(e),
        };
        // No shortcut on an unchanged (size, mtime): timestamps are coarse (a clock tick), so
        // a truncate-and-rewrite to the same size within one tick would go unnoticed. The
        // prefix check below costs one read of at most `PREFIX_BYTES`.
        if meta.len() < self.offset {
            let detail = format!("file shrank from {} to {} bytes", self.offset, meta.len());
            return Read::Truncated { meta, detail };
        }
        if !self.prefix_unchanged(meta.len()) {
            let detail = "file was rewritten from its start".to_owned();
            return Read::Truncated { meta, detail };
        }
        if !self.tail_unchanged() {
            let detail = format!(
                "file was rewritten before byte {} (truncated and regrown)",
                self.offset
            );
            return Read::Truncated { meta, detail };
        }
        if let Err(e) = self.generation.fill_prefix(&self.file, meta.len()) {
            return Read::Failed(e);
        }
        self.generation.saw(meta.len());
        let mut lines = Vec::new();
        let mut read = 0usize;
        let mut outcome = Read::AtEnd;
        // To undo this read if the file turns out to have been rewritten under it.
        let before = (self.offset, self.splitter.clone(), self.tail.clone());
        // One byte more than the file holds: a read that fills the buffer means the file grew
        // since the `fstat` (read on, a chunk at a time); one that does not, that it is at its
        // end (no further read, and no large buffer zeroed for nothing).
        let mut want = meta.len() - self.offset + 1;
        let mut buf = Vec::new();
        while want > 1 {
            buf.resize(
                usize::try_from(want)
                    .unwrap_or(CHUNK_BYTES)
                    .min(CHUNK_BYTES),
                0,
            );
            match read_full_at(&self.file, &mut buf, self.offset) {
                Ok(n) => {
                    // Cursors of these lines carry a checksum of the generation's first bytes:
                    // keep the prefix covering everything read, from the very bytes split.
                    self.generation.extend_prefix(self.offset, &buf[..n]);
                    self.splitter.push(&buf[..n], |l| lines.push(l));
                    self.offset += n as u64;
                    self.remember_tail(&buf[..n]);
                    read += n;
                    if read >= STEP_BYTES {
                        outcome = Read::More;
                        break;
                    }
                    want = if n == buf.len() {
                        CHUNK_BYTES as u64
                    } else {
                        0
                    };
                }
                // A read error is a state of the stream, not of the process; what was read so
                // far is still delivered.
                Err(e) => {
                    self.deliver(lines, events);
                    return Read::Failed(e);
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
            if let Ok(now) = self.file.metadata() {
                if now.len() < self.offset || !self.prefix_unchanged(now.len()) {
                    (self.offset, self.splitter, self.tail) = before;
                    let detail = "file was rewritten from its start".to_owned();
                    return Read::Truncated { meta: now, detail };
                }
            }
        }
        self.deliver(lines, events);
        outcome
    }

    /// After a truncation: reads the bytes this generation had not read yet from a copy of
    /// the file, if one exists (`logrotate`'s `copytruncate` copies the file, then truncates
    /// it; lines written since the last read are in the copy only). A copy is a regular file
    /// in the same directory whose name starts with the followed name (`app.log.1`,
    /// `app.log-20250101`), longer than the offset, with the same first bytes and the same
    /// bytes just before the offset. Returns whether one was read.
    pub(crate) fn read_from_copy(&mut self, path: &Path, events: &mut Vec<Event>) -> bool {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let name = name.as_encoded_bytes();
        let mut copies: Vec<(std::time::SystemTime, File)> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name();
                let n = n.as_encoded_bytes();
                n.len() > name.len() && n.starts_with(name)
            })
            .filter_map(|e| {
                let file = File::open(e.path()).ok()?;
                let meta = file.metadata().ok().filter(|m| m.is_file())?;
                let newer = meta.modified().ok()?;
                (meta.len() > self.offset).then_some((newer, file))
            })
            .collect();
        // The newest copy first: it is the one just made.
        copies.sort_by_key(|c| std::cmp::Reverse(c.0));
        let Some(copy) = copies
            .into_iter()
            .map(|(_, f)| f)
            .find(|f| self.holds_our_bytes(f))
        else {
            return false;
        };
        let mut lines = Vec::new();
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            match read_full_at(&copy, &mut buf, self.offset) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.splitter.push(&buf[..n], |l| lines.push(l));
                    self.offset += n as u64;
                }
            }
        }
        self.deliver(lines, events);
        true
    }

    /// Whether `copy` starts with this generation's first bytes and holds the bytes it read
    /// just before the offset.
    fn holds_our_bytes(&self, copy: &File) -> bool {
        let n = self.generation.prefix_len().min(PREFIX_BYTES);
        let mut head = vec![0; n];
        if !read_full_at(copy, &mut head, 0).is_ok_and(|got| got == n)
            || !self.generation.prefix_matches(&head)
        {
            return false;
        }
        if self.tail.is_empty() {
            return self.offset <= n as u64;
        }
        let mut tail = vec![0; self.tail.len()];
        read_full_at(copy, &mut tail, self.offset - self.tail.len() as u64)
            .is_ok_and(|got| got == tail.len() && tail == self.tail)
    }

    /// Ends this generation after a truncation and starts generation `seq` on the same file at
    /// byte 0; returns the event that announces it.
    pub(crate) fn restart(&mut self, seq: u64, meta: &Metadata, detail: String) -> Event {
        // Unlike a rotated file, a truncated one cannot be read to its end: the rest of a
        // partial last line is gone (or is now at the start of the file). Delivering the held
        // bytes as a line would tear it, so they are dropped and the notice says so.
        let held = self.splitter.pending_len();
        let detail = if held > 0 {
            format!("{detail}; a partial last line of {held} bytes was lost")
        } else {
            detail
        };
        self.generation.finish(self.splitter.line_start());
        // The bytes on disk are no longer the old generation's.
        self.generation.release();
        let max_line_bytes = self.splitter.max_line_bytes();
        self.generation = Arc::new(Generation::new(seq, FileId::of(meta), self.file.clone(), 0));
        self.offset = 0;
        self.splitter = Splitter::new(0, max_line_bytes);
        self.tail.clear();
        self.opened(Some(Notice {
            kind: NoticeKind::Truncated,
            detail,
        }))
    }

    /// Ends the generation for good: its unterminated last line, if any, is delivered as a
    /// line. Returns it with its file while the file still has a name (for history), or
    /// `None` after releasing a deleted one.
    pub(crate) fn finish(
        mut self,
        events: &mut Vec<Event>,
    ) -> Option<(Arc<Generation>, Arc<File>)> {
        if let Some(line) = self.splitter.finish() {
            events.push(Event::Lines {
                generation: self.generation.clone(),
                lines: vec![line],
            });
        }
        self.generation.finish(self.splitter.line_start());
        let named = self.file.metadata().is_ok_and(|m| m.nlink() > 0);
        if named {
            Some((self.generation, self.file))
        } else {
            // A deleted file has no history to offer.
            self.generation.release();
            None
        }
    }

    /// Commits `lines` to the generation and delivers them.
    fn deliver(&self, lines: Vec<RawLine>, events: &mut Vec<Event>) {
        if !lines.is_empty() {
            self.generation.advance(self.splitter.line_start());
            events.push(Event::Lines {
                generation: self.generation.clone(),
                lines,
            });
        }
    }

    /// Keeps the last `TAIL_BYTES` bytes before the offset, after `read` was read up to it.
    fn remember_tail(&mut self, read: &[u8]) {
        let keep = read.len().min(TAIL_BYTES);
        let old = (TAIL_BYTES - keep).min(self.tail.len());
        self.tail.drain(..self.tail.len() - old);
        self.tail.extend_from_slice(&read[read.len() - keep..]);
    }

    /// Whether the bytes just before the offset are still those read there. Only checked past
    /// the prefix, which covers the bytes before it.
    fn tail_unchanged(&self) -> bool {
        if self.offset <= PREFIX_BYTES as u64 || self.tail.is_empty() {
            return true;
        }
        let mut now = [0u8; TAIL_BYTES];
        let now = &mut now[..self.tail.len()];
        match read_full_at(&self.file, now, self.offset - self.tail.len() as u64) {
            Ok(got) => got == now.len() && *now == *self.tail,
            // Unreadable now: let the read that follows report it.
            Err(_) => true,
        }
    }

    /// Whether the file's first bytes are still those the generation started with.
    fn prefix_unchanged(&self, size: u64) -> bool {
        let n = self.generation.prefix_len().min(PREFIX_BYTES);
        if n == 0 || size < n as u64 {
            return size >= n as u64;
        }
        let mut head = vec![0; n];
        match read_full_at(&self.file, &mut head, 0) {
            Ok(got) => self.generation.prefix_matches(&head[..got]) && got == n,
            // Unreadable now: let the read that follows report it.
            Err(_) => true,
        }
    }
}

/// Offset where the file's last line starts (just past its last `\n`, or 0).
///
/// Looks back at most 64 MiB. A longer unterminated last line is not looked into further:
/// reading starts at the end, inside that line, and the splitter is told so (its end comes
/// out marked as cut, never as a whole line).
///
/// # Errors
/// Fails when the file cannot be read.
pub(crate) fn last_line_start(file: &File, size: u64) -> io::Result<LiveStart> {
    last_line_start_within(file, size, LOOK_BACK)
}

/// How far back the first look searches for the start of the last line.
const LOOK_BACK: u64 = 64 << 20;

fn last_line_start_within(file: &File, size: u64, look_back: u64) -> io::Result<LiveStart> {
    let mut buf = vec![0u8; 64 << 10];
    let mut end = size;
    while end > 0 && size - end < look_back {
        let start = end.saturating_sub(buf.len() as u64);
        let len = usize::try_from(end - start).unwrap_or(buf.len());
        let n = read_full_at(file, &mut buf[..len], start)?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(LiveStart::at(start + i as u64 + 1));
        }
        end = start;
    }
    Ok(if end == 0 {
        LiveStart::at(0)
    } else {
        LiveStart {
            offset: size,
            mid_line: true,
        }
    })
}
