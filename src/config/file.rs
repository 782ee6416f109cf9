//! The configuration file (`--config FILE`, else [`DEFAULT_PATH`] when it exists); what
//! `--print-config` shows of it is `print.rs`.
//!
//! The file's keys are the long flags' names (`max-line-bytes = "1M"`, `paths = [...]` for the
//! positional paths), so there is one vocabulary and clap stays the only parser of values. A
//! key the command line or the environment already set is skipped (flags, then environment,
//! then file, then defaults); the others become flags placed before the command line's own,
//! and the whole is parsed again. An unknown key, a value of the wrong shape, or a value clap refuses is a
//! [`LoadError`] naming the key and its line; a later check of `Config::from_cli` that refuses
//! a value the file gave says so too ([`Origin::locate`]).

mod print;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use toml::Spanned;

use super::sources::Table;
use crate::cli::Cli;
use crate::sources::Of;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/cometail/cometail.toml";

/// Arguments that act on the command line itself and have no key in the file.
const NOT_SETTINGS: [&str; 6] = [
    "config",
    "print_config",
    "help",
    "version",
    "completions",
    "man",
];

/// The command line merged with the configuration file.
#[derive(Debug)]
pub struct Loaded {
    /// The merged settings, as if they had all been flags.
    pub cli: Cli,
    /// Where each came from.
    pub origin: Origin,
}

/// Where the settings came from: the file (if any), the keys it set, and the merged matches.
#[derive(Debug)]
pub struct Origin {
    file: Option<PathBuf>,
    /// `(arg id, key, line)` of every setting the file gave and nothing overrode.
    from_file: Vec<(String, String, usize)>,
    /// The `[[source]]` tables whose sources are followed, in order: their paths and
    /// commands are the last of `paths` and `cmd`.
    tables: Vec<Table>,
    matches: ArgMatches,
}

/// Why the command line and the file cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A usage error on the command line, or `--help`/`--version` (clap prints and exits).
    #[error(transparent)]
    Usage(clap::Error),
    /// The file cannot be read or is not TOML.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A key is unknown, or its value cannot be used.
    #[error("{path} line {line}: `{key}`: {reason}")]
    Key {
        /// The file.
        path: String,
        /// The line of the key's value (from 1).
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Parses `args` (the program name first) and merges the configuration file they name, or
/// `default` when they name none and it exists.
///
/// # Errors
/// See [`LoadError`]; every error means exit code 2, but `Usage` must be shown by clap
/// (`clap::Error::exit`), which also handles `--help` and `--version`.
pub fn load(args: &[OsString], default: &Path) -> Result<Loaded, LoadError> {
    let command = Cli::command();
    let first = command
        .clone()
        .try_get_matches_from(args)
        .map_err(LoadError::Usage)?;
    let file = match first.get_one::<PathBuf>("config") {
        Some(path) => Some(path.clone()),
        None => default.is_file().then(|| default.to_path_buf()),
    };
    let Some(file) = file else {
        let cli = Cli::from_arg_matches(&first).map_err(LoadError::Usage)?;
        return Ok(Loaded {
            cli,
            origin: Origin {
                file: None,
                from_file: Vec::new(),
                tables: Vec::new(),
                matches: first,
            },
        });
    };
    let path = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|e| LoadError::File {
        path: path.clone(),
        reason: format!("cannot read: {e}"),
    })?;
    let table: std::collections::BTreeMap<String, Spanned<toml::Value>> = toml::from_str(&text)
        .map_err(|e| LoadError::File {
            path: path.clone(),
            reason: e.to_string().trim_end().to_owned(),
        })?;
    let mut flags: Vec<OsString> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    let mut from_file = Vec::new();
    for (key, value) in table {
        if key == "source" {
            continue; // `[[source]]` tables: below.
        }
        let line = text[..value.span().start].matches('\n').count() + 1;
        let bad = |reason: String| LoadError::Key {
            path: path.clone(),
            line,
            key: key.clone(),
            reason,
        };
        let arg = setting(&command, &key).ok_or_else(|| {
            let hint = if key.contains('_') {
                format!(" (keys are the flags' names: `{}`)", key.replace('_', "-"))
            } else {
                String::new()
            };
            bad(format!("unknown key{hint}"))
        })?;
        let id = arg.get_id().as_str().to_owned();
        if matches!(
            first.value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let values = scalars(value.into_inner()).map_err(&bad)?;
        let many = arg.is_positional() || matches!(arg.get_action(), ArgAction::Append);
        if values.len() != 1 && !many {
            return Err(bad("takes one value, not a list".into()));
        }
        if arg.is_positional() {
            paths.extend(values);
        } else if matches!(arg.get_action(), ArgAction::SetTrue) {
            match values.as_slice() {
                [v] if v == "true" => flags.push(format!("--{key}").into()),
                [v] if v == "false" => continue,
                _ => return Err(bad("must be true or false".into())),
            }
        } else {
            flags.extend(values.iter().map(|v| format!("--{key}={v}").into()));
        }
        from_file.push((id, key, line));
    }
    let tables = super::sources::read(&text).map_err(|r| LoadError::Key {
        path: path.clone(),
        line: r.line,
        key: r.key,
        reason: r.reason,
    })?;
    let unset = |id: &str| {
        !matches!(
            first.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    // The tables whose sources are followed: the command line's own paths (or `--cmd`s)
    // replace the tables' paths (or commands), with their options.
    let used: Vec<Table> = tables
        .into_iter()
        .filter(|t| match t.of {
            Of::Path(_) => unset("paths"),
            Of::Command(_) => unset("commands"),
        })
        .collect();
    for table in &used {
        let (id, key) = match &table.of {
            Of::Path(p) => {
                paths.push(p.clone());
                ("paths", "paths")
            }
            Of::Command(_) => {
                let spec = table.cmd.as_deref().unwrap_or_default();
                flags.push(format!("--cmd={spec}").into());
                ("commands", "cmd")
            }
        };
        if !from_file.iter().any(|(i, _, _)| i == id) {
            from_file.push((id.to_owned(), key.to_owned(), table.line));
        }
    }
    // The file's flags go before the command line's own, so that a `--` there still ends the
    // options; its paths go last, after a `--` of their own (they may start with `-`).
    let mut merged: Vec<OsString> = args.iter().take(1).cloned().collect();
    merged.extend(flags);
    merged.extend(args.iter().skip(1).cloned());
    if !paths.is_empty() {
        if !args.iter().skip(1).any(|a| a == "--") {
            merged.push("--".into());
        }
        merged.extend(paths.into_iter().map(OsString::from));
    }
    let origin = |matches| Origin {
        file: Some(file.clone()),
        from_file: from_file.clone(),
        tables: used.clone(),
        matches,
    };
    let matches = command
        .try_get_matches_from(&merged)
        .map_err(|e| origin(ArgMatches::default()).usage_error(e, &path))?;
    let cli = Cli::from_arg_matches(&matches).map_err(LoadError::Usage)?;
    Ok(Loaded {
        cli,
        origin: origin(matches),
    })
}

/// The argument a file key names: a long flag's name, or `paths`.
fn setting<'a>(command: &'a clap::Command, key: &str) -> Option<&'a Arg> {
    command.get_arguments().find(|a| {
        let id = a.get_id().as_str();
        !NOT_SETTINGS.contains(&id)
            && !a.is_hide_set()
            && if a.is_positional() {
                id == key
            } else {
                a.get_long() == Some(key)
            }
    })
}

/// A value as the strings clap would get on the command line: a string, number or boolean is
/// one, a list of them several.
fn scalars(value: toml::Value) -> Result<Vec<String>, String> {
    let one = |v: toml::Value| match v {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err("expected a string, number, boolean or a list of them".to_owned()),
    };
    match value {
        toml::Value::Array(items) => items.into_iter().map(one).collect(),
        v => one(v).map(|s| vec![s]),
    }
}

impl Loaded {
    /// The validated configuration, with what the file's `[[source]]` tables say of their
    /// sources; and where the settings came from, to say where a refused one was set.
    pub fn into_config(self) -> (Result<super::Config, super::ConfigError>, Origin) {
        let options = self
            .origin
            .tables
            .iter()
            .filter(|t| t.has_options())
            .map(|t| (t.of.clone(), t.options.clone()))
            .collect();
        (super::Config::from_parts(self.cli, options), self.origin)
    }
}

impl Origin {
    /// The file read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// `FILE line N` when `flag` (`--lines`, or `PATH`) was set by the file, for an error
    /// about its value.
    pub fn locate(&self, flag: &str) -> Option<String> {
        let key = flag.strip_prefix("--").unwrap_or("paths");
        let (_, _, line) = self.from_file.iter().find(|(_, k, _)| k == key)?;
        Some(format!("{} line {line}", self.file.as_ref()?.display()))
    }

    /// A clap error about the merged arguments, as a [`LoadError::Key`] when the value it
    /// refuses came from the file.
    fn usage_error(&self, e: clap::Error, path: &str) -> LoadError {
        let arg = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => arg.clone(),
            _ => return LoadError::Usage(e),
        };
        let from_file = self.from_file.iter().find(|(_, key, _)| {
            arg.strip_prefix("--")
                .and_then(|a| a.strip_prefix(key.as_str()))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '=']))
        });
        let Some((_, key, line)) = from_file else {
            return LoadError::Usage(e);
        };
        let rendered = e.render().to_string();
        let reason = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_owned();
        LoadError::Key {
            path: path.to_owned(),
            line: *line,
            key: key.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(file: &str, args: &[&str]) -> Result<Loaded, LoadError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cometail.toml");
        std::fs::write(&path, file).expect("write");
        let mut argv: Vec<OsString> = vec!["cometail".into(), "--config".into(), path.into()];
        argv.extend(args.iter().map(OsString::from));
        load(&argv, Path::new("/nonexistent"))
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let loaded = load_with(
            "port = 7100\nlines = 50\npoll = true\nbind = [\"::1\", \"127.0.0.1\"]\n\
             paths = [\"-app.log\"]\n",
            &["--lines", "20"],
        )
        .expect("loads");
        assert_eq!(loaded.cli.port, 7100);
        assert_eq!(loaded.cli.lines, 20);
        assert!(loaded.cli.poll);
        assert_eq!(loaded.cli.bind, ["::1", "127.0.0.1"]);
        assert_eq!(loaded.cli.paths, ["-app.log"]);
        let printed = loaded.origin.print();
        assert!(printed.contains("port = 7100  # file\n"), "{printed}");
        assert!(printed.contains("lines = 20  # flag\n"), "{printed}");
        assert!(printed.contains("max-line-bytes = \"1M\"  # default\n"));
        assert!(printed.contains("# timezone = (not set)\n"));
    }

    #[test]
    fn paths_on_the_command_line_replace_the_files() {
        let loaded = load_with("paths = [\"a.log\"]\n", &["b.log"]).expect("loads");
        assert_eq!(loaded.cli.paths, ["b.log"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_line() {
        let e = load_with("port = 1\nmax_line_bytes = 4\n", &[]).expect_err("unknown");
        let said = e.to_string();
        assert!(
            said.contains("line 2: `max_line_bytes`: unknown key") && said.contains("max-line"),
            "{said}"
        );
        let e = load_with("\n\nmax-line-bytes = \"lots\"\n", &[]).expect_err("bad value");
        assert!(
            e.to_string().contains("line 3: `max-line-bytes`") && e.to_string().contains("lots"),
            "{e}"
        );
        let e = load_with("port = [1, 2]\n", &[]).expect_err("a list");
        assert!(e.to_string().contains("one value"), "{e}");
        let e = load_with("[server]\nport = 1\n", &[]).expect_err("a table");
        assert!(e.to_string().contains("`server`"), "{e}");
        let e = load_with("config = \"x\"\n", &[]).expect_err("not a setting");
        assert!(e.to_string().contains("unknown key"), "{e}");
        assert!(matches!(
            load_with("port = \n", &[]),
            Err(LoadError::File { .. })
        ));
    }

    #[test]
    fn printed_settings_load_back_to_the_same_settings() {
        let first = load_with(
            "base-path = \"/logs/\"\nallowed-host = [\"a.example\"]\nrotate-grace = \"1.5s\"\n\
             paths = [\"x \\\"y\\\".log\"]\npoll = true\n",
            &[],
        )
        .expect("loads");
        let printed = first.origin.print();
        let again = load_with(&printed, &[]).expect("its own output loads");
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split("  # ").next().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(strip(&again.origin.print()), strip(&printed));
        assert_eq!(again.cli.paths, ["x \"y\".log"]);
    }

    #[test]
    fn printed_commands_show_no_secrets() {
        let loaded = load_with(
            "cmd = [\"db=psql postgres://app:hunter2@db/x\", \"j=journalctl -f\", \
             \"api=curl -H 'Authorization: Bearer s3cret' https://h/x\"]\n",
            &[],
        )
        .expect("loads");
        let printed = loaded.origin.print();
        assert!(
            !printed.contains("hunter2") && !printed.contains("s3cret"),
            "{printed}"
        );
        assert!(
            printed.contains("\"db=psql 'postgres://app:***@db/x'\"")
                && printed.contains("\"j=journalctl -f\""),
            "{printed}"
        );
    }

    #[test]
    fn without_a_config_flag_the_default_file_is_read_when_present() {
        let dir = tempfile::tempdir().expect("temp dir");
        let default = dir.path().join("cometail.toml");
        let args = || vec![OsString::from("cometail"), OsString::from("a.log")];
        assert_eq!(load(&args(), &default).expect("no file").cli.port, 7001);
        std::fs::write(&default, "port = 7002\n").expect("write");
        let loaded = load(&args(), &default).expect("default file");
        assert_eq!(loaded.cli.port, 7002);
        assert_eq!(loaded.origin.file(), Some(default.as_path()));
    }
}
