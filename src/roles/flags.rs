//! Which of the standalone command line's flags mean something to each role. Both roles embed
//! [`Cli`](crate::cli::Cli) whole, so that a flag they share means what it means standalone;
//! the others are hidden from the role's `--help` and refused when given (exit 2, naming the
//! flag and why). A flag accepted and then ignored misleads: an agent given `--auth token`
//! protects nothing, because it serves nothing.
//!
//! The same flag set by an environment variable is only a warning: one environment (a shell,
//! an `EnvironmentFile=`) often starts a hub and agents alike, and COMETAIL_PORT is the hub's.
//! A test classifies every standalone flag, so a new one cannot slip through unclassified.

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

use crate::config::ConfigError;

/// Flags that act on the standalone command line itself.
const COMMAND: [&str; 4] = ["--config", "--print-config", "--man", "--completions"];

/// Flags of following files and making their lines entries: the agent's, not the hub's (no
/// part of a hub reads them: its entries come parsed, cut and joined from the agents).
const FOLLOWER: [&str; 13] = [
    "--cmd",
    "--poll",
    "--poll-interval",
    "--rotate-grace",
    "--spool-bytes",
    "--retire-after",
    "--rotated",
    "--rotated-history",
    "--max-line-bytes",
    "--timezone",
    "--records",
    "--cache-bytes",
    "--memory",
];

/// Flags of serving HTTP (listening, reading, authentication, limits): the hub's, not the
/// agent's.
const SERVER: [&str; 23] = [
    "--port",
    "--bind",
    "--unix-socket",
    "--unix-socket-mode",
    "--metrics-bind",
    "--base-path",
    "--lines",
    "--merge-delay",
    "--max-connections",
    "--max-long-polls",
    "--max-searches",
    "--assets",
    "--auth",
    "--token-file",
    "--users-file",
    "--public-without-auth",
    "--allowed-host",
    "--trusted-proxy",
    "--tls-cert",
    "--tls-key",
    "--max-streams-per-address",
    "--max-header-bytes",
    "--header-timeout",
];

/// A scale-out role, as its flags see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `cometail agent`: follows files, serves nothing.
    Agent,
    /// `cometail hub`: serves HTTP, follows nothing.
    Hub,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Agent => "cometail agent",
            Self::Hub => "cometail hub",
        }
    }

    /// Every standalone flag that means nothing to this role, with why.
    fn unused(self) -> Vec<(&'static str, String)> {
        let name = self.name();
        let settings = format!(
            "`{name}` reads no configuration file: give its settings as flags or COMETAIL_* \
             environment variables (`{name} --help`)"
        );
        let pages = "only the standalone `cometail` prints a manual page or completions";
        let (flags, why): (&[&'static str], &str) = match self {
            Self::Agent => (
                &SERVER,
                "an agent serves no HTTP (it listens on nothing), so this server flag means \
                 nothing to it: give it to `cometail hub` or the standalone `cometail`",
            ),
            Self::Hub => (
                &FOLLOWER,
                "a hub follows no files and parses no lines (it reads entries from the engine), \
                 so this flag of the agent's means nothing to it: give it to `cometail agent`",
            ),
        };
        COMMAND
            .iter()
            .map(|&flag| match flag {
                "--config" | "--print-config" => (flag, settings.clone()),
                _ => (flag, pages.to_owned()),
            })
            .chain(flags.iter().map(|&flag| (flag, why.to_owned())))
            .collect()
    }
}

/// `command` (a role's) with every flag that means nothing to `role` hidden from its help.
pub(super) fn hide_unused(command: Command, role: Role) -> Command {
    let unused = role.unused();
    command.mut_args(|arg| {
        let listed = unused
            .iter()
            .any(|(flag, _)| arg.get_long() == flag.strip_prefix("--"));
        if listed { arg.hide(true) } else { arg }
    })
}

/// Refuses the first flag of the command line that means nothing to `role`, naming it and
/// why; returns a warning for each one an environment variable set (it is ignored).
///
/// # Errors
/// Such a flag is on the command line.
pub(super) fn check(
    command: &Command,
    matches: &ArgMatches,
    role: Role,
) -> Result<Vec<String>, ConfigError> {
    let mut ignored = Vec::new();
    for (flag, why) in role.unused() {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == flag.strip_prefix("--"))
            .expect("every listed flag is a standalone flag (tested)");
        match matches.value_source(arg.get_id().as_str()) {
            Some(ValueSource::CommandLine) => {
                return Err(ConfigError::Invalid { flag, reason: why });
            }
            Some(ValueSource::EnvVariable) => {
                let var = arg.get_env().map(|v| v.to_string_lossy().into_owned());
                let var = var.unwrap_or_else(|| flag.to_owned());
                ignored.push(format!("{var} ({flag}) is ignored: {why}"));
            }
            _ => {}
        }
    }
    Ok(ignored)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_standalone_flag_is_classified_once() {
        let command = crate::cli::Cli::command();
        let classes = [&COMMAND[..], &FOLLOWER, &SERVER];
        let mut seen = Vec::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let flag = format!("--{long}");
            let found = classes
                .iter()
                .filter(|c| c.contains(&flag.as_str()))
                .count();
            assert_eq!(found, 1, "{flag} is in {found} classes, not one");
            seen.push(flag);
        }
        for flag in classes.concat() {
            assert!(
                seen.iter().any(|s| s == flag),
                "{flag} is no standalone flag"
            );
        }
    }
}
