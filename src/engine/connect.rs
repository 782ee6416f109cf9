//! The connection to the engine and how it fails: one attempt at once, so that refused
//! credentials or a failed TLS handshake are an error at start (exit 2) rather than a retry
//! loop, then the client's own reconnects; a refused login or a denied subject seen later is
//! remembered, so the request that failed because of it says so.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream;

use super::{Engine, EngineError, EngineOptions, REQUEST_TIMEOUT};

impl Engine {
    /// Connects. One attempt is made at once: an engine that answers and refuses the login
    /// or the client certificate is an error now. An engine that does not answer is retried in
    /// the background, so this returns and requests fail (and are retried) until it is up.
    ///
    /// # Errors
    /// [`EngineError::Refused`] for refused credentials or a failed TLS handshake, and
    /// [`EngineError::Connect`] for a URL that cannot be used.
    pub async fn connect(options: EngineOptions, name: &str) -> Result<Self, EngineError> {
        let refused: Arc<Mutex<Option<String>>> = Arc::default();
        let denied: Arc<Mutex<Option<String>>> = Arc::default();
        let url = options.url.clone();
        let url = url.as_str();
        let connect_error = |reason: String| EngineError::Connect {
            url: url.to_owned(),
            reason,
        };
        let build = || {
            let (seen, seen_denied) = (refused.clone(), denied.clone());
            let connect = async_nats::ConnectOptions::new()
                .name(name)
                .max_reconnects(None)
                .connection_timeout(Duration::from_secs(2))
                .event_callback(move |event| {
                    let (refused, denied) = (seen.clone(), seen_denied.clone());
                    async move {
                        // Reconnects are routine; errors (such as a refused login) are said once
                        // each. A refused login is remembered: retrying cannot cure it; so is
                        // the first subject the engine denied (the request then times out).
                        match event {
                            async_nats::Event::Connected => {
                                tracing::info!("connected to the engine");
                            }
                            async_nats::Event::Disconnected => {
                                tracing::warn!("lost the engine; reconnecting");
                            }
                            other => {
                                let text = other.to_string();
                                let lower = text.to_ascii_lowercase();
                                if lower.contains("authorization") {
                                    *refused.lock().unwrap_or_else(PoisonError::into_inner) =
                                        Some(text);
                                } else {
                                    if lower.contains("permissions violation") {
                                        denied
                                            .lock()
                                            .unwrap_or_else(PoisonError::into_inner)
                                            .get_or_insert_with(|| text.clone());
                                    }
                                    tracing::warn!("engine: {text}");
                                }
                            }
                        }
                    }
                });
            options.auth.apply(connect).map_err(connect_error)
        };
        let client = match build()?.connect(url).await {
            Ok(client) => client,
            Err(e) => {
                if let Some(reason) = refusal(&e) {
                    return Err(EngineError::Refused {
                        url: url.to_owned(),
                        reason,
                    });
                }
                if e.kind() == async_nats::ConnectErrorKind::ServerParse {
                    return Err(connect_error(e.to_string()));
                }
                // Down, unreachable or not resolvable yet: waited for, as the caller says.
                build()?
                    .retry_on_initial_connect()
                    .connect(url)
                    .await
                    .map_err(|e| connect_error(e.to_string()))?
            }
        };
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        Ok(Self {
            client,
            js,
            options,
            refused,
            denied,
        })
    }

    /// [`EngineError::Refused`] once the engine refused our credentials, or
    /// [`EngineError::Denied`] once it denied a subject, else `e`: a request that failed
    /// because the login or a permission did, says so rather than waiting forever.
    pub(crate) fn unavailable(&self, e: impl std::fmt::Display) -> EngineError {
        let url = self.options.url.clone();
        if let Some(reason) = &*self.refused.lock().unwrap_or_else(PoisonError::into_inner) {
            return EngineError::Refused {
                url,
                reason: reason.clone(),
            };
        }
        match &*self.denied.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(reason) => EngineError::Denied {
                url,
                reason: reason.clone(),
            },
            None => EngineError::Unavailable(e.to_string()),
        }
    }
}

/// Why a first connection attempt failed for good, if it did: the engine refused the login
/// (a wrong password, token, `.creds` or nkey), the TLS setup or handshake failed (no or a
/// refused client certificate, a server certificate the CA does not vouch for, a server
/// without TLS), which no retry cures. `None` for an engine that is down or unreachable.
fn refusal(e: &async_nats::ConnectError) -> Option<String> {
    use async_nats::ConnectErrorKind as Kind;
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    // rustls's words: a refused or unverifiable certificate, the server's alert, or a reply
    // that is no TLS at all (a server without TLS answering a client that requires it).
    let tls_failed = ["certificate", "alert", "corrupt message"]
        .iter()
        .any(|w| lower.contains(w));
    match e.kind() {
        Kind::AuthorizationViolation | Kind::Authentication => Some(text),
        Kind::Tls => Some(format!("the TLS setup failed: {text}")),
        Kind::Io if tls_failed => Some(format!(
            "the TLS handshake failed ({text}): check --nats-ca, --nats-cert, --nats-key and \
             that the server has TLS on"
        )),
        _ => None,
    }
}
