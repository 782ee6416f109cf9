//! The host's heartbeat: its files, their states and how far each is published, written to
//! the hosts bucket under the host's token every `--heartbeat`, and at once when the agent
//! starts following a new file (a glob match) or stores a file's first batch of the run
//! ([`Report::announce`]), so hubs list it as it is from its first entries on.
//! Hubs list hosts from it and mark a host `stale` when its heartbeat stops.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::AgentSettings;
use crate::engine::beat::{Beat, FileBeat};
use crate::engine::{Engine, EngineError, names};
use crate::stream::Stream;

/// How far one stream is published, for the heartbeat.
#[derive(Debug)]
pub struct Report {
    /// The stream.
    pub stream: Arc<Stream>,
    /// Its subject.
    pub subject: String,
    /// The sequence of its last acked batch (0: none yet).
    pub published: AtomicU64,
    /// Entries this run published.
    pub entries: AtomicU64,
    /// Since when (ms since the epoch) entries wait to be published; 0 when caught up.
    behind_since: AtomicU64,
    /// Wakes the heartbeat to write at once.
    beat_now: Arc<tokio::sync::Notify>,
}

impl Report {
    /// A report for `stream` of `host`; `beat_now` wakes the heartbeat.
    pub fn new(
        engine: &Engine,
        host: &str,
        stream: &Arc<Stream>,
        beat_now: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self {
            stream: stream.clone(),
            subject: names::subject(&engine.options.prefix, host, stream.id().as_str()),
            published: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            behind_since: AtomicU64::new(0),
            beat_now,
        }
    }

    /// Has the heartbeat written at once: the file is new to this run, or its first batch
    /// of this run was stored (its state is known now: a new file is `waiting`, "not looked
    /// at yet", until its follower opened it), so hubs list it as it is from its first
    /// entries, not only at the next `--heartbeat`.
    pub(super) fn announce(&self) {
        self.beat_now.notify_one();
    }

    pub(super) fn caught_up(&self) {
        self.behind_since.store(0, Ordering::Relaxed);
    }

    pub(super) fn behind(&self) {
        let _ =
            self.behind_since
                .compare_exchange(0, now_ms(), Ordering::Relaxed, Ordering::Relaxed);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A heartbeat older than this many of its own intervals means its agent stopped: another
/// agent may take the host's name.
const MISSED_BEATS: u64 = 3;

/// Refuses to run as a host another live agent writes the heartbeat of (a fresh beat with
/// another claimant); waits for the engine while it is down. `Ok(false)` on shutdown.
///
/// # Errors
/// [`EngineError::Claimed`], or an engine that cannot be used.
pub(super) async fn claim(
    engine: &Engine,
    settings: &AgentSettings,
    claimant: &str,
    shutdown: &CancellationToken,
) -> Result<bool, EngineError> {
    let key = names::token(&settings.host);
    let found = crate::engine::patiently("reading the hosts bucket", shutdown, || async {
        let kv = engine.hosts(true).await?;
        kv.get(&key).await.map_err(|e| engine.unavailable(e))
    })
    .await?;
    let Some(found) = found else {
        return Ok(false);
    };
    let Some(beat) = found.and_then(|v| serde_json::from_slice::<Beat>(&v).ok()) else {
        return Ok(true);
    };
    let age = now_ms().saturating_sub(beat.beat);
    let every = if beat.every_ms == 0 {
        15_000
    } else {
        beat.every_ms
    };
    if beat.claimant != claimant && age < every.saturating_mul(MISSED_BEATS) {
        return Err(EngineError::Claimed {
            host: settings.host.clone(),
            age_s: age / 1000,
        });
    }
    Ok(true)
}

/// Who this agent is, for [`claim`]: a digest of the machine's name and the paths it was
/// given, so a restarted agent takes its own name back at once.
pub(super) fn claimant(paths: &[String]) -> String {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in machine.trim().bytes().chain(paths.join("\n").bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Writes the heartbeat every `--heartbeat`, and when `announce` is notified (new files).
pub(super) async fn run(
    engine: Engine,
    settings: AgentSettings,
    claimant: String,
    reports: super::Reports,
    announce: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    let started = now_ms();
    let key = names::token(&settings.host);
    let mut tick = tokio::time::interval(settings.heartbeat);
    let mut store = None;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = announce.notified() => {}
            () = shutdown.cancelled() => return,
        }
        if store.is_none() {
            match engine.hosts(true).await {
                Ok(kv) => store = Some(kv),
                Err(e) if !failing => {
                    tracing::warn!("cannot open the hosts bucket ({e}); retrying");
                    failing = true;
                }
                Err(_) => {}
            }
        }
        let Some(kv) = &store else { continue };
        let now = now_ms();
        let files = reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|r| {
                let summary = r.stream.summary();
                let since = r.behind_since.load(Ordering::Relaxed);
                FileBeat {
                    id: summary.id,
                    name: summary.name,
                    state: summary.state.to_owned(),
                    reason: summary.reason,
                    published_seq: r.published.load(Ordering::Relaxed),
                    behind_ms: if since == 0 {
                        0
                    } else {
                        now.saturating_sub(since)
                    },
                }
            })
            .collect();
        let beat = Beat {
            host: settings.host.clone(),
            started,
            beat: now,
            every_ms: u64::try_from(settings.heartbeat.as_millis()).unwrap_or(u64::MAX),
            claimant: claimant.clone(),
            files,
        };
        let value = serde_json::to_vec(&beat).unwrap_or_default();
        match kv.put(&key, value.into()).await {
            Ok(_) if failing => {
                tracing::info!("heartbeat written again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!("cannot write the heartbeat ({e}); retrying");
                failing = true;
            }
            Err(_) => {}
        }
    }
}
