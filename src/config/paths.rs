//! What to follow, as the configuration names it: a path classified as a file, a glob or
//! `-`, and where a file's history continues (rotated siblings, `--rotated` globs).
//!
//! Only the text is checked here (glob syntax, and whether a globby path exists as named);
//! nothing is opened. Following is `sources`'.

use std::path::PathBuf;

use super::{ConfigError, Source, invalid};
use crate::cli::Cli;

/// A path is a glob when it has glob characters and does not exist as named (a file really
/// called `app[1].log` is followed as a file).
pub(super) fn classify(path: &str) -> Result<Source, ConfigError> {
    if path == "-" {
        return Ok(Source::Stdin);
    }
    if path.is_empty() {
        return Err(invalid("PATH", "empty path"));
    }
    let globby = path.contains(['*', '?', '[']);
    if globby && !std::path::Path::new(path).exists() {
        glob::Pattern::new(path).map_err(|e| ConfigError::Glob {
            pattern: path.to_owned(),
            reason: e.msg.to_owned(),
        })?;
        return Ok(Source::Glob(path.to_owned()));
    }
    Ok(Source::File(PathBuf::from(path)))
}

/// Rotated siblings and `--rotated` globs, with `--rotated-history` or a `--rotated` glob.
pub(super) fn rotated(cli: &Cli) -> Result<Option<crate::stream::Rotated>, ConfigError> {
    if !cli.rotated_history && cli.rotated.is_empty() {
        return Ok(None);
    }
    let patterns = cli
        .rotated
        .iter()
        .map(|p| {
            glob::Pattern::new(p).map_err(|e| ConfigError::Glob {
                pattern: p.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(crate::stream::Rotated { patterns }))
}
