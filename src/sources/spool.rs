//! The stdin spool: standard input copied into private temporary files, so that it has
//! history and resume like a file.
//!
//! A thread copies stdin into `stdin` in the spool directory; the stream follows that file.
//! The spool is bounded by `--spool-bytes`: when the current file reaches half of it, it is
//! renamed to `stdin.1` (deleting the previous one) and a new file is started, which the
//! follower sees as a rotation. [`SpoolProgress`] makes a rollover wait until the follower
//! has opened the current file, so no spooled byte is deleted unread by the follower. A line
//! longer than `--max-line-bytes` is cut (and its entry marked `truncated`), so the spool stays
//! bounded whether or not the input has newlines.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::stream::Stream;
use crate::tail::Event;

/// What the stdin follower has opened, so that the spool never rolls over a file the follower
/// has not finished.
///
/// A rollover renames the current spool file over the previous one, deleting it. Had the
/// follower not opened the current file yet, it would still be reading the previous one or
/// an older one, and a file created and rolled away between two of its looks would be lost
/// without a trace (no `gap`: the stream would never know it existed). So before a rollover
/// the spool waits until the follower has opened the current file, which it does as soon as
/// it has read the one before to its end. Reading stdin pauses meanwhile (the writer into the
/// pipe waits); readers that fall behind still get a `gap`, as the spool stays bounded.
#[derive(Debug, Default)]
pub(super) struct SpoolProgress {
    /// Inode of the file the follower opened last, and whether the follower has stopped.
    state: Mutex<(Option<u64>, bool)>,
    changed: Condvar,
    /// Standard input has ended (or failed): everything there will be is in the spool.
    pub(super) input_ended: AtomicBool,
}

impl SpoolProgress {
    /// Notes the file a step opened, if any.
    pub(super) fn report(&self, events: &[Event]) {
        let opened = events.iter().rev().find_map(|e| match e {
            Event::Opened { generation, .. } => Some(generation.id.ino),
            _ => None,
        });
        if let Some(ino) = opened {
            self.state.lock().unwrap_or_else(PoisonError::into_inner).0 = Some(ino);
            self.changed.notify_all();
        }
    }

    /// Whether standard input has ended, so that what is in the spool is all there will be.
    pub(super) fn input_ended(&self) -> bool {
        self.input_ended.load(Ordering::Acquire)
    }

    /// The follower is gone: nothing waits for it any more.
    pub(super) fn stop(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.changed.notify_all();
    }

    /// Blocks until the follower has opened the file with inode `ino`, or has stopped.
    fn wait_opened(&self, ino: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.0 != Some(ino) && !state.1 {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Calls [`SpoolProgress::stop`] when dropped.
pub(super) struct StopOnDrop(pub(super) Arc<SpoolProgress>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Copies standard input into the spool at `path` on a thread of its own (reading stdin
/// blocks and cannot be cancelled; the thread ends with the process or at end of input).
///
/// The spool is bounded by `spool_bytes`: when the current file reaches half of it, it is
/// renamed to `stdin.1` (replacing, and so deleting, the previous one) and a new file is
/// started, which the follower sees as a rotation; see [`SpoolProgress`] for why a rollover
/// waits for the follower. Readers whose cursor pointed into a deleted spool file get a `gap`.
/// A line longer than `max_line_bytes` is cut to `max_line_bytes + 1` bytes (the entry is
/// marked `truncated`), so the two files hold at most `spool_bytes + 2 * (max_line_bytes + 2)`
/// bytes, newlines or not.
pub(super) fn spawn(
    path: PathBuf,
    spool_bytes: u64,
    max_line_bytes: usize,
    stream: Arc<Stream>,
    progress: Arc<SpoolProgress>,
) {
    let line_bytes = u64::try_from(max_line_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let spawned = std::thread::Builder::new()
        .name("stdin-spool".into())
        .spawn(move || {
            let stdin = std::io::stdin().lock();
            if let Err(e) = spool(stdin, &path, spool_bytes / 2, line_bytes, &progress) {
                tracing::warn!("standard input: {e}");
            }
            progress.input_ended.store(true, Ordering::Release);
            drop(stream);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the stdin spool: {e}");
    }
}

/// Copies `input` into the spool at `path`, rolling over every `segment_bytes` (at a line
/// boundary) once the follower has opened the current file, and keeping at most
/// `line_bytes` of any line.
fn spool(
    mut input: impl Read,
    path: &Path,
    segment_bytes: u64,
    line_bytes: u64,
    progress: &SpoolProgress,
) -> std::io::Result<()> {
    let mut out = Out::open(path, segment_bytes, line_bytes, progress)?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // End of input: a last line without its newline is complete now.
    out.end_line()
}

/// The spool's writing side: the current file and where the line being copied stands.
pub(super) struct Out<'a> {
    path: &'a Path,
    file: File,
    /// Bytes in the current file.
    written: u64,
    /// Bytes of the current line read from the input so far (kept or cut); 0 at a boundary.
    line_len: u64,
    segment_bytes: u64,
    /// Most bytes of one line kept. The follower keeps `max_line_bytes + 1` bytes of a line
    /// and marks a longer one `truncated`, so cutting a line here to that length keeps the
    /// mark, and bounds the spool whether or not the input has newlines.
    line_bytes: u64,
    progress: &'a SpoolProgress,
}

impl<'a> Out<'a> {
    /// Appends to the spool file at `path` (which exists), rolling over every
    /// `segment_bytes` and keeping at most `line_bytes` of a line.
    pub(super) fn open(
        path: &'a Path,
        segment_bytes: u64,
        line_bytes: u64,
        progress: &'a SpoolProgress,
    ) -> std::io::Result<Self> {
        Ok(Self {
            path,
            file: OpenOptions::new().append(true).open(path)?,
            written: 0,
            line_len: 0,
            segment_bytes,
            line_bytes,
            progress,
        })
    }

    /// Most bytes of one line kept.
    pub(super) fn line_bytes(&self) -> u64 {
        self.line_bytes
    }

    /// Whether the next byte starts a line.
    pub(super) fn at_line_start(&self) -> bool {
        self.line_len == 0
    }

    /// Ends a line left without its newline (its input ended): it is complete now.
    pub(super) fn end_line(&mut self) -> std::io::Result<()> {
        if self.line_len > 0 {
            self.push(b"\n")?;
        }
        Ok(())
    }

    /// Copies `chunk`, cutting over-long lines and rolling over at line boundaries. Kept
    /// bytes go out in runs, one write per run, not one per line.
    pub(super) fn push(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let mut run_start = 0;
        let mut i = 0;
        while i < chunk.len() {
            // Roll over only at a line boundary, so that no line spans two spool files.
            if self.line_len == 0 && self.written >= self.segment_bytes {
                self.file.write_all(&chunk[run_start..i])?;
                self.roll_over()?;
                run_start = i;
            }
            let rest = &chunk[i..];
            let (content, newline) = match memchr::memchr(b'\n', rest) {
                Some(k) => (k, true),
                None => (rest.len(), false),
            };
            let room = usize::try_from(self.line_bytes.saturating_sub(self.line_len))
                .unwrap_or(usize::MAX);
            let kept = content.min(room);
            if kept < content {
                // Cut: the line's bytes past `line_bytes` are dropped; its `\n` is kept.
                self.file.write_all(&chunk[run_start..i + kept])?;
                run_start = i + content;
            }
            self.written += kept as u64 + u64::from(newline);
            self.line_len = if newline {
                0
            } else {
                self.line_len + content as u64
            };
            i += content + usize::from(newline);
        }
        self.file.write_all(&chunk[run_start..])
    }

    /// Renames the current file over the previous one (once the follower has opened it) and
    /// starts a new one.
    fn roll_over(&mut self) -> std::io::Result<()> {
        self.progress.wait_opened(self.file.metadata()?.ino());
        std::fs::rename(self.path, self.path.with_extension("1"))?;
        self.file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(self.path)?;
        self.written = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::tail::{FollowOptions, Follower, line_text};

    #[test]
    fn spool_rolls_over_only_files_the_follower_has_finished() {
        // 300 KiB through 4 KiB spool files: about 75 rollovers, far faster than the follower
        // below looks. Without the wait for the follower, files created and rolled away
        // between two looks would be lost without a trace.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stdin");
        File::create(&path).expect("create");
        let input: String = (0..3000)
            .map(|i| format!("{i:06} {}\n", "x".repeat(93)))
            .collect();
        let progress = Arc::new(SpoolProgress::default());
        let opts = FollowOptions {
            announce_rotation: false,
            start_at_end: false,
            ..FollowOptions::default()
        };
        let mut follower = Follower::new(&path, opts);
        let follower_progress = progress.clone();
        let reader = std::thread::spawn(move || {
            let _stop = StopOnDrop(follower_progress.clone());
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while got.len() < 3000 && Instant::now() < deadline {
                let step = follower.step(Instant::now());
                follower_progress.report(&step.events);
                for e in step.events {
                    if let Event::Lines { lines, .. } = e {
                        got.extend(
                            lines
                                .iter()
                                .map(|l| line_text(&l.head, l.len, 1 << 20).0.into_owned()),
                        );
                    }
                }
                if !step.more {
                    // A follower looks now and then, not continuously (pacing, not a wait).
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            got
        });
        spool(input.as_bytes(), &path, 4096, 1 << 20, &progress).expect("spool");
        let got = reader.join().expect("follower thread");
        let want: Vec<String> = input.lines().map(str::to_owned).collect();
        assert_eq!(got.len(), want.len(), "every line, once");
        assert!(got == want, "in order");
    }

    #[test]
    fn spool_stops_waiting_when_the_follower_is_gone() {
        let progress = SpoolProgress::default();
        progress.stop();
        progress.wait_opened(42);
    }

    #[test]
    fn input_without_newlines_is_cut_and_stays_bounded() {
        // 8 MiB without a newline, then a short line, through 1,000-byte spool files that keep
        // 1 KiB of a line: the long line is cut, the spool never grows past its bound, and the
        // lines after the cut arrive whole.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stdin");
        File::create(&path).expect("create");
        let progress = SpoolProgress::default();
        progress.stop();
        let mut input = vec![b'x'; 8 << 20];
        input.extend_from_slice(b"\nafter\nend");
        spool(&input[..], &path, 1000, 1025, &progress).expect("spool");
        let current = std::fs::read(&path).expect("current file");
        let previous = std::fs::read(path.with_extension("1")).unwrap_or_default();
        let mut all = previous.clone();
        all.extend_from_slice(&current);
        let mut want = vec![b'x'; 1025];
        want.extend_from_slice(b"\nafter\nend\n");
        assert_eq!(all.len(), want.len());
        assert!(
            all == want,
            "the long line cut to 1,025 bytes, the others whole"
        );
    }

    #[test]
    fn lines_cut_across_reads_keep_their_newlines_and_rollovers() {
        // Lines of every length around the cut, fed in 7-byte reads so that cuts and
        // newlines fall on both sides of read boundaries.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(7);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stdin");
        File::create(&path).expect("create");
        let progress = SpoolProgress::default();
        progress.stop();
        let lines: Vec<Vec<u8>> = (0..40).map(|n| vec![b'a' + (n % 26) as u8; n]).collect();
        let input: Vec<u8> = lines
            .iter()
            .flat_map(|l| [&l[..], b"\n"].concat())
            .collect();
        spool(Trickle(&input), &path, 1 << 20, 20, &progress).expect("spool");
        let got = std::fs::read(&path).expect("spool file");
        let want: Vec<u8> = lines
            .iter()
            .flat_map(|l| [&l[..l.len().min(20)], b"\n"].concat())
            .collect();
        assert!(got == want, "{:?}", String::from_utf8_lossy(&got));
    }
}
