//! The `grep=PATTERN` filter of `/lines` and `/raw`: an untrusted regular expression,
//! compiled under limits and matched after a page is read.
//!
//! The `regex` crate matches in time linear in the text whatever the pattern (no
//! backtracking), so `(a+)+$` costs what `a+` costs. What a pattern can still blow up is the
//! compiled program (`a{1000}{1000}`, `\w{500}` over Unicode) and the parser's stack (deep
//! nesting): [`PATTERN_BYTES`], [`SIZE_LIMIT`], [`DFA_SIZE_LIMIT`] and [`NEST_LIMIT`] bound
//! them, and a pattern over any limit is a 400. Notices always pass the filter.

use std::collections::HashMap;

use regex::bytes::{Regex, RegexBuilder};

use super::error::ApiError;
use crate::stream::{Entry, Page};

/// Longest pattern accepted, in bytes.
pub(crate) const PATTERN_BYTES: usize = 1024;
/// Most memory the compiled pattern may take.
pub(crate) const SIZE_LIMIT: usize = 1 << 20;
/// Most memory the lazy DFA's cache may take while matching.
pub(crate) const DFA_SIZE_LIMIT: usize = 2 << 20;
/// Deepest nesting of groups and repetitions.
pub(crate) const NEST_LIMIT: u32 = 32;

/// A compiled filter.
#[derive(Debug, Clone)]
pub(crate) struct Grep(Regex);

impl Grep {
    /// The filter a request asks for with `grep`, if any.
    ///
    /// # Errors
    /// A pattern that is empty, too long, does not parse, or compiles over the limits.
    pub(crate) fn from_params(params: &HashMap<String, String>) -> Result<Option<Self>, ApiError> {
        params.get("grep").map(|p| Self::new(p)).transpose()
    }

    /// Compiles `pattern` under the limits.
    ///
    /// # Errors
    /// As [`Grep::from_params`].
    pub(crate) fn new(pattern: &str) -> Result<Self, ApiError> {
        if pattern.is_empty() {
            return Err(ApiError::BadRequest("`grep` is empty".into()));
        }
        if pattern.len() > PATTERN_BYTES {
            return Err(ApiError::BadRequest(format!(
                "`grep` is longer than {PATTERN_BYTES} bytes"
            )));
        }
        RegexBuilder::new(pattern)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .nest_limit(NEST_LIMIT)
            .build()
            .map(Self)
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => {
                    ApiError::BadRequest("`grep` compiles to a program over the size limit".into())
                }
                _ => ApiError::BadRequest(
                    "`grep` is not a valid pattern (or nests deeper than 32)".into(),
                ),
            })
    }

    /// Whether an entry passes: notices always do, lines when their text matches.
    pub(crate) fn keeps(&self, entry: &Entry) -> bool {
        match entry.text() {
            Some(text) => self.0.is_match(text),
            None => true,
        }
    }

    /// Drops the line entries that do not match; `next` and `prev` stay those of the page
    /// as read, so a client continues after everything scanned, not just what matched.
    pub(crate) fn apply(&self, page: &mut Page) {
        page.entries.retain(|e| self.keeps(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catastrophic_patterns_are_refused_or_harmless() {
        for refused in [
            "a{1000}{1000}",
            "(?:a{100}){100}{100}",
            "\\w{2000}",
            &"(".repeat(100),
            &format!("{}a{}", "(".repeat(40), ")".repeat(40)),
            &"a".repeat(PATTERN_BYTES + 1),
            "",
            "(",
        ] {
            assert!(
                matches!(Grep::new(refused), Err(ApiError::BadRequest(_))),
                "{refused:.40}"
            );
        }
        // Linear time: the classic backtracking bombs compile and match quickly.
        let text = format!("{}!", "a".repeat(100_000));
        for pattern in ["(a+)+$", "(a|a)*$", "(a*)*b", "(?i)(x+x+)+y"] {
            let g = Grep::new(pattern).expect(pattern);
            let start = std::time::Instant::now();
            let _ = g.0.is_match(text.as_bytes());
            assert!(
                start.elapsed() < std::time::Duration::from_secs(1),
                "{pattern}"
            );
        }
    }
}
