//! The base path (`--base-path /logs/`): the whole application lives under one URL prefix, so
//! a reverse proxy can serve it at `https://ops.example.com/logs/` next to other applications.
//!
//! [`strip`] is the outermost layer of the router built by [`super::router`] when a base path
//! is set: a request under the prefix goes on with the prefix removed, so every route, the
//! guard and the auth layer see the same paths as without a base path; the prefix without its
//! slash is redirected to the page (`/logs` → `/logs/`, because the page's URLs are relative
//! to it); anything else is 404. The page builds every URL relative to its own, so it needs
//! no knowledge of the prefix; what the server builds (the token exchange's redirect, the
//! cookie's `Path`) takes [`super::AppState`]'s configuration.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// Strips the base path from the request's URI, or answers for paths outside it.
pub(super) async fn strip(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let prefix = app.config.base_path.trim_end_matches('/');
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix(prefix) else {
        return ApiError::NotFound("no such path".into()).into_response();
    };
    if rest.is_empty() {
        let location = match req.uri().query() {
            Some(q) => format!("{prefix}/?{q}"),
            None => format!("{prefix}/"),
        };
        let mut r = StatusCode::PERMANENT_REDIRECT.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    if !rest.starts_with('/') {
        return ApiError::NotFound("no such path".into()).into_response();
    }
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return ApiError::NotFound("no such path".into()).into_response(),
    }
    match Uri::from_parts(parts) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return ApiError::NotFound("no such path".into()).into_response(),
    }
    next.run(req).await
}
