//! Headers every response carries, whatever route or error produced it.
//!
//! The page needs no inline script or style and no other host, so the policy is as strict as
//! a policy gets; log data is never cached (`no-store` unless a handler chose otherwise, as the
//! page's own files do), nothing is sniffed or framed, and no CORS header is ever sent. Under
//! TLS, HSTS tells browsers to use HTTPS only, except for `localhost` names: HSTS there would
//! follow the user to every other local development server for a year.
//!
//! This is the outermost layer, so refusals by the guard and auth layers, 404 and 405 carry
//! the headers too. Only hyper's own answers to unparseable requests (400, 431) do not: they
//! are written before any layer runs and have no body.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// The Strict-Transport-Security value under TLS.
pub const HSTS: &str = "max-age=31536000";

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; \
                       base-uri 'none'; form-action 'none'";

/// Adds the security headers to a response.
pub(super) async fn security(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let hsts = app.config.tls.is_some() && !names_localhost(&req);
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Whether the request is for a `localhost` name.
fn names_localhost(req: &Request) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host());
    host.and_then(super::guard::split_authority)
        .is_some_and(|(name, _)| name == "localhost" || name.ends_with(".localhost"))
}
