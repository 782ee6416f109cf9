//! `[[source]]` tables in the configuration file: one table per thing to follow, with its own
//! options, as another way to write `paths` and `cmd`.
//!
//! ```toml
//! [[source]]
//! path = "/var/log/app.log"
//! name = "app"                              # the stream's id (default: the file's name)
//! format = "json"                           # see below (default: "auto", detected)
//! rotated = "/var/log/archive/app.log-*.gz" # this file's own older history
//!
//! [[source]]
//! name = "journal"
//! cmd = "journalctl -f -o short-iso"
//! format = "iso"
//! env = { TZ = "UTC" }                      # besides PATH, all it gets
//! ```
//!
//! A table has `path` (a file, glob or `-`) or `cmd` (with `name`, the stream's id), not both.
//! `name` names a file's or `-`'s stream too (letters, digits, `-`, `_`, `.`; no two tables
//! alike), but not a glob's, which names one stream per match. `format` is `auto`, `plain`
//! or a shape's name as `/api/streams` reports it (`parse::pinned`). `rotated` (a glob or a
//! list) is the file's own: unlike `--rotated`, it is not history of every other file; a glob
//! or `-` has none. `env` (a table of strings) is for a `cmd`. An unknown key, a missing or doubled one, a bad value or a key that does
//! not fit the table is an error naming its line. What the tables give is merged like the
//! file's other settings (`file.rs`): the command line's own paths or `--cmd`s replace them,
//! with their options.

use serde::Deserialize;
use toml::Spanned;

use crate::parse::pinned::Pinned;
use crate::sources::{Of, Source, SourceOptions, check_name};

/// One `[[source]]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    path: Option<Spanned<String>>,
    cmd: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    rotated: Option<Spanned<OneOrMany>>,
    env: Option<Spanned<std::collections::BTreeMap<String, String>>>,
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
    source: Vec<Spanned<Raw>>,
}

/// One table, checked: what it follows, its options, and the line of its `path` or `cmd`.
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) line: usize,
    /// The path, or the command's name.
    pub(super) of: Of,
    /// For a command: `NAME=COMMAND`, as `--cmd` takes it.
    pub(super) cmd: Option<String>,
    pub(super) options: SourceOptions,
}

impl Table {
    /// Whether the table says more than what to follow.
    pub(super) fn has_options(&self) -> bool {
        self.options != SourceOptions::default()
    }
}

/// A table that cannot be used: its line, the key and why.
#[derive(Debug)]
pub(super) struct Refused {
    pub(super) line: usize,
    pub(super) key: String,
    pub(super) reason: String,
}

/// Reads the `[[source]]` tables of `text` (a file already known to be TOML).
pub(super) fn read(text: &str) -> Result<Vec<Table>, Refused> {
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let tables: Tables = toml::from_str(text).map_err(|e| {
        let message = e.message().to_owned();
        let line = e.span().map_or(1, |s| line_of(s.start));
        // serde names an unknown key first, in backticks: "unknown field `formt`, expected …";
        // a value of the wrong type is the one on its line (`key = value`).
        let on_line = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.split_once('='))
            .map(|(k, _)| k.trim().trim_matches('"'))
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        let key = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .or(on_line)
            .unwrap_or("source")
            .to_owned();
        Refused {
            line,
            key,
            reason: message,
        }
    })?;
    let mut checked: Vec<Table> = Vec::with_capacity(tables.source.len());
    for raw in tables.source {
        let table_line = line_of(raw.span().start);
        let table = check(raw.into_inner(), table_line, &line_of)?;
        let name = match (&table.of, &table.options.name) {
            (Of::Command(name), _) | (_, Some(name)) => Some(name),
            _ => None,
        };
        if let Some(name) = name {
            let taken = checked.iter().any(|t| match (&t.of, &t.options.name) {
                (Of::Command(n), _) | (_, Some(n)) => n == name,
                _ => false,
            });
            if taken {
                return Err(Refused {
                    line: table.line,
                    key: "name".to_owned(),
                    reason: format!("another table already names a stream `{name}`"),
                });
            }
        }
        checked.push(table);
    }
    Ok(checked)
}

/// Checks one table.
fn check(
    table: Raw,
    table_line: usize,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Table, Refused> {
    let refuse = |key: &str, at: Option<usize>, reason: String| Refused {
        line: at.map_or(table_line, line_of),
        key: key.to_owned(),
        reason,
    };
    let at = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.span().start);
    let rotated_at = table.rotated.as_ref().map(|r| r.span().start);
    let format = match &table.format {
        Some(f) => {
            Pinned::parse(f.get_ref()).map_err(|e| refuse("format", at(&table.format), e))?
        }
        None => None,
    };
    if let Some(name) = &table.name {
        check_name(name.get_ref()).map_err(|e| refuse("name", at(&table.name), e))?;
    }
    let rotated: Vec<String> = match table.rotated {
        Some(r) => match r.into_inner() {
            OneOrMany::One(glob) => vec![glob],
            OneOrMany::Many(globs) => globs,
        },
        None => Vec::new(),
    };
    let rotated = rotated
        .iter()
        .map(|g| {
            glob::Pattern::new(g).map_err(|e| {
                refuse(
                    "rotated",
                    rotated_at,
                    format!("bad glob pattern `{g}`: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let env_at = table.env.as_ref().map(|e| e.span().start);
    let env: Vec<(String, String)> = table
        .env
        .map(|e| e.into_inner().into_iter().collect())
        .unwrap_or_default();
    for (name, value) in &env {
        let fit = !name.is_empty() && !name.contains(['=', '\0']) && !value.contains('\0');
        if !fit {
            return Err(refuse(
                "env",
                env_at,
                format!(
                    "`{name}`: a variable needs a name without `=`, and no NUL byte in it or its value"
                ),
            ));
        }
    }
    let options = SourceOptions {
        name: table.name.as_ref().map(|n| n.get_ref().clone()),
        format,
        rotated,
        env,
    };
    match (&table.path, &table.cmd) {
        (Some(path), None) => {
            let line = line_of(path.span().start);
            let source = super::paths::classify(path.get_ref())
                .map_err(|e| refuse("path", Some(path.span().start), e.to_string()))?;
            let glob = matches!(source, Source::Glob(_));
            if !options.env.is_empty() {
                return Err(refuse(
                    "env",
                    env_at,
                    "`env` is a command's environment; it is for a `cmd`".to_owned(),
                ));
            }
            if glob && table.name.is_some() {
                return Err(refuse(
                    "name",
                    at(&table.name),
                    "a glob names a stream for each file it matches; `name` is for a file, \
                     `-` or a `cmd`"
                        .to_owned(),
                ));
            }
            if (glob || source == Source::Stdin) && !options.rotated.is_empty() {
                return Err(refuse(
                    "rotated",
                    rotated_at,
                    "`rotated` is one file's older history, so it is for a file's table: \
                     give each file a table of its own, or use --rotated for all"
                        .to_owned(),
                ));
            }
            Ok(Table {
                line,
                of: Of::Path(path.get_ref().clone()),
                cmd: None,
                options,
            })
        }
        (None, Some(cmd)) => {
            let Some(name) = &table.name else {
                return Err(refuse(
                    "cmd",
                    at(&table.cmd),
                    "a command needs a `name` (its stream's id)".to_owned(),
                ));
            };
            if !options.rotated.is_empty() {
                return Err(refuse(
                    "rotated",
                    rotated_at,
                    "a command's output has no rotated files; `rotated` is for a `path`".to_owned(),
                ));
            }
            Ok(Table {
                line: line_of(cmd.span().start),
                of: Of::Command(name.get_ref().clone()),
                cmd: Some(format!("{}={}", name.get_ref(), cmd.get_ref())),
                options: SourceOptions {
                    name: None,
                    ..options
                },
            })
        }
        (Some(_), Some(_)) => Err(refuse(
            "cmd",
            at(&table.cmd),
            "a source is a `path` or a `cmd`, not both".to_owned(),
        )),
        (None, None) => Err(refuse(
            "source",
            None,
            "a source needs a `path` or a `cmd`".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Shape;

    #[test]
    fn tables_give_sources_and_their_own_options_with_their_lines() {
        let tables = read(
            "port = 7001\n\n[[source]]\npath = \"/var/log/a.log\"\nname = \"app\"\n\
             format = \"json\"\nrotated = [\"/x/a-*\", \"/y/a-*\"]\n\n\
             [[source]]\nname = \"journal\"\ncmd = \"journalctl -f\"\nformat = \"plain\"\n\
             env = { TZ = \"UTC\", LANG = \"C\" }\n\n\
             [[source]]\npath = \"/var/log/*.log\"\nformat = \"auto\"\n",
        )
        .expect("valid");
        assert_eq!(tables.len(), 3);
        let (a, journal, glob) = (&tables[0], &tables[1], &tables[2]);
        assert_eq!((a.line, &a.of), (4, &Of::Path("/var/log/a.log".to_owned())));
        assert_eq!(a.options.name.as_deref(), Some("app"));
        assert_eq!(a.options.format, Some(Pinned::Shape(Shape::Json)));
        let globs: Vec<&str> = a
            .options
            .rotated
            .iter()
            .map(glob::Pattern::as_str)
            .collect();
        assert_eq!(globs, ["/x/a-*", "/y/a-*"]);
        assert_eq!(journal.line, 11);
        assert_eq!(journal.of, Of::Command("journal".to_owned()));
        assert_eq!(journal.cmd.as_deref(), Some("journal=journalctl -f"));
        assert_eq!(journal.options.format, Some(Pinned::Plain));
        let env = [
            ("LANG".to_owned(), "C".to_owned()),
            ("TZ".to_owned(), "UTC".to_owned()),
        ];
        assert_eq!(journal.options.env, env);
        assert!(a.has_options() && journal.has_options() && !glob.has_options());
        assert!(read("port = 1\n").expect("no tables").is_empty());
    }

    #[test]
    fn a_table_that_does_not_fit_names_its_line_and_key() {
        let refused = |text: &str| read(text).expect_err(text);
        for (text, line, key) in [
            ("[[source]]\npath = \"a\"\nformt = \"json\"\n", 3, "formt"),
            ("[[source]]\npath = \"a\"\nformat = \"JSON\"\n", 3, "format"),
            ("[[source]]\npath = \"a\"\nname = \"a b\"\n", 3, "name"),
            ("[[source]]\npath = \"a\"\nname = \"..\"\n", 3, "name"),
            (
                "[[source]]\npath = \"/nonexistent/*.log\"\nname = \"x\"\n",
                3,
                "name",
            ),
            (
                "[[source]]\npath = \"/nonexistent/*.log\"\nrotated = \"/o/*\"\n",
                3,
                "rotated",
            ),
            (
                "[[source]]\npath = \"-\"\n\nrotated = [\"/o/*\"]\n",
                4,
                "rotated",
            ),
            (
                "[[source]]\npath = \"a\"\nrotated = \"/o/[\"\n",
                3,
                "rotated",
            ),
            ("[[source]]\npath = \"/nonexistent/[\"\n", 2, "path"),
            ("\n[[source]]\ncmd = \"ls\"\n", 3, "cmd"),
            (
                "[[source]]\nname = \"j\"\ncmd = \"ls\"\nrotated = \"/o/*\"\n",
                4,
                "rotated",
            ),
            (
                "[[source]]\npath = \"a\"\ncmd = \"ls\"\nname = \"x\"\n",
                3,
                "cmd",
            ),
            ("x = 1\n[[source]]\n", 2, "source"),
            ("[[source]]\npath = \"a\"\nenv = { A = \"1\" }\n", 3, "env"),
            (
                "[[source]]\nname = \"j\"\ncmd = \"ls\"\nenv = { \"A=B\" = \"1\" }\n",
                4,
                "env",
            ),
            (
                "[[source]]\nname = \"j\"\ncmd = \"ls\"\nenv = { A = 1 }\n",
                4,
                "env",
            ),
            (
                "[[source]]\npath = \"a\"\nname = \"x\"\n[[source]]\nname = \"x\"\ncmd = \"ls\"\n",
                6,
                "name",
            ),
        ] {
            let r = refused(text);
            assert_eq!(
                (r.line, r.key.as_str()),
                (line, key),
                "{text}: {}",
                r.reason
            );
        }
        let r = refused("[[source]]\npath = 3\n");
        assert_eq!((r.line, r.key.as_str()), (2, "path"), "{}", r.reason);
        let r = refused("[[source]]\npath = \"a\"\nformat = \"xml\"\n");
        assert!(r.reason.contains("auto, plain, iso"), "{}", r.reason);
    }
}
