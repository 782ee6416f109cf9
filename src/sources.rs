//! The set of streams and the tasks that feed them.
//!
//! [`Sources`] turns the command line's paths into streams: a plain path is followed as is,
//! a glob pattern is re-evaluated while running (each new match becomes a new stream), and `-`
//! is standard input, spooled to private temporary files so that it has history and resume
//! like a file. Each stream gets one follower task that steps its [`Follower`] off the async
//! workers whenever the watcher wakes it or its poll tick fires, and applies the events to the
//! stream. No request parameter ever becomes a path: streams are only what was named here.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Source};
use crate::stream::{Stream, StreamId, StreamLimits};
use crate::tail::{Event, FollowOptions, Follower, Watcher};

/// How often a stream whose directory is watched is looked at anyway, in case an event was
/// missed (a watch lost with its directory, a file changed through another mount).
const SAFETY_TICK: Duration = Duration::from_secs(1);
/// How often a file that is being drained after a rotation is looked at.
const DRAIN_TICK: Duration = Duration::from_millis(50);
/// How often glob patterns are evaluated again.
const GLOB_TICK: Duration = Duration::from_secs(1);

/// The streams, in command-line order, and what feeds them.
#[derive(Debug)]
pub struct Sources {
    streams: RwLock<Vec<Arc<Stream>>>,
    watcher: Watcher,
    config: Arc<Config>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// Holds the stdin spool directory (removed when dropped) for the life of the process.
    spool_dir: Option<tempfile::TempDir>,
}

impl Sources {
    /// Creates every stream the configuration names, takes a first look at each file, and
    /// starts the follower tasks (on `tracker`, ending with `cancel`).
    ///
    /// # Errors
    /// Fails only when the stdin spool cannot be created.
    pub async fn start(
        config: Arc<Config>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> std::io::Result<Arc<Self>> {
        let spool_dir = if config.sources.iter().any(|s| matches!(s, Source::Stdin)) {
            Some(
                tempfile::Builder::new()
                    .prefix("cometail-stdin-")
                    .tempdir()?,
            )
        } else {
            None
        };
        let sources = Arc::new(Self {
            streams: RwLock::default(),
            watcher: Watcher::new(config.poll),
            config: config.clone(),
            tracker,
            cancel,
            spool_dir,
        });
        let mut globs = Vec::new();
        for source in &config.sources {
            match source {
                Source::File(path) => {
                    let name = path.display().to_string();
                    sources
                        .add(path.clone(), name, true, true, None, None)
                        .await;
                }
                Source::Stdin => {
                    let dir = sources
                        .spool_dir
                        .as_ref()
                        .map(|d| d.path().to_path_buf())
                        .unwrap_or_default();
                    let path = dir.join("stdin");
                    File::create(&path)?;
                    let progress = Arc::new(SpoolProgress::default());
                    let stream = sources
                        .add(
                            path.clone(),
                            "-".into(),
                            false,
                            false,
                            Some(progress.clone()),
                            None,
                        )
                        .await;
                    spawn_stdin_spool(path, config.spool_bytes, stream, progress);
                }
                Source::Glob(pattern) => {
                    for (path, label) in glob_matches(pattern) {
                        let name = path.display().to_string();
                        // A file that an earlier pattern or path already names is one stream.
                        if sources.list().iter().any(|s| s.name() == name) {
                            continue;
                        }
                        sources.add(path, name, true, true, None, Some(label)).await;
                    }
                    globs.push(pattern.clone());
                }
            }
        }
        if !globs.is_empty() {
            let this = sources.clone();
            sources
                .tracker
                .spawn(async move { this.rescan_globs(globs).await });
        }
        Ok(sources)
    }

    /// Every stream, in order.
    pub fn list(&self) -> Vec<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The stream with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|s| s.id().as_str() == id)
            .cloned()
    }

    /// Adds a stream for `path`, looks at it once, and starts its follower task (which
    /// reports to `spool` what it opens, for the stdin spool).
    async fn add(
        self: &Arc<Self>,
        path: PathBuf,
        name: String,
        announce_rotation: bool,
        start_at_end: bool,
        spool: Option<Arc<SpoolProgress>>,
        label: Option<String>,
    ) -> Arc<Stream> {
        let base = if name == "-" {
            StreamId::from_name("stdin")
        } else {
            StreamId::from_name(&label.unwrap_or_else(|| {
                path.file_name()
                    .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned())
            }))
        };
        let limits = StreamLimits {
            cache_bytes: self.config.cache_bytes,
            max_line_bytes: self.config.max_line_bytes,
        };
        let stream = {
            let mut streams = self.streams.write().unwrap_or_else(PoisonError::into_inner);
            let taken: HashSet<&str> = streams.iter().map(|s| s.id().as_str()).collect();
            let id = (1..)
                .map(|n| {
                    if n == 1 {
                        base.clone()
                    } else {
                        base.with_suffix(n)
                    }
                })
                .find(|id| !taken.contains(id.as_str()))
                .expect("an unbounded range always yields a free id");
            let stream = Arc::new(Stream::new(id, name, limits));
            streams.push(stream.clone());
            stream
        };
        let opts = FollowOptions {
            max_line_bytes: self.config.max_line_bytes,
            grace: self.config.rotate_grace,
            announce_rotation,
            start_at_end,
        };
        let mut follower = Follower::new(path, opts);
        // The first look happens before the server answers anyone, so that the first reader
        // already sees the file's state and history.
        let first = tokio::task::spawn_blocking(move || {
            let step = follower.step(Instant::now());
            (follower, step)
        })
        .await;
        match first {
            Ok((follower, step)) => {
                if let Some(spool) = &spool {
                    spool.report(&step.events);
                }
                stream.apply(step.events);
                // Like `tail -F`, say at start when a named file cannot be followed yet.
                let summary = stream.summary();
                if let Some(reason) = summary.reason.filter(|_| summary.state != "following") {
                    tracing::warn!(
                        "{}: {} ({reason}); following it when it appears",
                        crate::escape_for_log(&summary.name),
                        summary.state
                    );
                }
                let this = self.clone();
                let s = stream.clone();
                self.tracker
                    .spawn(async move { this.follow(s, follower, spool).await });
            }
            Err(_) => {
                if let Some(spool) = &spool {
                    spool.stop();
                }
            }
        }
        stream
    }

    /// The follower task of one stream.
    async fn follow(
        self: Arc<Self>,
        stream: Arc<Stream>,
        mut follower: Follower,
        spool: Option<Arc<SpoolProgress>>,
    ) {
        // However the task ends, the spool must not wait for it any more.
        let _stop = spool.clone().map(StopOnDrop);
        let wake = Arc::new(Notify::new());
        let mut watched = self.watcher.watch(follower.path(), &wake);
        loop {
            let result = tokio::task::spawn_blocking(move || {
                let step = follower.step(Instant::now());
                (follower, step)
            })
            .await;
            let Ok((f, step)) = result else {
                tracing::error!(stream = %stream.id(), "follower panicked; the stream stops");
                return;
            };
            follower = f;
            let rewatch = step
                .events
                .iter()
                .any(|e| !matches!(e, Event::Lines { .. }));
            if let Some(spool) = &spool {
                spool.report(&step.events);
            }
            stream.apply(step.events);
            if rewatch || !watched {
                watched = self.watcher.watch(follower.path(), &wake);
            }
            if step.more {
                if self.cancel.is_cancelled() {
                    return;
                }
                continue;
            }
            let tick = if step.draining {
                // Never slower than the poll interval the user asked for.
                DRAIN_TICK.min(self.config.poll_interval)
            } else if watched && stream.is_following() {
                SAFETY_TICK
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(tick) => {}
                () = self.cancel.cancelled() => return,
            }
        }
    }

    /// Evaluates the glob patterns again every tick; new matches become streams whose file is
    /// read from its first byte (it is new).
    async fn rescan_globs(self: Arc<Self>, patterns: Vec<String>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(GLOB_TICK) => {}
                () = self.cancel.cancelled() => return,
            }
            let mut known: HashSet<String> =
                self.list().iter().map(|s| s.name().to_owned()).collect();
            let scan = patterns.clone();
            let found = tokio::task::spawn_blocking(move || {
                scan.iter()
                    .flat_map(|p| glob_matches(p))
                    .collect::<Vec<_>>()
            })
            .await;
            let Ok(found) = found else { continue };
            for (path, label) in found {
                let name = path.display().to_string();
                // `insert`, not `contains`: two patterns may match the same new file.
                if known.insert(name.clone()) {
                    tracing::info!("new file matches: {}", crate::escape_for_log(&name));
                    self.add(path, name, true, false, None, Some(label)).await;
                }
            }
        }
    }
}

/// Regular files matching `pattern`, sorted (so ids are stable for a given command line).
fn glob_matches(pattern: &str) -> Vec<(PathBuf, String)> {
    let Ok(paths) = glob::glob(pattern) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    // Ids keep what tells matches apart: the part of the path the pattern matched, so
    // `/var/log/*/access.log` gives `nginx_access.log` and `apache_access.log`.
    let fixed: PathBuf = Path::new(pattern)
        .components()
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .collect();
    found
        .into_iter()
        .map(|path| {
            let label = path
                .strip_prefix(&fixed)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            (path, label)
        })
        .collect()
}

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
struct SpoolProgress {
    /// Inode of the file the follower opened last, and whether the follower has stopped.
    state: Mutex<(Option<u64>, bool)>,
    changed: Condvar,
}

impl SpoolProgress {
    /// Notes the file a step opened, if any.
    fn report(&self, events: &[Event]) {
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
    fn stop(&self) {
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
struct StopOnDrop(Arc<SpoolProgress>);

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
fn spawn_stdin_spool(
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
    use super::*;
    use crate::tail::line_text;

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
