//! One rotated file as history: its bytes (plain, or decompressed at any offset) and the
//! generation that names it in cursors.
//!
//! Identity is content: a rotated file's cursors carry a digest of its first KiB of
//! *decompressed* text instead of an inode, so `app.log.1` renamed `app.log.2`, then
//! compressed to `app.log.2.gz` (a new inode), is still the same history and every cursor into
//! it resolves. The text of a rotated file never changes (rotation moves and compresses it;
//! nothing appends to it), which is what makes this sound.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::SystemTime;

use super::gzip::{self, GzFile};
use crate::stream::disk::ReadAt;
use crate::tail::identity::PREFIX_BYTES;
use crate::tail::{FileId, Generation};

/// The sequence number that marks a cursor into a rotated file (with `life` 0); live
/// generations count up from 0 and never reach it.
pub(crate) const MEMBER_SEQ: u64 = u64::MAX;

/// A rotated file, opened.
#[derive(Debug)]
pub(crate) struct Member {
    source: Source,
    /// Names the member in cursors: `ident` is the content digest, `seq` is [`MEMBER_SEQ`].
    pub generation: Arc<Generation>,
    /// The decompressed first bytes (up to 1 KiB).
    pub head: Vec<u8>,
    /// What the file was when opened: a changed file is opened again.
    pub stamp: Stamp,
}

#[derive(Debug)]
enum Source {
    Plain(File),
    Gzip(GzFile),
}

/// (device, inode, size, modification time): when any changes, the member is read anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: Option<SystemTime>,
}

impl Stamp {
    pub(crate) fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.modified().ok(),
        }
    }
}

impl Member {
    /// Reads what identifies `file` (its first decompressed KiB).
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn open(file: File, meta: &Metadata) -> io::Result<Self> {
        let mut magic = [0u8; 3];
        let n = crate::tail::generation::read_full_at(&file, &mut magic, 0)?;
        let (source, head) = if gzip::is_gzip(&magic[..n]) {
            let head = gzip::head(&file, PREFIX_BYTES)?;
            (Source::Gzip(GzFile::new(file.try_clone()?)), head)
        } else {
            let mut head = vec![0u8; PREFIX_BYTES];
            let n = crate::tail::generation::read_full_at(&file, &mut head, 0)?;
            head.truncate(n);
            (Source::Plain(file.try_clone()?), head)
        };
        let mut generation = Generation::new(MEMBER_SEQ, FileId::of(meta), Arc::new(file), 0);
        generation.ident = content_digest(&head);
        generation.extend_prefix(0, &head);
        Ok(Self {
            source,
            generation: Arc::new(generation),
            head,
            stamp: Stamp::of(meta),
        })
    }

    /// Whether it is stored compressed.
    pub(crate) fn compressed(&self) -> bool {
        matches!(self.source, Source::Gzip(_))
    }

    /// The length of its text (decompressing a `.gz` whole, once, the first time).
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn len(&self) -> io::Result<u64> {
        match &self.source {
            Source::Plain(f) => f.metadata().map(|m| m.len()),
            Source::Gzip(g) => g.len(),
        }
    }

    /// Bytes on disk (compressed for a `.gz`), for progress.
    pub(crate) fn disk_len(&self) -> u64 {
        self.stamp.size
    }

    /// The gzip reader, for a search that decodes the file in one pass.
    pub(crate) fn gzip(&self) -> Option<&GzFile> {
        match &self.source {
            Source::Gzip(g) => Some(g),
            Source::Plain(_) => None,
        }
    }

    /// Why a `.gz` could not be decoded to its end, once known.
    pub(crate) fn damage(&self) -> Option<String> {
        match &self.source {
            Source::Plain(_) => None,
            Source::Gzip(g) => g.damage(),
        }
    }
}

impl ReadAt for Member {
    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match &self.source {
            Source::Plain(f) => crate::tail::generation::read_full_at(f, buf, offset),
            Source::Gzip(g) => g.read_full_at(buf, offset),
        }
    }
}

/// FNV-1a over `head`, tagged so that it is never an inode digest by design.
fn content_digest(head: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ 0x6368_6169_6e00; // "chain"
    for &b in head {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_plain_file_and_its_gzip_are_the_same_member() {
        let text: Vec<u8> = (0..5000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut plain = tempfile::tempfile().expect("tempfile");
        plain.write_all(&text).expect("write");
        let mut gz = tempfile::tempfile().expect("tempfile");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&text).expect("compress");
        gz.write_all(&enc.finish().expect("finish")).expect("write");
        let a = Member::open(
            plain.try_clone().expect("dup"),
            &plain.metadata().expect("meta"),
        )
        .expect("open");
        let b = Member::open(gz.try_clone().expect("dup"), &gz.metadata().expect("meta"))
            .expect("open");
        assert!(!a.compressed() && b.compressed());
        assert_eq!(a.generation.ident, b.generation.ident);
        assert_eq!(a.generation.check(3000), b.generation.check(3000));
        assert_eq!(a.len().expect("len"), b.len().expect("len"));
        let (mut x, mut y) = (vec![0u8; 777], vec![0u8; 777]);
        a.read_full_at(&mut x, 20_000).expect("read");
        b.read_full_at(&mut y, 20_000).expect("read");
        assert_eq!(x, y);
    }
}
