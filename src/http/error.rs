//! The one table from API error to HTTP status.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` is the only place a status and a JSON
//! reason are chosen. Bad input is the client's to fix and is not logged; an internal error
//! is logged here, once, and the client gets a plain 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad cursor, parameter out of range…).
    #[error("{0}")]
    BadRequest(String),
    /// No such stream or route.
    #[error("{0}")]
    NotFound(String),
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
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reason = match &self {
            Self::Internal(cause) => {
                tracing::error!("{}", crate::escape_for_log(cause));
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        json_error(self.status(), &reason)
    }
}

/// A response with `status` and body `{"error": reason}`.
pub(crate) fn json_error(status: StatusCode, reason: &str) -> Response {
    let body = serde_json::json!({ "error": reason }).to_string();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
