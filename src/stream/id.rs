//! A stream's identifier: URL-safe text derived from the name it follows.

use std::fmt;

/// A stream's URL-safe identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    /// An id derived from a file name: characters outside `[A-Za-z0-9._-]` become `_`.
    pub fn from_name(name: &str) -> Self {
        let id: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // "." and ".." would be read as path segments by clients; keep ids plain.
        if id.is_empty() || id.chars().all(|c| c == '.') {
            Self(format!("stream{id}"))
        } else {
            Self(id)
        }
    }

    /// `self` with a numeric suffix, to make a colliding id unique.
    pub fn with_suffix(&self, n: usize) -> Self {
        Self(format!("{}-{n}", self.0))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
