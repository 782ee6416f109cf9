//! The command lines of `cometail agent` and `cometail hub` (clap only), and their validation
//! into ready-to-use settings. Plain `cometail PATH…` is untouched: `main` picks the parser by
//! the first argument, so a file literally named `agent` or `hub` is written `./agent`.
//!
//! Both roles embed the standalone [`Cli`], so every follower flag (agent) and server flag
//! (hub) means what it means standalone; a flag that means nothing to a role (a server flag
//! to the agent, which listens on nothing; a follower flag to the hub) is refused
//! (`flags.rs`). Engine credentials come from files or the environment, never argv.

mod flags;

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Command, CommandFactory, FromArgMatches, Parser};

use crate::agent::AgentSettings;
use crate::cli::{Cli, parse_duration, parse_size};
use crate::config::{Config, ConfigError};
use crate::credentials::Secret;
use crate::engine::auth::{read_creds, read_nkey};
use crate::engine::{EngineAuth, EngineOptions, Retention};
use crate::hub::HubSettings;
use crate::tls::ClientFileError;

/// Where the engine is and how to log in; shared by both roles.
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// NATS server URL(s), comma-separated: nats://host:4222, tls://host:4222.
    #[arg(long, env = "COMETAIL_NATS", value_name = "URL")]
    pub nats: String,

    /// The JetStream stream that holds every host's entries.
    #[arg(long, env = "COMETAIL_ENGINE_STREAM", default_value = "COMETAIL")]
    pub engine_stream: String,

    /// First token of every subject (`PREFIX.HOST.FILE`).
    #[arg(long, env = "COMETAIL_SUBJECT_PREFIX", default_value = "cometail")]
    pub subject_prefix: String,

    /// KV bucket of hosts: heartbeats and file lists.
    #[arg(long, env = "COMETAIL_HOSTS_BUCKET", default_value = "cometail-hosts")]
    pub hosts_bucket: String,

    /// A file whose first line is the engine token (COMETAIL_NATS_TOKEN does the same).
    #[arg(long, env = "COMETAIL_NATS_TOKEN_FILE", value_name = "PATH")]
    pub nats_token_file: Option<PathBuf>,

    /// Engine user name; the password comes from --nats-password-file or
    /// COMETAIL_NATS_PASSWORD.
    #[arg(long, env = "COMETAIL_NATS_USER")]
    pub nats_user: Option<String>,

    /// A file whose first line is the engine password.
    #[arg(long, env = "COMETAIL_NATS_PASSWORD_FILE", value_name = "PATH")]
    pub nats_password_file: Option<PathBuf>,

    /// A NATS `.creds` file (a user JWT and its nkey seed, as `nsc` writes them), for
    /// servers in operator (decentralized JWT) mode.
    #[arg(long, env = "COMETAIL_NATS_CREDS", value_name = "PATH")]
    pub nats_creds: Option<PathBuf>,

    /// A file whose first line is a user nkey seed (`SU…`), for servers that list nkey users.
    #[arg(long, env = "COMETAIL_NATS_NKEY_FILE", value_name = "PATH")]
    pub nats_nkey_file: Option<PathBuf>,

    /// CA certificates (PEM) to trust for the engine; makes TLS required.
    #[arg(long, env = "COMETAIL_NATS_CA", value_name = "PATH")]
    pub nats_ca: Option<PathBuf>,

    /// A client certificate chain (PEM) for mutual TLS with the engine; needs --nats-key.
    /// Makes TLS required.
    #[arg(long, env = "COMETAIL_NATS_CERT", value_name = "PATH")]
    pub nats_cert: Option<PathBuf>,

    /// The private key (PEM) of --nats-cert.
    #[arg(long, env = "COMETAIL_NATS_KEY", value_name = "PATH")]
    pub nats_key: Option<PathBuf>,
}

/// Follow files and publish their entries to a NATS JetStream engine, exactly once.
#[derive(Debug, Parser)]
#[command(name = "cometail agent", bin_name = "cometail agent", version = crate::cli::VERSION)]
pub struct AgentCli {
    #[command(flatten)]
    engine: EngineArgs,

    /// This host's name in subjects and stream ids (default: the machine's host name).
    /// Only [A-Za-z0-9._-]; anything else is refused. Another running agent's name is
    /// refused too.
    #[arg(long, env = "COMETAIL_HOST")]
    host: Option<String>,

    /// When the agent creates the stream: the bytes it keeps (all hosts together; oldest
    /// entries dropped first). An existing stream is never changed.
    #[arg(long, env = "COMETAIL_RETENTION_BYTES", default_value = "1G", value_parser = parse_size)]
    retention_bytes: u64,

    /// When the agent creates the stream: how long entries are kept (e.g. 90s, 30m, 24h, 7d).
    #[arg(long, env = "COMETAIL_RETENTION_AGE", default_value = "24h", value_parser = parse_duration)]
    retention_age: Duration,

    /// How often the host's heartbeat and file list are written to the hosts bucket.
    #[arg(long, env = "COMETAIL_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    heartbeat: Duration,

    /// On a file's first publish, how many of its last entries are sent (older ones become
    /// one `gap` notice).
    #[arg(long, env = "COMETAIL_BACKFILL", default_value_t = 1000)]
    backfill: usize,

    #[command(flatten)]
    base: Cli,
}

/// Serve the HTTP API and page of every agent's files, read from a NATS JetStream engine.
#[derive(Debug, Parser)]
#[command(name = "cometail hub", bin_name = "cometail hub", version = crate::cli::VERSION)]
pub struct HubCli {
    #[command(flatten)]
    engine: EngineArgs,

    /// A host whose heartbeat is older than this shows its files as `stale`.
    #[arg(long, env = "COMETAIL_STALE_AFTER", default_value = "45s", value_parser = parse_duration)]
    stale_after: Duration,

    #[command(flatten)]
    base: Cli,
}

fn read_first_line(path: &std::path::Path, flag: &'static str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        flag,
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

impl EngineArgs {
    fn options(self) -> Result<EngineOptions, ConfigError> {
        let invalid = |flag, reason: &str| ConfigError::Invalid {
            flag,
            reason: reason.to_owned(),
        };
        let token_like = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        };
        if !token_like(&self.engine_stream) {
            return Err(invalid("--engine-stream", "use letters, digits, `_`, `-`"));
        }
        if !token_like(&self.subject_prefix) {
            return Err(invalid("--subject-prefix", "use letters, digits, `_`, `-`"));
        }
        if !token_like(&self.hosts_bucket) {
            return Err(invalid("--hosts-bucket", "use letters, digits, `_`, `-`"));
        }
        let auth = self.auth()?;
        Ok(EngineOptions {
            url: self.nats,
            stream: self.engine_stream,
            prefix: self.subject_prefix,
            bucket: self.hosts_bucket,
            auth,
        })
    }

    /// The credentials and TLS files, each read and checked now: a bad file is exit 2 naming
    /// it, before any connection.
    fn auth(&self) -> Result<EngineAuth, ConfigError> {
        let invalid = |flag, reason: String| ConfigError::Invalid { flag, reason };
        let token = match &self.nats_token_file {
            Some(path) => Some(read_first_line(path, "--nats-token-file")?),
            None => std::env::var("COMETAIL_NATS_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        };
        let user = match &self.nats_user {
            Some(user) => {
                let password = match &self.nats_password_file {
                    Some(path) => read_first_line(path, "--nats-password-file")?,
                    None => std::env::var("COMETAIL_NATS_PASSWORD").map_err(|_| {
                        invalid(
                            "--nats-user",
                            "needs --nats-password-file or COMETAIL_NATS_PASSWORD".into(),
                        )
                    })?,
                };
                Some((user.clone(), Secret(password)))
            }
            None => None,
        };
        // One way to log in: the server would pick one of several, silently.
        let ways = [
            (
                token.is_some(),
                "--nats-token-file",
                " (or COMETAIL_NATS_TOKEN)",
            ),
            (user.is_some(), "--nats-user", ""),
            (self.nats_creds.is_some(), "--nats-creds", ""),
            (self.nats_nkey_file.is_some(), "--nats-nkey-file", ""),
        ];
        let given: Vec<_> = ways.iter().filter(|w| w.0).collect();
        if let [.., last] = given[..]
            && given.len() > 1
        {
            let names: Vec<String> = given.iter().map(|w| format!("{}{}", w.1, w.2)).collect();
            return Err(invalid(
                last.1,
                format!(
                    "give one way to log in to the engine, not {}",
                    names.join(" and ")
                ),
            ));
        }
        let creds = match &self.nats_creds {
            Some(path) => Some(read_creds(path).map_err(|e| invalid("--nats-creds", e))?),
            None => None,
        };
        let nkey = match &self.nats_nkey_file {
            Some(path) => Some(read_nkey(path).map_err(|e| invalid("--nats-nkey-file", e))?),
            None => None,
        };
        let client_cert = match (&self.nats_cert, &self.nats_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(_), None) => return Err(invalid("--nats-cert", "needs --nats-key".into())),
            (None, Some(_)) => return Err(invalid("--nats-key", "needs --nats-cert".into())),
        };
        crate::tls::check_client_files(
            self.nats_ca.as_deref(),
            client_cert
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
        )
        .map_err(|e| match e {
            ClientFileError::Ca(reason) => invalid("--nats-ca", reason),
            ClientFileError::Cert(reason) => invalid("--nats-cert", reason),
            ClientFileError::Key(reason) => invalid("--nats-key", reason),
        })?;
        Ok(EngineAuth {
            token: token.map(Secret),
            user,
            creds,
            nkey,
            ca: self.nats_ca.clone(),
            client_cert,
        })
    }
}

/// The machine's host name (`/proc/sys/kernel/hostname`), or `localhost`.
fn machine_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A role's command line, validated.
#[derive(Debug)]
pub struct Parsed<S> {
    /// The standalone settings the role uses.
    pub config: Config,
    /// The role's own settings.
    pub settings: S,
    /// Where the engine is and how to log in.
    pub engine: EngineOptions,
    /// A warning for each environment variable that set a flag meaning nothing to the role
    /// (ignored: the environment may be shared with another role).
    pub ignored: Vec<String>,
}

/// Parses `args` with `command` (a role's, its unused flags hidden); a flag the role cannot
/// use is refused.
fn matches(
    command: Command,
    role: flags::Role,
    args: Vec<std::ffi::OsString>,
) -> Result<(ArgMatches, Vec<String>), ConfigError> {
    let mut command = flags::hide_unused(command, role).after_help(format!(
        "{}\n\nThe standalone command: `cometail --help`.",
        crate::cli::UNITS
    ));
    let matches = command
        .try_get_matches_from_mut(args)
        .unwrap_or_else(|e| e.exit());
    let ignored = flags::check(&command, &matches, role)?;
    Ok((matches, ignored))
}

/// Parses and validates `cometail agent …` (`args` starts with `agent`).
///
/// # Errors
/// A value that cannot be used, or a flag that means nothing to an agent. Usage errors print
/// themselves and exit (code 2), as clap does.
pub fn agent(args: Vec<std::ffi::OsString>) -> Result<Parsed<AgentSettings>, ConfigError> {
    let (matches, ignored) = matches(AgentCli::command(), flags::Role::Agent, args)?;
    let cli = AgentCli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let host = match cli.host {
        Some(host) => host_name(&host)?,
        // The machine's own name, made fit (it was not the user's to choose).
        None => crate::stream::StreamId::from_name(&machine_host())
            .as_str()
            .to_owned(),
    };
    let settings = AgentSettings {
        host,
        retention: Retention {
            max_bytes: cli.retention_bytes,
            max_age: cli.retention_age,
        },
        heartbeat: cli.heartbeat.max(Duration::from_millis(100)),
        backfill: cli.backfill,
    };
    let engine = cli.engine.options()?;
    let config = Config::from_cli(cli.base)?;
    // An agent with nothing to follow would publish nothing, silently.
    config.require_sources()?;
    Ok(Parsed {
        config,
        settings,
        engine,
        ignored,
    })
}

/// Most bytes in a host name (a DNS name's limit).
const MAX_HOST: usize = 253;

/// A `--host` as given, when subjects and ids can carry it unchanged: letters, digits, `.`,
/// `_`, `-` (a `.` travels as `=` in subjects), not only dots, at most [`MAX_HOST`] bytes.
/// Anything else is refused rather than rewritten, so two hosts never meet under one name.
fn host_name(host: &str) -> Result<String, ConfigError> {
    let fits = !host.is_empty()
        && host.len() <= MAX_HOST
        && !host.chars().all(|c| c == '.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if fits {
        Ok(host.to_owned())
    } else {
        Err(ConfigError::Invalid {
            flag: "--host",
            reason: format!(
                "`{host}` cannot name a host in engine subjects: use letters, digits, `.`, `_` \
                 and `-` (at most {MAX_HOST} bytes)"
            ),
        })
    }
}

/// Parses and validates `cometail hub …` (`args` starts with `hub`); it takes no paths.
///
/// # Errors
/// As [`agent`].
pub fn hub(args: Vec<std::ffi::OsString>) -> Result<Parsed<HubSettings>, ConfigError> {
    let command = HubCli::command().mut_arg("paths", |a| a.required(false).hide(true));
    let (matches, ignored) = matches(command, flags::Role::Hub, args)?;
    let cli = HubCli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if !cli.base.paths.is_empty() {
        return Err(ConfigError::Invalid {
            flag: "PATH",
            reason: "a hub reads the engine, not files: give the paths to `cometail agent`".into(),
        });
    }
    let settings = HubSettings {
        stale_after: cli.stale_after,
    };
    let engine = cli.engine.options()?;
    Ok(Parsed {
        config: Config::from_cli(cli.base)?,
        settings,
        engine,
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_subjects_cannot_carry_are_refused() {
        assert_eq!(
            host_name("web-1.example.com").ok().as_deref(),
            Some("web-1.example.com")
        );
        for bad in ["", "..", "web 1", "web*", "web>1", "wéb", "a~b", "a=b"] {
            assert!(host_name(bad).is_err(), "{bad:?}");
        }
        assert!(host_name(&"a".repeat(MAX_HOST + 1)).is_err());
    }

    #[test]
    fn role_command_lines_are_consistent() {
        AgentCli::command().debug_assert();
        HubCli::command().debug_assert();
    }
}
