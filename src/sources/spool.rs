//! The stdin spool: standard input copied into private temporary files, so that it has
//! history and resume like a file.
//!
//! A thread copies stdin into `stdin` in the spool directory; the stream follows that file.
//! The spool is bounded by `--spool-bytes`: when the current file reaches half of it, it is
//! renamed to `stdin.1` (deleting the previous one) and a new file is started, which the
//! follower sees as a rotation. [`SpoolProgress`] makes a rollover wait until the follower
//! has opened the current file, so no spooled byte is deleted unread by the follower.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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
pub(super) fn spawn(
    path: PathBuf,
    spool_bytes: u64,
    stream: Arc<Stream>,
    progress: Arc<SpoolProgress>,
) {
    let spawned = std::thread::Builder::new()
        .name("stdin-spool".into())
        .spawn(move || {
            let stdin = std::io::stdin().lock();
            if let Err(e) = spool(stdin, &path, spool_bytes / 2, &progress) {
                tracing::warn!("standard input: {e}");
            }
            drop(stream);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the stdin spool: {e}");
    }
}

/// Copies `input` into the spool at `path`, rolling over every `segment_bytes` (at a line
/// boundary) once the follower has opened the current file.
fn spool(
    mut input: impl Read,
    path: &Path,
    segment_bytes: u64,
    progress: &SpoolProgress,
) -> std::io::Result<()> {
    let mut out = OpenOptions::new().append(true).open(path)?;
    let mut written = 0u64;
    let mut last = b'\n';
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut chunk = &buf[..n];
        // Roll over only at a line boundary, so that no line spans two spool files.
        if written >= segment_bytes {
            let split = if last == b'\n' {
                Some(0)
            } else {
                memchr::memchr(b'\n', chunk).map(|i| i + 1)
            };
            if let Some(split) = split {
                out.write_all(&chunk[..split])?;
                progress.wait_opened(out.metadata()?.ino());
                std::fs::rename(path, path.with_extension("1"))?;
                out = OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(path)?;
                written = 0;
                chunk = &chunk[split..];
            }
        }
        out.write_all(chunk)?;
        written += chunk.len() as u64;
        last = buf[n - 1];
    }
    // End of input: a last line without its newline is complete now.
    if last != b'\n' {
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs::File;
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
        spool(input.as_bytes(), &path, 4096, &progress).expect("spool");
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
}
