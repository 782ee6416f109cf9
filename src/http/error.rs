//! The one table from refusal to HTTP status and headers.
//!
//! Every answer that is not the thing asked for is an [`ApiError`]: the guard's refusals, the
//! authentication layer's, the stream and connection caps, handlers' bad input, internal
//! failures. Its `IntoResponse` is the only place a status, a `Retry-After` or a
//! `WWW-Authenticate` is chosen, and every refusal carries a JSON reason. Bad input is the
//! client's to fix and is not logged; an internal error is logged here, once, and the client
//! gets a plain 500. A streaming response that fails after its head was sent cannot change its
//! status: it ends, and [`ApiError::end_stream`] logs why, once.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::logging::escape_for_log;

/// The realm of both authentication schemes.
const REALM: &str = "cometail";
/// How long a client over the per-address stream cap is asked to wait.
const STREAMS_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a connection over `--max-connections` is asked to wait.
const CONNECTIONS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Which authentication scheme a 401 invites the client to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// `--users-file`: HTTP Basic (browsers show a login dialog).
    Basic,
    /// The token only: `Authorization: Bearer`.
    Bearer,
}

/// Everything a request can be refused with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad cursor, parameter out of range, no `Host`…).
    #[error("{0}")]
    BadRequest(String),
    /// `q` does not parse; `at` and `len` are byte offsets into `q`, so a page can
    /// underline the spot.
    #[error("`q`: {message}")]
    BadQuery {
        /// What is wrong.
        message: String,
        /// Where, in bytes from the start of `q`.
        at: usize,
        /// How many bytes.
        len: usize,
    },
    /// No such stream or route, or a path that does not decode to text.
    #[error("{0}")]
    NotFound(String),
    /// A method other than `GET`.
    #[error("only GET is served")]
    MethodNotAllowed,
    /// A request that has or announces a body: no endpoint takes one.
    #[error("requests must not have a body")]
    BodyNotAllowed,
    /// `Host` (or the authority) is not a name this server answers to (DNS rebinding).
    #[error("this server does not answer to that host name; see --allowed-host")]
    MisdirectedHost,
    /// A cross-origin or cross-site request.
    #[error("{0}")]
    CrossOrigin(&'static str),
    /// No credentials, or wrong ones.
    #[error("{reason}")]
    Unauthorized {
        /// Why, without any credential in it.
        reason: &'static str,
        /// The scheme offered in `WWW-Authenticate`.
        challenge: Challenge,
    },
    /// Too many failed attempts lately; the client waits this long before the next one.
    #[error("too many failed attempts; retry later")]
    TooManyFailures {
        /// Sent as `Retry-After` (whole seconds, rounded up).
        retry_after: Duration,
    },
    /// The client's address has `--max-streams-per-address` streams open already.
    #[error("too many open streams from your address; close one first")]
    TooManyStreams,
    /// The connection is over `--max-connections`.
    #[error("too many connections")]
    TooManyConnections,
    /// The request head did not arrive within `--header-timeout`.
    #[error("the request head did not arrive in time (--header-timeout)")]
    HeadTimeout,
    /// A server limit is reached; try again later.
    #[error("{0}")]
    Busy(String),
    /// A bug or an I/O failure on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::BadQuery { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyNotAllowed => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MisdirectedHost => StatusCode::MISDIRECTED_REQUEST,
            Self::CrossOrigin(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::TooManyFailures { .. } | Self::TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
            Self::TooManyConnections | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::HeadTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// How long the client should wait before trying again, when the answer says so.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TooManyFailures { retry_after } => Some(*retry_after),
            Self::TooManyStreams => Some(STREAMS_RETRY_AFTER),
            Self::TooManyConnections => Some(CONNECTIONS_RETRY_AFTER),
            _ => None,
        }
    }

    /// The answer as HTTP/1.1 bytes, for the accept loop's refusals that come before any
    /// request was parsed (no router, no layers): the same status, reason, `Retry-After` and
    /// security headers, then the connection is closed.
    pub(crate) fn http1_bytes(&self) -> Vec<u8> {
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        let retry = self
            .retry_after()
            .map(|w| format!("retry-after: {}\r\n", w.as_secs().max(1)))
            .unwrap_or_default();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             content-security-policy: {}\r\nx-content-type-options: nosniff\r\n\
             cache-control: no-store\r\n{retry}connection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
            super::headers::CSP,
        )
        .into_bytes()
    }

    /// Logs why a streaming response ended early. Its head (200) is sent already, so this is
    /// the one place the cause is recorded; bad input cannot happen after the head.
    pub(crate) fn end_stream(self) {
        tracing::error!(
            "a streaming response ended: {}",
            escape_for_log(&self.to_string())
        );
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reason = match &self {
            Self::Internal(cause) => {
                tracing::error!("{}", escape_for_log(cause));
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = match &self {
            Self::BadQuery { at, len, .. } => {
                let body = serde_json::json!({ "error": reason, "at": at, "len": len });
                json_body(self.status(), body.to_string())
            }
            _ => json_error(self.status(), &reason),
        };
        let headers = response.headers_mut();
        if let Some(wait) = self.retry_after() {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if let Self::Unauthorized { challenge, .. } = self {
            let value = match challenge {
                Challenge::Basic => format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
                Challenge::Bearer => format!("Bearer realm=\"{REALM}\""),
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&value).expect("the realm is ASCII"),
            );
        }
        response
    }
}

/// A response with `status` and body `{"error": reason}`.
fn json_error(status: StatusCode, reason: &str) -> Response {
    json_body(status, serde_json::json!({ "error": reason }).to_string())
}

fn json_body(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_say_when_to_retry_and_401_says_how_to_authenticate() {
        let r = ApiError::TooManyFailures {
            retry_after: Duration::from_millis(1500),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = ApiError::Unauthorized {
            reason: "authentication required",
            challenge: Challenge::Basic,
        }
        .into_response();
        assert!(
            r.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .is_ok_and(|v| v.starts_with("Basic "))
        );
        assert_eq!(
            ApiError::TooManyStreams.into_response().headers()[header::RETRY_AFTER],
            "5"
        );
    }
}
