//! cometail follows log files the way `tail -F` does and serves them to web browsers by
//! Comet: long polling and Server-Sent Events.
//!
//! How a line travels: a file event (or a poll tick) wakes a stream's follower task
//! ([`sources`]); the [`tail::Follower`] reads the new bytes off the async workers and splits
//! them into lines with their byte offsets; the [`stream::Stream`] turns lines into entries,
//! each encoded to JSON once, keeps the newest in memory and bumps a `watch` channel; every
//! waiting reader ([`http`]: a long poll, an SSE body, a raw follow) wakes, reads "entries
//! after my cursor" and writes them. A cursor names a file generation and a byte offset, so
//! readers hold no server state between requests and the file on disk is the history.
//!
//! [`run`] ties it together; the binary is a thin shim around it, and tests run it in-process.

// Layers, top first; a module imports only from layers below it (`scripts/layers.sh`
// checks this): `http` > `config` > `sources` | `cli` | `history` > `stream` > `tail` > `query` > `parse` > the leaves
// `credentials`, `tls`, `logging`, `shutdown`.
pub mod agent;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod history;
pub mod http;
pub mod hub;
pub mod logging;
pub mod parse;
pub mod query;
pub mod roles;
pub mod shutdown;
pub mod sources;
pub mod stream;
pub mod tail;
pub mod tls;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The stdin spool could not be created.
    #[error("cannot spool standard input: {0}")]
    Spool(#[source] std::io::Error),
}

/// Runs cometail on `listener` until `shutdown` is cancelled.
///
/// Shutdown order: the accept loop stops and asks open connections to finish; streaming
/// responses and follower tasks end on the same token; then this waits for the follower tasks,
/// at most [`shutdown::TASK_DEADLINE`].
///
/// # Errors
/// Fails when a source cannot be set up at all (a missing or unreadable file is not an error:
/// it is a state of its stream).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    run_on(config, vec![listener], shutdown).await
}

/// [`run`] on several listeners (one per `--bind` address), all serving the same streams.
///
/// # Errors
/// As [`run`].
pub async fn run_on(
    config: Config,
    listeners: Vec<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let listeners = Listeners {
        http: listeners,
        ..Listeners::default()
    };
    run_listeners(config, listeners, shutdown).await
}

/// Every socket the server answers on.
#[derive(Debug, Default)]
pub struct Listeners {
    /// One per `--bind` address (or TCP socket systemd passed): the whole application.
    pub http: Vec<TcpListener>,
    /// `--metrics-bind` (or the socket systemd passed named `metrics`): `/metrics` and the
    /// probes only, without authentication or TLS.
    pub metrics: Option<TcpListener>,
    /// `--unix-socket` (or Unix sockets systemd passed): the whole application, without TLS
    /// (a proxy on the same machine).
    pub unix: Vec<http::UnixSocket>,
}

/// [`run`] on every listener of `listeners`, all over the same streams.
///
/// # Errors
/// As [`run`].
pub async fn run_listeners(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let config = Arc::new(config);
    let tracker = TaskTracker::new();
    let sources = Sources::start(
        Arc::new(config.source_settings()),
        tracker.clone(),
        shutdown.clone(),
    )
    .await
    .map_err(RunError::Spool)?;
    let state = http::AppState::new(sources.clone(), config.clone(), shutdown.clone());
    tracker.spawn(http::keep_alive_ticker(
        state.keep_alive.clone(),
        shutdown.clone(),
    ));
    let metrics_app = http::metrics_router(state.clone());
    let app = http::router(state);
    serve_all(listeners, app, metrics_app, &config, &shutdown).await;
    if !shutdown::wait_tasks(&tracker, shutdown::TASK_DEADLINE).await {
        tracing::warn!("a follower was still busy (stuck in file I/O?) at the shutdown deadline");
    }
    Ok(())
}

/// Serves `app` on every listener of `listeners` (TLS on TCP only, as `config` says) and
/// `metrics_app` on the metrics listener, until `shutdown`.
async fn serve_all(
    listeners: Listeners,
    app: axum::Router,
    metrics_app: axum::Router,
    config: &Config,
    shutdown: &CancellationToken,
) {
    let plain = Config {
        tls: None,
        ..config.clone()
    };
    let metrics = async {
        if let Some(listener) = listeners.metrics {
            http::serve(listener, metrics_app, &plain, shutdown.clone()).await;
        }
    };
    let unix = futures_util::future::join_all(listeners.unix.into_iter().map(|socket| {
        http::serve(
            http::Listener::Unix(socket),
            app.clone(),
            &plain,
            shutdown.clone(),
        )
    }));
    let http = futures_util::future::join_all(
        listeners
            .http
            .into_iter()
            .map(|listener| http::serve(listener, app.clone(), config, shutdown.clone())),
    );
    futures_util::future::join3(http, metrics, unix).await;
}

pub use sources::Sources;

/// Runs a hub ([`hub`]) on `listeners` until `shutdown`: the standalone HTTP layer (auth,
/// guards, limits, page) over the engine's entries, on TCP and Unix sockets alike, and
/// `/metrics` with the probes on the metrics listener, as [`run_listeners`] serves them.
///
/// # Errors
/// The engine URL cannot be used, or its stream has settings cometail cannot read.
pub async fn run_hub(
    config: Config,
    settings: hub::HubSettings,
    options: engine::EngineOptions,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), engine::EngineError> {
    let config = Arc::new(config);
    let tracker = TaskTracker::new();
    // The listeners answer from the start (`http/starting.rs`): a hub may wait long for its
    // engine, and a client must not hang meanwhile. An engine that cannot be used (refused
    // credentials, a stream cometail cannot read) stops them and is the hub's error.
    let (app, metrics_app) = (http::starting::Ready::default(), Default::default());
    let serving = shutdown.child_token();
    let serve = serve_all(
        listeners,
        http::starting::until_ready(app.clone(), &config.base_path),
        http::starting::until_ready(Arc::clone(&metrics_app), &config.base_path),
        &config,
        &serving,
    );
    let open = async {
        let opened = open_hub(&config, settings, options, &tracker, &shutdown).await;
        match opened {
            Ok(Some((routes, metrics_routes))) => {
                let _ = app.set(routes);
                let _ = metrics_app.set(metrics_routes);
                Ok(())
            }
            // Shut down while waiting: the listeners end with the same token.
            Ok(None) => Ok(()),
            Err(e) => {
                serving.cancel();
                Err(e)
            }
        }
    };
    let ((), opened) = tokio::join!(serve, open);
    tracker.close();
    shutdown::wait_tasks(&tracker, shutdown::TASK_DEADLINE).await;
    opened
}

/// Opens the hub on its engine (waiting for it as [`hub::Hub::open`] does) and builds its
/// routers: the API and page, and the metrics listener's. `None` when shut down first.
async fn open_hub(
    config: &Arc<Config>,
    settings: hub::HubSettings,
    options: engine::EngineOptions,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Option<(axum::Router, axum::Router)>, engine::EngineError> {
    let Some(hub) = hub::Hub::open(options, settings, tracker, shutdown.clone()).await? else {
        return Ok(None);
    };
    // A hub follows no files: its registry is empty, and only lends the HTTP layer its state.
    let sources = Sources::start(
        Arc::new(config.source_settings()),
        tracker.clone(),
        shutdown.clone(),
    )
    .await
    .map_err(|e| engine::EngineError::Unavailable(e.to_string()))?;
    let state = http::AppState::for_hub(sources, config.clone(), shutdown.clone(), &hub);
    tracker.spawn(http::keep_alive_ticker(
        state.keep_alive.clone(),
        shutdown.clone(),
    ));
    let metrics_app = http::hub_metrics_router(state.clone(), hub.clone());
    Ok(Some((http::hub_router(state, hub), metrics_app)))
}
