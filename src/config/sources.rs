//! `[[source]]` tables in the configuration file: one table per thing to follow, with its own
//! options, as another way to write `paths`, `cmd` and `rotated`.
//!
//! ```toml
//! [[source]]
//! path = "/var/log/app.log"
//! rotated = "/var/log/archive/app.log-*.gz"
//!
//! [[source]]
//! name = "journal"
//! cmd = "journalctl -f -o short-iso"
//! ```
//!
//! A table has `path` (a file, glob or `-`) or `cmd` (with `name`, the stream's id), not both;
//! `rotated` (a glob or a list of them) adds to `--rotated`. An unknown key, a missing or
//! doubled one, or a key that does not fit the table (`name` on a path, whose id is its file
//! name) is an error naming its line. What the tables give is merged like the file's other
//! settings (`file.rs`): the command line's own paths or `--cmd`s replace them.

use serde::Deserialize;
use toml::Spanned;

/// One `[[source]]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    path: Option<Spanned<String>>,
    cmd: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    rotated: Option<Spanned<OneOrMany>>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The file's `[[source]]` tables, read apart from its other keys (which this ignores).
#[derive(Debug, Deserialize)]
struct Tables {
    #[serde(default)]
    source: Vec<Spanned<Table>>,
}

/// What the tables add, each value with its line: paths, `NAME=COMMAND`s and rotated globs.
#[derive(Debug, Default)]
pub(super) struct Added {
    pub(super) paths: Vec<(String, usize)>,
    pub(super) commands: Vec<(String, usize)>,
    pub(super) rotated: Vec<(String, usize)>,
}

/// A table that cannot be used: its line, the key and why.
#[derive(Debug)]
pub(super) struct Refused {
    pub(super) line: usize,
    pub(super) key: String,
    pub(super) reason: String,
}

/// Reads the `[[source]]` tables of `text` (a file already known to be TOML).
pub(super) fn read(text: &str) -> Result<Added, Refused> {
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let tables: Tables = toml::from_str(text).map_err(|e| {
        let message = e.message().to_owned();
        // serde names an unknown key first, in backticks: "unknown field `formt`, expected …".
        let key = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .unwrap_or("source")
            .to_owned();
        Refused {
            line: e.span().map_or(1, |s| line_of(s.start)),
            key,
            reason: message,
        }
    })?;
    let mut added = Added::default();
    for table in tables.source {
        let table_line = line_of(table.span().start);
        let table = table.into_inner();
        let refuse = |key: &str, at: Option<usize>, reason: &str| Refused {
            line: at.map_or(table_line, line_of),
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let at = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.span().start);
        match (&table.path, &table.cmd) {
            (Some(path), None) => {
                if table.name.is_some() {
                    return Err(refuse(
                        "name",
                        at(&table.name),
                        "a path's stream is named by its file name; `name` is for a `cmd`",
                    ));
                }
                added
                    .paths
                    .push((path.get_ref().clone(), line_of(path.span().start)));
            }
            (None, Some(cmd)) => {
                let Some(name) = &table.name else {
                    return Err(refuse(
                        "cmd",
                        at(&table.cmd),
                        "a command needs a `name` (its stream's id)",
                    ));
                };
                if table.rotated.is_some() {
                    return Err(refuse(
                        "rotated",
                        table.rotated.as_ref().map(|r| r.span().start),
                        "a command's output has no rotated files; `rotated` is for a `path`",
                    ));
                }
                let spec = format!("{}={}", name.get_ref(), cmd.get_ref());
                added.commands.push((spec, line_of(cmd.span().start)));
            }
            (Some(_), Some(_)) => {
                return Err(refuse(
                    "cmd",
                    at(&table.cmd),
                    "a source is a `path` or a `cmd`, not both",
                ));
            }
            (None, None) => {
                return Err(refuse("source", None, "a source needs a `path` or a `cmd`"));
            }
        }
        if let Some(rotated) = table.rotated {
            let line = line_of(rotated.span().start);
            match rotated.into_inner() {
                OneOrMany::One(glob) => added.rotated.push((glob, line)),
                OneOrMany::Many(globs) => {
                    added.rotated.extend(globs.into_iter().map(|g| (g, line)));
                }
            }
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_give_paths_commands_and_rotated_globs_with_their_lines() {
        let added = read(
            "port = 7001\n\n[[source]]\npath = \"/var/log/a.log\"\nrotated = [\"/x/a-*\", \"/y/a-*\"]\n\n\
             [[source]]\nname = \"journal\"\ncmd = \"journalctl -f\"\n",
        )
        .expect("valid");
        assert_eq!(added.paths, [("/var/log/a.log".to_owned(), 4)]);
        assert_eq!(added.commands, [("journal=journalctl -f".to_owned(), 9)]);
        assert_eq!(
            added.rotated,
            [("/x/a-*".to_owned(), 5), ("/y/a-*".to_owned(), 5)]
        );
        assert!(read("port = 1\n").expect("no tables").paths.is_empty());
    }

    #[test]
    fn a_table_that_does_not_fit_names_its_line_and_key() {
        let refused = |text: &str| read(text).expect_err("refused");
        let r = refused("[[source]]\npath = \"a\"\nformt = \"json\"\n");
        assert_eq!((r.line, r.key.as_str()), (3, "formt"), "{}", r.reason);
        let r = refused("[[source]]\npath = \"a\"\nname = \"x\"\n");
        assert_eq!((r.line, r.key.as_str()), (3, "name"));
        let r = refused("\n[[source]]\ncmd = \"ls\"\n");
        assert_eq!((r.line, r.key.as_str()), (3, "cmd"));
        assert!(r.reason.contains("needs a `name`"));
        let r = refused("[[source]]\npath = \"a\"\ncmd = \"ls\"\nname = \"x\"\n");
        assert_eq!(r.key, "cmd");
        let r = refused("x = 1\n[[source]]\n");
        assert_eq!((r.line, r.key.as_str()), (2, "source"));
        let r = refused("[[source]]\npath = 3\n");
        assert_eq!(r.line, 2, "{}", r.reason);
    }
}
