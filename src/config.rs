//! The validated configuration every other module reads.
//!
//! [`Config::from_cli`] is the only place raw flags are checked; after it, values are ready
//! to use (sizes in bytes, durations as `Duration`, sources classified). A bad value is a
//! [`ConfigError`], which `main` reports with exit code 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Cli;

/// One thing to follow, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path, followed whether or not it exists yet.
    File(PathBuf),
    /// A glob pattern, evaluated again while running.
    Glob(String),
    /// Standard input (`-`).
    Stdin,
}

/// Everything cometail needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to follow, in command-line order.
    pub sources: Vec<Source>,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Entries a reader gets when it asks for none in particular.
    pub default_lines: usize,
    /// Longest line kept whole.
    pub max_line_bytes: usize,
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
    /// Most open connections.
    pub max_connections: usize,
    /// Most long polls held at once.
    pub max_long_polls: usize,
    /// Serve the UI from this directory instead of the embedded copy.
    pub assets: Option<PathBuf>,
}

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

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.into(),
    }
}

impl Config {
    /// Validates the command line.
    ///
    /// # Errors
    /// Returns the first value that cannot be used.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
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
        if cli.lines > 10_000 {
            return Err(invalid("--lines", "at most 10000"));
        }
        let max_line_bytes = usize::try_from(cli.max_line_bytes)
            .ok()
            .filter(|n| (16..=(256 << 20)).contains(n))
            .ok_or_else(|| invalid("--max-line-bytes", "must be between 16 bytes and 256M"))?;
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
        Ok(Self {
            sources,
            addr: SocketAddr::new(cli.bind, cli.port),
            default_lines: cli.lines,
            max_line_bytes,
            poll: cli.poll,
            poll_interval: cli.poll_interval,
            rotate_grace: cli.rotate_grace,
            spool_bytes: cli.spool_bytes,
            cache_bytes,
            max_connections: cli.max_connections,
            max_long_polls: cli.max_long_polls,
            assets: cli.assets,
        })
    }
}

/// A path is a glob when it has glob characters and does not exist as named (a file really
/// called `app[1].log` is followed as a file).
fn classify(path: &str) -> Result<Source, ConfigError> {
    if path == "-" {
        return Ok(Source::Stdin);
    }
    if path.is_empty() {
        return Err(invalid("PATH", "empty path"));
    }
    let globby = path.contains(['*', '?', '[']);
    if globby && !std::path::Path::new(path).exists() {
        glob::Pattern::new(path).map_err(|e| ConfigError::Glob {
            pattern: path.to_owned(),
            reason: e.msg.to_owned(),
        })?;
        return Ok(Source::Glob(path.to_owned()));
    }
    Ok(Source::File(PathBuf::from(path)))
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
        assert_eq!(c.addr.to_string(), "127.0.0.1:7001");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(config(&["-", "-"]).is_err());
        assert!(config(&["/tmp/[.log"]).is_err());
        assert!(config(&["--max-line-bytes", "1", "a"]).is_err());
        assert!(config(&["--lines", "20000", "a"]).is_err());
    }
}
