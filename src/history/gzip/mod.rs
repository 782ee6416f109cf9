//! Random access into a gzip file by checkpoints of the decompressor.
//!
//! A rotated `.gz` is history that readers page backwards through, 64 KiB at a time. Decoding
//! from the start for every read would cost the whole file per page, so the first pass over a
//! file (a page that needs its length, or a search) keeps a *checkpoint* every [`SPAN`] bytes of
//! output: a copy of the whole decoder (miniz_oxide's `DecompressorOxide`, which is `Clone`,
//! plus its 32 KiB window and the compressed offset). A read at offset `x` restarts from the
//! last checkpoint at or before `x`, so it decodes at most one span it does not return.
//! This is zlib's `zran` idea without `inflatePrime`: cloning the state keeps the bit buffer,
//! so a checkpoint may lie anywhere between two calls, not only at a block boundary, and all of
//! it is safe Rust.
//!
//! Concatenated members (RFC 1952 allows them; `cat a.gz b.gz`) continue one output.
//!
//! Invariant: no text is served before it is verified. Every member's CRC32 and length are
//! checked against its trailer on the first full pass (`decoder.rs`), and reads answer only
//! from a fully indexed file, up to [`GzFile::len`]: the text of the members that verified,
//! plus the correctly decoded text of a file that merely ends early. A corrupt member ends the
//! readable text at its start, and [`GzFile::damage`] says why; never a panic, never wrong
//! lines.
//!
//! Memory: checkpoints cost [`decoder::DECODER_BYTES`] (~44 KiB) each. One file keeps at most
//! [`MAX_POINTS`], and all files together at most [`CHECKPOINT_BUDGET`] bytes. At either limit
//! a file *thins* its index (drops every other checkpoint, doubling its span), so a read then
//! decodes up to twice as much it does not return; memory stays bounded whatever the number
//! and size of the files.

mod decoder;

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

pub(crate) use decoder::is_gzip;
use decoder::{DECODER_BYTES, Decoder, Input, Step};

/// Output bytes between checkpoints (before any thinning). With ~44 KiB a checkpoint, this is
/// ~11 MiB of memory per GiB of decompressed text, and a read decodes at most 4 MiB it does
/// not need (a few milliseconds).
pub(crate) const SPAN: u64 = 4 << 20;

/// Most checkpoints one file keeps (~11 MiB); a longer file's checkpoints are spread wider.
pub(crate) const MAX_POINTS: usize = 256;

/// Most bytes all files' checkpoints take together (about 1,500 checkpoints: 6 GiB of text
/// at the full density).
pub(crate) const CHECKPOINT_BUDGET: usize = 64 << 20;

/// Bytes held in checkpoints by every index in the process.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Bytes all gzip indexes hold in checkpoints now.
pub(crate) fn checkpoint_bytes() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// A gzip file read at decompressed offsets.
#[derive(Debug)]
pub(crate) struct GzFile {
    file: File,
    index: Mutex<Index>,
}

/// A piece of a decoding pass, for [`GzFile::for_each_chunk`].
pub(crate) enum Piece<'a> {
    /// Decoded text at an output offset, with the compressed bytes consumed so far.
    Text {
        /// Output offset of the first byte.
        offset: u64,
        /// Compressed bytes consumed so far.
        input: u64,
        /// The text.
        bytes: &'a [u8],
    },
    /// The text before this output offset is verified (a member's trailer matched).
    Verified(u64),
}

/// Checkpoints at increasing output offsets; the first is at output 0.
#[derive(Debug)]
struct Points {
    list: Vec<Decoder>,
    /// Output bytes between two checkpoints, at least.
    span: u64,
}

impl Points {
    fn new() -> Self {
        HELD.fetch_add(DECODER_BYTES, Ordering::Relaxed);
        Self {
            list: vec![Decoder::new()],
            span: SPAN,
        }
    }

    /// Keeps a copy of `d` when it lies a span past the last checkpoint, thinning the list
    /// first when this file or all files are at their limit.
    fn offer(&mut self, d: &Decoder) {
        let last = |p: &Self| p.list.last().map_or(0, |l| l.out);
        if d.out - last(self) < self.span {
            return;
        }
        while self.list.len() >= MAX_POINTS
            || HELD.load(Ordering::Relaxed) + DECODER_BYTES > CHECKPOINT_BUDGET
        {
            if self.list.len() <= 1 {
                return; // the other files hold the budget: this one reads from its start
            }
            self.thin();
            if d.out - last(self) < self.span {
                return;
            }
        }
        HELD.fetch_add(DECODER_BYTES, Ordering::Relaxed);
        self.list.push(d.clone());
    }

    /// Drops every other checkpoint (never the first) and doubles the span.
    fn thin(&mut self) {
        let before = self.list.len();
        let mut i = 0;
        self.list.retain(|_| {
            i += 1;
            i % 2 == 1
        });
        HELD.fetch_sub(
            (before - self.list.len()) * DECODER_BYTES,
            Ordering::Relaxed,
        );
        self.span *= 2;
    }
}

impl Drop for Points {
    fn drop(&mut self) {
        HELD.fetch_sub(self.list.len() * DECODER_BYTES, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Index {
    points: Points,
    /// Where indexing stopped; `None` once the whole file is indexed.
    front: Option<Decoder>,
    /// The length of the trusted text, once the whole file is indexed.
    len: Option<u64>,
    /// Why decoding stopped early, if it did.
    damage: Option<String>,
}

impl GzFile {
    /// Reads `file` as gzip; nothing is decoded yet.
    pub(crate) fn new(file: File) -> Self {
        Self {
            file,
            index: Mutex::new(Index {
                points: Points::new(),
                front: Some(Decoder::new()),
                len: None,
                damage: None,
            }),
        }
    }

    /// The length of the trusted text (up to any damage). The first call decodes and
    /// verifies the whole file once and keeps its checkpoints.
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn len(&self) -> io::Result<u64> {
        let mut index = self.lock();
        index.complete(&self.file)?;
        Ok(index.len.unwrap_or(0))
    }

    /// The trusted length, if the file has been decoded whole already.
    pub(crate) fn known_len(&self) -> Option<u64> {
        self.lock().len
    }

    /// Why the file could not be decoded to its end, once that is known.
    pub(crate) fn damage(&self) -> Option<String> {
        self.lock().damage.clone()
    }

    /// Fills `buf` from decompressed offset `offset`; returns the bytes read (fewer only at
    /// the end of the trusted text). The first read verifies the whole file (see [`len`]).
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    ///
    /// [`len`]: Self::len
    pub(crate) fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let (mut decoder, len) = {
            let mut index = self.lock();
            index.complete(&self.file)?;
            let list = &index.points.list;
            let i = list.partition_point(|p| p.out <= offset);
            (list[i.saturating_sub(1)].clone(), index.len.unwrap_or(0))
        };
        let want = usize::try_from(len.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let buf = &mut buf[..want];
        let mut input = Input::new(&self.file);
        let mut done = 0;
        while done < buf.len() {
            let range = match decoder.step(&mut input)? {
                Step::Data(range) => range,
                Step::Verified(_) => continue,
                Step::End | Step::Damaged(..) => break,
            };
            let chunk = &decoder.window[range];
            let chunk_start = decoder.out - chunk.len() as u64;
            let pos = offset + done as u64;
            if decoder.out <= pos {
                continue;
            }
            let skip = usize::try_from(pos.saturating_sub(chunk_start)).unwrap_or(usize::MAX);
            let take = (chunk.len() - skip).min(buf.len() - done);
            buf[done..done + take].copy_from_slice(&chunk[skip..skip + take]);
            done += take;
        }
        Ok(done)
    }

    /// Decodes the file from the start, calling `f` with each piece of text (and each
    /// verification) until `f` says stop; returns the trusted length when the pass reached
    /// the end (or the damage). Text is handed out before its member is verified: a caller
    /// that serves it waits for a [`Piece::Verified`] past it, or for the returned length.
    /// A first whole pass also builds (and verifies) the index.
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn for_each_chunk(
        &self,
        mut f: impl FnMut(Piece<'_>) -> ControlFlow<()>,
    ) -> io::Result<Option<u64>> {
        let indexed = self.known_len().is_some();
        let mut decoder = Decoder::new();
        let mut input = Input::new(&self.file);
        let mut points = (!indexed).then(Points::new);
        let result = loop {
            let piece = match decoder.step(&mut input)? {
                Step::Data(range) => Piece::Text {
                    offset: decoder.out - range.len() as u64,
                    input: decoder.input,
                    bytes: &decoder.window[range],
                },
                Step::Verified(at) => Piece::Verified(at),
                Step::End => break Some((decoder.out, None)),
                Step::Damaged(why, trusted) => break Some((trusted, Some(why))),
            };
            if f(piece).is_break() {
                break None;
            }
            if let Some(points) = points.as_mut() {
                points.offer(&decoder);
            }
        };
        let Some((len, damage)) = result else {
            return Ok(None);
        };
        let mut index = self.lock();
        if index.len.is_none() {
            if let Some(points) = points {
                // A whole pass: its checkpoints replace the partial index.
                index.points = points;
                index.front = None;
                index.len = Some(len);
                index.damage = damage;
            }
        }
        Ok(Some(len))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Index {
    /// Decodes on from the front to the end of the file, verifying it.
    fn complete(&mut self, file: &File) -> io::Result<()> {
        let Some(front) = self.front.as_mut() else {
            return Ok(());
        };
        let mut input = Input::new(file);
        loop {
            match front.step(&mut input)? {
                Step::Data(_) | Step::Verified(_) => self.points.offer(front),
                Step::End => {
                    self.len = Some(front.out);
                    break;
                }
                Step::Damaged(why, trusted) => {
                    self.len = Some(trusted);
                    self.damage = Some(why);
                    break;
                }
            }
        }
        self.front = None;
        Ok(())
    }
}

/// The first `n` decompressed bytes of a gzip file, without keeping an index. They are not
/// verified: they name the file (its identity), they are never served as text.
///
/// # Errors
/// Fails when the file cannot be read.
pub(crate) fn head(file: &File, n: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let mut decoder = Decoder::new();
    let mut input = Input::new(file);
    while out.len() < n {
        let range = match decoder.step(&mut input)? {
            Step::Data(range) => range,
            Step::Verified(_) => continue,
            Step::End | Step::Damaged(..) => break,
        };
        let chunk = &decoder.window[range];
        let take = chunk.len().min(n - out.len());
        out.extend_from_slice(&chunk[..take]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;

    use super::*;

    fn gz_file(parts: &[&[u8]], level: u32) -> File {
        let mut f = tempfile::tempfile().expect("tempfile");
        for part in parts {
            let mut enc = GzEncoder::new(Vec::new(), Compression::new(level));
            enc.write_all(part).expect("compress");
            f.write_all(&enc.finish().expect("finish")).expect("write");
        }
        f
    }

    fn text(lines: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut x = seed;
        for i in 0..lines {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            writeln!(out, "{i} line {x:x} {}", "word ".repeat((x % 23) as usize)).expect("write");
        }
        out
    }

    #[test]
    fn reads_anywhere_across_checkpoints_and_members() {
        let a = text(200_000, 1);
        let b = text(50_000, 2);
        let gz = GzFile::new(gz_file(&[&a, &b], 6));
        let whole = [a.clone(), b].concat();
        assert_eq!(gz.len().expect("len"), whole.len() as u64);
        assert!(
            whole.len() as u64 > 2 * SPAN,
            "the test must cross checkpoints"
        );
        assert!(gz.lock().points.list.len() >= 3);
        for offset in [0, 1, SPAN - 3, SPAN, 2 * SPAN + 17, a.len() as u64 - 5] {
            let mut buf = vec![0u8; 100_000];
            let n = gz.read_full_at(&mut buf, offset).expect("read");
            let o = usize::try_from(offset).expect("small");
            let want = &whole[o..(o + buf.len()).min(whole.len())];
            assert_eq!(&buf[..n], want, "at {offset}");
        }
        let mut buf = vec![0u8; 10];
        assert_eq!(
            gz.read_full_at(&mut buf, whole.len() as u64).expect("read"),
            0
        );
        assert_eq!(gz.damage(), None);
        assert_eq!(head(&gz.file, 20).expect("head"), whole[..20]);
    }

    #[test]
    fn a_truncated_file_reads_up_to_the_damage() {
        let a = text(20_000, 3);
        let mut f = gz_file(&[&a], 6);
        let len = f.metadata().expect("meta").len();
        f.set_len(len / 2).expect("truncate");
        f.flush().expect("flush");
        let gz = GzFile::new(f);
        let n = gz.len().expect("len");
        assert!(n > 0 && n < a.len() as u64, "{n}");
        let mut buf = vec![0u8; usize::try_from(n).expect("small")];
        assert_eq!(gz.read_full_at(&mut buf, 0).expect("read"), buf.len());
        assert_eq!(buf, a[..buf.len()]);
        assert!(gz.damage().is_some());
    }

    #[test]
    fn a_member_whose_crc_does_not_match_is_not_served() {
        let a = text(20_000, 4);
        let b = text(20_000, 5);
        let f = gz_file(&[&a, &b], 6);
        // The second member's stored CRC32 is the file's last 8 bytes but 4.
        let len = f.metadata().expect("meta").len();
        let mut crc = [0u8; 1];
        f.read_exact_at(&mut crc, len - 8).expect("read");
        f.write_all_at(&[crc[0] ^ 1], len - 8).expect("write");
        let gz = GzFile::new(f);
        assert_eq!(
            gz.len().expect("len"),
            a.len() as u64,
            "only the first member"
        );
        let damage = gz.damage().expect("damage");
        assert!(damage.contains("CRC32"), "{damage}");
        let mut buf = vec![0u8; 100];
        assert_eq!(gz.read_full_at(&mut buf, a.len() as u64).expect("read"), 0);
        // A search's pass says the same.
        let mut verified = Vec::new();
        let end = gz
            .for_each_chunk(|p| {
                if let Piece::Verified(at) = p {
                    verified.push(at);
                }
                ControlFlow::Continue(())
            })
            .expect("pass");
        assert_eq!(end, Some(a.len() as u64));
        assert_eq!(verified, vec![a.len() as u64]);
    }

    #[test]
    fn a_flipped_byte_in_stored_text_is_caught_by_the_crc() {
        // Level 0 stores the text as it is: a flip changes the text and nothing else.
        let a = text(2_000, 6);
        let f = gz_file(&[&a], 0);
        let at = a.iter().position(|&b| b == b'w').expect("a w") as u64;
        let mut probe = vec![0u8; 4096];
        f.read_exact_at(&mut probe, 0).expect("read");
        let stored = memchr::memmem::find(&probe, &a[..64]).expect("stored text") as u64;
        f.write_all_at(b"W", stored + at).expect("write");
        let gz = GzFile::new(f);
        assert_eq!(gz.len().expect("len"), 0);
        assert!(gz.damage().is_some_and(|d| d.contains("CRC32")));
    }

    #[test]
    fn checkpoints_stay_within_their_limits() {
        let a = text(400_000, 7); // ~ 40 MiB of text: 10 spans
        let gz = GzFile::new(gz_file(&[&a], 1));
        let mut points = Points::new();
        let mut d = Decoder::new();
        let mut input = Input::new(&gz.file);
        let before = checkpoint_bytes();
        // A file's own cap: offer a checkpoint every step, with a span of one byte.
        points.span = 1;
        for _ in 0..(3 * MAX_POINTS) {
            if !matches!(d.step(&mut input).expect("step"), Step::Data(_)) {
                break;
            }
            points.offer(&d);
        }
        assert!(points.list.len() <= MAX_POINTS);
        assert!(points.span > 1, "thinned");
        let outs: Vec<u64> = points.list.iter().map(|p| p.out).collect();
        assert!(outs.windows(2).all(|w| w[0] < w[1]) && outs[0] == 0);
        drop(points);
        // Dropping an index gives its bytes back (other tests run at the same time, so
        // only what this one held is compared).
        assert!(checkpoint_bytes() <= before + DECODER_BYTES * MAX_POINTS);
        assert_eq!(gz.len().expect("len"), a.len() as u64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_reads_equal_the_text(
            lines in 0usize..3000,
            seed in any::<u64>(),
            level in 0u32..10,
            corrupt in proptest::option::of(any::<prop::sample::Index>()),
            reads in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..70_000), 1..8),
        ) {
            let a = text(lines, seed);
            let f = gz_file(&[&a], level);
            if let Some(at) = corrupt {
                let len = f.metadata().expect("meta").len();
                let at = at.index(usize::try_from(len).expect("small")) as u64;
                f.write_all_at(&[0x5a], at).expect("write");
            }
            let gz = GzFile::new(f);
            let n = gz.len().expect("len");
            if corrupt.is_none() {
                prop_assert_eq!(n, a.len() as u64);
            }
            // Whatever is served is the text: a flipped byte either leaves the text intact
            // or ends the trusted text (at the member's start, when the CRC catches it).
            // A flip that makes the data look cut short reads as truncation (its text up to
            // there is decoded right unless the flip hit a stored block's length).
            let as_truncated = gz.damage().is_some_and(|d| d.contains("ends early"));
            prop_assert!(n <= a.len() as u64 || as_truncated);
            for (at, len) in reads {
                let offset = at.index(a.len() + 1) as u64;
                let mut buf = vec![0u8; len];
                let got = gz.read_full_at(&mut buf, offset).expect("read");
                prop_assert!(offset + got as u64 <= n.max(offset));
                if !as_truncated {
                    let o = usize::try_from(offset).expect("small");
                    let want = &a[o..(o + got).min(a.len())];
                    prop_assert_eq!(&buf[..got], want);
                }
            }
        }
    }
}
