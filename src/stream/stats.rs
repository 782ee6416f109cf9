//! What a stream has taken in since the server started, for `/metrics`: lines, bytes, and the
//! notices the follower raised (rotations, truncations, gaps, late segments). Counted in
//! [`super::Stream::apply`], lock-free (relaxed atomics: each figure is only ever added to,
//! and a scrape needs no consistency between figures).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::tail::{Event, NoticeKind};

/// A stream's ingest counters; see the module documentation.
#[derive(Debug, Default)]
pub struct Stats {
    lines: AtomicU64,
    bytes: AtomicU64,
    rotated: AtomicU64,
    truncated: AtomicU64,
    gaps: AtomicU64,
    late: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Complete lines read from the files.
    pub lines: u64,
    /// Their bytes, line endings included (a cut long line counts whole).
    pub bytes: u64,
    /// `rotated` notices: the path named a new file.
    pub rotated: u64,
    /// `truncated` notices: the file shrank or was rewritten.
    pub truncated: u64,
    /// `gap` notices raised by the follower.
    pub gaps: u64,
    /// `late` notices: lines written to a rotated file after the path named a new one.
    pub late: u64,
}

impl Stats {
    /// Counts a follower's events.
    pub(super) fn record(&self, events: &[Event]) {
        for event in events {
            match event {
                Event::Lines { lines, .. } => {
                    let bytes: u64 = lines.iter().map(|l| l.len + 1).sum();
                    self.lines.fetch_add(lines.len() as u64, Ordering::Relaxed);
                    self.bytes.fetch_add(bytes, Ordering::Relaxed);
                }
                Event::Opened {
                    notice: Some(n), ..
                } => {
                    let counter = match n.kind {
                        NoticeKind::Rotated => &self.rotated,
                        NoticeKind::Truncated => &self.truncated,
                        NoticeKind::Gap => &self.gaps,
                        NoticeKind::Late => &self.late,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Event::Opened { notice: None, .. } | Event::State(_) => {}
            }
        }
    }

    /// The figures now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            lines: self.lines.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            rotated: self.rotated.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
        }
    }
}
