//! Finding a followed file's rotated siblings: which names, which files, in which order.
//!
//! For `D/NAME` the chain is the regular files in `D` named as logrotate (and most rotation
//! tools) name old versions: `NAME.N`, `NAME-DATE` / `NAME.DATE` / `NAME_DATE` (a date starting
//! with a four-digit year, digits and `-`/`_` only), with logrotate's `extension` forms
//! `STEM.N.E` and `STEM-DATE.E` when `NAME` is `STEM.E`, each optionally `.gz`; plus whatever
//! the `--rotated` globs match. The suffix is only a hint: the format is read from the magic
//! bytes, so a "`.gz`" holding plain text is read as plain.
//!
//! Safety: the chain widens the set of files cometail reads beyond the ones named, so a sibling
//! is read only when `lstat` says it is a regular file (no symlink, directory, FIFO or loop),
//! it has the followed file's owner, it is opened with `O_NOFOLLOW | O_NONBLOCK` and `fstat`
//! shows the same inode (no swap between the check and the open), and it is not the followed
//! file itself or a hard link of a sibling already listed. At most [`MAX_MEMBERS`] are listed.

use std::collections::HashSet;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Most rotated files listed for one followed file (older ones are left out).
pub(crate) const MAX_MEMBERS: usize = 1000;

/// Most directory entries looked at per scan.
const MAX_SCAN: usize = 100_000;

/// How a sibling's name places it in the chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    /// `NAME.N`: larger is older.
    Number(u32),
    /// `NAME-DATE`: compared as text, later is newer (logrotate requires sortable formats).
    Date(String),
    /// Matched by a `--rotated` glob only: ordered by modification time.
    Other,
}

/// A sibling found on disk, opened and checked.
#[derive(Debug)]
pub(crate) struct Found {
    /// The file name, for notices.
    pub name: String,
    pub key: Key,
    pub file: File,
    pub meta: Metadata,
}

/// Classifies `candidate` as an old version of `name`, or `None`.
pub(crate) fn classify(name: &str, candidate: &str) -> Option<Key> {
    let bare = candidate.strip_suffix(".gz").unwrap_or(candidate);
    if let Some(rest) = bare.strip_prefix(name) {
        if let Some(key) = version_key(rest) {
            return Some(key);
        }
    }
    // logrotate's `extension`: app.log -> app.1.log, app-20261130.log.
    let (stem, ext) = name.rsplit_once('.').filter(|(s, _)| !s.is_empty())?;
    let rest = bare
        .strip_prefix(stem)?
        .strip_suffix(ext)?
        .strip_suffix('.')?;
    version_key(rest)
}

/// `.N` or a separator and a date.
fn version_key(rest: &str) -> Option<Key> {
    let mut chars = rest.chars();
    let sep = chars.next()?;
    let body = chars.as_str();
    if sep == '.' && (1..=5).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_digit()) {
        return body.parse().ok().map(Key::Number);
    }
    let dated = matches!(sep, '-' | '.' | '_')
        && body.len() >= 8
        && body.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'_');
    dated.then(|| Key::Date(body.to_owned()))
}

/// The rotated siblings of `path`, oldest first. `extra` are `--rotated` globs.
pub(crate) fn discover(path: &Path, extra: &[glob::Pattern]) -> Vec<Found> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // The owner every sibling must have: the followed file's, else its directory's.
    let Ok(owner) = std::fs::metadata(path)
        .or_else(|_| std::fs::metadata(dir))
        .map(|m| m.uid())
    else {
        return Vec::new();
    };
    let live = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let mut candidates: Vec<(PathBuf, String, Key)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.take(MAX_SCAN).filter_map(Result::ok) {
            let file_name = entry.file_name();
            let Some(candidate) = file_name.to_str() else {
                continue;
            };
            if let Some(key) = classify(name, candidate) {
                candidates.push((entry.path(), candidate.to_owned(), key));
            }
        }
    }
    for pattern in extra {
        let Ok(paths) = glob::glob(pattern.as_str()) else {
            continue;
        };
        for p in paths.take(MAX_SCAN).filter_map(Result::ok) {
            if p.as_path() == path || candidates.iter().any(|(c, _, _)| *c == p) {
                continue;
            }
            let shown = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into());
            candidates.push((p, shown, Key::Other));
        }
    }
    let mut found: Vec<Found> = candidates
        .into_iter()
        .filter_map(|(p, shown, key)| {
            let (file, meta) = open_checked(&p, owner)?;
            Some(Found {
                name: shown,
                key,
                file,
                meta,
            })
        })
        .collect();
    order(&mut found);
    // One file under several names (hard links) is listed once, at its newest place; the
    // followed file itself is not history.
    let mut seen: HashSet<(u64, u64)> = live.into_iter().collect();
    let mut found: Vec<Found> = found
        .into_iter()
        .rev()
        .filter(|f| seen.insert((f.meta.dev(), f.meta.ino())))
        .collect();
    found.reverse();
    let skip = found.len().saturating_sub(MAX_MEMBERS);
    if skip > 0 {
        tracing::warn!(
            path = %crate::logging::escape_for_log(&path.to_string_lossy()),
            skipped = skip,
            "more rotated files than the chain holds; the oldest are left out"
        );
    }
    found.drain(..skip);
    found
}

/// Oldest first: numbers descending, dates ascending; mixed schemes (a configuration change)
/// and `--rotated` files by modification time, then name.
fn order(found: &mut [Found]) {
    let uniform = found.windows(2).all(|w| {
        matches!(
            (&w[0].key, &w[1].key),
            (Key::Number(_), Key::Number(_)) | (Key::Date(_), Key::Date(_))
        )
    });
    let mtime = |f: &Found| f.meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    found.sort_by(|a, b| {
        if uniform {
            match (&a.key, &b.key) {
                (Key::Number(x), Key::Number(y)) => y.cmp(x),
                (x, y) => x.cmp(y),
            }
            .then_with(|| a.name.cmp(&b.name))
        } else {
            mtime(a).cmp(&mtime(b)).then_with(|| a.name.cmp(&b.name))
        }
    });
}

/// Opens `path` if it passes the rules in the module docs.
fn open_checked(path: &Path, owner: u32) -> Option<(File, Metadata)> {
    let before = std::fs::symlink_metadata(path).ok()?;
    if !before.file_type().is_file() || before.uid() != owner {
        return None;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && meta.dev() == before.dev() && meta.ino() == before.ino())
        .then_some((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_or_ignored() {
        let n = |s: &str| Key::Number(s.parse().expect("number"));
        let d = |s: &str| Key::Date(s.to_owned());
        let table: &[(&str, Option<Key>)] = &[
            ("app.log.1", Some(n("1"))),
            ("app.log.2.gz", Some(n("2"))),
            ("app.log.0", Some(n("0"))),
            ("app.log-20261130", Some(d("20261130"))),
            ("app.log-20261130.gz", Some(d("20261130"))),
            ("app.log.2026-11-30", Some(d("2026-11-30"))),
            ("app.log-2026113014", Some(d("2026113014"))),
            (
                "app.log-20261130-1796164813",
                Some(d("20261130-1796164813")),
            ),
            ("app-20261130.log.gz", Some(d("20261130"))),
            ("app.1.log.gz", Some(n("1"))),
            ("app.log", None),
            ("app.log.bak", None),
            ("app.log.swp", None),
            ("app.log.1.tmp", None),
            ("app.logger.1", None),
            ("app.log.123456", None),
            ("app.log-abc", None),
            ("app.log.zst", None),
        ];
        for (name, want) in table {
            assert_eq!(classify("app.log", name), *want, "{name}");
        }
    }

    #[test]
    fn discovery_orders_oldest_first_and_refuses_unsafe_siblings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n);
        for n in [
            "app.log",
            "app.log.1",
            "app.log.3.gz",
            "app.log.2",
            "other.log.1",
        ] {
            std::fs::write(p(n), n).expect("write");
        }
        std::os::unix::fs::symlink("/etc/passwd", p("app.log.4")).expect("symlink");
        std::os::unix::fs::symlink(p("app.log.5"), p("app.log.5")).expect("loop");
        std::fs::create_dir(p("app.log.6")).expect("dir");
        std::fs::hard_link(p("app.log.1"), p("app.log.7")).expect("hard link");
        let names: Vec<String> = discover(&p("app.log"), &[])
            .into_iter()
            .map(|f| f.name)
            .collect();
        // app.log.7 is app.log.1 (a hard link): listed once, at its newest place.
        assert_eq!(names, ["app.log.3.gz", "app.log.2", "app.log.1"]);
    }
}
