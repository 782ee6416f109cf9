//! Generations the follower never saw: files the path named between two looks.
//!
//! When the path is replaced twice between two looks (a `--poll` interval, or a burst of
//! rotations), the file in the middle was never opened: its lines cannot be read as part of
//! the stream, and that must not pass in silence. Rotation leaves it beside the path under a
//! rotated name (`app.log.1`), so at each switch the directory is searched for files named
//! like the path that the follower never opened, born after it last saw the path name the
//! generation being left and no later than the file being opened. (File times come from a
//! coarse clock, a few milliseconds a tick: files made in one burst of rotations share a
//! birth time, so the bounds are inclusive, with a margin of [`CLOCK_TICK`] below, and the
//! files already seen are told apart by identity. A copy made by copytruncate before that
//! last look is older than the bound.)
//!
//! Limits: birth times are needed (`statx`; where the file system has none, nothing is
//! found), and a skipped file that was already deleted leaves no trace. Compressed copies
//! (`app.log.1.gz`, made from a file that was seen) are not counted.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::identity::FileId;

/// Suffixes of compressed rotated files: copies of a generation, not generations.
const COMPRESSED: [&str; 7] = [".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"];

/// How far a file's birth time (coarse clock) may lag behind the precise time read when the
/// follower looked.
pub(crate) const CLOCK_TICK: Duration = Duration::from_millis(20);

/// Names of the files beside `path` born at or after `after` (minus [`CLOCK_TICK`]) and no
/// later than `next`, that are none of the files in `seen`: generations the path named in
/// between.
pub(crate) fn between(
    path: &Path,
    after: SystemTime,
    next: &FileId,
    seen: &[FileId],
) -> Vec<OsString> {
    let after_ns = after
        .checked_sub(CLOCK_TICK)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    if next.birth_ns == 0 || next.birth_ns < after_ns {
        return Vec::new();
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = name.as_encoded_bytes();
    let mut found: Vec<OsString> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let bytes = n.as_encoded_bytes();
            bytes.len() > prefix.len()
                && bytes.starts_with(prefix)
                && !COMPRESSED.iter().any(|c| bytes.ends_with(c.as_bytes()))
        })
        .filter(|e| {
            e.metadata().is_ok_and(|meta| {
                let id = FileId::of(&meta);
                meta.is_file()
                    && id != *next
                    && !seen.contains(&id)
                    && id.birth_ns >= after_ns
                    && id.birth_ns <= next.birth_ns
            })
        })
        .map(|e| e.file_name())
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(path: &Path) -> FileId {
        FileId::of(&std::fs::metadata(path).expect("stat"))
    }

    #[test]
    fn a_file_born_between_two_generations_is_found_and_older_ones_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        std::fs::write(dir.path().join("app.log.3"), b"older\n").expect("write");
        let older = id(&dir.path().join("app.log.3"));
        std::fs::write(&path, b"a\n").expect("write");
        let left = id(&path);
        let seen = [older, left];
        // The follower's last look at `app.log` while it still named `left`.
        let looked = SystemTime::now();
        std::fs::rename(&path, dir.path().join("app.log.2")).expect("mv");
        std::fs::write(&path, b"b\n").expect("write");
        std::fs::rename(&path, dir.path().join("app.log.1")).expect("mv");
        std::fs::write(dir.path().join("app.log.2.gz"), b"zipped").expect("write");
        std::fs::write(dir.path().join("other.log"), b"x\n").expect("write");
        std::fs::write(&path, b"c\n").expect("write");
        let next = id(&path);
        if left.birth_ns == 0 {
            // No birth times on this file system: nothing can be found (the documented limit).
            assert!(between(&path, looked, &next, &seen).is_empty());
            return;
        }
        assert_eq!(
            between(&path, looked, &next, &seen),
            [OsString::from("app.log.1")]
        );
        let b = id(&dir.path().join("app.log.1"));
        assert!(
            between(&path, looked, &next, &[older, left, b]).is_empty(),
            "a file that was read is no gap"
        );
        let later = SystemTime::now() + Duration::from_secs(1);
        assert!(
            between(&path, later, &next, &seen).is_empty(),
            "files born before the last look are not"
        );
    }
}
