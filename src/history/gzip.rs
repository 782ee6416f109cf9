//! Random access into a gzip file by checkpoints of the decompressor.
//!
//! A rotated `.gz` is history that readers page backwards through, 64 KiB at a time. Decoding
//! from the start for every read would cost the whole file per page, so the first pass over a
//! file (a page that needs its length, or a search) keeps a *checkpoint* every [`SPAN`] bytes of
//! output: a copy of the whole decoder (miniz_oxide's `DecompressorOxide`, which is `Clone`,
//! plus its 32 KiB window and the compressed offset). A read at offset `x` restarts from the
//! last checkpoint at or before `x`, so it decodes at most `SPAN` bytes it does not return.
//! This is zlib's `zran` idea without `inflatePrime`: cloning the state keeps the bit buffer,
//! so a checkpoint may lie anywhere between two calls, not only at a block boundary, and all of
//! it is safe Rust.
//!
//! Concatenated members (RFC 1952 allows them; `cat a.gz b.gz`) continue one output. A file
//! that is truncated or corrupt (an interrupted logrotate) is readable up to the damage; the
//! damage is reported by [`GzFile::damage`], never a panic. CRC32 is not checked (the
//! decoder's own checks and `ISIZE` catch truncation); FIXME(crc): check it on full passes.

use std::fs::File;
use std::io;
use std::sync::{Mutex, PoisonError};

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{
    DecompressorOxide, TINFL_LZ_DICT_SIZE, decompress, inflate_flags,
};

/// Output bytes between checkpoints. A checkpoint costs about 43 KiB (window and decoder
/// tables), so this is ~11 MiB of memory per GiB of decompressed text, and a read decodes at
/// most 4 MiB it does not need (a few milliseconds).
pub(crate) const SPAN: u64 = 4 << 20;

/// Compressed bytes read from the file at a time.
const INPUT_BLOCK: usize = 256 << 10;

/// Whether `head` starts like a gzip file (magic and the deflate method).
pub(crate) fn is_gzip(head: &[u8]) -> bool {
    head.len() >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8
}

/// A gzip file read at decompressed offsets.
#[derive(Debug)]
pub(crate) struct GzFile {
    file: File,
    index: Mutex<Index>,
}

#[derive(Debug)]
struct Index {
    /// Decoders at increasing output offsets; the first is at output 0.
    points: Vec<Decoder>,
    /// Where indexing stopped; `None` once the whole file is indexed.
    front: Option<Decoder>,
    /// The decompressed length, once the whole file is indexed.
    len: Option<u64>,
    /// Why decoding stopped early, if it did.
    damage: Option<String>,
}

impl GzFile {
    /// Reads `file` as gzip; nothing is decoded yet.
    pub(crate) fn new(file: File) -> Self {
        let start = Decoder::new();
        Self {
            file,
            index: Mutex::new(Index {
                points: vec![start.clone()],
                front: Some(start),
                len: None,
                damage: None,
            }),
        }
    }

    /// The decompressed length (up to any damage). The first call decodes the whole file once
    /// and keeps its checkpoints.
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn len(&self) -> io::Result<u64> {
        let mut index = self.lock();
        index.extend(&self.file, u64::MAX)?;
        Ok(index.len.unwrap_or(0))
    }

    /// Why the file could not be decoded to its end, once that is known.
    pub(crate) fn damage(&self) -> Option<String> {
        self.lock().damage.clone()
    }

    /// Fills `buf` from decompressed offset `offset`; returns the bytes read (fewer only at
    /// the end).
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let want_end = offset.saturating_add(buf.len() as u64);
        let mut decoder = {
            let mut index = self.lock();
            index.extend(&self.file, want_end)?;
            let i = index.points.partition_point(|p| p.out <= offset);
            index.points[i.saturating_sub(1)].clone()
        };
        let mut input = Input::new(&self.file);
        let mut done = 0;
        while done < buf.len() {
            let Step::Data(range) = decoder.step(&mut input)? else {
                break;
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

    /// Decodes the file from the start, calling `f` with each chunk of output, its offset and
    /// the compressed bytes consumed so far,
    /// until `f` says stop; checkpoints are kept on the way (so a search also indexes).
    ///
    /// # Errors
    /// Fails when the file cannot be read.
    pub(crate) fn for_each_chunk(
        &self,
        mut f: impl FnMut(u64, u64, &[u8]) -> std::ops::ControlFlow<()>,
    ) -> io::Result<()> {
        let mut decoder = Decoder::new();
        let mut input = Input::new(&self.file);
        let mut last_point = 0;
        let mut fresh = Vec::new();
        let result = loop {
            match decoder.step(&mut input)? {
                Step::Data(range) => {
                    let chunk = &decoder.window[range];
                    if f(decoder.out - chunk.len() as u64, decoder.input, chunk).is_break() {
                        break None;
                    }
                    if decoder.out - last_point >= SPAN {
                        last_point = decoder.out;
                        fresh.push(decoder.clone());
                    }
                }
                Step::End => break Some((decoder.out, None)),
                Step::Damaged(why) => break Some((decoder.out, Some(why))),
            }
        };
        let mut index = self.lock();
        if index.len.is_none() {
            if let Some((len, damage)) = result {
                // A whole pass: its checkpoints replace the partial index.
                fresh.insert(0, Decoder::new());
                index.points = fresh;
                index.front = None;
                index.len = Some(len);
                index.damage = damage;
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Index {
    /// Decodes on from the front until it passes `target` (or the file ends).
    fn extend(&mut self, file: &File, target: u64) -> io::Result<()> {
        let Some(front) = self.front.as_mut() else {
            return Ok(());
        };
        let mut input = Input::new(file);
        let mut last = self.points.last().map_or(0, |p| p.out);
        while front.out < target {
            match front.step(&mut input)? {
                Step::Data(_) => {
                    if front.out - last >= SPAN {
                        last = front.out;
                        self.points.push(front.clone());
                    }
                }
                Step::End => {
                    self.len = Some(front.out);
                    self.front = None;
                    break;
                }
                Step::Damaged(why) => {
                    self.len = Some(front.out);
                    self.damage = Some(why);
                    self.front = None;
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Compressed input, read in blocks at the decoder's offset.
struct Input<'a> {
    file: &'a File,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> Input<'a> {
    fn new(file: &'a File) -> Self {
        Self {
            file,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The compressed bytes from `offset` on that are at hand (empty at the end of the file).
    fn at(&mut self, offset: u64) -> io::Result<&[u8]> {
        let end = self.start + self.buf.len() as u64;
        if offset < self.start || offset >= end {
            self.buf.resize(INPUT_BLOCK, 0);
            let n = crate::tail::generation::read_full_at(self.file, &mut self.buf, offset)?;
            self.buf.truncate(n);
            self.start = offset;
        }
        let skip = usize::try_from(offset - self.start).unwrap_or(usize::MAX);
        Ok(self.buf.get(skip..).unwrap_or_default())
    }
}

/// What one decoding step gave.
enum Step {
    /// New output: `window[range]`, ending at output offset `out`.
    Data(std::ops::Range<usize>),
    /// The file ended cleanly.
    End,
    /// The file cannot be decoded further.
    Damaged(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Deflate,
    Trailer,
    /// Decoding failed after the last output was handed out; `failure` says why.
    Failed,
}

/// The whole decoding state between two steps; cloning it makes a checkpoint.
#[derive(Clone)]
struct Decoder {
    inflate: Box<DecompressorOxide>,
    /// The last 32 KiB of output, written in a ring (miniz_oxide's wrapping output buffer).
    window: Box<[u8]>,
    window_pos: usize,
    phase: Phase,
    /// Compressed offset of the next input byte.
    input: u64,
    /// Decompressed offset of the next output byte.
    out: u64,
    failure: Option<String>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("input", &self.input)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    fn new() -> Self {
        Self {
            inflate: Box::default(),
            window: vec![0; TINFL_LZ_DICT_SIZE].into_boxed_slice(),
            window_pos: 0,
            phase: Phase::Header,
            input: 0,
            out: 0,
            failure: None,
        }
    }

    fn step(&mut self, input: &mut Input<'_>) -> io::Result<Step> {
        loop {
            match self.phase {
                Phase::Header => {
                    let head = input.at(self.input)?;
                    match header_len(head) {
                        Ok(n) => {
                            self.input += n as u64;
                            self.phase = Phase::Deflate;
                            *self.inflate = DecompressorOxide::new();
                        }
                        Err(why) => return Ok(Step::Damaged(why.to_owned())),
                    }
                }
                Phase::Deflate => {
                    input.at(self.input)?;
                    let at_eof = input.file_ends_within();
                    let data = input.at(self.input)?;
                    let flags = if at_eof {
                        0
                    } else {
                        inflate_flags::TINFL_FLAG_HAS_MORE_INPUT
                    };
                    let pos = self.window_pos;
                    let (status, used, made) =
                        decompress(&mut self.inflate, data, &mut self.window, pos, flags);
                    self.input += used as u64;
                    self.out += made as u64;
                    self.window_pos = (pos + made) & (TINFL_LZ_DICT_SIZE - 1);
                    let failure = match status {
                        TINFLStatus::Done => {
                            self.phase = Phase::Trailer;
                            None
                        }
                        TINFLStatus::HasMoreOutput | TINFLStatus::NeedsMoreInput
                            if used > 0 || made > 0 =>
                        {
                            None
                        }
                        TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                            Some("the compressed data ends early")
                        }
                        _ => Some("the compressed data is corrupt"),
                    };
                    if let Some(why) = failure {
                        // The output of this last call is still good text: hand it out first.
                        self.phase = Phase::Failed;
                        self.failure = Some(format!("{why} (after {} bytes of text)", self.out));
                    }
                    if made > 0 {
                        return Ok(Step::Data(pos..pos + made));
                    }
                }
                Phase::Failed => {
                    return Ok(Step::Damaged(self.failure.clone().unwrap_or_default()));
                }
                Phase::Trailer => {
                    // CRC32 and ISIZE (8 bytes); then another member, or the end.
                    let rest = input.at(self.input)?;
                    if rest.len() < 8 {
                        return Ok(Step::Damaged(format!(
                            "the file ends inside a gzip trailer (after {} bytes of text)",
                            self.out
                        )));
                    }
                    self.input += 8;
                    let next = input.at(self.input)?;
                    if is_gzip(next) {
                        self.phase = Phase::Header;
                    } else {
                        // The end, or trailing bytes gzip itself ignores (zero padding).
                        return Ok(Step::End);
                    }
                }
            }
        }
    }
}

impl Input<'_> {
    /// Whether the bytes at hand reach the end of the file (a short read).
    fn file_ends_within(&self) -> bool {
        self.buf.len() < INPUT_BLOCK
    }
}

/// The length of the gzip member header at the start of `head` (RFC 1952, 2.3).
fn header_len(head: &[u8]) -> Result<usize, &'static str> {
    if !is_gzip(head) || head.len() < 10 {
        return Err("not a gzip member where one should start");
    }
    let flags = head[3];
    let mut at = 10;
    if flags & 0x04 != 0 {
        let xlen = head
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or("a truncated gzip header")?;
        at += 2 + xlen;
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            let zero = head
                .get(at..)
                .and_then(|rest| memchr::memchr(0, rest))
                .ok_or("a truncated gzip header")?;
            at += zero + 1;
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    if at > head.len() {
        return Err("a truncated gzip header");
    }
    Ok(at)
}

/// The first `n` decompressed bytes of a gzip file, without keeping an index.
///
/// # Errors
/// Fails when the file cannot be read.
pub(crate) fn head(file: &File, n: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let mut decoder = Decoder::new();
    let mut input = Input::new(file);
    while out.len() < n {
        let Step::Data(range) = decoder.step(&mut input)? else {
            break;
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
        assert!(gz.lock().points.len() >= 3);
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
            for (at, len) in reads {
                let offset = at.index(a.len() + 1) as u64;
                let mut buf = vec![0u8; len];
                let got = gz.read_full_at(&mut buf, offset).expect("read");
                if corrupt.is_none() {
                    let o = usize::try_from(offset).expect("small");
                    let want = &a[o..(o + len).min(a.len())];
                    prop_assert_eq!(&buf[..got], want);
                }
            }
        }
    }
}
