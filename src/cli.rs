//! The command line, as clap parses it. Nothing after `config` imports this module: raw
//! flags become a validated [`crate::config::Config`] there.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

/// Follow log files like `tail -F` and watch them live in a web browser.
///
/// Each PATH becomes a stream: a file (followed even before it exists), a quoted glob pattern
/// such as '/var/log/*.log' (new matches become new streams), or `-` for standard input.
#[derive(Debug, Parser)]
#[command(name = "cometail", version, about, long_about)]
pub struct Cli {
    /// Files, quoted glob patterns, or `-` for standard input.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<String>,

    /// Port to listen on (0 picks a free one; the URL printed at start has the real port).
    #[arg(short, long, env = "COMETAIL_PORT", default_value_t = 7001)]
    pub port: u16,

    /// Address to listen on. Loopback by default: the logs stay on this machine.
    #[arg(short = 'i', long, env = "COMETAIL_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Entries a reader gets when it asks for none in particular (like `tail -n`).
    #[arg(short = 'n', long, env = "COMETAIL_LINES", default_value_t = 10)]
    pub lines: usize,

    /// Longest line kept whole (bytes; K, M, G suffixes); longer lines are cut and marked.
    #[arg(long, env = "COMETAIL_MAX_LINE_BYTES", default_value = "1M", value_parser = parse_size)]
    pub max_line_bytes: u64,

    /// Poll files instead of using file system events (network file systems, containers).
    #[arg(long, env = "COMETAIL_POLL")]
    pub poll: bool,

    /// How often files are polled when events are not available (e.g. 250ms, 1s).
    #[arg(long, env = "COMETAIL_POLL_INTERVAL", default_value = "250ms", value_parser = parse_duration)]
    pub poll_interval: std::time::Duration,

    /// How long a rotated-away or deleted file is still read for lines its writer adds late.
    #[arg(long, env = "COMETAIL_ROTATE_GRACE", default_value = "3s", value_parser = parse_duration)]
    pub rotate_grace: std::time::Duration,

    /// Most bytes of standard input kept on disk for history (oldest dropped first).
    #[arg(long, env = "COMETAIL_SPOOL_BYTES", default_value = "64M", value_parser = parse_size)]
    pub spool_bytes: u64,

    /// Memory for recent entries per stream; older entries are read back from disk.
    #[arg(long, env = "COMETAIL_CACHE_BYTES", default_value = "16M", value_parser = parse_size)]
    pub cache_bytes: u64,

    /// Most open connections; one more gets 503 and is closed.
    #[arg(long, env = "COMETAIL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most long polls held waiting at once; one more gets 503.
    #[arg(long, env = "COMETAIL_MAX_LONG_POLLS", default_value_t = 5_000)]
    pub max_long_polls: usize,

    /// Serve the page's files from this directory instead of the copy built in (UI work).
    #[arg(long, env = "COMETAIL_ASSETS", value_name = "DIR")]
    pub assets: Option<PathBuf>,
}

/// Parses a byte size: a number with an optional K, M or G suffix (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
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

/// Parses a duration: a number followed by `ms` or `s`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a duration (e.g. 250ms, 2s)");
    if let Some(ms) = s.strip_suffix("ms") {
        return ms
            .parse()
            .map(std::time::Duration::from_millis)
            .map_err(|_| bad());
    }
    let secs = s.strip_suffix('s').unwrap_or(s);
    let secs: f64 = secs.parse().map_err(|_| bad())?;
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(parse_size("64K"), Ok(65_536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(
            parse_size("-1").is_err()
                && parse_size("x").is_err()
                && parse_size("99999999999G").is_err()
        );
        assert_eq!(
            parse_duration("250ms"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("1.5s"),
            Ok(std::time::Duration::from_millis(1500))
        );
        assert!(parse_duration("-1s").is_err() && parse_duration("soon").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
