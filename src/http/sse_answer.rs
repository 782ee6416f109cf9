//! The event of a single-stream SSE connection, encoded once per batch and shared by every
//! reader at the same cursor (`Stream::share_answer`), and what the live edge writes from it
//! (`edge.rs`). The `Feed` (`sse.rs`) and the relay's walk ask the same question, "the event
//! after cursor C at version V", here.

use bytes::{BufMut, Bytes, BytesMut};

use super::edge::Verdict;
use super::params::DEFAULT_LIMIT;
use super::read::{cached_after, page_json};
use crate::stream::{Answer, Cursor, Page, Query, Stream};

/// The event of a single-stream connection for `page`.
pub(super) fn single_event(page: &Page) -> Bytes {
    let data = page_json(page, None);
    let mut out = BytesMut::with_capacity(data.len() + 64);
    out.put_slice(b"event: entries\nid: ");
    out.put_slice(page.next.to_string().as_bytes());
    out.put_slice(b"\ndata: ");
    out.put_slice(&data);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// Encodes `page` (entries after `after` at `version`) and offers it to every reader asking
/// the same (`Stream::shared_answer`).
pub(super) fn share(stream: &Stream, after: Cursor, version: u64, page: &Page) -> Answer {
    let bytes = single_event(page);
    // Checked after encoding, so `complete` covers every entry of `version` (entries are
    // cached before the version is bumped).
    let complete = stream
        .read_cached(&Query::After(page.next), 1)
        .is_some_and(|p| p.entries.is_empty());
    let answer = Answer {
        bytes,
        next: page.next,
        complete,
    };
    stream.share_answer(after, version, answer.clone());
    answer
}

/// What the relay writes to the clients parked at `after` on `stream`'s edge at `version`
/// (`edge.rs`): the shared answer, read from the cache alone; anything that needs more goes
/// back to the clients' own tasks.
pub(super) fn live_verdict(stream: &Stream, after: Cursor, version: u64) -> Verdict {
    if let Some(answer) = stream.shared_answer(after, version) {
        return Verdict::Event(answer);
    }
    match cached_after(stream, after, DEFAULT_LIMIT) {
        Some(page) if page.entries.is_empty() => Verdict::Nothing,
        Some(page) => Verdict::Event(share(stream, after, version, &page)),
        None => Verdict::Unpark,
    }
}
