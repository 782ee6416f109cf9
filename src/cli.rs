//! The command line, as clap parses it. Nothing after `config` imports this module: raw
//! flags become a validated [`crate::config::Config`] there.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Follow log files like `tail -F` and watch them live in a web browser.
///
/// Each PATH becomes a stream: a file (followed even before it exists), a quoted glob pattern
/// such as '/var/log/*.log' (new matches become new streams), or `-` for standard input.
#[derive(Debug, Parser)]
#[command(
    name = "cometail",
    version = VERSION,
    about,
    long_about,
    after_help = after_help()
)]
pub struct Cli {
    /// Files, quoted glob patterns, or `-` for standard input.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,

    /// Follow a command's output as the stream NAME (repeatable), e.g.
    /// `--cmd 'journal=journalctl -f -o short-iso'`: split into words like a shell would, run
    /// without a shell, with only PATH in its environment (and, from a `[[source]]` table of
    /// the configuration file, its `env`); its standard error is marked
    /// `[stderr]`; restarted with backoff when it exits; killed at shutdown.
    #[arg(long = "cmd", value_name = "NAME=COMMAND")]
    pub commands: Vec<String>,

    /// Read settings from this TOML file: its keys are the long flags' names (`port = 7001`,
    /// `bind = ["localhost"]`, `paths = ["/var/log/syslog"]`). Flags and environment variables
    /// win over it. Default: /etc/cometail/cometail.toml when that file exists.
    #[arg(long, env = "COMETAIL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell) and
    /// exit, e.g. `cometail --completions bash > /etc/bash_completion.d/cometail`.
    #[arg(long, value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,

    /// Print the manual page (roff) and exit, e.g. `cometail --man > cometail.1`.
    #[arg(long)]
    pub man: bool,

    /// Print the effective settings as a configuration file, each with where it came from
    /// (flag, env, file, default), and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Port to listen on (0 picks a free one; the URL printed at start has the real port).
    #[arg(short, long, env = "COMETAIL_PORT", default_value_t = 7001)]
    pub port: u16,

    /// Address or host name to listen on (repeatable; a name is listened on at each address
    /// it resolves to, e.g. `localhost`). Loopback by default: the logs stay on this machine.
    /// Sockets passed by systemd (socket activation, LISTEN_FDS) replace it and --unix-socket.
    #[arg(
        short = 'i',
        long,
        env = "COMETAIL_BIND",
        value_name = "HOST",
        default_value = "127.0.0.1",
        value_delimiter = ','
    )]
    pub bind: Vec<String>,

    /// Also serve on a Unix domain socket at this path, for a reverse proxy on the same
    /// machine (plain HTTP; its clients count as loopback clients). A socket file left by a
    /// server that is gone is replaced; one in use is refused. Removed at exit.
    #[arg(long, env = "COMETAIL_UNIX_SOCKET", value_name = "PATH")]
    pub unix_socket: Option<PathBuf>,

    /// Permissions of --unix-socket's file, in octal (660 lets the file's group connect,
    /// e.g. a proxy's user added to it).
    #[arg(
        long,
        env = "COMETAIL_UNIX_SOCKET_MODE",
        value_name = "OCTAL",
        default_value = "600"
    )]
    pub unix_socket_mode: String,

    /// Also serve `/metrics` (and the probes) on this address (HOST:PORT), without
    /// authentication and without TLS, for a Prometheus that should not hold the credentials.
    /// A socket passed by systemd named `metrics` (FileDescriptorName=) replaces it.
    #[arg(long, env = "COMETAIL_METRICS_BIND", value_name = "HOST:PORT")]
    pub metrics_bind: Option<String>,

    /// URL path everything is served under, for a reverse proxy that serves cometail at
    /// e.g. `https://ops.example.com/logs/`: the page, its files and the API all live under it.
    #[arg(
        long,
        env = "COMETAIL_BASE_PATH",
        value_name = "PATH",
        default_value = "/"
    )]
    pub base_path: String,

    /// Entries a reader gets when it asks for none in particular (like `tail -n`).
    #[arg(short = 'n', long, env = "COMETAIL_LINES", default_value_t = 10)]
    pub lines: usize,

    /// Longest line kept whole (bytes; K, M, G suffixes); longer lines are cut and marked.
    #[arg(long, env = "COMETAIL_MAX_LINE_BYTES", default_value = "1M", value_parser = parse_size)]
    pub max_line_bytes: u64,

    /// Time zone of timestamps written without one (an IANA name such as Europe/Berlin, or
    /// UTC); default: the server's own zone.
    #[arg(long, env = "COMETAIL_TIMEZONE")]
    pub timezone: Option<String>,

    /// Multi-line records: a line without a leading timestamp (a stack frame, `Caused by:`)
    /// joins the record before it, one entry of at most 1,000 lines and --max-line-bytes;
    /// `off` makes every line its own entry.
    #[arg(
        long,
        env = "COMETAIL_RECORDS",
        default_value = "on",
        value_name = "on|off"
    )]
    pub records: Switch,

    /// How long the time-ordered merged view (`order=time`) holds a live entry for a stream
    /// that may still write an earlier one (e.g. 250ms; 0 turns the hold off).
    #[arg(long, env = "COMETAIL_MERGE_DELAY", default_value = "250ms", value_parser = parse_duration)]
    pub merge_delay: Duration,

    /// Poll files instead of using file system events (network file systems, containers).
    #[arg(long, env = "COMETAIL_POLL")]
    pub poll: bool,

    /// How often files are polled when events are not available (e.g. 250ms, 1s).
    #[arg(long, env = "COMETAIL_POLL_INTERVAL", default_value = "250ms", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// How long a rotated-away or deleted file is still read for lines its writer adds late
    /// (e.g. 3s, 1m).
    #[arg(long, env = "COMETAIL_ROTATE_GRACE", default_value = "3s", value_parser = parse_duration)]
    pub rotate_grace: Duration,

    /// Most bytes of standard input kept on disk for history (oldest dropped first).
    #[arg(long, env = "COMETAIL_SPOOL_BYTES", default_value = "64M", value_parser = parse_size)]
    pub spool_bytes: u64,

    /// Memory for recent entries per stream; older entries are read back from disk.
    #[arg(long, env = "COMETAIL_CACHE_BYTES", default_value = "16M", value_parser = parse_size)]
    pub cache_bytes: u64,

    /// Memory for recent entries of all streams together. Over it, each stream keeps only its
    /// share (this divided by the number of streams) within a second; older entries are read
    /// back from disk.
    #[arg(long, env = "COMETAIL_MEMORY", default_value = "256M", value_parser = parse_size)]
    pub memory: u64,

    /// How long the stream of a deleted glob match stays listed as `gone` before it is dropped
    /// (e.g. 60s, 10m, 1h).
    #[arg(long, env = "COMETAIL_RETIRE_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub retire_after: Duration,

    /// Most open connections; one more gets 503 and is closed.
    #[arg(long, env = "COMETAIL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most long polls held waiting at once; one more gets 503.
    #[arg(long, env = "COMETAIL_MAX_LONG_POLLS", default_value_t = 10_000)]
    pub max_long_polls: usize,

    /// Also read these files as older history of the followed file in their directory
    /// (logrotate's `olddir`, other naming schemes); may be repeated; implies
    /// `--rotated-history`, which also finds siblings named `NAME.N`, `NAME-DATE` (optionally
    /// `.gz`).
    #[arg(long, env = "COMETAIL_ROTATED", value_name = "GLOB")]
    pub rotated: Vec<String>,

    /// Read rotated files (`NAME.1`, `NAME.2.gz`, `NAME-DATE` …) as older history of the
    /// followed file (`=false` reads the followed file's own generations only; any `--rotated`
    /// glob turns it on).
    #[arg(
        long,
        env = "COMETAIL_ROTATED_HISTORY",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub rotated_history: bool,

    /// Most whole-history searches running at once; one more gets 503 (0: the number of
    /// cores less one, at least 1).
    #[arg(long, env = "COMETAIL_MAX_SEARCHES", default_value_t = 0)]
    pub max_searches: usize,

    /// Serve the page's files from this directory instead of the copy built in (UI work).
    #[arg(long, env = "COMETAIL_ASSETS", value_name = "DIR")]
    pub assets: Option<PathBuf>,

    /// Require a token: `token` generates one at start and prints the URL that carries it
    /// (the page trades it for a cookie). A token can also come from --token-file or the
    /// environment variable COMETAIL_TOKEN, never from the command line.
    #[arg(long, env = "COMETAIL_AUTH", value_name = "MODE")]
    pub auth: Option<AuthMode>,

    /// Require this token (the file's first line, at least 16 characters); API clients send
    /// `Authorization: Bearer TOKEN`. COMETAIL_TOKEN in the environment does the same.
    #[arg(long, env = "COMETAIL_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Require HTTP Basic authentication by the users of this file: lines `user:$argon2id$…`
    /// (PHC strings, e.g. from the `argon2` tool with `-id -e`); `#` starts a comment.
    #[arg(long, env = "COMETAIL_USERS_FILE", value_name = "PATH")]
    pub users_file: Option<PathBuf>,

    /// Serve on a non-loopback address without authentication (a warning is logged on every
    /// start). Without it, cometail refuses to start on such an address unless auth is on.
    #[arg(long, env = "COMETAIL_PUBLIC_WITHOUT_AUTH")]
    pub public_without_auth: bool,

    /// A host name the server may be reached by, besides loopback names and the address a
    /// client connected to (repeatable). Requests for any other `Host` get 421.
    #[arg(
        long = "allowed-host",
        env = "COMETAIL_ALLOWED_HOSTS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Address of a reverse proxy in front of cometail (repeatable). For connections from it,
    /// the failure throttle and the per-address stream cap count the client address the proxy
    /// adds to `X-Forwarded-For` (the rightmost one that is not a trusted proxy), instead of
    /// the proxy's own.
    #[arg(
        long = "trusted-proxy",
        env = "COMETAIL_TRUSTED_PROXIES",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// TLS certificate chain (PEM). With --tls-key, serves HTTPS with HTTP/2 and HSTS.
    #[arg(
        long,
        env = "COMETAIL_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "COMETAIL_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Most open streams (SSE and `raw?follow=1`) from one client address; one more gets 429.
    /// Default 32, for non-loopback clients only: loopback clients all share one address, so
    /// they are capped only when this is given (and --max-connections caps them anyway).
    #[arg(long, env = "COMETAIL_MAX_STREAMS_PER_ADDRESS", value_name = "N")]
    pub max_streams_per_address: Option<usize>,

    /// Longest request head (request line and headers, bytes; K suffix); longer gets 431.
    #[arg(long, env = "COMETAIL_MAX_HEADER_BYTES", default_value = "16K", value_parser = parse_size)]
    pub max_header_bytes: u64,

    /// How long a client may take to send a request's head (and the TLS handshake) before
    /// its connection is closed.
    #[arg(long, env = "COMETAIL_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// The token from the environment (COMETAIL_TOKEN). Read here so that it never has to be
    /// on the command line, where other local users can see it.
    #[arg(skip = std::env::var("COMETAIL_TOKEN").ok().filter(|t| !t.is_empty()))]
    pub env_token: Option<String>,
}

/// The end of `--help` (and of the manual page): the scale-out roles, then [`UNITS`].
fn after_help() -> String {
    format!(
        "Many hosts, with a NATS JetStream engine between them:
  cometail agent --nats URL PATH...  follow this host's files and publish them to the engine
  cometail hub --nats URL            serve every agent's files: the same API and page
Their flags: `cometail agent --help`, `cometail hub --help`.

{UNITS}"
    )
}

/// How durations and sizes are written, for the end of every `--help`.
pub(crate) const UNITS: &str =
    "Durations are a number and a unit, ms, s, m, h or d (250ms, 90s, 5m, 1h, 7d);
sizes take K, M or G (64K, 1M).";

/// The version `--version` prints: the package's and the commit's.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("COMETAIL_GIT_HASH"),
    ")"
);

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// How clients authenticate besides the token and users files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Generate a random token at start and print the URL that carries it.
    Token,
}

/// Parses a byte size: a number with an optional K, M or G suffix (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 4096, 64K, 1M)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses a duration, the one parser of every duration flag, environment variable and
/// configuration key: a number (fractions allowed, e.g. `1.5s`) and a unit, `ms`, `s`, `m`,
/// `h` or `d`; a number alone is seconds (`0`).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "`{s}` is not a duration: use a number and a unit, ms, s, m, h or d (e.g. 250ms, 90s, 5m, 1h, 7d)"
        )
    };
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let millis: u64 = match unit {
        "ms" => 1,
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    // Whole numbers exactly; a fraction through f64 (`1.5s`, `0.5h`).
    if let Ok(n) = number.parse::<u64>() {
        return n
            .checked_mul(millis)
            .map(Duration::from_millis)
            .ok_or_else(bad);
    }
    if number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let n: f64 = number.parse().map_err(|_| bad())?;
    // `millis` is at most a day's: exact as an f64.
    Duration::try_from_secs_f64(n * millis as f64 / 1_000.0).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64K"), Ok(65_536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(
            parse_size("-1").is_err()
                && parse_size("x").is_err()
                && parse_size("99999999999G").is_err()
        );
    }

    #[test]
    fn durations_take_every_unit_from_milliseconds_to_days() {
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        for (text, want) in [
            ("250ms", ms(250)),
            ("1.5s", ms(1_500)),
            ("60s", secs(60)),
            ("2", secs(2)),
            ("0", Duration::ZERO),
            ("1m", secs(60)),
            ("1h", secs(3_600)),
            ("0.5h", secs(1_800)),
            ("7d", secs(7 * 86_400)),
            (" 3s ", secs(3)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text:?}");
        }
        for bad in [
            "",
            "s",
            "-1s",
            "soon",
            "1y",
            "1 h",
            "1H",
            "1.s",
            ".5s",
            "1.2.3s",
            "1e3s",
            "nan",
            "inf",
            "99999999999999999999d",
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.contains("ms, s, m, h or d"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
