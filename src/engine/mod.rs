//! The engine: NATS JetStream, which agents publish to and hubs read from.
//!
//! This module owns the connection (`connect.rs`; its credentials and TLS files, never from
//! argv and checked before connecting, in `auth.rs`), the names (one
//! JetStream stream for the deployment, one subject per host and file, one KV bucket for the
//! hosts; see `names.rs`), the stream's creation with the documented retention, and the batch
//! format both sides agree on (`batch.rs`). It does not follow files (`agent`) or answer
//! browsers (`hub`).
//!
//! Invariant: the engine is the only shared state between agents and hubs; every hub derives
//! the same cursors from it, so hubs never talk to each other.

pub mod auth;
pub mod batch;
pub mod beat;
mod connect;
pub mod names;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tokio_util::sync::CancellationToken;

pub use auth::EngineAuth;

/// Where the engine is and how to log in to it.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Server URLs, comma-separated (`nats://host:4222`, `tls://host:4222`).
    pub url: String,
    /// The JetStream stream that holds every host's entries.
    pub stream: String,
    /// The first token of every subject.
    pub prefix: String,
    /// The KV bucket of hosts (heartbeats, file lists).
    pub bucket: String,
    /// Credentials and TLS files, read and checked (`auth.rs`).
    pub auth: EngineAuth,
}

/// The stream's retention when an agent creates it.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Oldest entries are dropped past this many bytes (the whole stream, all hosts).
    pub max_bytes: u64,
    /// Entries older than this are dropped.
    pub max_age: Duration,
}

/// Why the engine cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The URL or credentials cannot be used.
    #[error("cannot connect to the engine at {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The stream exists with settings cometail cannot work with.
    #[error("the JetStream stream `{stream}` is not usable: {reason}")]
    Incompatible {
        /// The stream's name.
        stream: String,
        /// What is wrong.
        reason: String,
    },
    /// The stream does not exist (hubs never create it).
    #[error("the JetStream stream `{0}` does not exist yet (an agent creates it)")]
    Missing(String),
    /// Another running agent writes this host's heartbeat.
    #[error(
        "another agent is running as host `{host}` (its heartbeat is {age_s} s old): give this \
         one its own --host, or stop the other"
    )]
    Claimed {
        /// The host's name.
        host: String,
        /// Seconds since the other agent's last heartbeat.
        age_s: u64,
    },
    /// The engine refused the credentials.
    #[error("the engine at {url} refused the credentials: {reason}")]
    Refused {
        /// The URL.
        url: String,
        /// What the engine said.
        reason: String,
    },
    /// The engine denied a subject to these credentials (their permissions miss one the role
    /// needs, or an agent runs as another `--host` than its permissions name).
    #[error(
        "the engine at {url} denied a request to these credentials: {reason} (docs/SCALE-OUT.md \
         lists the permissions each role needs)"
    )]
    Denied {
        /// The URL.
        url: String,
        /// What the engine said.
        reason: String,
    },
    /// A request to the engine failed (it may be down, or JetStream may be off).
    #[error("the engine did not answer: {0}")]
    Unavailable(String),
}

/// A connection to the engine with the deployment's names.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The NATS connection (it reconnects by itself).
    pub client: async_nats::Client,
    /// JetStream on that connection.
    pub js: jetstream::Context,
    /// The names and credentials it was opened with.
    pub options: EngineOptions,
    /// What the engine said when it refused our credentials, if it did.
    refused: Arc<Mutex<Option<String>>>,
    /// The first permissions violation the engine reported, if any.
    denied: Arc<Mutex<Option<String>>>,
}

/// How long one JetStream request may take before it counts as failed (and is retried by
/// the caller).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl Engine {
    /// The stream, created with `retention` when it is missing; an existing stream's
    /// settings are checked, never changed.
    ///
    /// # Errors
    /// [`EngineError::Incompatible`] for a stream cometail cannot use, or
    /// [`EngineError::Unavailable`] while the engine does not answer.
    pub async fn ensure_stream(&self, retention: Retention) -> Result<stream::Stream, EngineError> {
        match self.open_stream().await {
            Err(EngineError::Missing(_)) => {}
            other => return other,
        }
        let config = stream::Config {
            name: self.options.stream.clone(),
            subjects: vec![format!("{}.>", self.options.prefix)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_bytes: i64::try_from(retention.max_bytes).unwrap_or(i64::MAX),
            max_age: retention.max_age,
            // Retention only ever removes from the front, so a reader's back-pointers find
            // every eviction (see `batch.rs`); a per-subject limit would cut views' middles.
            deny_delete: true,
            allow_direct: true,
            num_replicas: 1,
            ..Default::default()
        };
        match self.js.create_stream(config).await {
            Ok(stream) => Ok(stream),
            // Another agent created it meanwhile.
            Err(_) => self.open_stream().await,
        }
    }

    /// The existing stream, checked.
    ///
    /// # Errors
    /// [`EngineError::Missing`], [`EngineError::Incompatible`] or [`EngineError::Unavailable`].
    pub async fn open_stream(&self) -> Result<stream::Stream, EngineError> {
        use async_nats::jetstream::context::GetStreamErrorKind;
        let name = &self.options.stream;
        let mut stream = match self.js.get_stream(name).await {
            Ok(s) => s,
            Err(e) => {
                let text = e.to_string();
                return Err(match e.kind() {
                    GetStreamErrorKind::JetStream(j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                    {
                        EngineError::Missing(name.clone())
                    }
                    GetStreamErrorKind::JetStream(j)
                        if j.error_code() == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED
                            || j.error_code()
                                == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT =>
                    {
                        EngineError::Incompatible {
                            stream: name.clone(),
                            reason: "JetStream is not enabled on the server (start it with -js)"
                                .into(),
                        }
                    }
                    _ => self.unavailable(text),
                });
            }
        };
        let info = stream
            .info()
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let wanted = format!("{}.>", self.options.prefix);
        let problem = if !info.config.subjects.contains(&wanted) {
            Some(format!("its subjects must include `{wanted}`"))
        } else if !info.config.allow_direct {
            Some("it must allow direct get (`allow_direct: true`)".to_owned())
        } else if info.config.max_messages_per_subject > 0 {
            Some("a per-subject message limit would drop entries from the middle of a view".into())
        } else {
            None
        };
        match problem {
            Some(reason) => Err(EngineError::Incompatible {
                stream: name.clone(),
                reason,
            }),
            None => Ok(stream),
        }
    }

    /// The hosts bucket, created when missing.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] while the engine does not answer.
    pub async fn hosts(&self, create: bool) -> Result<kv::Store, EngineError> {
        let bucket = &self.options.bucket;
        match self.js.get_key_value(bucket).await {
            Ok(store) => Ok(store),
            Err(_) if create => {
                // The bucket's stream, as NATS's KV convention lays it out, created directly:
                // the client's own `create_key_value` first reads the account's info, whose
                // shape on the 2.9 servers Debian ships it cannot parse.
                let config = stream::Config {
                    name: format!("KV_{bucket}"),
                    subjects: vec![format!("$KV.{bucket}.>")],
                    max_messages_per_subject: 1,
                    discard: stream::DiscardPolicy::New,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    storage: stream::StorageType::File,
                    num_replicas: 1,
                    ..Default::default()
                };
                // Another agent may create it meanwhile: either way, open it after.
                let _ = self.js.create_stream(config).await;
                self.js
                    .get_key_value(bucket)
                    .await
                    .map_err(|e| self.unavailable(e))
            }
            Err(e) => Err(self.unavailable(e)),
        }
    }
}

/// Waits until `attempt` succeeds, retrying every `pause` (growing to 5 s) while the engine is
/// unavailable and saying so once; `None` on shutdown, at once: an attempt under way (a
/// request to an engine that is down waits for its timeout) is dropped, so every `attempt`
/// must be one that may be abandoned (reads, idempotent creates).
///
/// # Errors
/// An error that retrying cannot cure (a stream with incompatible settings).
pub async fn patiently<T, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Result<Option<T>, EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, EngineError>>,
{
    let mut pause = Duration::from_millis(100);
    let mut said = false;
    loop {
        let result = tokio::select! {
            result = attempt() => result,
            () = shutdown.cancelled() => return Ok(None),
        };
        match result {
            Ok(v) => {
                if said {
                    tracing::info!("{what}: the engine answers again");
                }
                return Ok(Some(v));
            }
            Err(EngineError::Unavailable(e)) => {
                if !said {
                    tracing::warn!("{what}: waiting for the engine ({e}); retrying");
                    said = true;
                }
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => return Ok(None),
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
