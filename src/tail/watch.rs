//! Waking followers when their files change, with one watcher for the whole process.
//!
//! inotify instances are scarce (128 per user, shared with the rest of the machine), so the
//! process creates one `notify` watcher and watches *directories*: the parent of each followed
//! path (or its nearest existing ancestor while the parent is missing) and the parent of a
//! symlink's target. Events are routed, not broadcast: an event for `dir/name` wakes only the
//! followers of that name (and, while a follower drains a renamed file, the follower of that
//! inode), so a busy file nobody follows costs a map lookup per event and wakes no one.
//!
//! A watched directory that is moved or deleted (`mv logs logs.old && mkdir logs`) is marked
//! stale and its followers woken; their next [`Watcher::watch`] watches the new directory.
//! When the watcher cannot be created (inotify instances exhausted) or a watch cannot be added,
//! [`Watcher::watch`] says so and the caller polls; creating the watcher is retried every
//! [`RETRY`], so the fallback is not for good.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

/// Something file events wake: a task waiting on a [`Notify`], or a follower whose step is
/// queued on the step threads at once (no async hop between the event and the read).
///
/// `wake` runs on the watcher's event thread with the routes locked: it must not block, and
/// must not call back into the [`Watcher`].
pub trait Wake: Send + Sync {
    /// The files it follows may have changed.
    fn wake(self: Arc<Self>);
}

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        self.notify_one();
    }
}

/// A registered waker and its identity (the address of what it points to).
type Waker = Arc<dyn Wake>;

fn id_of(wake: &Waker) -> usize {
    Arc::as_ptr(wake).cast::<()>() as usize
}

fn same(a: &Waker, b: &Waker) -> bool {
    id_of(a) == id_of(b)
}

/// How often creating the OS watcher is tried again after it failed.
const RETRY: Duration = Duration::from_secs(30);

/// The process's file watcher; cheap to share behind an `Arc`.
pub struct Watcher {
    /// `None` while polling: asked for, or the OS watcher could not be created (yet).
    os: Mutex<Os>,
    routes: Arc<Mutex<Routes>>,
    poll_only: bool,
}

struct Os {
    watcher: Option<notify::RecommendedWatcher>,
    /// When creating the watcher may be tried again.
    retry_at: Option<Instant>,
}

/// Who is woken by events in which directory.
#[derive(Default)]
struct Routes {
    dirs: HashMap<PathBuf, Dir>,
    /// What each follower (by its waker's address) is registered for.
    keys: HashMap<usize, Vec<(PathBuf, Key)>>,
}

/// One watched directory.
struct Dir {
    /// Inode of the directory when its watch was added (0: not watched yet).
    ino: u64,
    /// The directory was moved or deleted: the watch follows the old inode, not the path.
    stale: bool,
    /// Followers by the name they follow in this directory.
    names: HashMap<OsString, Vec<Waker>>,
    /// Followers draining a renamed file of this directory, by the file's inode.
    inodes: HashMap<u64, Vec<Waker>>,
    /// Followers holding a rotated file of this directory, with their file name: woken by
    /// the removal of a name that starts with it.
    removals: Vec<(OsString, Waker)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Name(OsString),
    Inode(u64),
    /// Removals of names that start with this one (`app.log.1` for `app.log`).
    Removals(OsString),
}

/// A follower's files other than the one its path names, whose events it needs too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Also {
    /// The inode of a rotated file being drained: its writes wake the follower.
    pub draining: Option<u64>,
    /// The follower keeps a rotated file open for history: the removal of a name in the
    /// directory that starts with the followed name (`app.log.1`) wakes it, so that it lets go
    /// of the file once it is deleted (writes do not).
    pub retaining: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// A watcher using the OS's file events, or a polling-only one when `poll_only` is set or
    /// events are unavailable (the reason is logged once).
    pub fn new(poll_only: bool) -> Self {
        let this = Self {
            os: Mutex::new(Os {
                watcher: None,
                retry_at: None,
            }),
            routes: Arc::default(),
            poll_only,
        };
        if !poll_only {
            let mut os = this.lock_os();
            this.create(&mut os);
        }
        this
    }

    /// Whether file events are in use.
    pub fn is_active(&self) -> bool {
        self.lock_os().watcher.is_some()
    }

    /// Wakes `wake` on changes that may concern `path`; returns whether that is covered by
    /// file events (otherwise the caller must poll). Call it again whenever the path's
    /// directories may have changed; it is cheap when nothing did.
    pub fn watch<W: Wake + 'static>(&self, path: &Path, wake: &Arc<W>) -> bool {
        self.watch_more(path, Also::default(), wake)
    }

    /// As [`Watcher::watch`], and also wakes `wake` for the follower's other files in the
    /// path's directory, whatever their names; see [`Also`].
    pub fn watch_more<W: Wake + 'static>(&self, path: &Path, also: Also, wake: &Arc<W>) -> bool {
        let wake: Waker = wake.clone();
        let mut os = self.lock_os();
        if os.watcher.is_none()
            && !self.poll_only
            && os.retry_at.is_some_and(|t| Instant::now() >= t)
        {
            self.create(&mut os);
        }
        let Some(watcher) = os.watcher.as_mut() else {
            return false;
        };
        let mut keys = Vec::new();
        if let Some((dir, name)) = nearest_existing_dir(path) {
            // A rotated file is looked for in the path's own directory only.
            let in_parent = std::path::absolute(path)
                .ok()
                .is_some_and(|p| p.parent() == Some(dir.as_path()));
            if let Some(ino) = also.draining.filter(|_| in_parent) {
                keys.push((dir.clone(), Key::Inode(ino)));
            }
            if also.retaining && in_parent {
                keys.push((dir.clone(), Key::Removals(name.clone())));
            }
            keys.push((dir, Key::Name(name)));
        }
        if let Ok(real) = std::fs::canonicalize(path) {
            if let (Some(dir), Some(name)) = (real.parent(), real.file_name()) {
                let key = (dir.to_path_buf(), Key::Name(name.to_owned()));
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        // The watcher's calls wait for its event thread, which may be waiting for `routes`
        // in `route`: never call it with `routes` locked.
        let todo = {
            let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            routes.register(&wake, &keys);
            routes.needing_watch(&keys)
        };
        let mut covered = !keys.is_empty();
        for (dir, ino, replaced) in todo {
            if replaced {
                // The watch follows the old directory's inode: drop it, watch the path anew.
                let _ = watcher.unwatch(&dir);
            }
            let added = match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("cannot watch {} ({e}); polling it", dir.display());
                    false
                }
            };
            covered &= added;
            let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(d) = routes.dirs.get_mut(&dir) {
                d.ino = if added { ino } else { 0 };
            }
        }
        covered
    }

    /// Stops waking `wake` (its follower has ended).
    pub fn forget<W: Wake + 'static>(&self, wake: &Arc<W>) {
        let wake: Waker = wake.clone();
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.register(&wake, &[]);
    }

    fn lock_os(&self) -> std::sync::MutexGuard<'_, Os> {
        self.os.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the OS watcher; on failure, polls and tries again after [`RETRY`].
    fn create(&self, os: &mut Os) {
        let routes = self.routes.clone();
        let created = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .route(&event);
        });
        match created {
            Ok(w) => {
                if os.retry_at.is_some() {
                    tracing::info!("file events available again");
                }
                os.watcher = Some(w);
                os.retry_at = None;
                // Directories watched by a previous watcher are not watched by this one.
                let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
                for dir in routes.dirs.values_mut() {
                    dir.ino = 0;
                }
            }
            Err(e) => {
                if os.retry_at.is_none() {
                    tracing::warn!("file events unavailable ({e}); polling instead");
                }
                os.retry_at = Some(Instant::now() + RETRY);
            }
        }
    }
}

impl Routes {
    /// Replaces what `wake` is registered for with `keys`.
    fn register(&mut self, wake: &Waker, keys: &[(PathBuf, Key)]) {
        let id = id_of(wake);
        let old = self.keys.remove(&id).unwrap_or_default();
        if old != keys {
            for (dir, key) in &old {
                if let Some(d) = self.dirs.get_mut(dir) {
                    d.remove(key, wake);
                }
            }
            for (dir, key) in keys {
                let d = self.dirs.entry(dir.clone()).or_insert_with(Dir::new);
                match key {
                    Key::Name(name) => d.names.entry(name.clone()).or_default().push(wake.clone()),
                    Key::Inode(ino) => d.inodes.entry(*ino).or_default().push(wake.clone()),
                    Key::Removals(name) => d.removals.push((name.clone(), wake.clone())),
                }
            }
        }
        // Watches stay when no follower is left in a directory: removing one would race with
        // its events, and followers tend to come back to the same directories.
        if !keys.is_empty() {
            self.keys.insert(id, keys.to_vec());
        }
    }

    /// The directories among `keys` that need a watch added, with their inode now and whether
    /// an old watch (of a replaced directory) must be dropped first. A watch that could not be
    /// added (the directory just vanished, the watch limit is reached) is tried again here.
    fn needing_watch(&mut self, keys: &[(PathBuf, Key)]) -> Vec<(PathBuf, u64, bool)> {
        let mut todo: Vec<(PathBuf, u64, bool)> = Vec::new();
        for (dir, _) in keys {
            let Some(d) = self.dirs.get_mut(dir) else {
                continue;
            };
            if todo.iter().any(|(t, _, _)| t == dir) {
                continue;
            }
            let ino = std::fs::metadata(dir).map_or(0, |m| m.ino());
            if d.ino != 0 && !d.stale && d.ino == ino {
                continue;
            }
            todo.push((dir.clone(), ino, d.ino != 0));
            d.stale = false;
        }
        todo
    }

    /// Wakes the followers `event` concerns.
    fn route(&mut self, event: &notify::Event) {
        if event.need_rescan() {
            // Events were lost: everyone looks.
            for dir in self.dirs.values() {
                dir.wake_all();
            }
            return;
        }
        let moved = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
        );
        for path in &event.paths {
            if moved {
                if let Some(dir) = self.dirs.get_mut(path.as_path()) {
                    // The watched directory itself moved or went away.
                    dir.stale = true;
                    dir.wake_all();
                }
            }
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            let Some(dir) = self.dirs.get(parent) else {
                continue;
            };
            for wake in dir.names.get(name).into_iter().flatten() {
                wake.clone().wake();
            }
            if matches!(event.kind, EventKind::Remove(_)) {
                let removed = name.as_encoded_bytes();
                for (followed, wake) in &dir.removals {
                    if removed.starts_with(followed.as_encoded_bytes()) {
                        wake.clone().wake();
                    }
                }
            }
            if !dir.inodes.is_empty() {
                // Only while some follower drains a renamed file: one `lstat` per event.
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    for wake in dir.inodes.get(&meta.ino()).into_iter().flatten() {
                        wake.clone().wake();
                    }
                }
            }
        }
    }
}

impl Dir {
    fn new() -> Self {
        Self {
            ino: 0,
            stale: false,
            names: HashMap::new(),
            inodes: HashMap::new(),
            removals: Vec::new(),
        }
    }

    fn remove(&mut self, key: &Key, wake: &Waker) {
        match key {
            Key::Name(name) => {
                if let Some(list) = self.names.get_mut(name) {
                    list.retain(|w| !same(w, wake));
                    if list.is_empty() {
                        self.names.remove(name);
                    }
                }
            }
            Key::Inode(ino) => {
                if let Some(list) = self.inodes.get_mut(ino) {
                    list.retain(|w| !same(w, wake));
                    if list.is_empty() {
                        self.inodes.remove(ino);
                    }
                }
            }
            Key::Removals(name) => self.removals.retain(|(n, w)| !(n == name && same(w, wake))),
        }
    }

    fn wake_all(&self) {
        for wake in self.names.values().chain(self.inodes.values()).flatten() {
            wake.clone().wake();
        }
        for (_, wake) in &self.removals {
            wake.clone().wake();
        }
    }
}

/// The directory to watch for `path` and the name in it that leads to `path`: its parent and
/// file name, or, while the parent is missing, its nearest existing ancestor and the next
/// component down.
fn nearest_existing_dir(path: &Path) -> Option<(PathBuf, OsString)> {
    let absolute = std::path::absolute(path).ok()?;
    let mut child = absolute.as_path();
    loop {
        let dir = child.parent()?;
        if dir.is_dir() {
            let name = match child.components().next_back()? {
                Component::Normal(name) => name.to_owned(),
                _ => return None,
            };
            return Some((dir.to_path_buf(), name));
        }
        child = dir;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `wake` is woken within a short deadline.
    async fn woken(wake: &Notify) -> bool {
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .is_ok()
    }

    /// Whether `wake` stays quiet while the events already caused are delivered.
    async fn quiet(wake: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(300), wake.notified())
            .await
            .is_err()
    }

    #[test]
    fn poll_only_watcher_never_covers_a_path() {
        let w = Watcher::new(true);
        assert!(!w.is_active());
        assert!(!w.watch(Path::new("/tmp/a.log"), &Arc::new(Notify::new())));
    }

    #[tokio::test]
    async fn only_the_follower_of_the_changed_file_is_woken() {
        let w = Watcher::new(false);
        assert!(w.is_active(), "inotify is available on the test machines");
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        assert!(w.watch(&dir.path().join("a.log"), &a));
        assert!(w.watch(&dir.path().join("b.log"), &b));
        std::fs::write(dir.path().join("a.log"), b"x\n").expect("write");
        assert!(woken(&a).await);
        for _ in 0..100 {
            std::fs::write(dir.path().join("busy.log"), b"y\n").expect("write");
        }
        assert!(quiet(&b).await, "a neighbour's events wake no one else");
    }

    #[tokio::test]
    async fn a_draining_follower_is_woken_by_its_renamed_file() {
        let w = Watcher::new(false);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"x\n").expect("write");
        let ino = std::fs::metadata(&path).expect("stat").ino();
        std::fs::rename(&path, dir.path().join("a.log.1")).expect("rename");
        let wake = Arc::new(Notify::new());
        let also = Also {
            draining: Some(ino),
            retaining: false,
        };
        assert!(w.watch_more(&path, also, &wake));
        std::fs::write(dir.path().join("a.log.1"), b"late\n").expect("write");
        assert!(woken(&wake).await);
        // No longer draining: the renamed file's events stop waking its follower (a fresh
        // waker, so that no permit left by the first write counts).
        w.forget(&wake);
        let wake = Arc::new(Notify::new());
        assert!(w.watch(&path, &wake));
        std::fs::write(dir.path().join("a.log.1"), b"later\n").expect("write");
        assert!(quiet(&wake).await);
    }

    #[tokio::test]
    async fn a_replaced_directory_is_watched_again() {
        let w = Watcher::new(false);
        let root = tempfile::tempdir().expect("tempdir");
        let logs = root.path().join("logs");
        std::fs::create_dir(&logs).expect("mkdir");
        let path = logs.join("a.log");
        let wake = Arc::new(Notify::new());
        assert!(w.watch(&path, &wake));
        std::fs::rename(&logs, root.path().join("logs.old")).expect("mv");
        std::fs::create_dir(&logs).expect("mkdir");
        assert!(woken(&wake).await, "the move itself wakes the follower");
        // The follower looks, sees its path gone, and watches again.
        w.forget(&wake);
        let wake = Arc::new(Notify::new());
        assert!(w.watch(&path, &wake));
        std::fs::write(&path, b"x\n").expect("write");
        assert!(woken(&wake).await, "events from the new directory arrive");
    }

    #[tokio::test]
    async fn a_missing_directory_is_watched_through_its_nearest_ancestor() {
        let w = Watcher::new(false);
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("sub/a.log");
        let wake = Arc::new(Notify::new());
        assert!(w.watch(&path, &wake));
        std::fs::create_dir(root.path().join("sub")).expect("mkdir");
        assert!(woken(&wake).await);
        w.forget(&wake);
        let wake = Arc::new(Notify::new());
        assert!(w.watch(&path, &wake));
        std::fs::write(&path, b"x\n").expect("write");
        assert!(woken(&wake).await);
    }

    #[tokio::test]
    async fn a_retaining_follower_is_woken_when_its_rotated_file_is_deleted() {
        let w = Watcher::new(false);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(dir.path().join("a.log.1"), b"old\n").expect("write");
        std::fs::write(dir.path().join("other.1"), b"x\n").expect("write");
        let wake = Arc::new(Notify::new());
        let also = Also {
            draining: None,
            retaining: true,
        };
        assert!(w.watch_more(&path, also, &wake));
        std::fs::remove_file(dir.path().join("other.1")).expect("rm");
        assert!(quiet(&wake).await, "another file's removal wakes no one");
        std::fs::remove_file(dir.path().join("a.log.1")).expect("rm");
        assert!(woken(&wake).await);
    }
}
