//! The rotated files found beside a followed file, looked for by one reader at a time.
//!
//! Every read that reaches the start of a stream's own history asks for the chain. Looking
//! means a `readdir`, and an `lstat` and an open per candidate, on a blocking thread; 2,000
//! clients opening the page at once used to run 2,000 such looks, grow tokio's blocking pool
//! from 12 to 63 threads, and keep each connection waiting inside hyper (with its buffers)
//! meanwhile: 24 KiB of server memory per client instead of 6 KiB.
//!
//! Now a result is reused while the directory's modification time is what it was when the
//! result was looked for (every rename, creation and unlink in a directory changes it) and its
//! files are unchanged: one `stat` of the directory on the caller's thread, and an `fstat` per
//! member on the files already held. A directory time within [`racy`] of the look's start may
//! hide a change made in the same clock tick, so such a result is not reused that way. When a
//! look is needed, looks are single-flight: a reader waits for the look in progress and takes
//! the result of any look that *started after it asked*, as fresh as its own would be.
//! `--rotated` globs may reach other directories: their results are reused only that second
//! way.
//!
//! Nothing that holds files is kept for an idle stream: a result with members is kept only as
//! long as some reader holds it ([`Weak`]); an empty result (no rotated files: the common
//! case) is kept for good, since it holds nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::{Link, Member, chain, lock as members, member::Stamp};
use crate::stream::Stream;

/// Most followed files whose looks are remembered; past it, the idle ones are forgotten.
const MAX_SLOTS: usize = 65_536;

/// Most members whose files are checked on the caller's thread for a reuse.
const MAX_CHECKED: usize = 16;

/// What one look found: every rotated file beside the path, opened, oldest first (before the
/// stream's own generations are told apart from them).
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub links: Vec<Link>,
    /// The directory's modification time when looked, if it may be trusted to show a change.
    dir_mtime: Option<SystemTime>,
}

/// The looks of one followed file.
#[derive(Debug, Default)]
struct Slot {
    /// When the last look started, and its result (strong only when it holds no files).
    last: Mutex<Option<(Instant, Kept)>>,
    /// Held while a look runs.
    looking: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
enum Kept {
    Empty(Arc<Found>),
    Members(Weak<Found>),
}

impl Slot {
    /// The last result, if it started at or after `asked` or its directory is unchanged.
    fn reuse(
        &self,
        asked: Instant,
        dir_mtime: Option<SystemTime>,
        own_dir: bool,
    ) -> Option<Arc<Found>> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let (started, kept) = last.as_ref()?;
        let found = match kept {
            Kept::Empty(f) => f.clone(),
            Kept::Members(w) => w.upgrade()?,
        };
        let fresh = *started >= asked
            || (own_dir
                && dir_mtime.is_some()
                && found.dir_mtime == dir_mtime
                && found.links.len() <= MAX_CHECKED
                && found.links.iter().all(unchanged));
        fresh.then_some(found)
    }

    /// The last result whatever its age (what a look may build on).
    fn previous(&self) -> Option<Arc<Found>> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match last.as_ref()? {
            (_, Kept::Empty(f)) => Some(f.clone()),
            (_, Kept::Members(w)) => w.upgrade(),
        }
    }

    fn keep(&self, started: Instant, found: &Arc<Found>) {
        let kept = if found.links.is_empty() {
            Kept::Empty(found.clone())
        } else {
            Kept::Members(Arc::downgrade(found))
        };
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some((started, kept));
    }
}

type Slots = HashMap<PathBuf, Arc<Slot>>;

static SLOTS: LazyLock<Mutex<Slots>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The rotated files beside `stream`'s path, as fresh as a look started now (see the module
/// docs). Looks on a blocking thread only when the directory changed or is too new to tell.
///
/// # Errors
/// Only if the look panicked (a bug).
pub(crate) async fn found(stream: &Arc<Stream>) -> Result<Arc<Found>, tokio::task::JoinError> {
    let asked = Instant::now();
    let Some(rotated) = stream.rotated() else {
        return Ok(Arc::new(Found::default()));
    };
    let path = PathBuf::from(stream.name());
    let own_dir = rotated.patterns.is_empty();
    // One `stat` of a directory the follower watches: as cheap as a syscall gets.
    let now = if own_dir { dir_mtime(&path) } else { None };
    let slot = slot(&path);
    if let Some(found) = slot.reuse(asked, now, own_dir) {
        return Ok(found);
    }
    let _looking = slot.looking.lock().await;
    if let Some(found) = slot.reuse(asked, now, own_dir) {
        return Ok(found);
    }
    let started = Instant::now();
    let previous = slot.previous();
    let patterns = rotated.patterns.clone();
    let found =
        tokio::task::spawn_blocking(move || Arc::new(look(&path, &patterns, previous.as_deref())))
            .await?;
    slot.keep(started, &found);
    Ok(found)
}

fn slot(path: &Path) -> Arc<Slot> {
    let mut slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
    if slots.len() >= MAX_SLOTS && !slots.contains_key(path) {
        slots.retain(|_, s| Arc::strong_count(s) > 1);
    }
    slots.entry(path.to_owned()).or_default().clone()
}

/// How close to a look's start a directory time may hide a later change: file systems stamp
/// times from a clock that ticks every few milliseconds, and those that keep whole seconds
/// (a time with no nanoseconds) within the same second.
fn racy(t: SystemTime) -> Duration {
    let whole = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .is_ok_and(|d| d.subsec_nanos() == 0);
    if whole {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(50)
    }
}

/// The modification time of `path`'s directory, if it is old enough to show a change.
fn dir_mtime(path: &Path) -> Option<SystemTime> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let now = SystemTime::now();
    std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .filter(|t| now.duration_since(*t).is_ok_and(|age| age >= racy(*t)))
}

/// Looks for `path`'s rotated files, reusing `previous` when nothing it depends on changed.
/// Blocking.
pub(crate) fn look(path: &Path, patterns: &[glob::Pattern], previous: Option<&Found>) -> Found {
    let dir_mtime = dir_mtime(path);
    if let (Some(prev), Some(now), true) = (previous, dir_mtime, patterns.is_empty()) {
        if prev.dir_mtime == Some(now) && prev.links.iter().all(unchanged) {
            return Found {
                links: prev.links.clone(),
                dir_mtime,
            };
        }
    }
    let mut links = Vec::new();
    for f in chain::discover(path, patterns) {
        let stamp = Stamp::of(&f.meta);
        let cached = members().get(&stamp).cloned();
        let member = if let Some(m) = cached {
            m
        } else {
            let Ok(m) = Member::open(f.file, &f.meta) else {
                continue;
            };
            let m = Arc::new(m);
            members().insert(stamp, m.clone());
            m
        };
        links.push(Link {
            name: f.name,
            member,
        });
    }
    Found { links, dir_mtime }
}

/// Whether a member's file is as it was when opened (a rotated file may still take late lines).
fn unchanged(link: &Link) -> bool {
    let m = &link.member;
    m.generation
        .file()
        .is_some_and(|f| f.metadata().is_ok_and(|meta| Stamp::of(&meta) == m.stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets `dir`'s modification time an hour back, as a directory untouched for a while.
    fn age(dir: &Path) {
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let times = std::fs::FileTimes::new().set_modified(hour_ago);
        std::fs::File::open(dir)
            .and_then(|d| d.set_times(times))
            .expect("set the directory's time");
    }

    fn names(found: &Found) -> Vec<&str> {
        found.links.iter().map(|l| l.name.as_str()).collect()
    }

    #[test]
    fn an_unchanged_directory_reuses_the_members_and_a_change_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        std::fs::write(&log, "new\n").expect("write");
        std::fs::write(dir.path().join("app.log.1"), "old\n").expect("write");
        // Just changed: the time cannot tell a change in the same tick, so it is not kept.
        let first = look(&log, &[], None);
        assert_eq!(names(&first), ["app.log.1"]);
        assert_eq!(first.dir_mtime, None);

        age(dir.path());
        let second = look(&log, &[], Some(&first));
        assert!(second.dir_mtime.is_some());
        let third = look(&log, &[], Some(&second));
        assert!(Arc::ptr_eq(&second.links[0].member, &third.links[0].member));

        // logrotate again: a rename and a new file change the directory's time.
        std::fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2"))
            .expect("rename");
        std::fs::rename(&log, dir.path().join("app.log.1")).expect("rename");
        std::fs::write(&log, "newest\n").expect("write");
        let fourth = look(&log, &[], Some(&third));
        assert_eq!(names(&fourth), ["app.log.2", "app.log.1"]);
    }

    #[test]
    fn a_member_that_grew_is_looked_for_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        std::fs::write(&log, "new\n").expect("write");
        let rotated = dir.path().join("app.log.1");
        std::fs::write(&rotated, "old\n").expect("write");
        age(dir.path());
        let first = look(&log, &[], None);
        assert!(first.dir_mtime.is_some());
        // A late writer appends to the rotated file: no directory change, a new size.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&rotated)
            .expect("open");
        std::io::Write::write_all(&mut f, b"late\n").expect("append");
        let second = look(&log, &[], Some(&first));
        assert!(!Arc::ptr_eq(
            &first.links[0].member,
            &second.links[0].member
        ));
        assert_eq!(second.links[0].member.len().expect("len"), 9);
    }

    #[test]
    fn times_in_whole_seconds_are_trusted_later_than_fine_ones() {
        let fine = SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000, 123);
        let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(racy(fine), Duration::from_millis(50));
        assert_eq!(racy(whole), Duration::from_secs(2));
    }
}
