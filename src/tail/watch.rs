//! Waking followers when their files change, with one watcher for the whole process.
//!
//! inotify instances are scarce (128 per user, shared with the rest of the machine), so the
//! process creates one `notify` watcher and watches *directories*: the parent of each followed
//! path (or its nearest existing ancestor while the parent is missing) and the parent of a
//! symlink's target. An event for any path in a watched directory wakes the followers
//! registered there; they then look for themselves. When the watcher cannot be created or a
//! watch cannot be added (limits reached), [`Watcher::watch`] says so and the caller polls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::Notify;

type Targets = Arc<Mutex<HashMap<PathBuf, Vec<Arc<Notify>>>>>;

/// The process's file watcher; cheap to share behind an `Arc`.
pub struct Watcher {
    watcher: Option<Mutex<notify::RecommendedWatcher>>,
    targets: Targets,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("active", &self.watcher.is_some())
            .finish()
    }
}

impl Watcher {
    /// A watcher using the OS's file events, or a polling-only one when `poll_only` is set or
    /// events are unavailable (the reason is logged once).
    pub fn new(poll_only: bool) -> Self {
        let targets: Targets = Arc::default();
        if poll_only {
            return Self {
                watcher: None,
                targets,
            };
        }
        let handler_targets = targets.clone();
        let created = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            let mut targets = handler_targets
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for path in &event.paths {
                for dir in [Some(path.as_path()), path.parent()].into_iter().flatten() {
                    for wake in targets.get(dir).into_iter().flatten() {
                        wake.notify_one();
                    }
                }
                // A removed directory loses its watch; forget it so that it is watched
                // again when it comes back.
                if matches!(event.kind, notify::EventKind::Remove(_)) {
                    targets.remove(path.as_path());
                }
            }
        });
        match created {
            Ok(w) => Self {
                watcher: Some(Mutex::new(w)),
                targets,
            },
            Err(e) => {
                tracing::warn!("file events unavailable ({e}); polling instead");
                Self {
                    watcher: None,
                    targets,
                }
            }
        }
    }

    /// Whether file events are in use at all.
    pub fn is_active(&self) -> bool {
        self.watcher.is_some()
    }

    /// Wakes `wake` on changes that may concern `path`; returns whether that is covered by
    /// file events (otherwise the caller must poll). Idempotent: call it again whenever the
    /// path's directories may have changed.
    pub fn watch(&self, path: &Path, wake: &Arc<Notify>) -> bool {
        let Some(watcher) = &self.watcher else {
            return false;
        };
        let mut dirs = vec![nearest_existing_dir(path)];
        if let Ok(real) = std::fs::canonicalize(path) {
            if let Some(parent) = real.parent() {
                dirs.push(Some(parent.to_path_buf()));
            }
        }
        let mut covered = true;
        for dir in dirs.into_iter().flatten() {
            covered &= self.watch_dir(watcher, &dir, wake);
        }
        covered
    }

    /// Wakes `wake` on events in `dir`; returns whether a watch covers it. A watch that
    /// cannot be added (the directory just vanished, the watch limit is reached) is
    /// forgotten, so that the next call tries again, and the caller polls meanwhile.
    fn watch_dir(
        &self,
        watcher: &Mutex<notify::RecommendedWatcher>,
        dir: &Path,
        wake: &Arc<Notify>,
    ) -> bool {
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        let wakers = targets.entry(dir.to_path_buf()).or_default();
        if wakers.iter().any(|w| Arc::ptr_eq(w, wake)) {
            return true;
        }
        let fresh = wakers.is_empty();
        wakers.push(wake.clone());
        drop(targets);
        if !fresh {
            return true;
        }
        let added = watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .watch(dir, RecursiveMode::NonRecursive);
        match added {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("cannot watch {} ({e}); polling it", dir.display());
                self.targets
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(dir);
                false
            }
        }
    }
}

/// The path's parent if it exists, else its nearest existing ancestor.
fn nearest_existing_dir(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut dir = absolute.parent()?;
    loop {
        if dir.is_dir() {
            return Some(dir.to_path_buf());
        }
        dir = dir.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn poll_only_watcher_never_covers_a_path() {
        let w = Watcher::new(true);
        assert!(!w.is_active());
        assert!(!w.watch(Path::new("/tmp/a.log"), &Arc::new(Notify::new())));
    }

    #[test]
    fn a_watch_that_cannot_be_added_means_polling_and_is_retried_later() {
        let w = Watcher::new(false);
        let Some(watcher) = &w.watcher else {
            // No inotify instance left on this machine: the fallback is what we test anyway.
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("gone");
        let wake = Arc::new(Notify::new());
        assert!(!w.watch_dir(watcher, &gone, &wake), "polled");
        assert!(
            !w.targets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&gone),
            "forgotten, so that it is tried again"
        );
        std::fs::create_dir(&gone).expect("mkdir");
        assert!(w.watch_dir(watcher, &gone, &wake), "watched once it exists");
    }

    #[tokio::test]
    async fn a_change_in_the_watched_directory_wakes_the_follower() {
        let w = Watcher::new(false);
        if !w.is_active() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        let wake = Arc::new(Notify::new());
        assert!(w.watch(&path, &wake));
        std::fs::write(&path, b"x\n").expect("write");
        tokio::time::timeout(Duration::from_secs(10), wake.notified())
            .await
            .expect("woken by the event");
    }
}
