//! The validated configuration every other module reads.
//!
//! [`Config::from_cli`] is the only place raw flags are checked; after it, values are ready
//! to use (sizes in bytes, durations as `Duration`, sources classified). A bad value is a
//! [`ConfigError`], which `main` reports with exit code 2. The configuration file is merged
//! into the command line before that (`file.rs`). The helpers for addresses (`addrs.rs`) and
//! for paths, globs and rotated history (`paths.rs`) are beside it.

mod addrs;
mod file;
mod paths;
mod sources;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{AuthMode, Cli};
use crate::credentials::{self, Secret};
use crate::parse::Zone;
use crate::sources::Settings;
pub use crate::sources::Source;
use addrs::{base_path, bind_addrs, metrics_addr};
pub use file::{DEFAULT_PATH, LoadError, Loaded, Origin, load};
use paths::{classify, rotated};

/// Everything cometail needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to follow, in command-line order.
    pub sources: Vec<Source>,
    /// What the configuration file's `[[source]]` tables say of some of them (`name`,
    /// `format`, `rotated`; a command's `env` is on its spec too).
    pub source_options: Vec<(crate::sources::Of, crate::sources::SourceOptions)>,
    /// Where to listen: every address of every `--bind`, in order, without repeats (never
    /// empty).
    pub addrs: Vec<SocketAddr>,
    /// `--unix-socket`: a Unix domain socket to serve on too, and its file's permissions.
    pub unix_socket: Option<(PathBuf, u32)>,
    /// `--metrics-bind`: where `/metrics` is also served, without auth or TLS.
    pub metrics_addr: Option<SocketAddr>,
    /// The URL path everything is served under: starts and ends with `/` (`/` for none).
    pub base_path: String,
    /// Entries a reader gets when it asks for none in particular.
    pub default_lines: usize,
    /// Longest line kept whole.
    pub max_line_bytes: usize,
    /// The zone of timestamps written without one.
    pub timezone: Zone,
    /// Whether continuation lines join the record before them (`--records`).
    pub records: bool,
    /// How long `order=time` holds a live entry for other streams to catch up.
    pub merge_delay: Duration,
    /// Poll instead of using file events.
    pub poll: bool,
    /// Poll interval when polling.
    pub poll_interval: Duration,
    /// How long a rotated-away file is still read.
    pub rotate_grace: Duration,
    /// Bound on the stdin spool on disk.
    pub spool_bytes: u64,
    /// Memory for recent entries, per stream.
    pub cache_bytes: usize,
    /// Memory for recent entries, all streams together.
    pub memory: usize,
    /// How long a deleted glob match is listed as `gone` before its stream is dropped.
    pub retire_after: Duration,
    /// Most open connections.
    pub max_connections: usize,
    /// Most long polls held at once.
    pub max_long_polls: usize,
    /// Where files' history continues: rotated siblings and `--rotated` globs (`None`:
    /// neither `--rotated-history` nor `--rotated`).
    pub rotated: Option<crate::stream::Rotated>,
    /// Most whole-history searches at once.
    pub max_searches: usize,
    /// Serve the UI from this directory instead of the embedded copy.
    pub assets: Option<PathBuf>,
    /// Who may read; [`Auth::is_on`] is false when anyone who reaches the port may.
    pub auth: Auth,
    /// Serving a non-loopback address without auth was asked for explicitly.
    pub public_without_auth: bool,
    /// Host names accepted in `Host` besides loopback names and the connection's own
    /// address, lowercase, without port.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// TLS, when `--tls-cert` and `--tls-key` were given.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Most open streams (SSE, raw follow) per client address.
    pub max_streams_per_address: usize,
    /// Whether the stream cap applies to loopback clients too (only when it was given).
    pub cap_loopback_streams: bool,
    /// Longest request head, in bytes (at least 8K: hyper's minimum buffer).
    pub max_header_bytes: usize,
    /// How long a client may take to send a request head or finish the TLS handshake.
    pub header_timeout: Duration,
}

/// Authentication settings, validated (hashes parse, the token is long enough).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// The token clients must present (`Bearer`, the page's cookie, `?token=` on `/`).
    pub token: Option<Secret>,
    /// The token was generated at start, so the URL printed at start must carry it.
    pub token_generated: bool,
    /// HTTP Basic users: `(name, PHC hash string)`, in file order.
    pub users: Vec<(String, Secret)>,
}

impl Auth {
    /// Whether any authentication is required.
    pub fn is_on(&self) -> bool {
        self.token.is_some() || !self.users.is_empty()
    }
}

/// Default of `--max-streams-per-address`.
pub const DEFAULT_STREAMS_PER_ADDRESS: usize = 32;

/// Shortest token accepted from a file or the environment.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag's value is out of its range.
    #[error("{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A glob pattern does not parse.
    #[error("bad glob pattern `{pattern}`: {reason}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The public-bind rule (SECURITY.md): a non-loopback address is served only with
/// authentication on, or with `--public-without-auth`.
fn may_serve(ip: IpAddr, auth: &Auth, public_without_auth: bool) -> bool {
    ip.is_loopback() || auth.is_on() || public_without_auth
}

/// Why a non-loopback address without authentication is refused, and what to do.
fn public_refusal(ip: IpAddr) -> String {
    format!(
        "{ip} is not a loopback address, so anyone who can reach it could read these logs; \
         turn on authentication (--auth token, --token-file, --users-file) or pass \
         --public-without-auth to serve them to everyone"
    )
}

impl Config {
    /// Whether the public-bind rule lets this configuration serve on `ip`; the refusal,
    /// naming the address and the remedies, when it does not. `--bind` is checked by
    /// [`Config::from_cli`]; a socket that is not bound from a flag (systemd socket activation)
    /// is checked with this.
    ///
    /// # Errors
    /// `ip` is not loopback, authentication is off and `--public-without-auth` is not given.
    pub fn check_public(&self, ip: IpAddr) -> Result<(), String> {
        if may_serve(ip, &self.auth, self.public_without_auth) {
            Ok(())
        } else {
            Err(public_refusal(ip))
        }
    }
}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.into(),
    }
}

impl ConfigError {
    /// The flag whose value is refused (`--lines`, or `PATH`), if one is.
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { flag, .. } => Some(flag),
            Self::Glob { .. } => Some("PATH"),
        }
    }
}

impl Config {
    /// What the sources need: the paths and the follower, spool and cache settings.
    pub fn source_settings(&self) -> Settings {
        Settings {
            sources: self.sources.clone(),
            max_line_bytes: self.max_line_bytes,
            rotate_grace: self.rotate_grace,
            poll: self.poll,
            poll_interval: self.poll_interval,
            spool_bytes: self.spool_bytes,
            cache_bytes: self.cache_bytes,
            timezone: self.timezone.clone(),
            records: self.records,
            memory: self.memory,
            retire_after: self.retire_after,
            rotated: self.rotated.clone(),
            options: self.source_options.clone(),
        }
    }

    /// The standalone server needs something to follow (an agent checks its own paths; a hub
    /// follows none).
    pub fn require_sources(&self) -> Result<(), ConfigError> {
        if self.sources.is_empty() {
            return Err(invalid(
                "PATH",
                "nothing to follow: name a file, a glob, `-` or a --cmd (or `paths` in the config file)",
            ));
        }
        Ok(())
    }

    /// The first address to listen on (the one tests and the first printed URL use).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Validates the command line.
    ///
    /// # Errors
    /// Returns the first value that cannot be used.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        Self::from_parts(cli, Vec::new())
    }

    /// Validates the command line merged with the configuration file, and what the file's
    /// `[[source]]` tables say of their sources ([`Loaded::into_config`]).
    fn from_parts(
        cli: Cli,
        source_options: Vec<(crate::sources::Of, crate::sources::SourceOptions)>,
    ) -> Result<Self, ConfigError> {
        let mut sources = Vec::new();
        for path in &cli.paths {
            let source = classify(path)?;
            if source == Source::Stdin && sources.contains(&Source::Stdin) {
                return Err(invalid(
                    "PATH",
                    "`-` (standard input) can be given only once",
                ));
            }
            sources.push(source);
        }
        for raw in &cli.commands {
            let mut spec =
                crate::sources::CommandSpec::parse(raw).map_err(|e| invalid("--cmd", e))?;
            let of = crate::sources::Of::Command(spec.name.clone());
            if let Some((_, options)) = source_options.iter().find(|(o, _)| *o == of) {
                spec.env.clone_from(&options.env);
            }
            let taken = sources
                .iter()
                .any(|s| matches!(s, Source::Command(c) if c.name == spec.name));
            if taken {
                return Err(invalid(
                    "--cmd",
                    format!("two commands are named `{}`", spec.name),
                ));
            }
            sources.push(Source::Command(spec));
        }
        check_stream_names(&sources, &source_options)?;
        if cli.lines > 10_000 {
            return Err(invalid("--lines", "at most 10000"));
        }
        let max_line_bytes = usize::try_from(cli.max_line_bytes)
            .ok()
            .filter(|n| (16..=(256 << 20)).contains(n))
            .ok_or_else(|| invalid("--max-line-bytes", "must be between 16 bytes and 256M"))?;
        let timezone = match &cli.timezone {
            Some(name) => Zone::named(name).map_err(|e| invalid("--timezone", e.to_string()))?,
            None => Zone::system(),
        };
        if cli.merge_delay > Duration::from_secs(10) {
            return Err(invalid("--merge-delay", "at most 10s"));
        }
        if cli.poll_interval < Duration::from_millis(10)
            || cli.poll_interval > Duration::from_secs(60)
        {
            return Err(invalid("--poll-interval", "must be between 10ms and 60s"));
        }
        if cli.rotate_grace > Duration::from_secs(600) {
            return Err(invalid("--rotate-grace", "at most 600s"));
        }
        if cli.spool_bytes < 2 * cli.max_line_bytes {
            return Err(invalid(
                "--spool-bytes",
                "must hold at least two of the longest lines (--max-line-bytes)",
            ));
        }
        let cache_bytes = usize::try_from(cli.cache_bytes)
            .ok()
            .filter(|n| *n >= 64 << 10)
            .ok_or_else(|| invalid("--cache-bytes", "at least 64K"))?;
        let memory = usize::try_from(cli.memory)
            .ok()
            .filter(|n| *n >= 1 << 20)
            .ok_or_else(|| invalid("--memory", "at least 1M"))?;
        if cli.max_connections == 0 || cli.max_long_polls == 0 {
            return Err(invalid("--max-connections", "limits must be at least 1"));
        }
        if let Some(dir) = &cli.assets {
            if !dir.is_dir() {
                return Err(invalid(
                    "--assets",
                    format!("{} is not a directory", dir.display()),
                ));
            }
        }
        let rotated = rotated(&cli)?;
        let max_searches = match cli.max_searches {
            0 => {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
            }
            n => n,
        };
        let auth = auth(&cli)?;
        let addrs = bind_addrs(&cli.bind, cli.port)?;
        if let Some(public) = addrs
            .iter()
            .find(|a| !may_serve(a.ip(), &auth, cli.public_without_auth))
        {
            return Err(invalid("--bind", public_refusal(public.ip())));
        }
        let tls = match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(
                crate::tls::server_config(cert, key).map_err(|e| invalid("--tls-cert", e))?,
            )),
            _ => None,
        };
        let allowed_hosts = cli
            .allowed_hosts
            .iter()
            .map(|h| {
                let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
                let valid = !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
                valid.then_some(h).ok_or_else(|| {
                    invalid("--allowed-host", "a host name or address, without port")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if cli.max_streams_per_address == Some(0) {
            return Err(invalid("--max-streams-per-address", "at least 1"));
        }
        let max_header_bytes = usize::try_from(cli.max_header_bytes)
            .ok()
            .filter(|n| ((8 << 10)..=(1 << 20)).contains(n))
            .ok_or_else(|| invalid("--max-header-bytes", "must be between 8K and 1M"))?;
        if cli.header_timeout < Duration::from_millis(100)
            || cli.header_timeout > Duration::from_secs(300)
        {
            return Err(invalid(
                "--header-timeout",
                "must be between 100ms and 300s",
            ));
        }
        let base_path = base_path(&cli.base_path)?;
        let metrics_addr = cli.metrics_bind.as_deref().map(metrics_addr).transpose()?;
        let mode = u32::from_str_radix(cli.unix_socket_mode.trim_start_matches('0'), 8)
            .ok()
            .filter(|m| *m <= 0o777 && *m & 0o600 == 0o600)
            .ok_or_else(|| {
                invalid(
                    "--unix-socket-mode",
                    "octal permissions (e.g. 600, 660) that let the owner read and write",
                )
            })?;
        let unix_socket = cli.unix_socket.map(|path| (path, mode));
        Ok(Self {
            unix_socket,
            metrics_addr,
            base_path,
            auth,
            public_without_auth: cli.public_without_auth,
            allowed_hosts,
            trusted_proxies: cli.trusted_proxies,
            tls,
            max_streams_per_address: cli
                .max_streams_per_address
                .unwrap_or(DEFAULT_STREAMS_PER_ADDRESS),
            cap_loopback_streams: cli.max_streams_per_address.is_some(),
            max_header_bytes,
            header_timeout: cli.header_timeout,
            sources,
            source_options,
            addrs,
            default_lines: cli.lines,
            max_line_bytes,
            timezone,
            records: cli.records == crate::cli::Switch::On,
            merge_delay: cli.merge_delay,
            poll: cli.poll,
            poll_interval: cli.poll_interval,
            rotate_grace: cli.rotate_grace,
            spool_bytes: cli.spool_bytes,
            cache_bytes,
            memory,
            retire_after: cli.retire_after,
            max_connections: cli.max_connections,
            max_long_polls: cli.max_long_polls,
            rotated,
            max_searches,
            assets: cli.assets,
        })
    }
}

/// A file's table may name its stream (`name`), but not as a command is named: two streams
/// the operator named alike would be told apart only by a suffix on one of them.
fn check_stream_names(
    sources: &[Source],
    options: &[(crate::sources::Of, crate::sources::SourceOptions)],
) -> Result<(), ConfigError> {
    for (_, o) in options {
        let Some(name) = &o.name else { continue };
        let command = sources
            .iter()
            .any(|s| matches!(s, Source::Command(c) if c.name == *name));
        if command {
            return Err(invalid(
                "PATH",
                format!(
                    "a `[[source]]` table names a file's stream `{name}`, as a command is named"
                ),
            ));
        }
    }
    Ok(())
}

/// Reads the token and users files and the environment's token.
fn auth(cli: &Cli) -> Result<Auth, ConfigError> {
    let mut auth = Auth::default();
    if let Some(path) = &cli.token_file {
        let text = read_secret_file(path, "--token-file")?;
        let token = text.lines().next().unwrap_or_default().trim().to_owned();
        auth.token = Some(Secret(token));
    } else if let Some(token) = &cli.env_token {
        auth.token = Some(Secret(token.trim().to_owned()));
    }
    if let Some(Secret(token)) = &auth.token {
        if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_control) {
            return Err(invalid(
                "--token-file",
                format!("the token must be at least {MIN_TOKEN_CHARS} characters, on one line"),
            ));
        }
    }
    if cli.auth == Some(AuthMode::Token) && auth.token.is_none() {
        auth.token = Some(Secret(credentials::generate_token()));
        auth.token_generated = true;
    }
    if let Some(path) = &cli.users_file {
        let text = read_secret_file(path, "--users-file")?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| invalid("--users-file", format!("line {}: {why}", i + 1));
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| bad("expected `user:$argon2id$…`"))?;
            if user.is_empty() || user.chars().any(char::is_control) {
                return Err(bad("empty or invalid user name"));
            }
            credentials::check_hash(hash).map_err(|e| bad(&e))?;
            auth.users.push((user.to_owned(), Secret(hash.to_owned())));
        }
        if auth.users.is_empty() {
            return Err(invalid("--users-file", "no users in the file"));
        }
    }
    Ok(auth)
}

fn read_secret_file(path: &Path, flag: &'static str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| invalid(flag, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        Config::from_cli(
            Cli::try_parse_from(std::iter::once("cometail").chain(args.iter().copied()))
                .expect("parses"),
        )
    }

    #[test]
    fn paths_are_classified() {
        let c = config(&["a.log", "-", "/tmp/*.log"]).expect("valid");
        assert_eq!(
            c.sources,
            [
                Source::File("a.log".into()),
                Source::Stdin,
                Source::Glob("/tmp/*.log".into())
            ]
        );
        assert_eq!(c.addr().to_string(), "127.0.0.1:7001");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(config(&["-", "-"]).is_err());
        assert!(config(&["/tmp/[.log"]).is_err());
        assert!(config(&["--max-line-bytes", "1", "a"]).is_err());
        assert!(config(&["--lines", "20000", "a"]).is_err());
        assert!(config(&["--max-header-bytes", "1K", "a"]).is_err());
        assert!(config(&["--allowed-host", "a/b", "a"]).is_err());
    }

    #[test]
    fn the_base_path_is_checked_and_ends_with_a_slash() {
        let base = |p: &str| config(&["--base-path", p, "a"]).map(|c| c.base_path);
        assert_eq!(base("/logs").expect("valid"), "/logs/");
        assert_eq!(base("/ops/logs/").expect("valid"), "/ops/logs/");
        assert_eq!(base("/").expect("valid"), "/");
        assert_eq!(config(&["a"]).expect("valid").base_path, "/");
        let refused = base("logs/").expect_err("no leading slash");
        assert!(refused.to_string().contains("must start with `/`"));
        for bad in ["//", "/a//b", "/a/../b", "/a b", "/a?b", "/%2e"] {
            assert!(base(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn bind_takes_names_addresses_and_repeats() {
        let addrs = |args: &[&str]| config(args).map(|c| c.addrs);
        let local = addrs(&[
            "--bind",
            "localhost",
            "--bind",
            "[::1]",
            "--bind",
            "127.0.0.1",
            "a",
        ])
        .expect("valid");
        assert!(
            local
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 7001)
        );
        assert!(local.iter().any(|a| a.is_ipv6()) && local.iter().any(|a| a.is_ipv4()));
        let unique: std::collections::HashSet<_> = local.iter().collect();
        assert_eq!(unique.len(), local.len(), "no address twice: {local:?}");
        let e = addrs(&["--bind", "no-such-host.invalid", "a"]).expect_err("unresolvable");
        assert!(e.to_string().contains("no-such-host.invalid"), "{e}");
        assert!(addrs(&["--bind", "a b", "a"]).is_err());
        assert!(
            addrs(&["--bind", "127.0.0.1,0.0.0.0", "a"]).is_err(),
            "one public address needs auth"
        );
    }

    #[test]
    fn public_bind_needs_auth_or_an_explicit_opt_out() {
        let refused = config(&["--bind", "0.0.0.0", "a"]).expect_err("refused");
        assert!(refused.to_string().contains("--public-without-auth"));
        assert!(config(&["--bind", "0.0.0.0", "--public-without-auth", "a"]).is_ok());
        let c = config(&["--bind", "0.0.0.0", "--auth", "token", "a"]).expect("auth is on");
        assert!(c.auth.token_generated && c.auth.is_on());
        assert!(config(&["--bind", "::1", "a"]).is_ok());
        assert!(!config(&["a"]).expect("valid").auth.is_on());
        // A socket not bound from a flag (systemd's) obeys the same rule.
        let public = IpAddr::from([0, 0, 0, 0]);
        let local = config(&["a"]).expect("valid");
        let why = local.check_public(public).expect_err("refused");
        assert!(why.contains("0.0.0.0") && why.contains("--public-without-auth"));
        assert!(local.check_public(IpAddr::from([127, 0, 0, 1])).is_ok());
        assert!(c.check_public(public).is_ok());
        let opted = config(&["--public-without-auth", "a"]).expect("valid");
        assert!(opted.check_public(public).is_ok());
    }

    #[test]
    fn the_token_is_never_printed_by_debug() {
        let c = config(&["--auth", "token", "a"]).expect("valid");
        let token = c.auth.token.clone().expect("generated").0;
        assert!(!format!("{c:?}").contains(&token));
    }
}
