//! Whether one record matches a [`Query`].
//!
//! Terms run in the order the parser chose (level, literals, regexes, fields) and stop at the
//! first that fails. Literals use `memchr::memmem` when case matters and an ASCII
//! case-insensitive `aho-corasick` automaton when it does not; a folded word with non-ASCII
//! letters goes through a `(?i)` regex so its Unicode case folds too. Field terms parse the
//! record's first line once, lazily, shared by all of them.

use std::cmp::Ordering;
use std::fmt;

use aho_corasick::AhoCorasick;
use memchr::memmem;

use super::{Atom, Op, Query};
use crate::parse::Level;
use crate::parse::fields::{Fields, Value};

/// A record as the evaluator sees it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record's text: its lines joined with `\n` (Docker's already unwrapped).
    pub text: &'a [u8],
    /// Its derived level.
    pub level: Option<Level>,
}

/// A word or phrase to look for, with smart case decided.
#[derive(Clone)]
pub struct Needle {
    text: String,
    matcher: Matcher,
}

#[derive(Clone)]
enum Matcher {
    /// Boxed: a finder is large next to the other variants.
    Exact(Box<memmem::Finder<'static>>),
    AsciiFold(AhoCorasick),
    UnicodeFold(regex::bytes::Regex),
}

impl fmt::Debug for Needle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Needle")
            .field("text", &self.text)
            .field("folds", &!matches!(self.matcher, Matcher::Exact(_)))
            .finish()
    }
}

impl Needle {
    /// A needle for `text`: case-insensitive unless `text` has an upper-case letter.
    pub fn new(text: &str) -> Self {
        let fold = !text.chars().any(char::is_uppercase);
        let matcher = if !fold {
            Matcher::Exact(Box::new(memmem::Finder::new(text.as_bytes()).into_owned()))
        } else if text.is_ascii() {
            match AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build([text])
            {
                Ok(ac) => Matcher::AsciiFold(ac),
                // Building one short pattern cannot fail; fall back to exact matching.
                Err(_) => {
                    Matcher::Exact(Box::new(memmem::Finder::new(text.as_bytes()).into_owned()))
                }
            }
        } else {
            match regex::bytes::Regex::new(&format!("(?i){}", regex::escape(text))) {
                Ok(re) => Matcher::UnicodeFold(re),
                Err(_) => {
                    Matcher::Exact(Box::new(memmem::Finder::new(text.as_bytes()).into_owned()))
                }
            }
        };
        Self {
            text: text.to_owned(),
            matcher,
        }
    }

    /// The text looked for.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether it is empty (the parser never makes one).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether `hay` contains it.
    pub fn is_in(&self, hay: &[u8]) -> bool {
        match &self.matcher {
            Matcher::Exact(f) => f.find(hay).is_some(),
            Matcher::AsciiFold(ac) => ac.is_match(hay),
            Matcher::UnicodeFold(re) => re.is_match(hay),
        }
    }
}

impl Query {
    /// Whether `record` matches every term.
    pub fn matches(&self, record: &Record<'_>) -> bool {
        let first_line = match memchr::memchr(b'\n', record.text) {
            Some(i) => &record.text[..i],
            None => record.text,
        };
        let mut fields: Option<Fields<'_>> = None;
        self.terms.iter().all(|term| {
            let hit = match &term.atom {
                Atom::Level { op, level } => record.level.is_some_and(|l| op.holds(l.cmp(level))),
                Atom::Text(needle) => needle.is_in(record.text),
                Atom::Regex(re) => re.is_match(record.text),
                Atom::Field { path, op, value } => {
                    let fields = fields.get_or_insert_with(|| Fields::of(first_line));
                    compare(fields.get(path).as_ref(), *op, value)
                }
            };
            hit != term.negate
        })
    }
}

/// Whether a field's value (or its absence) satisfies `op value`.
///
/// `=` on a string is exact equality, or numeric equality when both sides are numbers
/// (`status=500` matches `500` and `"500"`); `true`/`false`/`null` match by type. `!=` is the
/// negation of `=`, so it holds when the field is missing. The order comparisons need a
/// number on both sides.
pub fn compare(field: Option<&Value<'_>>, op: Op, value: &str) -> bool {
    let equal = |field: &Value<'_>| match field {
        Value::Str(s) => s == value || numbers_equal(s.trim().parse().ok(), value),
        Value::Num(n) => numbers_equal(Some(*n), value),
        Value::Bool(b) => value == if *b { "true" } else { "false" },
        Value::Null => value == "null",
        Value::Composite => false,
    };
    match op {
        Op::Eq => field.is_some_and(equal),
        Op::Ne => !field.is_some_and(equal),
        _ => {
            let left = match field {
                Some(Value::Num(n)) => Some(*n),
                Some(Value::Str(s)) => s.trim().parse().ok(),
                _ => None,
            };
            let right: Option<f64> = value.trim().parse().ok();
            match (left, right) {
                (Some(l), Some(r)) => l.partial_cmp(&r).is_some_and(|o| op.holds(o)),
                _ => false,
            }
        }
    }
}

fn numbers_equal(left: Option<f64>, value: &str) -> bool {
    match (left, value.trim().parse::<f64>()) {
        (Some(l), Ok(r)) => l.partial_cmp(&r) == Some(Ordering::Equal),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
