//! A `q` read that goes on into the stream's rotated files, sifted there as in the stream's
//! own generations (`history::sift`): only matches become entries, and blocks the query's
//! line prefilter does not hit are passed over.

use std::sync::Arc;

use super::super::error::ApiError;
use super::super::read::chain;
use super::{Filter, SIFT_BYTES, Scanned, seen};
use crate::history::Chain;
use crate::stream::{Cursor, Entry, Page, Sieve, Stream};

/// Up to `room` entries after the member cursor `at` that pass `q`, sifted through the
/// stream's rotated files ([`Chain::sift_after`]), and what was examined; `None` when `at`
/// names no member, or when nothing is left to examine in them: the tested read then reads on
/// (and hands over to the stream's own history).
pub(super) async fn sifted_chain(
    stream: &Arc<Stream>,
    at: Cursor,
    room: usize,
    q: &Filter,
) -> Result<Option<(Page, Scanned)>, ApiError> {
    in_chain(stream, at, q, move |chain, s, from, sieve| {
        let (entries, last, _) = chain.sift_after(s, from, room, sieve).ok()?;
        let next = last?;
        // Before the first match, only lines the query does not match were examined.
        let prev = Some(entries.first().map_or(next, |e| e.cursor));
        let page = Page {
            entries,
            next,
            prev,
        };
        Some((page, seen(sieve)))
    })
    .await
}

/// Up to `room` entries before the member cursor `at` that pass `q`, sifted back through the
/// stream's rotated files ([`Chain::sift_before`]), in stream order, with the cursor before
/// which nothing was examined (`None`: the oldest file's start) and what was examined;
/// `None` when `at` names no member or nothing was examined: the unfiltered reader then
/// reads on.
pub(super) async fn sifted_chain_back(
    stream: &Arc<Stream>,
    at: Cursor,
    room: usize,
    q: &Filter,
) -> Result<Option<(Vec<Entry>, Option<Cursor>, Scanned)>, ApiError> {
    in_chain(stream, at, q, move |chain, s, from, sieve| {
        let (found, prev) = chain.sift_before(s, from, room, sieve).ok()??;
        if found.is_empty() && prev.is_some_and(|p| chain.resolve(&p) == Some(from)) {
            return None;
        }
        Some((found, prev, seen(sieve)))
    })
    .await
}

/// `read`, on a blocking thread, over the chain of `stream` from where the member cursor `at`
/// points, with a sieve for `q`; `None` when `at` is not a member cursor or names no member.
async fn in_chain<T: Send + 'static>(
    stream: &Arc<Stream>,
    at: Cursor,
    q: &Filter,
    read: impl FnOnce(&Chain, &Stream, (usize, u64), &mut Sieve<'_>) -> Option<T> + Send + 'static,
) -> Result<Option<T>, ApiError> {
    if stream.rotated().is_none() || !crate::history::is_member_cursor(&at) {
        return Ok(None);
    }
    let chain = chain(stream).await?;
    let (s, q) = (stream.clone(), q.clone());
    tokio::task::spawn_blocking(move || {
        let from = chain.resolve(&at)?;
        let mut sieve = Sieve::new(&q, SIFT_BYTES);
        read(&chain, &s, from, &mut sieve)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading history: {e}")))
}
