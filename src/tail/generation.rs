//! A file generation as both the follower and history readers see it.
//!
//! The follower creates a [`Generation`] when it opens a file (or sees one truncated) and
//! advances its committed end as it delivers lines; readers use it to serve history from disk.
//! Invariant: bytes `[start(), end())` of an open generation are complete, delivered lines (plus,
//! once `finished()`, the final unterminated line), so a reader never sees a line the follower has
//! not delivered, and the two agree on every line boundary.
//!
//! Most generations start at byte 0 of their file. A *segment* ([`Generation::segment`]) goes on
//! with a file that an earlier generation of the stream read up to some byte: a rotated file's
//! late lines, or the followed file again after them. Its bytes before `start()` belong to the
//! earlier generations, so history never reads them as its own.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::identity::{FileId, PREFIX_BYTES, prefix_check};

/// One generation of a followed file.
#[derive(Debug)]
pub struct Generation {
    /// Position of this generation in its stream (0, 1, 2…); orders generations.
    pub seq: u64,
    /// Identity of the file when it was opened.
    pub id: FileId,
    /// `id.digest()`, as carried by cursors.
    pub ident: u64,
    /// The file, while history can still be read from it. Dropped when the bytes on disk no
    /// longer belong to this generation (truncation) or the file is released (rotated away).
    file: Mutex<Option<Arc<File>>>,
    /// The generation's first bytes, up to `PREFIX_BYTES`; only ever grows.
    prefix: Mutex<Vec<u8>>,
    /// The checksum of the whole prefix, once it holds `PREFIX_BYTES` (it never changes then).
    full_check: OnceLock<u32>,
    /// The first byte that belongs to it: 0, or where the generation it continues ended.
    start: u64,
    /// End of the delivered bytes; only ever grows.
    end: AtomicU64,
    /// The file's size at the follower's last look: the bytes up to it are there and will be
    /// delivered (unless the file is truncated first). Only ever grows.
    seen: AtomicU64,
    /// No more bytes will be delivered from this generation.
    finished: AtomicBool,
}

impl Generation {
    /// A generation of `file`, whose delivered bytes end at `end`.
    pub fn new(seq: u64, id: FileId, file: Arc<File>, end: u64) -> Self {
        Self {
            seq,
            id,
            ident: id.digest(),
            file: Mutex::new(Some(file)),
            prefix: Mutex::new(Vec::new()),
            full_check: OnceLock::new(),
            start: 0,
            end: AtomicU64::new(end),
            seen: AtomicU64::new(end),
            finished: AtomicBool::new(false),
        }
    }

    /// Generation `seq`, the same file as `earlier` from where `earlier` ended on: its
    /// identity and first bytes, so cursors name the file alike.
    pub fn segment(seq: u64, earlier: &Self, file: Arc<File>) -> Self {
        let start = earlier.end();
        let full_check = OnceLock::new();
        if let Some(check) = earlier.full_check.get() {
            let _ = full_check.set(*check);
        }
        Self {
            seq,
            id: earlier.id,
            ident: earlier.ident,
            file: Mutex::new(Some(file)),
            prefix: Mutex::new(
                earlier
                    .prefix
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            full_check,
            start,
            end: AtomicU64::new(start),
            seen: AtomicU64::new(start),
            finished: AtomicBool::new(false),
        }
    }

    /// The first byte of the file that belongs to this generation (see the module docs).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The file to read history from, if it is still held.
    pub fn file(&self) -> Option<Arc<File>> {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops serving history from disk for this generation and closes its file (once no
    /// reader holds it).
    pub fn release(&self) {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// End of the delivered bytes.
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// Whether the generation has ended (its last line may lack a `\n`).
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The file's size at the follower's last look (at least `end()`).
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Acquire).max(self.end())
    }

    /// The follower looked at the file and found it `len` bytes long.
    pub(crate) fn saw(&self, len: u64) {
        self.seen.fetch_max(len, Ordering::AcqRel);
    }

    pub(crate) fn advance(&self, end: u64) {
        self.end.fetch_max(end, Ordering::AcqRel);
    }

    /// Undoes [`Generation::finish`]: the same file came back and is read on from `end()`.
    pub(crate) fn resume(&self) {
        self.finished.store(false, Ordering::Release);
    }

    pub(crate) fn finish(&self, end: u64) {
        self.advance(end);
        self.finished.store(true, Ordering::Release);
    }

    /// Number of prefix bytes known.
    pub fn prefix_len(&self) -> usize {
        self.prefix
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Checksum for a cursor at `point`, or `None` if the prefix does not cover it yet.
    pub fn check(&self, point: u64) -> Option<u32> {
        // Past the prefix every point has the same checksum; hashing 1 KiB per line would
        // cost more than everything else the follower does for it.
        let full = point >= PREFIX_BYTES as u64;
        if let Some(check) = self.full_check.get().filter(|_| full) {
            return Some(*check);
        }
        let prefix = self.prefix.lock().unwrap_or_else(PoisonError::into_inner);
        let check = prefix_check(&prefix, point)?;
        if full {
            let _ = self.full_check.set(check);
        }
        Some(check)
    }

    /// Whether the generation's prefix has the same first bytes as `other`, over the shorter.
    pub(crate) fn prefix_matches(&self, other: &[u8]) -> bool {
        let prefix = self.prefix.lock().unwrap_or_else(PoisonError::into_inner);
        let n = prefix.len().min(other.len());
        prefix[..n] == other[..n]
    }

    /// Adds bytes read at `offset` to the prefix where they continue it (it may already hold
    /// some of them), up to `PREFIX_BYTES`.
    pub(crate) fn extend_prefix(&self, offset: u64, bytes: &[u8]) {
        let mut prefix = self.prefix.lock().unwrap_or_else(PoisonError::into_inner);
        let have = prefix.len() as u64;
        if offset <= have && have < offset + bytes.len() as u64 && prefix.len() < PREFIX_BYTES {
            let skip = usize::try_from(have - offset).unwrap_or(bytes.len());
            let take = (bytes.len() - skip).min(PREFIX_BYTES - prefix.len());
            prefix.extend_from_slice(&bytes[skip..skip + take]);
        }
    }

    /// Reads more of the file's first bytes into the prefix, up to `limit` bytes of the file.
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn fill_prefix(&self, file: &File, limit: u64) -> std::io::Result<()> {
        let mut prefix = self.prefix.lock().unwrap_or_else(PoisonError::into_inner);
        let want = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(PREFIX_BYTES);
        if prefix.len() >= want {
            return Ok(());
        }
        let have = prefix.len();
        prefix.resize(want, 0);
        let n = read_full_at(file, &mut prefix[have..], have as u64)?;
        prefix.truncate(have + n);
        Ok(())
    }
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns the bytes read.
///
/// # Errors
/// Fails when a read fails for another reason than an interruption.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
