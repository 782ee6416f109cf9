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
            let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
            let wakers = targets.entry(dir.clone()).or_default();
            if wakers.iter().any(|w| Arc::ptr_eq(w, wake)) {
                continue;
            }
            let fresh = wakers.is_empty();
            wakers.push(wake.clone());
            drop(targets);
            if fresh {
                let added = watcher
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .watch(&dir, RecursiveMode::NonRecursive);
                if let Err(e) = added {
                    tracing::warn!("cannot watch {} ({e}); polling it", dir.display());
                    self.targets
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&dir);
                    covered = false;
                }
            }
        }
        covered
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
