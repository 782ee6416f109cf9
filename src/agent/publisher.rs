//! One stream's publisher: read after my cursor, publish one batch, wait for the ack, repeat.
//!
//! At most one batch is in flight per file, so memory is bounded by one batch whatever the
//! engine does; what is not yet published stays in the file. The cursor and the subject's
//! last sequence (`At`) only move on an ack, so every retry sends the same expectation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream as JsStream};
use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;

use super::Report;
use crate::engine::batch;
use crate::engine::{Engine, EngineError, patiently};
use crate::stream::{Cursor, Entry, Query, Stream};

/// Where the subject stands in the engine: its last batch, and the agent cursor of that
/// batch's last entry (`None` before the first batch of this file: then the first read is
/// the backfill).
#[derive(Debug, Clone, Copy)]
struct At {
    seq: u64,
    cursor: Option<Cursor>,
}

/// Why one publish did not go through.
enum Refusal {
    /// The subject's last message is not the one we expected: resume from it.
    WrongLast,
    /// No answer, or another failure: retry the same batch.
    Failed(String),
}

pub(super) async fn run(
    engine: Engine,
    js_stream: JsStream,
    stream: Arc<Stream>,
    backfill: usize,
    report: Arc<Report>,
    shutdown: CancellationToken,
) {
    let subject = report.subject.clone();
    let Some(mut at) = resume(&js_stream, &subject, &shutdown).await else {
        return;
    };
    report.published.store(at.seq, Ordering::Relaxed);
    tracing::debug!(
        "{subject}: the engine holds up to seq {} (cursor {:?})",
        at.seq,
        at.cursor
    );
    loop {
        let mut changed = stream.subscribe();
        changed.borrow_and_update();
        let query = at.cursor.map_or(Query::Last(backfill), Query::After);
        let s = stream.clone();
        let Ok(page) =
            tokio::task::spawn_blocking(move || s.read(&query, batch::MAX_ENTRIES)).await
        else {
            return;
        };
        tracing::debug!(
            "{subject}: read {query:?}: {} entries, next {}",
            page.entries.len(),
            page.next
        );
        if page.entries.is_empty() {
            report.caught_up();
            if at.cursor.is_none() {
                at.cursor = Some(page.next);
            }
            tokio::select! {
                res = changed.changed() => if res.is_err() { return },
                () = shutdown.cancelled() => return,
            }
            continue;
        }
        report.behind();
        let opening = (at.cursor.is_none() && page.prev.is_some()).then(|| {
            format!(
                "earlier lines of {} were not sent (backfill {backfill} entries); they are in the file on this host",
                stream.name()
            )
        });
        let (payload, taken) = encode(&page.entries, opening.as_deref());
        let first = page.entries[0].cursor;
        let last = page.entries[taken - 1].cursor;
        let mut pause = Duration::from_millis(100);
        let mut said = false;
        loop {
            match publish(
                &engine,
                &subject,
                at.seq,
                payload.clone(),
                first,
                last,
                taken,
            )
            .await
            {
                Ok(seq) => {
                    tracing::debug!("{subject}: batch of {taken} stored as seq {seq}");
                    at = At {
                        seq,
                        cursor: Some(last),
                    };
                    report.published.store(seq, Ordering::Relaxed);
                    let before = report
                        .entries
                        .fetch_add(u64::try_from(taken).unwrap_or(0), Ordering::Relaxed);
                    if before == 0 {
                        report.announce();
                    }
                    break;
                }
                Err(Refusal::WrongLast) => {
                    // Our own batch stored before an ack was lost, a dead run's late batch, or
                    // a second agent using this --host: go on from what the engine holds.
                    tracing::info!("{subject}: the engine holds a newer batch; resuming from it");
                    let Some(now) = resume(&js_stream, &subject, &shutdown).await else {
                        return;
                    };
                    // No batch of this file left at all: retention removed them (a file quiet
                    // for longer than the stream keeps entries). Go on after our own cursor;
                    // taking the engine's empty answer as a first publish would send the
                    // backfill, entries already published, again.
                    at = match now {
                        At { seq: 0, .. } if at.cursor.is_some() => At {
                            seq: 0,
                            cursor: at.cursor,
                        },
                        now => now,
                    };
                    break;
                }
                Err(Refusal::Failed(e)) => {
                    if !said {
                        tracing::warn!("{subject}: publishing failed ({e}); retrying");
                        said = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => return,
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// The payload of the entries that fit one batch, and how many that is (at least one).
fn encode(entries: &[Entry], opening: Option<&str>) -> (Bytes, usize) {
    let mut out = BytesMut::new();
    if let Some(detail) = opening {
        let notice = serde_json::json!({ "notice": "gap", "detail": detail });
        out.extend_from_slice(notice.to_string().as_bytes());
        out.extend_from_slice(b"\n");
    }
    let mut taken = 0;
    for entry in entries.iter().take(batch::MAX_ENTRIES) {
        let line = batch::strip_cursor(&entry.json);
        if taken > 0 && out.len() + line.len() + 1 > batch::MAX_BYTES {
            break;
        }
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\n");
        taken += 1;
    }
    (out.freeze(), taken)
}

/// Publishes one batch after the subject's message `expected`; the new message's sequence.
async fn publish(
    engine: &Engine,
    subject: &str,
    expected: u64,
    payload: Bytes,
    first: Cursor,
    last: Cursor,
    count: usize,
) -> Result<u64, Refusal> {
    let message = PublishMessage::build()
        .payload(payload)
        .expected_last_subject_sequence(expected)
        .header(batch::PREV, expected.to_string().as_str())
        .header(batch::FIRST, first.to_string().as_str())
        .header(batch::LAST, last.to_string().as_str())
        .header(batch::COUNT, count.to_string().as_str())
        .header(batch::FORMAT, batch::FORMAT_VERSION);
    let refusal = |e: async_nats::jetstream::context::PublishError| match e.kind() {
        PublishErrorKind::WrongLastSequence => Refusal::WrongLast,
        _ => Refusal::Failed(e.to_string()),
    };
    let ack = engine
        .js
        .send_publish(subject.to_owned(), message)
        .await
        .map_err(refusal)?
        .await
        .map_err(refusal)?;
    Ok(ack.sequence)
}

/// The subject's last batch as the stream leader has it; `None` on shutdown.
async fn resume(js_stream: &JsStream, subject: &str, shutdown: &CancellationToken) -> Option<At> {
    let what = format!("resuming {subject}");
    let found = patiently(&what, shutdown, || async {
        match js_stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => Ok(At {
                seq: m.sequence,
                // A message without our header (not from an agent) is published after, as
                // if this were the file's first publish.
                cursor: m
                    .headers
                    .get(batch::LAST)
                    .and_then(|v| v.as_str().parse().ok()),
            }),
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(At {
                seq: 0,
                cursor: None,
            }),
            Err(e) => Err(EngineError::Unavailable(e.to_string())),
        }
    })
    .await;
    found.ok().flatten()
}
