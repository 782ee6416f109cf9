//! `cometail hub`: the HTTP API and page of every agent's files, read from the engine.
//!
//! A hub holds no state of its own that a reader depends on. Its streams are subjects
//! (`host~file`) and subject wildcards (views such as `*~app.log`); an entry's cursor is a
//! function of the engine alone (`cursor.rs`), so every hub mints the same cursor for the
//! same entry and resolves any hub's cursor alike: a browser whose hub dies resumes on
//! another with nothing lost or doubled, and a load balancer needs no stickiness.
//!
//! Reads go to the engine by direct get (`read.rs`); new messages only wake the views' tails
//! (a core subscription on the subjects, and a refresh of the stream's state every
//! [`REFRESH`]): they never carry data, since a message the engine refused is delivered to
//! core subscribers too. Live readers are fed from a per-hub cache with one engine reader per
//! file or view being read (`view.rs`), so engine reads grow with hubs x views, not with
//! viewers; history and cursors older than the cache are read from the engine directly.

mod cursor;
mod list;
mod read;
mod view;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::stream::Stream as JsStream;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::{Engine, EngineError, EngineOptions};

pub use list::Listing;
pub use view::View;

/// How often the stream's identity and last sequence are read again (the fallback wake-up,
/// and how a recreated stream is noticed).
pub const REFRESH: Duration = Duration::from_secs(2);

/// How long after a message's arrival readers are woken again (see `wake`).
const ECHO: Duration = Duration::from_millis(25);

/// The engine as the HTTP layer reads it; see the module documentation.
#[derive(Debug)]
pub struct Hub {
    engine: Engine,
    js_stream: JsStream,
    settings: HubSettings,
    /// Digest of the stream's name and creation time (see `cursor.rs`).
    ident: AtomicU64,
    /// The stream's first sequence as last read: retention has removed every batch before
    /// it, so the views' caches no longer answer for them (`view.rs`).
    first: AtomicU64,
    /// Bumped whenever new messages may exist; the views' tails wait on it.
    changed: watch::Sender<u64>,
    /// The files and views read live, by subject filter (`view.rs`).
    views: Mutex<HashMap<String, Arc<View>>>,
    /// Where the views' tails run, and when they stop.
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// What `/metrics` reports of the engine reads.
    pub stats: Stats,
}

/// Counters of the hub's work against the engine.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent to the engine (direct gets and stream info).
    pub engine_reads: AtomicU64,
    /// Live reads the views' caches could not answer (sent to the engine).
    pub cold_reads: AtomicU64,
}

impl Hub {
    /// A receiver marked changed whenever new entries may have been stored.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.engine.options.prefix
    }

    /// Whether the connection to the engine is up now.
    pub fn engine_up(&self) -> bool {
        matches!(
            self.engine.client.connection_state(),
            async_nats::connection::State::Connected
        )
    }

    fn ident(&self) -> u64 {
        self.ident.load(Ordering::Relaxed)
    }

    /// The stream's first sequence as last read (see [`REFRESH`]).
    fn first(&self) -> u64 {
        self.first.load(Ordering::Relaxed)
    }

    /// Reads the stream's identity again; bumps readers when the last sequence moved.
    async fn refresh(&self, last: &mut u64) {
        self.stats.engine_reads.fetch_add(1, Ordering::Relaxed);
        if let Ok(info) = self.js_stream.get_info().await {
            self.ident.store(
                cursor::ident(&info.config.name, info.created.unix_timestamp_nanos()),
                Ordering::Relaxed,
            );
            self.first
                .store(info.state.first_sequence, Ordering::Relaxed);
            if info.state.last_sequence != *last {
                *last = info.state.last_sequence;
                self.changed.send_modify(|v| *v += 1);
            }
        }
    }
}

/// A hub's validated settings.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// A heartbeat older than this makes a host `stale`.
    pub stale_after: Duration,
}

/// Why a read from the engine failed (it did not answer in time, or refused).
#[derive(Debug, thiserror::Error)]
#[error("the engine did not answer: {0}")]
pub struct ReadError(pub String);

impl Hub {
    /// Connects, waits for the engine's stream (an engine that is down, or a stream no agent
    /// has created yet, is waited for and said once), and starts waking readers on `tracker`.
    /// `None` on shutdown.
    ///
    /// # Errors
    /// A URL that cannot be used, or a stream with settings cometail cannot read.
    pub async fn open(
        options: EngineOptions,
        settings: HubSettings,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Option<Arc<Self>>, EngineError> {
        let engine = Engine::connect(options, "cometail hub").await?;
        let opened = crate::engine::patiently("opening the stream", &shutdown, || async {
            match engine.open_stream().await {
                // No agent has created it yet: wait for one, as for an engine that is down.
                Err(EngineError::Missing(name)) => Err(EngineError::Unavailable(format!(
                    "the stream `{name}` does not exist yet"
                ))),
                other => other,
            }
        })
        .await?;
        let Some(js_stream) = opened else {
            return Ok(None);
        };
        // The identity is known from the opening itself: a cursor is never minted without it.
        let info = js_stream.cached_info();
        let ident = cursor::ident(&info.config.name, info.created.unix_timestamp_nanos());
        let first = info.state.first_sequence;
        let hub = Arc::new(Self {
            engine,
            js_stream,
            settings,
            ident: AtomicU64::new(ident),
            first: AtomicU64::new(first),
            changed: watch::Sender::new(0),
            views: Mutex::default(),
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
            stats: Stats::default(),
        });
        let mut last = 0;
        hub.refresh(&mut last).await;
        tracker.spawn(wake(hub.clone(), last, shutdown));
        Ok(Some(hub))
    }
}

/// Wakes readers when messages arrive (core subscription) or the stream's state moves.
async fn wake(hub: Arc<Hub>, mut last: u64, shutdown: CancellationToken) {
    let filter = format!("{}.>", hub.prefix());
    let mut sub = hub.engine.client.subscribe(filter).await.ok();
    let mut tick = tokio::time::interval(REFRESH);
    // The core message can overtake the engine's write of the same message: readers are
    // woken once more shortly after, so none waits for the next refresh.
    let mut again: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        let echo = async {
            match &mut again {
                Some(s) => s.as_mut().await,
                None => std::future::pending().await,
            }
        };
        let arrived = async {
            match &mut sub {
                Some(s) => s.next().await.is_some(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            got = arrived => {
                if got {
                    hub.changed.send_modify(|v| *v += 1);
                    if again.is_none() {
                        again = Some(Box::pin(tokio::time::sleep(ECHO)));
                    }
                } else {
                    sub = None;
                }
            }
            () = echo => {
                again = None;
                hub.changed.send_modify(|v| *v += 1);
            }
            _ = tick.tick() => hub.refresh(&mut last).await,
            () = shutdown.cancelled() => return,
        }
    }
}
