//! The limits of one stream: how much of it is cached, and how large a record may grow.

use crate::parse::records::Caps;

/// Limits of one stream; each bounds memory a stream holds.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Bytes of recent entries kept in memory (as allocated). Older entries are served from
    /// disk; at the limit the oldest cached entries are dropped. The [`MemoryBudget`](super::MemoryBudget) shared
    /// by all streams may hold a stream to less.
    pub cache_bytes: usize,
    /// Longest line kept whole (the follower's setting, needed to read history alike); also
    /// the most bytes of one multi-line record.
    pub max_line_bytes: usize,
    /// Most lines of one multi-line record (`--records off`: 1, every line its own entry).
    pub record_lines: usize,
}

impl StreamLimits {
    /// The bounds on one record.
    pub(super) fn caps(&self) -> Caps {
        Caps {
            lines: self.record_lines.max(1),
            bytes: self.max_line_bytes as u64,
        }
    }
}
