//! `merged`: two streams merged by event time, live (issue 11's figure "merged `order=time`
//! of 2 streams at 1,000 lines/s each: p99 append -> client within `--merge-delay` + 10 ms").
//!
//! Two files get timestamped lines (`2026-…Z INFO msg="cmt …"`, stamped with the time of
//! their `write`) at `--rate` lines/s each, from two writer threads; one client follows
//! `/api/events?streams=a.log,b.log&order=time` with the server's default `--merge-delay`
//! (250 ms). Per line it records append-to-receipt time; per stream, lost and doubled lines;
//! across streams, entries that came before one with a later stamp without being marked
//! `late`, and the `late` marks.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::client::now_ns;
use crate::http::{BodyDecoder, Conn};
use crate::marks::{LineFormat, for_each_mark};
use crate::report::Row;
use crate::scenario::Ctx;
use crate::server::Server;
use crate::sse::SseParser;
use crate::writer;

/// The server's default `--merge-delay`, which the target adds 10 ms to.
const MERGE_DELAY_MS: f64 = 250.0;
/// Beyond `--grace`: the last lines' record close and merge hold.
const MERGE_WAIT: Duration = Duration::from_secs(2);

/// What the client saw.
#[derive(Debug, Default)]
struct Seen {
    /// Append-to-receipt times, ms.
    latency: Vec<f64>,
    /// Per stream (a, b): how often each line number came.
    counts: [Vec<u32>; 2],
    /// Entries older than one before them, not marked `late`.
    out_of_order: u64,
    /// Entries marked `late`.
    late: u64,
}

/// The merged scenario at `rate` lines/s per stream for `duration`.
///
/// # Errors
/// The server does not start, the client cannot connect, or a writer fails.
pub(crate) async fn merged(ctx: &Ctx, rate: u64, duration: Duration) -> Result<Row> {
    let dir = ctx.fresh_dir("merged")?;
    let result = merged_in(ctx, &dir, rate, duration).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn merged_in(ctx: &Ctx, dir: &Path, rate: u64, duration: Duration) -> Result<Row> {
    let (a, b) = (dir.join("a.log"), dir.join("b.log"));
    std::fs::write(&a, "")?;
    std::fs::write(&b, "")?;
    let b_arg = b.to_string_lossy().into_owned();
    let server =
        Server::start_cometail(&ctx.launch, &a, &[&b_arg], Duration::from_secs(30)).await?;
    let lines = ((rate as f64) * duration.as_secs_f64()).round().max(1.0) as u64;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let client = tokio::spawn(receive(server.addr, lines, ready_tx));
    ready_rx.await.context("the client did not connect")?;
    ctx.log(format!(
        "merged: writing {lines} lines at {rate}/s to each of two files"
    ));
    let limit = duration * 3 + Duration::from_secs(10);
    let writers: Vec<_> = [a, b]
        .into_iter()
        .map(|path| {
            let plan = writer::Plan {
                path,
                rate,
                lines,
                line_bytes: ctx.line_bytes,
                format: LineFormat::Ts,
            };
            tokio::task::spawn_blocking(move || writer::write(&plan, limit))
        })
        .collect();
    let mut written = 0;
    for w in writers {
        written += w.await??.written;
    }
    let Ok(joined) = tokio::time::timeout(ctx.grace + MERGE_WAIT, client).await else {
        bail!(
            "the client lacked lines {:?} after the writers ended",
            ctx.grace + MERGE_WAIT
        );
    };
    let seen = joined??;
    server.stop().await;
    let mut lost = 0;
    let mut doubled = 0;
    for counts in &seen.counts {
        lost += counts.iter().skip(1).filter(|&&n| n == 0).count() as u64;
        doubled += counts
            .iter()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum::<u64>();
    }
    let mut latency = seen.latency;
    latency.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latency
            .get(((latency.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let p99 = at(0.99);
    let mut row = Row::new("merged", "cometail", format!("order=time 2 x {rate}/s"))
        .m("lines", written as f64)
        .m("p50_ms", at(0.5))
        .m("p99_ms", p99)
        .m("max_ms", at(1.0))
        .m("lost", lost as f64)
        .m("doubled", doubled as f64)
        .m("out_of_order", seen.out_of_order as f64)
        .m("late", seen.late as f64);
    row.note = format!(
        "target p99 <= {} ms: {}",
        MERGE_DELAY_MS + 10.0,
        if p99 <= MERGE_DELAY_MS + 10.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(row)
}

/// Follows the merged SSE until both streams' line `lines` came (or the caller gives up).
async fn receive(
    addr: SocketAddr,
    lines: u64,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<Seen> {
    let mut conn = Conn::open(addr, None).await?;
    conn.send_get(
        "/api/events?streams=a.log,b.log&order=time&last=0",
        "Accept: text/event-stream\r\n",
    )
    .await?;
    let head = conn.read_head().await?;
    if head.status != 200 {
        bail!("the merged SSE answered {}", head.status);
    }
    let _ = ready.send(());
    let n = usize::try_from(lines).unwrap_or(usize::MAX) + 1;
    let mut seen = Seen {
        counts: [vec![0; n], vec![0; n]],
        ..Seen::default()
    };
    let mut high = 0u64;
    let mut dec = BodyDecoder::new(head.body);
    let mut body = Vec::with_capacity(4096);
    let mut parser = SseParser::default();
    while seen.counts.iter().any(|c| c[n - 1] == 0) {
        let more = conn.read_body_some(&mut dec, &mut body).await?;
        let now = now_ns();
        let used = parser.feed(&body, |event, data| {
            if event != b"entries" {
                return;
            }
            let Ok(v) = serde_json::from_slice::<Value>(data) else {
                return;
            };
            let s = usize::from(v["stream"] != "a.log");
            for e in v["entries"].as_array().into_iter().flatten() {
                let late = e["late"] == true;
                seen.late += u64::from(late);
                let text = e["text"].as_str().unwrap_or_default();
                for_each_mark(text.as_bytes(), |seq, ts| {
                    seen.latency.push(now.saturating_sub(ts) as f64 / 1e6);
                    if let Some(c) = usize::try_from(seq)
                        .ok()
                        .and_then(|i| seen.counts[s].get_mut(i))
                    {
                        *c += 1;
                    }
                    // Stamps are to the millisecond.
                    let ms = ts / 1_000_000;
                    if ms < high && !late {
                        seen.out_of_order += 1;
                    }
                    high = high.max(ms);
                });
            }
        });
        body.drain(..used);
        if !more {
            bail!("server ended the merged event stream");
        }
    }
    Ok(seen)
}
