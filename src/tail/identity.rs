//! Telling one file generation from another.
//!
//! A *generation* is one life of the bytes behind a path: the file created by the writer,
//! up to its rotation, deletion or truncation. (device, inode) alone cannot tell two
//! generations apart, because the kernel reuses an inode number at once after a delete; so a
//! [`FileId`] adds the birth time where `statx` reports one, and cursors add a checksum of the
//! file's first bytes (see [`prefix_check`]), which also catches a truncate-and-rewrite that
//! keeps the inode.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::UNIX_EPOCH;

/// How many leading bytes of a generation its checksum covers.
pub(crate) const PREFIX_BYTES: usize = 1024;

/// The identity of an open file, as far as metadata can tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Birth time in nanoseconds since the epoch, or 0 where the file system has none.
    pub birth_ns: u64,
}

impl FileId {
    /// The identity of the file `meta` describes.
    pub fn of(meta: &Metadata) -> Self {
        let birth_ns = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            birth_ns,
        }
    }

    /// A 64-bit digest of the identity, as carried by cursors.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::new();
        for v in [self.dev, self.ino, self.birth_ns] {
            h.write(&v.to_le_bytes());
        }
        h.finish()
    }
}

/// Checksum of the first `min(pos, PREFIX_BYTES)` bytes of a generation, given its prefix.
///
/// Returns `None` when `prefix` is too short to cover `pos`.
pub(crate) fn prefix_check(prefix: &[u8], pos: u64) -> Option<u32> {
    let n = usize::try_from(pos).unwrap_or(usize::MAX).min(PREFIX_BYTES);
    let bytes = prefix.get(..n)?;
    let mut h = Fnv::new();
    h.write(bytes);
    // Folding keeps all 64 bits' worth of mixing in the 32 the cursor carries.
    let v = h.finish();
    Some((v ^ (v >> 32)) as u32)
}

/// FNV-1a, 64 bit: stable across builds and Rust versions, which cursors need to survive a
/// restart or an upgrade (std's `DefaultHasher` promises neither).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_covers_at_most_the_prefix_and_needs_enough_bytes() {
        let prefix = vec![7u8; PREFIX_BYTES];
        assert_eq!(
            prefix_check(&prefix, 5_000),
            prefix_check(&prefix, PREFIX_BYTES as u64)
        );
        assert_ne!(prefix_check(&prefix, 3), prefix_check(&prefix, 4));
        assert_eq!(prefix_check(b"ab", 3), None);
        assert!(prefix_check(b"", 0).is_some());
    }

    #[test]
    fn digest_differs_when_any_part_differs() {
        let a = FileId {
            dev: 1,
            ino: 2,
            birth_ns: 3,
        };
        assert_ne!(a.digest(), FileId { birth_ns: 4, ..a }.digest());
        assert_ne!(a.digest(), FileId { ino: 5, ..a }.digest());
    }
}
