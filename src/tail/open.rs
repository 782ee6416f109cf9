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
use std::sync::Arc;

use super::event::{Event, Notice, NoticeKind};
use super::generation::{Generation, read_full_at};
use super::identity::{FileId, PREFIX_BYTES};
use super::lines::{RawLine, Splitter};

/// Most bytes read in one step, so that a step stays short and its events stay small.
pub(crate) const STEP_BYTES: usize = 4 << 20;
/// Size of one read.
const CHUNK_BYTES: usize = 256 << 10;

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
        from: u64,
        max_line_bytes: usize,
    ) -> io::Result<Self> {
        let file = Arc::new(file);
        let generation = Arc::new(Generation::new(seq, FileId::of(meta), file.clone(), from));
        generation.fill_prefix(&file, meta.len())?;
        Ok(Self {
            generation,
            file,
            offset: from,
            splitter: Splitter::new(from, max_line_bytes),
        })
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
    pub(crate) fn read(&mut self, buf: &mut Vec<u8>, events: &mut Vec<Event>) -> Read {
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
        if let Err(e) = self.generation.fill_prefix(&self.file, meta.len()) {
            return Read::Failed(e);
        }
        let mut lines = Vec::new();
        let mut read = 0usize;
        let mut outcome = Read::AtEnd;
        // To undo this read if the file turns out to have been rewritten under it.
        let before = (self.offset, self.splitter.clone());
        buf.resize(CHUNK_BYTES, 0);
        loop {
            match read_full_at(&self.file, buf, self.offset) {
                Ok(0) => break,
                Ok(n) => {
                    // Cursors of these lines carry a checksum of the generation's first bytes:
                    // keep the prefix covering everything read, from the very bytes split.
                    self.generation.extend_prefix(self.offset, &buf[..n]);
                    self.splitter.push(&buf[..n], |l| lines.push(l));
                    self.offset += n as u64;
                    read += n;
                    if read >= STEP_BYTES {
                        outcome = Read::More;
                        break;
                    }
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
                    (self.offset, self.splitter) = before;
                    let detail = "file was rewritten from its start".to_owned();
                    return Read::Truncated { meta: now, detail };
                }
            }
        }
        self.deliver(lines, events);
        outcome
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
/// Looks back at most 64 MiB; a longer unterminated last line is skipped (reading starts at the
/// end), since it would be cut to `max_line_bytes` anyway.
///
/// # Errors
/// Fails when the file cannot be read.
pub(crate) fn last_line_start(file: &File, size: u64) -> io::Result<u64> {
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
