//! What the configuration file's `[[source]]` tables say of a source besides what to follow
//! (`config/sources.rs` reads them): its stream's name, its lines' format, its own rotated
//! globs and a command's environment; and which source a table's options are for.

use super::Source;

/// What a `[[source]]` table of the configuration file says of its source besides what to
/// follow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceOptions {
    /// The stream's id instead of its file's name (a file or `-`); unique among the names
    /// given (`config` checks).
    pub name: Option<String>,
    /// How its lines are read, when the operator says (`None`: detected).
    pub format: Option<crate::parse::pinned::Pinned>,
    /// Globs of this file's own older history, besides `--rotated`'s (which every file
    /// shares); turns its rotated history on.
    pub rotated: Vec<::glob::Pattern>,
    /// Variables a command gets besides `PATH` (`config` sets them on its [`CommandSpec`](super::CommandSpec)).
    pub env: Vec<(String, String)>,
}

/// The source a [`SourceOptions`] is for: a path as named, or a command by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Of {
    /// A path (`path` in its table).
    Path(String),
    /// A command (`name` and `cmd` in its table).
    Command(String),
}

impl Of {
    /// Whether this names `source`.
    pub fn names(&self, source: &Source) -> bool {
        match (self, source) {
            (Self::Path(p), Source::File(f)) => f.as_os_str() == p.as_str(),
            (Self::Path(p), Source::Glob(g)) => g == p,
            (Self::Path(p), Source::Stdin) => p == "-",
            (Self::Command(n), Source::Command(spec)) => *n == spec.name,
            _ => false,
        }
    }
}

/// Whether `name` may be a stream's name (a command's, or a file's from its table): letters,
/// digits, `-`, `_` and `.`, not dots alone.
///
/// # Errors
/// What is wrong, for the flag or key that gave it.
pub fn check_name(name: &str) -> Result<(), String> {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if name.is_empty() || !plain || name.bytes().all(|b| b == b'.') {
        return Err(format!(
            "`{name}`: a stream's name is letters, digits, `-`, `_` and `.`"
        ));
    }
    Ok(())
}
