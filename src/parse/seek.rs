//! `at=` seek: the first record whose event time is at or after T, found by binary search
//! over byte offsets, with no index.
//!
//! Each probe reads a small window at a midpoint, resynchronises to the next line start,
//! and takes the median event time of up to [`PROBE_RECORDS`] record starts there, so one or
//! two lines written out of order do not steer the search. When the range is down to
//! [`WINDOW`] bytes, a forward scan from one window before it finds the first record start
//! with `ts >= T`; disorder shorter than a window therefore cannot hide it. In a sorted file
//! the answer is exact. The cost is about `log2(size / 64 KiB)` probes of 16 KiB plus two
//! windows of scan, reported in [`Seek`] so tests can check O(log n) reads without timing.
//!
//! The module reads through [`ReadAt`] only, so it is tested over memory and runs over files.

use std::io;

use memchr::memchr;

use super::Parser;

/// The range at which the binary search stops and the forward scan starts.
pub const WINDOW: u64 = 64 * 1024;
/// A probe's first read.
pub const PROBE_BYTES: usize = 16 * 1024;
/// A probe's largest read (it grows while it finds no timed record start).
pub const PROBE_MAX: usize = 256 * 1024;
/// Record times a probe takes the median of.
pub const PROBE_RECORDS: usize = 5;

/// Positional reads (`pread`).
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end.
    ///
    /// # Errors
    /// The underlying read failed.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Where a seek landed and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seek {
    /// Offset of the first record start with `ts >= T`, or `end` when there is none.
    pub offset: u64,
    /// Whether such a record was found.
    pub found: bool,
    /// Whether any timed record start was seen (a file without one says nothing about time).
    pub timed: bool,
    /// Whether a timed record start before the target was seen (so older files are older).
    pub earlier: bool,
    /// Probes made by the binary search.
    pub probes: u32,
    /// Bytes read in all.
    pub bytes: u64,
}

/// Reads `[from, min(from + len, end))`.
fn read(
    src: &(impl ReadAt + ?Sized),
    from: u64,
    len: usize,
    end: u64,
    bytes: &mut u64,
) -> io::Result<Vec<u8>> {
    let len = len.min(usize::try_from(end.saturating_sub(from)).unwrap_or(usize::MAX));
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        let n = src.read_at(&mut buf[got..], from + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    *bytes += got as u64;
    Ok(buf)
}

/// Finds the first record at or after `target` (epoch ms) in bytes `[0, end)` of `src`.
/// `reference` dates yearless stamps, as in [`Parser::facts`].
///
/// # Errors
/// A read failed.
pub fn seek(
    src: &(impl ReadAt + ?Sized),
    end: u64,
    target: i64,
    parser: &Parser,
    reference: i64,
) -> io::Result<Seek> {
    let mut report = Seek {
        offset: end,
        found: false,
        timed: false,
        earlier: false,
        probes: 0,
        bytes: 0,
    };
    let (mut lo, mut hi) = (0u64, end);
    while hi - lo > WINDOW {
        let mid = lo + (hi - lo) / 2;
        let aligned = mid & !4095;
        let m = if aligned > lo { aligned } else { mid };
        report.probes += 1;
        let found = probe(src, m, end, parser, reference, &mut report.bytes)?;
        report.timed |= found.is_some();
        report.earlier |= found.is_some_and(|(ts, _)| ts < target);
        match found {
            Some((ts, window_end)) if ts < target => lo = window_end.min(hi),
            _ => hi = m,
        }
    }
    // Forward scan from one window before the boundary. `resync` means `pos` may be inside a
    // line, whose rest is skipped (at the start, and after a line longer than a block).
    let mut pos = lo.saturating_sub(WINDOW);
    let mut resync = pos > 0;
    while pos < end {
        let block = read(src, pos, 2 * WINDOW as usize, end, &mut report.bytes)?;
        if block.is_empty() {
            break;
        }
        let mut i = 0;
        if resync {
            match memchr(b'\n', &block) {
                Some(n) => {
                    i = n + 1;
                    resync = false;
                }
                None => {
                    pos += block.len() as u64;
                    continue;
                }
            }
        }
        while let Some(n) = memchr(b'\n', &block[i..]) {
            let f = parser.facts(&block[i..i + n], reference);
            report.timed |= f.start && f.ts.is_some();
            report.earlier |= f.start && f.ts.is_some_and(|ts| ts < target);
            if f.start && f.ts.is_some_and(|ts| ts >= target) {
                report.offset = pos + i as u64;
                report.found = true;
                return Ok(report);
            }
            i += n + 1;
        }
        if i == 0 {
            // One line longer than the block: not an answer the probes could use either.
            resync = true;
            i = block.len();
        }
        // The unfinished line (if any) is read again from its start; one without `\n` at
        // the end of the readable bytes is not delivered yet, so not an answer.
        pos += i as u64;
        if memchr(b'\n', &block[i..]).is_none() && pos + (block.len() - i) as u64 >= end {
            break;
        }
    }
    Ok(report)
}

/// The median time of up to [`PROBE_RECORDS`] timed record starts after `m`, and the offset
/// just past the last line looked at; none if no timed start is within [`PROBE_MAX`].
fn probe(
    src: &(impl ReadAt + ?Sized),
    m: u64,
    end: u64,
    parser: &Parser,
    reference: i64,
    bytes: &mut u64,
) -> io::Result<Option<(i64, u64)>> {
    let mut len = PROBE_BYTES;
    loop {
        let buf = read(src, m, len, end, bytes)?;
        let mut i = if m == 0 {
            0
        } else {
            match memchr(b'\n', &buf) {
                Some(n) => n + 1,
                None => buf.len(),
            }
        };
        let mut times = Vec::with_capacity(PROBE_RECORDS);
        while let Some(n) = memchr(b'\n', &buf[i..]) {
            let f = parser.facts(&buf[i..i + n], reference);
            i += n + 1;
            if let (true, Some(ts)) = (f.start, f.ts) {
                times.push(ts);
                if times.len() == PROBE_RECORDS {
                    break;
                }
            }
        }
        let exhausted = (buf.len() as u64) < len as u64 || len >= PROBE_MAX;
        if times.len() == PROBE_RECORDS || (exhausted && !times.is_empty()) {
            times.sort_unstable();
            return Ok(Some((times[times.len() / 2], m + i as u64)));
        }
        if exhausted {
            return Ok(None);
        }
        len = (len * 4).min(PROBE_MAX);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::parse::Zone;

    /// A log of `records` records from `t0` (a midnight of 1 December), `step` ms apart on average, with traces and
    /// untimed lines; every `jitter`th record is stamped up to 900 ms early. Returns the
    /// bytes and each record's (offset, ts).
    fn log(records: usize, t0: i64, seed: u64, jitter: usize) -> (Vec<u8>, Vec<(u64, i64)>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        let mut rng = seed | 1;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut t = t0;
        for i in 0..records {
            t += (next() % 2000) as i64;
            let stamped = if jitter > 0 && i % jitter == 7 {
                t - (next() % 900) as i64
            } else {
                t
            };
            let secs = (stamped - t0).div_euclid(1000);
            let (d, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let day = 1 + d as u8; // the test keeps within December
            starts.push((out.len() as u64, stamped));
            out.extend_from_slice(
                format!(
                    "2026-12-{day:02}T{:02}:{:02}:{:02}.{:03}Z INFO record {i} {}\n",
                    s / 3600,
                    s / 60 % 60,
                    s % 60,
                    (stamped - t0).rem_euclid(1000),
                    "x".repeat((next() % 120) as usize)
                )
                .as_bytes(),
            );
            match next() % 20 {
                0 => out.extend_from_slice(
                    b"java.lang.Error: boom\n\tat a.B(C.java:1)\n\tat d.E(F.java:2)\n",
                ),
                1 => out.extend_from_slice(b"12:00:00 a time-only start with no date\n"),
                _ => {}
            }
        }
        (out, starts)
    }

    fn december_first() -> i64 {
        crate::parse::zone::days_from_civil(2026, 12, 1) * 86_400_000
    }

    #[test]
    fn a_sorted_log_seeks_exactly_with_logarithmic_reads() {
        let t0 = december_first();
        let (data, starts) = log(200_000, t0, 7, 0);
        let parser = Parser::new(Zone::utc());
        let end = data.len() as u64;
        let last = starts.last().map_or(t0, |s| s.1);
        for k in 0..60 {
            let target = t0 - 5000 + (last - t0 + 10_000) * k / 59;
            let want = starts.iter().find(|s| s.1 >= target).map_or(end, |s| s.0);
            let got = seek(data.as_slice(), end, target, &parser, t0).expect("memory reads");
            assert_eq!(got.offset, want, "target {target}");
            assert_eq!(got.found, want < end);
            assert!(
                got.probes <= 20 && got.bytes <= 1 << 20,
                "{got:?} of {end} bytes"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn a_slightly_disordered_log_seeks_to_the_first_record_at_or_after(
            seed in any::<u64>(), frac in 0.0f64..1.0, jitter in 10usize..50,
        ) {
            let t0 = december_first();
            let (data, starts) = log(20_000, t0, seed, jitter);
            let parser = Parser::new(Zone::utc());
            let end = data.len() as u64;
            let last = starts.iter().map(|s| s.1).max().unwrap_or(t0);
            let target = t0 + ((last - t0) as f64 * frac) as i64;
            let want = starts.iter().find(|s| s.1 >= target).map_or(end, |s| s.0);
            let got = seek(data.as_slice(), end, target, &parser, t0).expect("memory reads");
            prop_assert_eq!(got.offset, want);
        }
    }

    #[test]
    fn empty_untimed_and_unfinished_files_find_nothing() {
        let parser = Parser::new(Zone::utc());
        let got = seek(&b""[..], 0, 0, &parser, 0).expect("read");
        assert_eq!((got.offset, got.found, got.timed), (0, false, false));
        let plain = "plain line\n".repeat(20_000);
        let got = seek(plain.as_bytes(), plain.len() as u64, 0, &parser, 0).expect("read");
        assert!(!got.found && !got.timed && got.bytes < (1 << 21), "{got:?}");
        // Timed, all before the target: not found, but timed.
        let got = seek(&b"2026-12-01T00:00:00Z x\n"[..], 23, i64::MAX, &parser, 0).expect("read");
        assert_eq!(
            (got.offset, got.found, got.timed, got.earlier),
            (23, false, true, true)
        );
        let got = seek(&b"2026-12-01T00:00:00Z x\n"[..], 23, 0, &parser, 0).expect("read");
        assert_eq!((got.offset, got.found, got.earlier), (0, true, false));
        let long = format!(
            "{}\n2026-12-01T00:00:00Z after a long line\n",
            "y".repeat(300_000)
        );
        let got = seek(long.as_bytes(), long.len() as u64, 0, &parser, 0).expect("read");
        assert_eq!((got.offset, got.found), (300_001, true));
        let half = b"2026-12-01T00:00:00Z x";
        let got = seek(&half[..], half.len() as u64, 0, &parser, 0).expect("read");
        assert!(!got.found);
    }
}
