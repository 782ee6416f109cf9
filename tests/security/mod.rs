//! Every defence of SECURITY.md, over a real socket: exposure, authentication, TLS, Host and
//! Origin checks, headers, traversal, limits, slowloris, SSE framing, untrusted patterns, and
//! property tests of the request-facing parsers.

mod auth;
mod exposure;
mod input;
mod limits;
mod transport;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::net::{self, Resp};
use crate::common::sse::Connection;
use crate::common::{Server, append, enc, texts, wait_until};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SEC: Duration = Duration::from_secs(1);
const TOKEN: &str = "0123456789abcdef-test-token";

fn addr(s: &Server) -> SocketAddr {
    s.url
        .trim_start_matches("http://")
        .parse()
        .expect("the server URL is IP:port")
}

/// A temp dir holding `app.log` (two lines) and a token file.
fn dir_with_token() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "one\ntwo\n");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    dir
}

/// An argon2id PHC string for `password`, cheap to verify (tests only).
fn cheap_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"cometail-salt-16").unwrap();
    a.hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn basic(user: &str, password: &str) -> String {
    use base64ct::Encoding;
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{user}:{password}").as_bytes())
    )
}

fn assert_security_headers(r: &Resp, what: &str) {
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert!(r.header("cache-control").is_some(), "{what}: cache-control");
    assert!(
        !r.headers
            .iter()
            .any(|(n, _)| n.starts_with("access-control-")),
        "{what}: no CORS header"
    );
}

// ---------------------------------------------------------------- exposure
