//! The follower's vocabulary: what it is told ([`FollowOptions`]) and what it says
//! ([`Event`], [`Notice`], [`FileState`], [`Step`]).
//!
//! These types are shared by the follower, the stream that turns events into entries, and the
//! per-stream task that decides when to step again; they hold no logic of their own.

use std::sync::Arc;
use std::time::Duration;

use super::generation::Generation;
use super::lines::RawLine;

/// How a follower behaves; fixed for its life.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Longest line kept whole; longer lines are cut.
    pub max_line_bytes: usize,
    /// How long a rotated-away or deleted file is still read.
    pub grace: Duration,
    /// Whether a new file under the path is announced with a `rotated` notice (not for the
    /// stdin spool, whose files are an implementation detail).
    pub announce_rotation: bool,
    /// Whether the file present at the first look is read from its last line (`tail`) rather
    /// than from its first byte.
    pub start_at_end: bool,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            max_line_bytes: 1 << 20,
            grace: Duration::from_secs(3),
            announce_rotation: true,
            start_at_end: true,
        }
    }
}

/// What a notice says happened to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The path now names a new file.
    Rotated,
    /// The file shrank or was rewritten; reading restarted at its start.
    Truncated,
    /// Entries were skipped that cannot be replayed.
    Gap,
    /// Lines written to a rotated file after the path named a new one: they follow, then
    /// the new file's lines go on.
    Late,
}

impl NoticeKind {
    /// The word used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Truncated => "truncated",
            Self::Gap => "gap",
            Self::Late => "late",
        }
    }
}

/// A notice with its human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// Details for people.
    pub detail: String,
}

/// The state of the followed path, as shown to readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// A file is open and followed.
    Following,
    /// No file to follow yet; the reason says why.
    Waiting(String),
    /// The path cannot be followed for now; the reason says why. Following resumes by itself.
    Error(String),
}

/// What a step found.
#[derive(Debug, Clone)]
pub enum Event {
    /// A generation begins; its entries follow. `notice` comes before its first line, and
    /// live delivery starts at byte `from` (bytes before it are history on disk).
    Opened {
        /// The new generation.
        generation: Arc<Generation>,
        /// The notice that opens it, if it replaces another.
        notice: Option<Notice>,
        /// First byte delivered live.
        from: u64,
    },
    /// Complete lines of `generation`, in order.
    Lines {
        /// Their generation.
        generation: Arc<Generation>,
        /// The lines, in file order.
        lines: Vec<RawLine>,
    },
    /// The state of the path changed.
    State(FileState),
}

/// The outcome of one [`Follower::step`](super::Follower::step).
#[derive(Debug, Default)]
pub struct Step {
    /// What happened, in order.
    pub events: Vec<Event>,
    /// The step stopped early with more bytes to read: step again at once.
    pub more: bool,
    /// A replaced or deleted file is being drained: step again soon.
    pub draining: bool,
}
