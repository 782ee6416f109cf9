//! The page: the files of `ui/`, embedded at build time (see `build.rs`), or read from a
//! directory given with `--assets` while working on the UI.
//!
//! Only names made of `[A-Za-z0-9._-]` that do not start with a dot are served, so no request
//! can reach outside the asset directory.

use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// `(file name, contents)` of every file in `ui/`.
const EMBEDDED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// `GET /`.
pub(super) async fn index(State(app): State<AppState>) -> Response {
    serve(&app, "index.html").await
}

/// `GET /{file}`.
pub(super) async fn file(State(app): State<AppState>, UrlPath(name): UrlPath<String>) -> Response {
    serve(&app, &name).await
}

async fn serve(app: &AppState, name: &str) -> Response {
    let valid = !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return ApiError::NotFound("no such file".into()).into_response();
    }
    let body = match &app.config.assets {
        Some(dir) => from_dir(dir, name).await,
        None => EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.to_vec()),
    };
    let Some(body) = body else {
        return ApiError::NotFound("no such file".into()).into_response();
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn from_dir(dir: &Path, name: &str) -> Option<Vec<u8>> {
    tokio::fs::read(dir.join(name)).await.ok()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_embedded() {
        assert!(
            EMBEDDED
                .iter()
                .any(|(n, b)| *n == "index.html" && !b.is_empty())
        );
    }
}
