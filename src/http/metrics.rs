//! `GET /metrics`: the Prometheus exposition, with the `prometheus-client` crate.
//!
//! Per-stream figures are read at scrape time from the streams themselves (a collector), so
//! streams a glob adds later appear without registration; what only this layer sees (open
//! streams by transport, authentication failures) is kept in metrics held by [`Metrics`].
//! Clients that ask for OpenMetrics (Prometheus does) get it; any other client gets the
//! classic text format 0.0.4, which Debian's `promtool check metrics` reads: the same text
//! without `# EOF`, and a counter's `HELP`/`TYPE` named like its `_total` sample.
//!
//! The route sits behind authentication when it is on (stream names are in the labels), and
//! is also served without it on `--metrics-bind`'s own listener ([`router`]).
//!
//! Client lag: every open streaming response (SSE, merged SSE, raw follow) holds a
//! [`ClientLag`] with its streams' positions and when it last had nothing left to read; a scrape counts, for each client, the cached entries
//! after its positions (`Stream::entries_after`, no disk read) and the seconds since then.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use super::AppState;
use super::error::ApiError;
use crate::sources::Sources;
use crate::stream::{Cursor, Stream};

/// Labels of the open-streams gauge: `transport`.
type Transport = [(&'static str, &'static str); 1];

/// The registry and the metrics the HTTP layer updates.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests refused for wrong credentials.
    pub(crate) auth_failures: Counter,
    /// Bytes of history whole-history searches examined.
    pub(crate) search_bytes: Counter,
    open_streams: Family<Transport, Gauge>,
    /// The open SSE responses' positions, by a number drawn from `next_client`.
    clients: Arc<Clients>,
}

/// Every open SSE response's [`ClientLag`], removed when the response ends.
#[derive(Debug, Default)]
struct Clients {
    open: Mutex<HashMap<u64, Arc<ClientLag>>>,
    next: AtomicU64,
}

/// Where one streaming client is: its streams and positions, and when it last had nothing
/// left to read (it was waiting for new entries when they came).
#[derive(Debug)]
pub(crate) struct ClientLag {
    at: Mutex<(Positions, Instant)>,
}

/// A client's streams, each with its position (the last entry sent).
type Positions = Vec<(Arc<Stream>, Cursor)>;

impl Default for ClientLag {
    /// No streams yet, caught up now.
    fn default() -> Self {
        Self {
            at: Mutex::new((Vec::new(), Instant::now())),
        }
    }
}

impl ClientLag {
    /// The client reads `streams` from `positions` (the same order).
    pub(crate) fn track(&self, streams: &[Arc<Stream>], positions: &[Cursor]) {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        at.0 = streams
            .iter()
            .cloned()
            .zip(positions.iter().copied())
            .collect();
    }

    /// The client's positions moved (same streams, same order as [`ClientLag::track`]).
    pub(crate) fn moved(&self, positions: &[Cursor]) {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        for (slot, pos) in at.0.iter_mut().zip(positions) {
            slot.1 = *pos;
        }
    }

    /// The client's position in its `i`th stream moved (a merge sends one stream at a time).
    pub(crate) fn moved_one(&self, i: usize, position: Cursor) {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = at.0.get_mut(i) {
            slot.1 = position;
        }
    }

    /// The client had read everything and was woken by new entries: it was not behind until
    /// now.
    pub(crate) fn caught_up(&self) {
        self.at.lock().unwrap_or_else(PoisonError::into_inner).1 = Instant::now();
    }

    /// The client, at the live edge of its one stream, was sent everything up to `position`
    /// at `now` (`edge.rs`).
    pub(crate) fn live(&self, position: Cursor, now: Instant) {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = at.0.first_mut() {
            slot.1 = position;
        }
        at.1 = now;
    }

    /// Entries behind (the most over its streams; `true`: more than the cache holds) and
    /// seconds behind (0 when no entry is waiting).
    fn lag(&self, now: Instant) -> (usize, bool, f64) {
        let at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut entries, mut beyond) = (0, false);
        for (stream, pos) in &at.0 {
            let (n, past) = stream.entries_after(*pos);
            entries = entries.max(n);
            beyond |= past;
        }
        let seconds = if entries > 0 || beyond {
            now.saturating_duration_since(at.1).as_secs_f64()
        } else {
            0.0
        };
        (entries, beyond, seconds)
    }
}

/// The transports a streaming response is counted under.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StreamKind {
    /// Server-Sent Events.
    Sse,
    /// `raw?follow=1`.
    Raw,
}

impl Metrics {
    /// The metrics of the HTTP layer, without the figures read from elsewhere at scrape time
    /// (see [`Metrics::collect`]).
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let auth_failures = Counter::default();
        registry.register(
            "cometail_auth_failures",
            "Requests refused for wrong credentials (missing ones are not counted)",
            auth_failures.clone(),
        );
        let search_bytes = Counter::default();
        registry.register(
            "cometail_search_scanned_bytes",
            "Bytes of history examined by whole-history searches, as their progress reports them",
            search_bytes.clone(),
        );
        let open_streams = Family::<Transport, Gauge>::default();
        registry.register(
            "cometail_open_streams",
            "Streaming responses open now, by transport (sse, raw)",
            open_streams.clone(),
        );
        for kind in [StreamKind::Sse, StreamKind::Raw] {
            let _ = open_streams.get_or_create(&kind.labels());
        }
        Self {
            registry,
            auth_failures,
            search_bytes,
            open_streams,
            clients: Arc::default(),
        }
    }

    /// Adds the figures read at each scrape: the streams' counters and states, the held long
    /// polls (`max` minus the free permits), and the process's figures.
    pub(crate) fn collect(
        &mut self,
        sources: Arc<Sources>,
        long_polls: Arc<Semaphore>,
        max: usize,
    ) {
        self.registry.register_collector(Box::new(Figures {
            clients: self.clients.clone(),
            sources,
            long_polls,
            max_long_polls: max,
            started: SystemTime::now(),
        }));
    }

    /// Adds figures another part reads at scrape time (a hub's engine reads).
    pub(crate) fn register(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// Counts one open streaming response of `kind` until the guard is dropped.
    pub(crate) fn open(&self, kind: StreamKind) -> OpenStream {
        let gauge = self.open_streams.get_or_create(&kind.labels()).clone();
        gauge.inc();
        let lag = Arc::new(ClientLag::default());
        let id = self.clients.next.fetch_add(1, Ordering::Relaxed);
        self.clients
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, lag.clone());
        OpenStream {
            gauge,
            lag,
            id,
            clients: self.clients.clone(),
        }
    }
}

impl StreamKind {
    fn labels(self) -> Transport {
        let name = match self {
            Self::Sse => "sse",
            Self::Raw => "raw",
        };
        [("transport", name)]
    }
}

/// One open streaming response, counted while it lives (it moves into the response body).
#[derive(Debug)]
pub(crate) struct OpenStream {
    gauge: Gauge,
    lag: Arc<ClientLag>,
    id: u64,
    clients: Arc<Clients>,
}

impl OpenStream {
    /// Where the client is, for the lag figures.
    pub(crate) fn lag(&self) -> &Arc<ClientLag> {
        &self.lag
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.gauge.dec();
        self.clients
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Upper bounds of the entries-behind buckets.
const LAG_ENTRIES: [usize; 5] = [0, 10, 100, 1_000, 10_000];
/// Upper bounds of the seconds-behind buckets.
const LAG_SECONDS: [f64; 6] = [0.0, 1.0, 5.0, 30.0, 60.0, 600.0];

/// Figures read at scrape time.
#[derive(Debug)]
struct Figures {
    clients: Arc<Clients>,
    sources: Arc<Sources>,
    long_polls: Arc<Semaphore>,
    max_long_polls: usize,
    started: SystemTime,
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let streams = self.sources.list();
        let stats: Vec<_> = streams
            .iter()
            .map(|s| (s.id().as_str().to_owned(), s.stats()))
            .collect();
        let per_stream = |encoder: &mut DescriptorEncoder,
                          name: &str,
                          help: &str,
                          value: &dyn Fn(&crate::stream::StatsSnapshot) -> u64|
         -> Result<(), std::fmt::Error> {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (id, s) in &stats {
                let labels = [("stream", id.as_str())];
                ConstCounter::new(value(s)).encode(family.encode_family(&labels)?)?;
            }
            Ok(())
        };
        per_stream(
            &mut encoder,
            "cometail_stream_lines",
            "Complete lines read live from the stream's files since the start (what a file held when first opened is history, not counted).",
            &|s| s.lines,
        )?;
        per_stream(
            &mut encoder,
            "cometail_stream_bytes",
            "Bytes of those lines, line endings included.",
            &|s| s.bytes,
        )?;
        let mut notices = encoder.encode_descriptor(
            "cometail_stream_notices",
            "Notices raised while following: kind is rotated (the path names a new file), truncated, gap (lines were lost) or late (lines written to a rotated file after the path named a new one, delivered as a late segment).",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (id, s) in &stats {
            for (kind, n) in [
                ("rotated", s.rotated),
                ("truncated", s.truncated),
                ("gap", s.gaps),
                ("late", s.late),
            ] {
                let labels = [("stream", id.as_str()), ("kind", kind)];
                ConstCounter::new(n).encode(notices.encode_family(&labels)?)?;
            }
        }
        let mut states = encoder.encode_descriptor(
            "cometail_stream_state",
            "1 for the stream's state now (following, waiting, error, exited), 0 for the others.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for stream in &streams {
            let summary = stream.summary();
            for state in ["following", "waiting", "error", "exited"] {
                let labels = [("stream", summary.id.as_str()), ("state", state)];
                let v = i64::from(summary.state == state);
                ConstGauge::new(v).encode(states.encode_family(&labels)?)?;
            }
        }
        self.encode_lag(&mut encoder)?;
        let held = self
            .max_long_polls
            .saturating_sub(self.long_polls.available_permits());
        gauge(
            &mut encoder,
            "cometail_held_long_polls",
            "Long polls waiting for new entries now.",
            i64::try_from(held).unwrap_or(i64::MAX),
        )?;
        if let Some(n) = open_fds() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors.",
                n,
            )?;
        }
        if let Some(n) = resident_bytes() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                n,
            )?;
        }
        let started = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the server since the Unix epoch, in seconds.",
            started,
        )
    }
}

impl Figures {
    /// Open SSE clients by how far behind their streams' ends they are: cumulative buckets
    /// (label `at_most`: `le` is for histograms only) of gauges, since the figure is a census
    /// now, not a count of events.
    fn encode_lag(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let clients: Vec<Arc<ClientLag>> = self
            .clients
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let now = Instant::now();
        let lags: Vec<(usize, bool, f64)> = clients.iter().map(|c| c.lag(now)).collect();
        let mut family = encoder.encode_descriptor(
            "cometail_clients_behind_entries",
            "Open SSE clients at most `at_most` entries behind the end of their streams (the most \
             over a client's streams; counted in memory, so a client past the cache is in +Inf \
             only).",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for bound in LAG_ENTRIES {
            let n = lags.iter().filter(|l| !l.1 && l.0 <= bound).count();
            let label = bound.to_string();
            ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX))
                .encode(family.encode_family(&[("at_most", label.as_str())])?)?;
        }
        ConstGauge::new(i64::try_from(lags.len()).unwrap_or(i64::MAX))
            .encode(family.encode_family(&[("at_most", "+Inf")])?)?;
        let mut family = encoder.encode_descriptor(
            "cometail_clients_behind_seconds",
            "Open SSE clients behind by at most `at_most` seconds: the time since a client with \
             entries still to read last had none (0 for a client with nothing to read).",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for bound in LAG_SECONDS {
            let n = lags.iter().filter(|l| l.2 <= bound).count();
            let label = format!("{bound:?}");
            ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX))
                .encode(family.encode_family(&[("at_most", label.as_str())])?)?;
        }
        ConstGauge::new(i64::try_from(lags.len()).unwrap_or(i64::MAX))
            .encode(family.encode_family(&[("at_most", "+Inf")])?)
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

/// Entries of `/proc/self/fd` (Linux); `None` elsewhere.
fn open_fds() -> Option<i64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    i64::try_from(n).ok()
}

/// `VmRSS` of `/proc/self/status` (Linux), in bytes; `None` elsewhere.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// `GET /metrics`.
pub(super) async fn scrape(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let mut text = String::new();
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut text, &app.metrics.registry)
    } else {
        prometheus_client::encoding::text::encode_registry(&mut text, &app.metrics.registry)
    };
    if encoded.is_err() {
        return ApiError::Internal("cannot encode the metrics".into()).into_response();
    }
    let (body, content_type) = if openmetrics {
        (
            text,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (classic(&text), "text/plain; version=0.0.4; charset=utf-8")
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The classic text format from OpenMetrics text without `# EOF`: a counter family's
/// `HELP` and `TYPE` lines name its samples (`x_total`), as the classic parsers expect, and
/// `UNIT` lines (which only OpenMetrics has) go.
fn classic(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        let _ = writeln!(out, "{}", renamed.as_deref().unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_format_names_counters_by_their_samples() {
        let om = "# HELP a_lines Lines.\n# TYPE a_lines counter\na_lines_total{s=\"x\"} 3\n\
                  # HELP b Gauge.\n# TYPE b gauge\nb 1\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP a_lines_total Lines.\n# TYPE a_lines_total counter\n\
             a_lines_total{s=\"x\"} 3\n# HELP b Gauge.\n# TYPE b gauge\nb 1\n"
        );
    }
}
