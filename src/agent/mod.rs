//! `cometail agent`: follow files as standalone cometail does and publish their entries to
//! the engine, exactly once.
//!
//! The agent is one more reader of its streams: for each one a publisher task reads "entries
//! after my cursor" through [`Stream::read`](crate::stream::Stream::read) (the path browsers use), sends them as one batch
//! (`engine::batch`) and waits for the engine's ack before reading on. Its cursor lives in
//! the engine, in the last batch on its subject: a restarted agent reads it back and goes on
//! from there, and the file is the buffer, so an engine outage costs no memory. Every publish
//! carries `Nats-Expected-Last-Subject-Sequence`, so a retried batch (a lost ack, a dead run's
//! late publish) is stored at most once; a refusal means someone else's batch is last, and
//! the publisher resumes from it (`publisher.rs`).
//!
//! Heartbeat: the host's key in the hosts bucket holds its files, their states and how far
//! each is published, rewritten every `--heartbeat` and whenever a file is added
//! (`heartbeat.rs`).

mod heartbeat;
mod publisher;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::engine::Retention;
use crate::engine::{Engine, EngineError, EngineOptions};
use crate::sources::Sources;

pub use heartbeat::Report;

/// The agent's files, as the heartbeat reports them; grows as publishers start.
type Reports = Arc<Mutex<Vec<Arc<Report>>>>;

/// An agent's validated settings.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The host's name, as an id (`[A-Za-z0-9._-]`).
    pub host: String,
    /// The stream's retention when the agent creates it.
    pub retention: Retention,
    /// How often the heartbeat is written.
    pub heartbeat: Duration,
    /// Entries sent on a file's first publish.
    pub backfill: usize,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The engine cannot be used as configured.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The stdin spool could not be created.
    #[error("cannot spool standard input: {0}")]
    Spool(#[source] std::io::Error),
}

/// How often the list of streams is looked at for new glob matches to publish.
const RESCAN: Duration = Duration::from_secs(1);

/// Runs the agent until `shutdown`: follows the configured paths, publishes every stream and
/// writes the heartbeat. It listens on nothing.
///
/// # Errors
/// The engine cannot be used as configured (a bad URL, a stream with other settings), or the
/// stdin spool cannot be created. An engine that is down is waited for, not an error.
pub async fn run(
    config: Config,
    settings: AgentSettings,
    options: EngineOptions,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let engine = Engine::connect(options, &format!("cometail agent {}", settings.host)).await?;
    let retention = settings.retention;
    let Some(js_stream) = crate::engine::patiently("creating the stream", &shutdown, || {
        engine.ensure_stream(retention)
    })
    .await?
    else {
        return Ok(());
    };
    let mut paths: Vec<String> = config.sources.iter().map(|s| format!("{s:?}")).collect();
    paths.sort();
    let claimant = heartbeat::claimant(&paths);
    if !heartbeat::claim(&engine, &settings, &claimant, &shutdown).await? {
        return Ok(());
    }
    let tracker = TaskTracker::new();
    let sources = Sources::start(
        Arc::new(config.source_settings()),
        tracker.clone(),
        shutdown.clone(),
    )
    .await
    .map_err(AgentError::Spool)?;
    let reports: Reports = Arc::default();
    let announce = Arc::new(tokio::sync::Notify::new());
    tracker.spawn(heartbeat::run(
        engine.clone(),
        settings.clone(),
        claimant,
        reports.clone(),
        announce.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(publish_all(
        engine.clone(),
        js_stream,
        settings.clone(),
        sources.clone(),
        (reports, announce),
        tracker.clone(),
        shutdown.clone(),
    ));
    shutdown.cancelled().await;
    tracker.close();
    if !crate::shutdown::wait_tasks(&tracker, crate::shutdown::TASK_DEADLINE).await {
        tracing::warn!("a follower or publisher was still busy at the shutdown deadline");
    }
    Ok(())
}

/// Starts a publisher for every stream, and for each new one (glob matches) as it appears;
/// each new stream is reported and announced (a heartbeat written at once).
async fn publish_all(
    engine: Engine,
    js_stream: async_nats::jetstream::stream::Stream,
    settings: AgentSettings,
    sources: Arc<Sources>,
    (reports, announce): (Reports, Arc<tokio::sync::Notify>),
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut started = HashSet::new();
    let mut tick = tokio::time::interval(RESCAN);
    loop {
        for stream in sources.list() {
            if !started.insert(stream.id().clone()) {
                continue;
            }
            let report = Arc::new(Report::new(
                &engine,
                &settings.host,
                &stream,
                announce.clone(),
            ));
            reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(report.clone());
            report.announce();
            tracker.spawn(publisher::run(
                engine.clone(),
                js_stream.clone(),
                stream,
                settings.backfill,
                report,
                shutdown.clone(),
            ));
        }
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
    }
}
