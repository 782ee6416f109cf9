//! The set of streams and the tasks that feed them.
//!
//! [`Sources`] is the registry: it turns the command line's paths into streams, gives each a
//! unique id, and answers `list` and `get`. What a stream follows is its `Kind`: a path named
//! as is, a match of a glob pattern (patterns are re-evaluated while running, `glob.rs`), or
//! standard input, spooled to private temporary files so that it has history and resume like a
//! file (`spool.rs`). Each stream gets one follower task (`task.rs`). No request parameter
//! ever becomes a path: streams are only what was named here.

mod command;
mod glob;
mod options;
mod runner;
mod spool;
mod task;

use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::stream::{MemoryBudget, Stream, StreamId, StreamLimits};
use crate::tail::{FollowOptions, StepPool, Watcher};

pub use command::{CommandSpec, shown_env_value};
pub use options::{Of, SourceOptions, check_name};
use spool::SpoolProgress;

/// One thing to follow, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path, followed whether or not it exists yet.
    File(PathBuf),
    /// A glob pattern, evaluated again while running.
    Glob(String),
    /// Standard input (`-`).
    Stdin,
    /// A command the operator configured (`--cmd`), run and restarted (`command.rs`).
    Command(CommandSpec),
}

/// What the sources need to know, taken from the validated configuration (so that this layer
/// does not depend on `config`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// What to follow, in command-line order.
    pub sources: Vec<Source>,
    /// Longest line kept whole.
    pub max_line_bytes: usize,
    /// How long a rotated-away file is still read.
    pub rotate_grace: Duration,
    /// Poll instead of using file events.
    pub poll: bool,
    /// Poll interval when polling.
    pub poll_interval: Duration,
    /// Bound on the stdin spool on disk.
    pub spool_bytes: u64,
    /// Memory for recent entries, per stream.
    pub cache_bytes: usize,
    /// The zone of timestamps written without one (`--timezone`).
    pub timezone: crate::parse::Zone,
    /// Whether continuation lines join the record before them (`--records`).
    pub records: bool,
    /// Memory for recent entries, all streams together.
    pub memory: usize,
    /// How long a deleted glob match is listed as `gone` before its stream is dropped.
    pub retire_after: Duration,
    /// Where files' history continues (their rotated siblings); `None`: it does not.
    pub rotated: Option<crate::stream::Rotated>,
    /// What the configuration file's tables say of some of the sources.
    pub options: Vec<(Of, SourceOptions)>,
}

impl Settings {
    /// The options `source`'s table gave, if it had one.
    fn options(&self, source: &Source) -> SourceOptions {
        self.options
            .iter()
            .find(|(of, _)| of.names(source))
            .map(|(_, o)| o.clone())
            .unwrap_or_default()
    }
}

/// What a stream follows; it decides the stream's id, where the first look starts and whether
/// a replaced file is announced.
#[derive(Debug, Clone)]
enum Kind {
    /// A path named on the command line: its id is its file name, and the first look starts
    /// at the end of the file (like `tail -F`).
    File,
    /// A match of a glob pattern. `label` is the part of the path the pattern matched (its
    /// id). A match found while running (`appeared`) is a new file, read from its first byte.
    GlobMatch { label: String, appeared: bool },
    /// Standard input, copied into the spool file the stream follows. A spool rollover is no
    /// news to readers (no `rotated` notice), and everything is read from the first byte.
    Stdin(Arc<SpoolProgress>),
    /// A command's output, spooled like standard input's; its id is the command's name.
    Command {
        name: String,
        progress: Arc<SpoolProgress>,
    },
}

/// How often the caches are checked against the memory budget, for streams that are not
/// appending (an appending stream checks at every batch).
const BUDGET_TICK: Duration = Duration::from_secs(1);

impl Kind {
    /// The id the stream would like, before collisions are resolved.
    fn id_base(&self, path: &std::path::Path, name: &str) -> StreamId {
        match self {
            Self::File => StreamId::from_name(
                &path
                    .file_name()
                    .map_or_else(|| name.to_owned(), |n| n.to_string_lossy().into_owned()),
            ),
            Self::GlobMatch { label, .. } => StreamId::from_name(label),
            Self::Stdin(_) => StreamId::from_name("stdin"),
            Self::Command { name, .. } => StreamId::from_name(name),
        }
    }

    fn follow_options(&self, config: &Settings) -> FollowOptions {
        FollowOptions {
            max_line_bytes: config.max_line_bytes,
            grace: config.rotate_grace,
            announce_rotation: !matches!(self, Self::Stdin(_) | Self::Command { .. }),
            start_at_end: matches!(
                self,
                Self::File
                    | Self::GlobMatch {
                        appeared: false,
                        ..
                    }
            ),
        }
    }

    /// Whether the stream is dropped once its file and history are gone: only glob matches
    /// are (a path named on the command line is waited for, like `tail -F`).
    fn retires(&self) -> bool {
        matches!(self, Self::GlobMatch { .. })
    }

    /// The spool to report to what the follower opens, for standard input.
    fn spool(&self) -> Option<&Arc<SpoolProgress>> {
        match self {
            Self::Stdin(progress) | Self::Command { progress, .. } => Some(progress),
            _ => None,
        }
    }
}

/// The streams, in command-line order, and what feeds them.
#[derive(Debug)]
pub struct Sources {
    streams: RwLock<Vec<Arc<Stream>>>,
    budget: Arc<MemoryBudget>,
    watcher: Watcher,
    /// Bounds the blocking threads that step followers, however many streams there are.
    steps: StepPool,
    config: Arc<Settings>,
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
        config: Arc<Settings>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> std::io::Result<Arc<Self>> {
        let spooled = |s: &Source| matches!(s, Source::Stdin | Source::Command(_));
        let spool_dir = if config.sources.iter().any(spooled) {
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
            budget: Arc::new(MemoryBudget::new(config.memory)),
            watcher: Watcher::new(config.poll),
            steps: StepPool::default(),
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
                    let options = config.options(source);
                    sources.add(path.clone(), name, Kind::File, &options).await;
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
                    let kind = Kind::Stdin(progress.clone());
                    let options = config.options(source);
                    let stream = sources.add(path.clone(), "-".into(), kind, &options).await;
                    spool::spawn(
                        path,
                        config.spool_bytes,
                        config.max_line_bytes,
                        stream,
                        progress,
                    );
                }
                Source::Command(spec) => {
                    let dir = sources
                        .spool_dir
                        .as_ref()
                        .map(|d| d.path().to_path_buf())
                        .unwrap_or_default();
                    // `.out`, so that a rollover's `.1` never names another command's spool file.
                    let path = dir.join(format!("cmd-{}.out", spec.name));
                    File::create(&path)?;
                    let progress = Arc::new(SpoolProgress::default());
                    let kind = Kind::Command {
                        name: spec.name.clone(),
                        progress: progress.clone(),
                    };
                    let options = config.options(source);
                    let stream = sources
                        .add(path.clone(), spec.name.clone(), kind, &options)
                        .await;
                    let spool = command::Spool {
                        path,
                        segment_bytes: config.spool_bytes / 2,
                        line_bytes: u64::try_from(config.max_line_bytes)
                            .unwrap_or(u64::MAX)
                            .saturating_add(1),
                        progress,
                    };
                    command::spawn(
                        spec.clone(),
                        spool,
                        stream,
                        &sources.tracker,
                        sources.cancel.clone(),
                    );
                }
                Source::Glob(pattern) => {
                    let options = config.options(source);
                    for (path, label) in glob::matches(pattern) {
                        let name = path.display().to_string();
                        // A file that an earlier pattern or path already names is one stream.
                        if sources.list().iter().any(|s| s.name() == name) {
                            continue;
                        }
                        let kind = Kind::GlobMatch {
                            label,
                            appeared: false,
                        };
                        sources.add(path, name, kind, &options).await;
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
        let this = sources.clone();
        sources
            .tracker
            .spawn(async move { this.sweep_budget().await });
        Ok(sources)
    }

    /// Holds quiet streams to their share of the memory budget while it is over its limit.
    async fn sweep_budget(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(BUDGET_TICK) => {}
                () = self.cancel.cancelled() => return,
            }
            if self.budget.is_over() {
                for stream in self.list() {
                    stream.enforce_budget();
                }
            }
        }
    }

    /// Drops `stream` from the registry: new requests no longer find it, and its memory is
    /// freed once the last reader still holding it lets go.
    fn retire(&self, stream: &Arc<Stream>) {
        self.streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|s| !Arc::ptr_eq(s, stream));
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

    /// Adds a stream for `path` under a free id (its table's `name`, if it gave one), with
    /// its table's format and rotated globs, looks at it once, and starts its follower task.
    async fn add(
        self: &Arc<Self>,
        path: PathBuf,
        name: String,
        kind: Kind,
        options: &SourceOptions,
    ) -> Arc<Stream> {
        let base = match &options.name {
            Some(given) => StreamId::from_name(given),
            None => kind.id_base(&path, &name),
        };
        let limits = StreamLimits {
            cache_bytes: self.config.cache_bytes,
            max_line_bytes: self.config.max_line_bytes,
            record_lines: if self.config.records {
                crate::parse::records::MAX_LINES
            } else {
                1
            },
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
            let stream = Arc::new(
                Stream::new(id, name, limits, self.budget.clone())
                    .with_zone(self.config.timezone.clone())
                    .with_pinned(options.format),
            );
            // `--rotated` globs are every file's history; a table's are its own file's only.
            let rotated = match (&self.config.rotated, options.rotated.is_empty()) {
                (None, true) => None,
                (shared, _) => {
                    let mut patterns = shared
                        .as_ref()
                        .map(|r| r.patterns.clone())
                        .unwrap_or_default();
                    patterns.extend(options.rotated.iter().cloned());
                    Some(crate::stream::Rotated { patterns })
                }
            };
            if let (Some(rotated), false) = (rotated, matches!(kind, Kind::Stdin(_))) {
                stream.set_rotated(rotated);
            }
            streams.push(stream.clone());
            stream
        };
        self.start_task(path, kind, stream.clone()).await;
        stream
    }
}
