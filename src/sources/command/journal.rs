//! Resuming `journalctl` where it stopped: a command whose program is `journalctl` is run
//! with `--show-cursor`, so that when it exits it prints `-- cursor: C` after its last
//! entry; the next run starts with `--after-cursor=C --lines=all`, so a restart neither
//! loses nor repeats an entry.
//!
//! The cursor line is the supervisor's, not an entry: it is taken out of the output.
//!
//! A journalctl killed by SIGKILL (the OOM killer, a `kill -9`) prints no cursor. Then only
//! an output whose every entry names its own cursor tells where to resume, and that is the
//! choice made here: with `-o json` (or `json-seq`, `json-sse`: one entry a line, its
//! `"__CURSOR"` first), the cursor of the last whole line delivered is the resume point, so
//! even a SIGKILL loses and repeats nothing (a line the kill cut short is shown again whole).
//! The other outputs (`short-iso` …) name no cursor in their lines: their entries cannot be
//! told apart from their text reliably (a second's resolution, messages of several lines),
//! so restarting from a timestamp would repeat or lose entries of that second. After a
//! SIGKILL such a command starts again as configured, and the supervisor's exit line says
//! that entries may be repeated or missed.

use std::path::Path;

/// How `journalctl --show-cursor` starts the line that names its last entry.
const CURSOR_PREFIX: &[u8] = b"-- cursor: ";

/// Options that choose where journalctl starts, replaced on a resume: `(long, short)`, each
/// taking a value (`--lines`' is optional, and `-e` implies one).
const START_OPTIONS: [(&str, Option<char>); 5] = [
    ("--cursor", Some('c')),
    ("--after-cursor", None),
    ("--cursor-file", None),
    ("--since", Some('S')),
    ("--lines", Some('n')),
];

/// Whether `argv` runs journalctl (by its program's file name).
pub(super) fn is_journalctl(argv: &[String]) -> bool {
    argv.first()
        .and_then(|p| Path::new(p).file_name())
        .is_some_and(|name| name == "journalctl")
}

/// The cursor a whole output line names, if it is journalctl's cursor line.
pub(super) fn cursor_of(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(CURSOR_PREFIX)?.strip_suffix(b"\n")?;
    let cursor = std::str::from_utf8(rest).ok()?.trim_end_matches('\r');
    (!cursor.is_empty() && !cursor.contains(char::is_whitespace)).then(|| cursor.to_owned())
}

/// How a JSON entry of journalctl names its cursor (`-o json`, `json-seq`, `json-sse`). In
/// JSON a `"` inside a string is escaped, so this text can only be a key and its value's
/// start, never part of a message.
const ENTRY_CURSOR: &[u8] = br#""__CURSOR":""#;

/// The cursor a JSON entry's line names (the first `"__CURSOR"` key, which journalctl writes
/// first), if it names one.
pub(super) fn entry_cursor(line: &[u8]) -> Option<String> {
    let at = memchr::memmem::find(line, ENTRY_CURSOR)? + ENTRY_CURSOR.len();
    let rest = &line[at..];
    let value = &rest[..memchr::memchr(b'"', rest)?];
    let cursor = std::str::from_utf8(value).ok()?;
    (!cursor.is_empty() && !cursor.contains(['\\', ' '])).then(|| cursor.to_owned())
}

/// The arguments of the next run: as configured with `--show-cursor`, and, after `cursor`,
/// without the configured starting point.
pub(super) fn argv(configured: &[String], cursor: Option<&str>) -> Vec<String> {
    let mut argv = Vec::with_capacity(configured.len() + 3);
    let mut args = configured.iter().peekable();
    if let Some(program) = args.next() {
        argv.push(program.clone());
    }
    while let Some(arg) = args.next() {
        if cursor.is_some() {
            match start_option(arg) {
                Some(Value::Next) => {
                    args.next();
                    continue;
                }
                Some(Value::NextIfCount) => {
                    if args.peek().is_some_and(|v| is_count(v)) {
                        args.next();
                    }
                    continue;
                }
                Some(Value::Inline) => continue,
                None => {}
            }
        }
        argv.push(arg.clone());
    }
    if !configured.iter().any(|a| a == "--show-cursor") {
        argv.push("--show-cursor".to_owned());
    }
    if let Some(cursor) = cursor {
        argv.push(format!("--after-cursor={cursor}"));
        argv.push("--lines=all".to_owned());
    }
    argv
}

/// Where a starting option's value is.
enum Value {
    /// In the same argument (`--since=…`, `-S…`), or there is none (`-e`).
    Inline,
    /// In the next argument.
    Next,
    /// In the next argument when that is a count (`--lines`' value is optional).
    NextIfCount,
}

/// Whether `arg` chooses where journalctl starts, and where its value is.
fn start_option(arg: &str) -> Option<Value> {
    if arg == "-e" || arg == "--pager-end" {
        return Some(Value::Inline);
    }
    for (long, short) in START_OPTIONS {
        let optional = long == "--lines";
        if arg == long {
            return Some(if optional {
                Value::NextIfCount
            } else {
                Value::Next
            });
        }
        if arg.strip_prefix(long).is_some_and(|r| r.starts_with('=')) {
            return Some(Value::Inline);
        }
        if let Some(short) = short {
            let flag = format!("-{short}");
            if arg == flag {
                return Some(if optional {
                    Value::NextIfCount
                } else {
                    Value::Next
                });
            }
            if arg.starts_with(&flag) {
                return Some(Value::Inline);
            }
        }
    }
    None
}

/// Whether `v` is a value of `--lines` (`20`, `+20`, `all`).
fn is_count(v: &str) -> bool {
    let digits = v.strip_prefix('+').unwrap_or(v);
    v == "all" || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn only_journalctl_is_resumed() {
        assert!(is_journalctl(&args("journalctl -f")));
        assert!(is_journalctl(&args("/usr/bin/journalctl -f")));
        assert!(!is_journalctl(&args("journalctl2 -f")));
        assert!(!is_journalctl(&args("sh -c journalctl")));
    }

    #[test]
    fn the_first_run_asks_for_the_cursor_and_keeps_the_configured_start() {
        assert_eq!(
            argv(&args("journalctl -f -n 20 -o short-iso"), None),
            args("journalctl -f -n 20 -o short-iso --show-cursor")
        );
        assert_eq!(
            argv(&args("journalctl -f --show-cursor"), None),
            args("journalctl -f --show-cursor")
        );
    }

    #[test]
    fn a_resume_replaces_every_starting_point_by_the_cursor() {
        let configured = args(
            "journalctl -f -n 20 --lines=5 --lines -S today --since=-1h -c X --cursor Y \
             --after-cursor=Z --cursor-file F -e -u ssh -o short-iso",
        );
        assert_eq!(
            argv(&configured, Some("s=1;i=2")),
            args(
                "journalctl -f -u ssh -o short-iso --show-cursor --after-cursor=s=1;i=2 \
                 --lines=all"
            )
        );
        // `--lines` without a count keeps the next argument.
        assert_eq!(
            argv(&args("journalctl --lines -f"), Some("c")),
            args("journalctl -f --show-cursor --after-cursor=c --lines=all")
        );
    }

    #[test]
    fn a_json_entry_names_its_cursor() {
        let line = br#"{"__CURSOR":"s=ab;i=1f;b=c","__REALTIME_TIMESTAMP":"1","MESSAGE":"x"}"#;
        assert_eq!(entry_cursor(line).as_deref(), Some("s=ab;i=1f;b=c"));
        let sse = br#"data: {"__CURSOR":"s=1;i=2","MESSAGE":"\"__CURSOR\":\"no\""}"#;
        assert_eq!(entry_cursor(sse).as_deref(), Some("s=1;i=2"));
        let message = br#"{"MESSAGE":"said \"__CURSOR\":\"x\""}"#;
        assert_eq!(entry_cursor(message), None, "an escaped quote is no key");
        assert_eq!(entry_cursor(b"Dec 01 host sshd[1]: __CURSOR"), None);
        assert_eq!(entry_cursor(br#"{"__CURSOR":""}"#), None);
        assert_eq!(entry_cursor(br#"{"__CURSOR":"cut"#), None);
    }

    #[test]
    fn only_a_whole_cursor_line_is_a_cursor() {
        assert_eq!(
            cursor_of(b"-- cursor: s=ab;i=1f\n").as_deref(),
            Some("s=ab;i=1f")
        );
        assert_eq!(cursor_of(b"-- cursor: s=ab"), None, "not a whole line");
        assert_eq!(cursor_of(b"-- cursor: \n"), None);
        assert_eq!(cursor_of(b"x -- cursor: s=ab\n"), None);
        assert_eq!(cursor_of(b"-- cursor: two words\n"), None);
    }
}
