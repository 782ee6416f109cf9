//! The gzip container around miniz_oxide's inflater: member headers and trailers (RFC 1952),
//! concatenated members, and the CRC32/ISIZE check of each member's text.
//!
//! A [`Decoder`] is the whole decoding state between two steps; cloning it makes a checkpoint
//! (`mod.rs`). It tells apart two kinds of damage, because they deserve different trust:
//! a file that *ends early* (an interrupted logrotate) decoded correctly up to where it ends,
//! so that text stays readable; a member that is *corrupt* (the inflater fails, or its CRC32 or
//! length disagrees with its trailer) may have produced wrong bytes anywhere, so none of its
//! text is trusted: [`Step::Damaged`] says where the trusted text ends.

use std::fs::File;
use std::io;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{
    DecompressorOxide, TINFL_LZ_DICT_SIZE, decompress, inflate_flags,
};

/// Compressed bytes read from the file at a time.
const INPUT_BLOCK: usize = 256 << 10;

/// Whether `head` starts like a gzip file (magic and the deflate method).
pub(crate) fn is_gzip(head: &[u8]) -> bool {
    head.len() >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8
}

/// Compressed input, read in blocks at the decoder's offset.
pub(super) struct Input<'a> {
    file: &'a File,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> Input<'a> {
    pub(super) fn new(file: &'a File) -> Self {
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

    /// Whether the bytes at hand reach the end of the file (a short read).
    fn file_ends_within(&self) -> bool {
        self.buf.len() < INPUT_BLOCK
    }
}

/// What one decoding step gave.
pub(super) enum Step {
    /// New output: `window[range]`, ending at output offset `out`.
    Data(std::ops::Range<usize>),
    /// A member's trailer matched its text: the text before this output offset is verified.
    Verified(u64),
    /// The file ended cleanly (every member verified).
    End,
    /// The file cannot be decoded further: why, and the output offset where the trusted text
    /// ends (the damaged member's start when it is corrupt, the last output when the file
    /// merely ends early).
    Damaged(String, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Deflate,
    Trailer,
    /// Decoding failed after the last output was handed out; `failure` says why.
    Failed,
    /// The file ended cleanly.
    Ended,
}

/// The whole decoding state between two steps; cloning it makes a checkpoint.
#[derive(Clone)]
pub(super) struct Decoder {
    inflate: Box<DecompressorOxide>,
    /// The last 32 KiB of output, written in a ring (miniz_oxide's wrapping output buffer).
    pub(super) window: Box<[u8]>,
    window_pos: usize,
    phase: Phase,
    /// Compressed offset of the next input byte.
    pub(super) input: u64,
    /// Decompressed offset of the next output byte.
    pub(super) out: u64,
    /// Output offset where the current member's text starts.
    member_start: u64,
    /// CRC32 of the current member's text so far.
    crc: crc32fast::Hasher,
    /// Why decoding failed, and where the trusted text ends.
    failure: Option<(String, u64)>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("input", &self.input)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

/// Heap bytes a decoder holds (its inflater and window): what a checkpoint costs.
pub(super) const DECODER_BYTES: usize =
    std::mem::size_of::<DecompressorOxide>() + TINFL_LZ_DICT_SIZE + std::mem::size_of::<Decoder>();

impl Decoder {
    pub(super) fn new() -> Self {
        Self {
            inflate: Box::default(),
            window: vec![0; TINFL_LZ_DICT_SIZE].into_boxed_slice(),
            window_pos: 0,
            phase: Phase::Header,
            input: 0,
            out: 0,
            member_start: 0,
            crc: crc32fast::Hasher::new(),
            failure: None,
        }
    }

    pub(super) fn step(&mut self, input: &mut Input<'_>) -> io::Result<Step> {
        loop {
            match self.phase {
                Phase::Header => {
                    let head = input.at(self.input)?;
                    match header_len(head) {
                        Ok(n) => {
                            self.input += n as u64;
                            self.phase = Phase::Deflate;
                            self.member_start = self.out;
                            self.crc = crc32fast::Hasher::new();
                            *self.inflate = DecompressorOxide::new();
                        }
                        Err(why) => return Ok(Step::Damaged(why.to_owned(), self.out)),
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
                    self.crc.update(&self.window[pos..pos + made]);
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
                        // The input stops inside the deflate data: what came out is right.
                        TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
                            Some(("the compressed data ends early", self.out))
                        }
                        _ => Some(("the compressed data is corrupt", self.member_start)),
                    };
                    if let Some((why, trusted)) = failure {
                        // The output of this last call is handed out first; `trusted` says
                        // how much of it may be used.
                        self.phase = Phase::Failed;
                        self.failure =
                            Some((format!("{why} (at {} bytes of text)", self.out), trusted));
                    }
                    if made > 0 {
                        return Ok(Step::Data(pos..pos + made));
                    }
                }
                Phase::Failed => {
                    let (why, trusted) = self.failure.clone().unwrap_or_default();
                    return Ok(Step::Damaged(why, trusted));
                }
                Phase::Trailer => {
                    // CRC32 and ISIZE (8 bytes, little-endian); then another member, or the end.
                    let rest = input.at(self.input)?;
                    let Some(trailer) = rest.get(..8) else {
                        // The text decoded in full, only its check is missing: it is kept.
                        return Ok(Step::Damaged(
                            format!(
                                "the file ends inside a gzip trailer (at {} bytes of text)",
                                self.out
                            ),
                            self.out,
                        ));
                    };
                    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                    // ISIZE is the length modulo 2^32 (RFC 1952, 2.3.1).
                    let len = (self.out - self.member_start) as u32;
                    if crc != self.crc.clone().finalize() || size != len {
                        self.phase = Phase::Failed;
                        let why = format!(
                            "a gzip member's CRC32 or length does not match its text (the \
                             member's {} bytes of text from offset {} are not used)",
                            self.out - self.member_start,
                            self.member_start
                        );
                        self.failure = Some((why, self.member_start));
                        continue;
                    }
                    self.input += 8;
                    let next = input.at(self.input)?;
                    // Another member, or the end (or trailing bytes gzip itself ignores, such
                    // as zero padding).
                    self.phase = if is_gzip(next) {
                        Phase::Header
                    } else {
                        Phase::Ended
                    };
                    return Ok(Step::Verified(self.out));
                }
                Phase::Ended => return Ok(Step::End),
            }
        }
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
