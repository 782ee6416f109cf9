//! The `q=` query language: a parser with positioned errors and an evaluator.
//!
//! A query is an AND of terms: words (smart case: case-insensitive unless the word has a
//! capital), `"phrases"`, `/regex/`, `-term` to exclude, `key=value` / `key!=value` /
//! `key>N` / `key<N` / `key>=N` / `key<=N` on JSON and logfmt fields (dotted paths into nested
//! JSON), and `level>=warn` on the entry's derived level. [`grammar`] turns the text into a
//! [`Query`] whose terms are ordered by cost; [`eval`] decides whether one record matches.
//! The grammar and its semantics are in docs/API.md; the design study's section 6 is the
//! source.

pub mod eval;
pub mod grammar;
pub mod prefilter;

use std::fmt;

use crate::parse::Level;

pub use eval::Record;
pub use grammar::parse;
pub use prefilter::LinePrefilter;

/// Longest query accepted, in bytes.
pub const QUERY_BYTES: usize = 2048;
/// Most terms in a query.
pub const MAX_TERMS: usize = 32;
/// Most regex terms in a query.
pub const MAX_REGEXES: usize = 4;
/// Longest regex pattern, in bytes (as `grep=`).
pub const PATTERN_BYTES: usize = 1024;
/// Most memory a compiled regex may take (as `grep=`).
pub const SIZE_LIMIT: usize = 1 << 20;
/// Most memory a regex's lazy DFA cache may take while matching (as `grep=`).
pub const DFA_SIZE_LIMIT: usize = 2 << 20;
/// Deepest nesting in a regex (as `grep=`).
pub const NEST_LIMIT: u32 = 32;

/// A parsed query: terms ANDed, in evaluation order (cheapest first).
#[derive(Debug, Clone)]
pub struct Query {
    terms: Vec<Term>,
    /// The line prefilter, built on first use (an automaton: worth building once per query,
    /// not once per read).
    prefilter: std::sync::OnceLock<Option<LinePrefilter>>,
}

/// One term, possibly negated.
#[derive(Debug, Clone)]
pub struct Term {
    /// Whether the term excludes (`-term`).
    pub negate: bool,
    /// What the term tests.
    pub atom: Atom,
}

/// What a term tests.
#[derive(Debug, Clone)]
pub enum Atom {
    /// The text contains a word or phrase.
    Text(eval::Needle),
    /// A regex matches the text.
    Regex(regex::bytes::Regex),
    /// A field compares with a value.
    Field {
        /// The dotted path.
        path: String,
        /// The comparison.
        op: Op,
        /// The value as written (unquoted).
        value: String,
    },
    /// The entry's derived level compares with a level.
    Level {
        /// The comparison.
        op: Op,
        /// The level compared with.
        level: Level,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl Op {
    /// Whether `ordering` (of the left side against the right) satisfies the operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Self::Eq => ordering == Equal,
            Self::Ne => ordering != Equal,
            Self::Gt => ordering == Greater,
            Self::Ge => ordering != Less,
            Self::Lt => ordering == Less,
            Self::Le => ordering != Greater,
        }
    }
}

/// A query that does not parse, with where: `at` and `len` are byte offsets into the query
/// text, so a page can underline the spot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {at})")]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Byte offset of the offending part.
    pub at: usize,
    /// Its length in bytes.
    pub len: usize,
}

impl Query {
    /// The terms, in evaluation order.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Whether the query has no terms (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
        })
    }
}
