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
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
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
                    sources.add(path.clone(), name, true, true).await;
                }
                Source::Stdin => {
                    let dir = sources
                        .spool_dir
                        .as_ref()
                        .map(|d| d.path().to_path_buf())
                        .unwrap_or_default();
                    let path = dir.join("stdin");
                    File::create(&path)?;
                    let stream = sources.add(path.clone(), "-".into(), false, false).await;
                    spawn_stdin_spool(path, config.spool_bytes, stream);
                }
                Source::Glob(pattern) => {
                    for path in glob_matches(pattern) {
                        let name = path.display().to_string();
                        // A file that an earlier pattern or path already names is one stream.
                        if sources.list().iter().any(|s| s.name() == name) {
                            continue;
                        }
                        sources.add(path, name, true, true).await;
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

    /// Adds a stream for `path`, looks at it once, and starts its follower task.
    async fn add(
        self: &Arc<Self>,
        path: PathBuf,
        name: String,
        announce_rotation: bool,
        start_at_end: bool,
    ) -> Arc<Stream> {
        let base = if name == "-" {
            StreamId::from_name("stdin")
        } else {
            StreamId::from_name(
                &path
                    .file_name()
                    .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned()),
            )
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
        if let Ok((follower, step)) = first {
            stream.apply(step.events);
            let this = self.clone();
            let s = stream.clone();
            self.tracker
                .spawn(async move { this.follow(s, follower).await });
        }
        stream
    }

    /// The follower task of one stream.
    async fn follow(self: Arc<Self>, stream: Arc<Stream>, mut follower: Follower) {
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
            for path in found {
                let name = path.display().to_string();
                // `insert`, not `contains`: two patterns may match the same new file.
                if known.insert(name.clone()) {
                    tracing::info!("new file matches: {}", crate::escape_for_log(&name));
                    self.add(path, name, true, false).await;
                }
            }
        }
    }
}

/// Regular files matching `pattern`, sorted (so ids are stable for a given command line).
fn glob_matches(pattern: &str) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob(pattern) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}

/// Copies standard input into the spool at `path` on a thread of its own (reading stdin
/// blocks and cannot be cancelled; the thread ends with the process or at end of input).
///
/// The spool is bounded by `spool_bytes`: when the current file reaches half of it, it is
/// renamed to `stdin.1` (replacing, and so deleting, the previous one) and a new file is
/// started, which the follower sees as a rotation. Readers whose cursor pointed into a deleted
/// spool file get a `gap`.
fn spawn_stdin_spool(path: PathBuf, spool_bytes: u64, stream: Arc<Stream>) {
    let spawned = std::thread::Builder::new()
        .name("stdin-spool".into())
        .spawn(move || {
            if let Err(e) = spool_stdin(&path, spool_bytes / 2) {
                tracing::warn!("standard input: {e}");
            }
            drop(stream);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the stdin spool: {e}");
    }
}

fn spool_stdin(path: &Path, segment_bytes: u64) -> std::io::Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut out = OpenOptions::new().append(true).open(path)?;
    let mut written = 0u64;
    let mut last = b'\n';
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match stdin.read(&mut buf) {
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
