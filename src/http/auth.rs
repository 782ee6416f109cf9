//! Authentication: a token (Bearer header, the page's cookie, or `?token=` on `/` traded for
//! the cookie) and HTTP Basic users with argon2 password hashes; failures are counted by the
//! [`throttle`](super::throttle).
//!
//! Secrets are compared in constant time (`credentials::secret_eq`), so neither the content nor
//! the length of a guess leaks through timing. Argon2 verifications run on blocking threads, at most
//! [`MAX_VERIFYING`] at once, and a verified Basic header is remembered (by a keyed digest),
//! so a browser that sends it on every request costs one verification, not one per request.
//! Nothing here logs a credential.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::AppState;
use super::error::{ApiError, Challenge};
use super::guard::LocalAddr;
use super::throttle::{self, Throttle};
use crate::config::Auth;
use crate::credentials::{Digest, decoy_of, hex, random_bytes, secret_eq, sha256, verify_password};

/// Most argon2 verifications running at once; more wait for a turn.
pub(crate) const MAX_VERIFYING: usize = 2;
/// Most verified Basic headers remembered.
const MAX_VERIFIED: usize = 1_024;

/// What a request's credentials came to.
enum Outcome {
    /// Valid credentials.
    Allowed,
    /// A valid `?token=` on the page: set the cookie and redirect to this location.
    Exchange(String),
    /// No credentials (not counted as a failure).
    Missing,
    /// Wrong credentials (counted against the address, and against `user` for Basic);
    /// `clear_cookie` when a stale cookie should be dropped.
    Wrong {
        clear_cookie: bool,
        user: Option<String>,
    },
}

/// The run-time side of [`Auth`]: digests of the secrets, the throttle, the caches.
pub(crate) struct Authenticator {
    /// SHA-256 of the token.
    token: Option<Digest>,
    /// The cookie's value (a digest of the token, so the cookie is not the token itself)
    /// and its digest.
    cookie: Option<(String, Digest)>,
    /// User name → PHC hash string.
    users: HashMap<String, String>,
    /// A hash with the first user's parameters, verified for unknown users so that a
    /// missing user takes as long as a wrong password.
    decoy: Option<String>,
    /// Key for the verified-header cache, random per process.
    key: [u8; 32],
    verified: Mutex<HashSet<Digest>>,
    verifying: Semaphore,
    /// Failures per client address (see [`throttle::address`]).
    by_address: Throttle<IpAddr>,
    /// Failures per Basic user name, from any address, keyed by the name's digest so that a
    /// table full of long made-up names stays small.
    by_user: Throttle<Digest>,
    /// Whether the cookie gets `Secure`.
    tls: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("token", &self.token.is_some())
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// The authenticator for `auth`, or `None` when authentication is off.
    pub(crate) fn new(auth: &Auth, tls: bool) -> Option<Self> {
        if !auth.is_on() {
            return None;
        }
        let token = auth.token.as_ref().map(|t| t.0.as_bytes());
        let cookie = token.map(|t| {
            let value = hex(&sha256(&[b"cometail cookie v1\0", t]));
            let d = sha256(&[value.as_bytes()]);
            (value, d)
        });
        let users: HashMap<String, String> = auth
            .users
            .iter()
            .map(|(u, h)| (u.clone(), h.0.clone()))
            .collect();
        let decoy = auth.users.first().and_then(|(_, h)| decoy_of(&h.0));
        let key = random_bytes();
        Some(Self {
            token: token.map(|t| sha256(&[t])),
            cookie,
            users,
            decoy,
            key,
            verified: Mutex::new(HashSet::new()),
            verifying: Semaphore::new(MAX_VERIFYING),
            by_address: Throttle::default(),
            by_user: Throttle::default(),
            tls,
        })
    }

    fn basic(&self) -> bool {
        !self.users.is_empty()
    }

    async fn check(&self, uri: &Uri, headers: &HeaderMap, cookie_name: &str) -> Outcome {
        if uri.path() == "/" && self.token.is_some() {
            if let Some(presented) = query_token(uri.query()) {
                return match self.token.as_ref() {
                    Some(t) if secret_eq(presented.as_bytes(), t) => {
                        Outcome::Exchange(without_token(uri.query()))
                    }
                    _ => Outcome::Wrong {
                        clear_cookie: false,
                        user: None,
                    },
                };
            }
        }
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value.as_bytes();
            let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
                Some(i) => (&value[..i], trim(&value[i + 1..])),
                None => (value, &[][..]),
            };
            if scheme.eq_ignore_ascii_case(b"bearer") {
                return match &self.token {
                    Some(t) if secret_eq(rest, t) => Outcome::Allowed,
                    _ => Outcome::Wrong {
                        clear_cookie: false,
                        user: None,
                    },
                };
            }
            if scheme.eq_ignore_ascii_case(b"basic") && self.basic() {
                return match self.verify_basic(rest).await {
                    Ok(()) => Outcome::Allowed,
                    Err(user) => Outcome::Wrong {
                        clear_cookie: false,
                        user,
                    },
                };
            }
            return Outcome::Missing;
        }
        if let Some((_, expected)) = &self.cookie {
            if let Some(value) = cookie(headers, cookie_name) {
                return if secret_eq(value.as_bytes(), expected) {
                    Outcome::Allowed
                } else {
                    Outcome::Wrong {
                        clear_cookie: true,
                        user: None,
                    }
                };
            }
        }
        Outcome::Missing
    }

    /// Verifies `Basic` credentials (the base64 part); on failure, the user name they gave.
    ///
    /// A user name with recent failures is slowed: its verification waits until the name's
    /// block ends, so guessing one user's password goes no faster than the throttle allows,
    /// while the right password is still accepted (later). A header verified before is
    /// accepted at once (the user's browser sends it on every request).
    async fn verify_basic(&self, encoded: &[u8]) -> Result<(), Option<String>> {
        let cache_key = sha256(&[&self.key, encoded]);
        if self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&cache_key)
        {
            return Ok(());
        }
        let Some((user, password)) = decode_basic(encoded) else {
            return Err(None);
        };
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => match &self.decoy {
                Some(d) => (d.clone(), false),
                None => return Err(Some(user)),
            },
        };
        if let Some(wait) = self.by_user.blocked(&sha256(&[user.as_bytes()])) {
            tokio::time::sleep(wait).await;
        }
        let Ok(_turn) = self.verifying.acquire().await else {
            return Err(Some(user));
        };
        let ok = tokio::task::spawn_blocking(move || verify_password(&hash, password.as_bytes()))
            .await
            .unwrap_or(false)
            && known;
        if !ok {
            return Err(Some(user));
        }
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(cache_key);
        Ok(())
    }

    fn set_cookie(&self, name: &str, value: &str, max_age_zero: bool) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if self.tls {
            c.push_str("; Secure");
        }
        if max_age_zero {
            c.push_str("; Max-Age=0");
        }
        HeaderValue::from_str(&c).expect("cookie names and values are ASCII")
    }

    fn unauthorized(&self, reason: &'static str) -> ApiError {
        let challenge = if self.basic() {
            Challenge::Basic
        } else {
            Challenge::Bearer
        };
        ApiError::Unauthorized { reason, challenge }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|c| *c != b' ').map_or(start, |i| i + 1);
    &b[start..end]
}

/// `user:password` from the base64 part of a Basic header.
fn decode_basic(encoded: &[u8]) -> Option<(String, String)> {
    use base64ct::Encoding;
    let raw = base64ct::Base64::decode_vec(std::str::from_utf8(encoded).ok()?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The value of cookie `name` in the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The `token` query parameter, percent-decoded (a token is hex, but be exact).
fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| percent_decode(v))
}

/// The page's URL without its `token` parameter: where the exchange redirects to.
fn without_token(query: Option<&str>) -> String {
    let rest: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && *p != "token" && !p.starts_with("token="))
        .collect();
    if rest.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{}", rest.join("&"))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hexval = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cookie's name: per port, because browsers share cookies between all ports of a host
/// and two servers on one machine must not overwrite each other's.
fn cookie_name(req: &Request) -> String {
    match req.extensions().get::<LocalAddr>() {
        Some(LocalAddr(addr)) => format!("cometail-{}", addr.port()),
        None => "cometail".to_owned(),
    }
}

/// The middleware: lets a request through only with valid credentials (or when
/// authentication is off), trades `?token=` for the cookie, throttles repeated failures.
///
/// The right credential is accepted whatever failed before from the same address: behind a
/// reverse proxy every user shares one address, and one wrong script must not lock them all
/// out. Failures are what the throttle slows: once an address or a user name has failed
/// [`throttle::FREE_FAILURES`] times, each further failure is a 429 with `Retry-After`, and a
/// blocked user name's next verification waits out its block.
pub(super) async fn require(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(auth) = app.auth.as_deref() else {
        return next.run(req).await;
    };
    let ip = super::peer(&req)
        .map(|a| client_address(a.ip(), req.headers(), &app.config.trusted_proxies))
        .map(throttle::address);
    let name = cookie_name(&req);
    match auth.check(req.uri(), req.headers(), &name).await {
        Outcome::Allowed => {
            if let Some(ip) = &ip {
                auth.by_address.succeed(ip);
            }
            next.run(req).await
        }
        Outcome::Exchange(location) => {
            if let Some(ip) = &ip {
                auth.by_address.succeed(ip);
            }
            let value = auth.cookie.as_ref().map(|c| c.0.as_str()).unwrap_or("");
            let mut r = StatusCode::SEE_OTHER.into_response();
            let h = r.headers_mut();
            h.insert(header::SET_COOKIE, auth.set_cookie(&name, value, false));
            h.insert(
                header::LOCATION,
                HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/")),
            );
            r
        }
        Outcome::Missing => auth.unauthorized("authentication required").into_response(),
        Outcome::Wrong { clear_cookie, user } => {
            let by_address = ip.and_then(|ip| auth.by_address.fail(ip));
            let by_user = user.and_then(|user| auth.by_user.fail(sha256(&[user.as_bytes()])));
            tracing::debug!(
                "authentication failed from {}",
                ip.map_or_else(|| "?".to_owned(), |i| i.to_string())
            );
            let mut r = match by_address.max(by_user) {
                Some(retry_after) => ApiError::TooManyFailures { retry_after },
                None => auth.unauthorized("wrong credentials"),
            }
            .into_response();
            if clear_cookie {
                r.headers_mut()
                    .append(header::SET_COOKIE, auth.set_cookie(&name, "", true));
            }
            r
        }
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost
/// address in `X-Forwarded-For` that is not a trusted proxy (each proxy appends the address it
/// got the request from; entries left of the first untrusted one are the client's to forge).
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => {}
            Ok(ip) => return ip,
            // Not an address (`unknown`, a port): the chain cannot be followed further.
            Err(_) => return peer,
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_client_behind_a_trusted_proxy_is_the_rightmost_untrusted_hop() {
        let proxy: IpAddr = "10.0.0.9".parse().expect("valid");
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 2.2.2.2, 10.0.0.9"),
        );
        assert_eq!(client_address(proxy, &h, &[proxy]).to_string(), "2.2.2.2");
        let stranger: IpAddr = "3.3.3.3".parse().expect("valid");
        assert_eq!(
            client_address(stranger, &h, &[proxy]),
            stranger,
            "untrusted peer"
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &[proxy]), proxy);
        h.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(client_address(proxy, &h, &[proxy]), proxy);
    }

    #[test]
    fn the_token_leaves_the_redirect_location() {
        assert_eq!(without_token(Some("token=abc")), "/");
        assert_eq!(
            without_token(Some("transport=poll&token=abc&s=a")),
            "/?transport=poll&s=a"
        );
        assert_eq!(query_token(Some("a=1&token=ab%63")), Some("abc".into()));
    }

    proptest! {
        #[test]
        fn credential_parsers_do_not_panic(s in "\\PC{0,80}", b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_basic(s.as_bytes());
            let _ = decode_basic(&b);
            let _ = query_token(Some(&s));
            let _ = without_token(Some(&s));
            let _ = percent_decode(&s);
            let _ = trim(&b);
        }
    }
}
