//! `--print-config`: the effective settings as a configuration file that loads back, each
//! value with where it came from, secrets left out or masked.

use std::fmt::Write as _;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory};

use super::{NOT_SETTINGS, Origin, Table};
use crate::cli::Cli;
use crate::sources::{CommandSpec, Of, shown_env_value};

impl Origin {
    /// The effective settings as a configuration file, each with where it came from; one
    /// that is not set is a comment. A token is never a setting (it comes from `--token-file`
    /// or the environment's `COMETAIL_TOKEN`, shown as a note); a `--cmd`'s command line is
    /// shown with what looks like a secret in it masked ([`CommandSpec::redacted`]): the
    /// command is worth seeing, and this output is made to be shared.
    pub fn print(&self) -> String {
        let mut out = String::from(
            "# cometail's effective settings (--print-config): a configuration file, each \
             value with where it came from.\n",
        );
        if let Some(file) = &self.file {
            let _ = writeln!(out, "# file: {}", file.display());
        }
        let command = Cli::command();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if NOT_SETTINGS.contains(&id) || arg.is_hide_set() {
                continue;
            }
            let key = if arg.is_positional() {
                id
            } else {
                arg.get_long().unwrap_or(id)
            };
            let mut values: Vec<String> = self
                .matches
                .get_raw(id)
                .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            // The tables' sources are the last values; they are shown as tables, below.
            let tabled = self
                .tables
                .iter()
                .filter(|t| match t.of {
                    Of::Path(_) => id == "paths",
                    Of::Command(_) => id == "commands",
                })
                .count();
            values.truncate(values.len().saturating_sub(tabled));
            if id == "commands" {
                for v in &mut values {
                    if let Ok(spec) = CommandSpec::parse(v) {
                        *v = format!("{}={}", spec.name, spec.redacted());
                    }
                }
            }
            let origin = if self.from_file.iter().any(|(i, _, _)| i == id) {
                "file"
            } else {
                match self.matches.value_source(id) {
                    Some(ValueSource::CommandLine) => "flag",
                    Some(ValueSource::EnvVariable) => "env",
                    Some(ValueSource::DefaultValue) => "default",
                    _ => "",
                }
            };
            if values.is_empty() {
                let note = if tabled > 0 {
                    "(the [[source]] tables below)"
                } else {
                    "(not set)"
                };
                let _ = writeln!(out, "# {key} = {note}");
                continue;
            }
            let list = arg.is_positional() || matches!(arg.get_action(), ArgAction::Append);
            let value = if matches!(arg.get_action(), ArgAction::SetTrue) {
                values.join("")
            } else if list {
                let items: Vec<String> = values.iter().map(|v| literal(v)).collect();
                format!("[{}]", items.join(", "))
            } else {
                literal(&values[0])
            };
            let _ = writeln!(out, "{key} = {value}  # {origin}");
        }
        if std::env::var_os("COMETAIL_TOKEN").is_some_and(|t| !t.is_empty()) {
            out.push_str("# token: from COMETAIL_TOKEN (redacted)\n");
        }
        for table in &self.tables {
            print_table(&mut out, table);
        }
        out
    }
}

/// A `[[source]]` table as the file would give it (its command with secrets masked).
fn print_table(out: &mut String, table: &Table) {
    let _ = writeln!(out, "\n[[source]]  # file");
    match &table.of {
        Of::Path(path) => {
            let _ = writeln!(out, "path = {}", quoted(path));
        }
        Of::Command(name) => {
            let raw = table.cmd.as_deref().unwrap_or_default();
            let shown = CommandSpec::parse(raw).map_or_else(|_| String::new(), |s| s.redacted());
            let _ = writeln!(out, "name = {}\ncmd = {}", quoted(name), quoted(&shown));
        }
    }
    let options = &table.options;
    if let Some(name) = &options.name {
        let _ = writeln!(out, "name = {}", quoted(name));
    }
    if let Some(format) = options.format {
        let _ = writeln!(out, "format = {}", quoted(format.as_str()));
    }
    if !options.rotated.is_empty() {
        let globs: Vec<String> = options.rotated.iter().map(|g| quoted(g.as_str())).collect();
        let _ = writeln!(out, "rotated = [{}]", globs.join(", "));
    }
    if !options.env.is_empty() {
        let vars: Vec<String> = options
            .env
            .iter()
            .map(|(k, v)| format!("{} = {}", quoted(k), quoted(&shown_env_value(k, v))))
            .collect();
        let _ = writeln!(out, "env = {{ {} }}", vars.join(", "));
    }
}

/// A TOML literal for a raw value: a whole number bare, anything else a basic string.
fn literal(raw: &str) -> String {
    if raw.parse::<i64>().is_ok() {
        return raw.to_owned();
    }
    quoted(raw)
}

/// A TOML basic string.
fn quoted(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len() + 2);
    s.push('"');
    for c in raw.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{:04X}", u32::from(c));
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}
