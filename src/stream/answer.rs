//! Answers encoded once and shared by every reader asking the same question at the same
//! version: the fan-out of one append to many followers costs one encoding.

use std::sync::PoisonError;

use bytes::Bytes;

use super::{Cursor, Stream};

/// An encoded answer to "entries after `after`", valid for readers at `version` or later.
#[derive(Debug, Clone)]
pub(super) struct SharedAnswer {
    after: Cursor,
    version: u64,
    answer: Answer,
}

/// An encoded answer shared by readers at the same cursor (see [`Stream::shared_answer`]).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The encoded event.
    pub bytes: Bytes,
    /// The cursor after its last entry.
    pub next: Cursor,
    /// Whether nothing followed `next` when it was encoded: a reader that sent it needs no
    /// further read until the version moves.
    pub complete: bool,
}

impl Stream {
    /// An answer another reader already encoded for "entries after `after`" at `version`
    /// (the value its `subscribe` receiver saw), and its `next`.
    ///
    /// When a line is appended, every reader waiting at the newest cursor asks the same
    /// question; the first encodes the answer and the rest send the same bytes, so a batch is
    /// encoded once however many clients follow the stream. Entries never change once
    /// appended, so an answer computed at one version is still a correct (prefix) answer at any
    /// later version; the version in the key only makes readers that saw newer entries compute
    /// a fresher answer.
    pub fn shared_answer(&self, after: Cursor, version: u64) -> Option<Answer> {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared
            .as_ref()
            .filter(|s| s.after == after && s.version == version)
            .map(|s| s.answer.clone())
    }

    /// Offers an encoded answer to readers asking the same question; see
    /// [`Stream::shared_answer`].
    pub fn share_answer(&self, after: Cursor, version: u64, answer: Answer) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.as_ref().is_none_or(|s| s.version <= version) {
            *shared = Some(SharedAnswer {
                after,
                version,
                answer,
            });
        }
    }
}
