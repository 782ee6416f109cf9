//! The network side of the configuration: the addresses to listen on (`--bind`,
//! `--metrics-bind`) and the URL path to serve under (`--base-path`).
//!
//! Each helper turns one flag's raw text into a ready value or a [`ConfigError`] naming the
//! flag; resolving host names happens here, once, at start. Binding is `main`'s.

use std::net::SocketAddr;

use super::{ConfigError, invalid};

/// The addresses of every `--bind`: an IP address (IPv6 with or without brackets) as given,
/// a host name at each address it resolves to (the system resolver, once, at start).
pub(super) fn bind_addrs(hosts: &[String], port: u16) -> Result<Vec<SocketAddr>, ConfigError> {
    use std::net::{IpAddr, ToSocketAddrs};
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for host in hosts {
        let host = host.trim();
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let found: Vec<SocketAddr> = if let Ok(ip) = bare.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else {
            let name_like = !bare.is_empty()
                && bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
            if !name_like {
                return Err(invalid(
                    "--bind",
                    format!("`{host}` is not an IP address or a host name"),
                ));
            }
            (bare, port)
                .to_socket_addrs()
                .map_err(|e| invalid("--bind", format!("cannot resolve `{host}`: {e}")))?
                .collect()
        };
        if found.is_empty() {
            return Err(invalid(
                "--bind",
                format!("`{host}` resolves to no address"),
            ));
        }
        for a in found {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
    }
    if addrs.is_empty() {
        return Err(invalid("--bind", "no address given"));
    }
    Ok(addrs)
}

/// The one address of `--metrics-bind` (`HOST:PORT`; a name's first address).
pub(super) fn metrics_addr(raw: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    let bad = |why: String| invalid("--metrics-bind", format!("`{raw}`: {why}"));
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    if !raw.contains(':') {
        return Err(bad("expected HOST:PORT, e.g. 127.0.0.1:9101".into()));
    }
    raw.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
}

/// Validates `--base-path`, adding the trailing slash when it is missing.
pub(super) fn base_path(raw: &str) -> Result<String, ConfigError> {
    const FLAG: &str = "--base-path";
    let Some(inner) = raw.strip_prefix('/') else {
        return Err(invalid(
            FLAG,
            format!("`{raw}` must start with `/` (for example /logs/)"),
        ));
    };
    if inner.is_empty() {
        return Ok("/".to_owned());
    }
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    for segment in inner.split('/') {
        let plain = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if segment.is_empty() || segment == "." || segment == ".." || !plain {
            return Err(invalid(
                FLAG,
                format!(
                    "`{raw}`: each segment must be non-empty, not `.` or `..`, and made of \
                     letters, digits and `-._~`"
                ),
            ));
        }
    }
    Ok(format!("/{inner}/"))
}
