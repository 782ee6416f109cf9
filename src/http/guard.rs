//! The request guard that runs before authentication: no request bodies, `Host` among the
//! names this server answers to (DNS rebinding), `Origin` the server's own (cross-site
//! requests). Its refusals are [`ApiError`]s; the per-address stream cap is `streams.rs`.
//!
//! A browser tricked by DNS rebinding sends the attacker's name in `Host`; a page on another
//! site that calls the API sends its own `Origin` (or `Sec-Fetch-Site: cross-site`). Neither
//! needs to be a secret to be refused, so these checks hold with or without authentication.
//! No CORS header is ever sent, so browsers keep other sites from reading any answer.

use std::net::{IpAddr, SocketAddr};

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// The local address a connection was accepted on (the server's side of it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalAddr(pub SocketAddr);

/// The name part of a `Host` value or an authority (`name`, `[v6]`), lowercase, and its
/// port if any; `None` when it is not a plausible authority.
pub(crate) fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let name = &authority[..end + 2];
        match &rest[end + 1..] {
            "" => (name, None),
            p => (name, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
    valid.then_some((name, port))
}

/// Whether `name` (from [`split_authority`]) is one this server answers to.
pub(crate) fn host_allowed(name: &str, local: Option<SocketAddr>, allowed: &[String]) -> bool {
    if matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.ends_with(".localhost") {
        return true;
    }
    if let Some(local) = local {
        let ip = match local.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => format!("[{v6}]"),
            },
            IpAddr::V4(v4) => v4.to_string(),
        };
        if name == ip {
            return true;
        }
    }
    allowed.iter().any(|a| a == name)
}

/// Whether `origin` (an `Origin` header value) is the same as the request's authority.
/// The port of an authority without one is the default of the origin's scheme, so a
/// reverse proxy that terminates TLS still matches.
pub(crate) fn same_origin(origin: &str, host: &(String, Option<u16>)) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let Some((name, port)) = split_authority(authority) else {
        return false;
    };
    name == host.0 && port.unwrap_or(default) == host.1.unwrap_or(default)
}

/// The middleware run first on every request: bodies, `Host`, `Origin`.
pub(super) async fn check(State(app): State<AppState>, req: Request, next: Next) -> Response {
    match refusal(&app, &req) {
        Some(refused) => refused.into_response(),
        None => next.run(req).await,
    }
}

/// Why the guard refuses `req`, if it does.
fn refusal(app: &AppState, req: &Request) -> Option<ApiError> {
    let local = req.extensions().get::<LocalAddr>().map(|l| l.0);
    tracing::debug!(
        "{} {} from {}",
        req.method(),
        crate::logging::escape_for_log(&req.uri().to_string()),
        super::peer(req).map_or_else(|| "?".to_owned(), |p| p.to_string())
    );
    // No endpoint takes a body: one announced or under way is refused before it is read.
    let body_announced = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if body_announced || !req.body().is_end_stream() {
        return Some(ApiError::BodyNotAllowed);
    }
    // A path whose percent-encoding does not decode to text without control characters
    // (`%c0%ae`, `%00`) names nothing here: 404, the same answer as any other unknown path,
    // rather than the extractor's 400.
    if !path_is_text(req.uri().path()) {
        return Some(ApiError::NotFound("no such path".into()));
    }
    // HTTP/2 sends the authority in the URI; HTTP/1 in `Host` (and an absolute-form URI may
    // carry one too): every one present must be allowed, and there must be one.
    // RFC 9112, 3.2: a request with more than one `Host` gets 400, whichever comes first.
    if req.headers().get_all(header::HOST).iter().nth(1).is_some() {
        return Some(ApiError::BadRequest(
            "the request has more than one Host".into(),
        ));
    }
    let mut host = None;
    let header_host = req.headers().get(header::HOST).map(|h| h.to_str().ok());
    let uri_host = req.uri().authority().map(|a| Some(a.as_str()));
    for value in [header_host, uri_host].into_iter().flatten() {
        let parsed = value.and_then(split_authority);
        match parsed {
            Some(p) if host_allowed(&p.0, local, &app.config.allowed_hosts) => host = Some(p),
            _ => {
                tracing::debug!(
                    "refused Host {}",
                    crate::logging::escape_for_log(&String::from_utf8_lossy(
                        value.unwrap_or("(not text)").as_bytes()
                    ))
                );
                return Some(ApiError::MisdirectedHost);
            }
        }
    }
    let Some(host) = host else {
        return Some(ApiError::BadRequest("the request has no Host".into()));
    };
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if !origin.to_str().is_ok_and(|o| same_origin(o, &host)) {
            return Some(ApiError::CrossOrigin("cross-origin requests are refused"));
        }
    }
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site");
    if cross_site && req.uri().path().starts_with("/api/") {
        return Some(ApiError::CrossOrigin("cross-site requests are refused"));
    }
    None
}

/// Whether a URL path percent-decodes to UTF-8 without control characters.
pub(crate) fn path_is_text(path: &str) -> bool {
    let b = path.as_bytes();
    let hexval = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    std::str::from_utf8(&out).is_ok_and(|s| !s.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn loopback_and_configured_names_are_allowed() {
        let local: SocketAddr = "192.168.1.5:7001".parse().expect("valid");
        let allowed = vec!["logs.example.com".to_owned()];
        for ok in [
            "localhost:7001",
            "LOCALHOST",
            "127.0.0.1:7001",
            "[::1]:7001",
            "app.localhost",
            "192.168.1.5:7001",
            "logs.example.com",
            "logs.example.com.:443",
        ] {
            let (name, _) = split_authority(ok).expect(ok);
            assert!(host_allowed(&name, Some(local), &allowed), "{ok}");
        }
        for bad in [
            "evil.com",
            "localhost.evil.com",
            "127.0.0.2",
            "[::2]:1",
            "10.0.0.1",
        ] {
            let (name, _) = split_authority(bad).expect(bad);
            assert!(!host_allowed(&name, Some(local), &allowed), "{bad}");
        }
        for malformed in ["", ":80", "a:b", "a:99999", "[::1", "a b", "u@h"] {
            assert!(
                split_authority(malformed).is_none_or(|(n, _)| !host_allowed(
                    &n,
                    Some(local),
                    &allowed
                )),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn origins_must_match_the_host() {
        let host = split_authority("localhost:7001").expect("valid");
        assert!(same_origin("http://localhost:7001", &host));
        assert!(same_origin("https://LOCALHOST:7001", &host));
        assert!(!same_origin("http://localhost:7002", &host));
        assert!(!same_origin("http://evil.com", &host));
        assert!(!same_origin("null", &host));
        let bare = split_authority("logs.example.com").expect("valid");
        assert!(same_origin("https://logs.example.com", &bare));
    }

    #[test]
    fn paths_must_decode_to_text() {
        assert!(path_is_text("/api/streams/app.log/lines"));
        assert!(path_is_text("/%C3%A9"));
        assert!(!path_is_text("/%c0%ae%c0%ae/etc"));
        assert!(!path_is_text("/a%00b"));
        assert!(!path_is_text("/a%0d%0ab"));
    }

    proptest! {
        #[test]
        fn host_and_origin_parsers_do_not_panic(s in "\\PC{0,60}", t in "[a-z:\\[\\]0-9./]{0,30}") {
            let local: SocketAddr = "[::1]:1".parse().expect("valid");
            let _ = path_is_text(&s);
            for v in [&s, &t] {
                if let Some(h) = split_authority(v) {
                    let _ = host_allowed(&h.0, Some(local), &[]);
                    let _ = same_origin(v, &h);
                }
            }
        }
    }
}
