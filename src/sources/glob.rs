//! Glob patterns: their matches now, and new matches while running.
//!
//! A pattern is evaluated at start and again every [`GLOB_TICK`]; each file it matches for
//! the first time becomes a stream. A stream's id is the part of the path the pattern matched,
//! so matches in different directories stay apart.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Kind, Sources};

/// How often glob patterns are evaluated again.
const GLOB_TICK: Duration = Duration::from_secs(1);

impl Sources {
    /// Evaluates the glob patterns again every tick; new matches become streams whose file is
    /// read from its first byte (it is new).
    pub(super) async fn rescan_globs(self: Arc<Self>, patterns: Vec<String>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(GLOB_TICK) => {}
                () = self.cancel.cancelled() => return,
            }
            let mut known: HashSet<String> =
                self.list().iter().map(|s| s.name().to_owned()).collect();
            let scan = patterns.clone();
            let found = tokio::task::spawn_blocking(move || {
                scan.iter()
                    .flat_map(|p| matches(p).into_iter().map(move |m| (p.clone(), m)))
                    .collect::<Vec<_>>()
            })
            .await;
            let Ok(found) = found else { continue };
            for (pattern, (path, label)) in found {
                let name = path.display().to_string();
                // `insert`, not `contains`: two patterns may match the same new file.
                if known.insert(name.clone()) {
                    tracing::info!(
                        "new file matches: {}",
                        crate::logging::escape_for_log(&name)
                    );
                    let kind = Kind::GlobMatch {
                        label,
                        appeared: true,
                    };
                    let options = self.config.options(&super::Source::Glob(pattern));
                    self.add(path, name, kind, &options).await;
                }
            }
        }
    }
}

/// Regular files matching `pattern`, sorted (so ids are stable for a given command line), each
/// with its label: the part of the path the pattern matched.
pub(super) fn matches(pattern: &str) -> Vec<(PathBuf, String)> {
    let Ok(paths) = glob::glob(pattern) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    // Labels keep what tells matches apart: the part of the path the pattern matched, so
    // `/var/log/*/access.log` gives `nginx_access.log` and `apache_access.log`.
    let fixed: PathBuf = Path::new(pattern)
        .components()
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .collect();
    found
        .into_iter()
        .map(|path| {
            let label = path
                .strip_prefix(&fixed)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            (path, label)
        })
        .collect()
}
