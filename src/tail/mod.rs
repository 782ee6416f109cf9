//! Following files: identity, line splitting, the follower state machine, and wake-ups.
//!
//! This module owns everything between a path on disk and complete lines with their byte
//! offsets. It knows nothing of HTTP or of readers: the follower turns file system facts into
//! [`Event`]s, and [`crate::stream`] turns those into entries. File events only *wake* a
//! follower ([`Watcher`]); they never carry data, so a missed or coalesced event costs latency,
//! never a line.

pub(crate) mod event;
pub(crate) mod follower;
pub(crate) mod generation;
pub(crate) mod identity;
pub(crate) mod lines;
pub(crate) mod open;
pub(crate) mod pool;
pub(crate) mod skipped;
pub(crate) mod watch;

pub use event::{Event, FileState, FollowOptions, Notice, NoticeKind, Step};
pub use follower::Follower;
pub use generation::Generation;
pub use identity::FileId;
pub use lines::{RawLine, Splitter, line_text};
pub use pool::StepPool;
pub use watch::{Also, Wake, Watcher};
