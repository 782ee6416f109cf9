//! The prefilter of a search: what every matching line contains, found in a whole block.

use memchr::memmem;

use crate::query::{self, Atom};

/// The prefilter: something every matching line contains.
#[derive(Debug)]
pub(super) enum Prefilter {
    All,
    Exact(Box<memmem::Finder<'static>>),
    Fold(aho_corasick::AhoCorasick),
    Regex(regex::bytes::Regex),
}

impl Prefilter {
    pub(super) fn of(q: &query::Query) -> Self {
        let positive = q.terms().iter().filter(|t| !t.negate);
        let mut regex = None;
        for term in positive {
            match &term.atom {
                Atom::Text(needle) => return Self::needle(needle.as_str()),
                Atom::Regex(re) if regex.is_none() => regex = Some(re.as_str().to_owned()),
                _ => {}
            }
        }
        regex
            .and_then(|pattern| {
                // `^`/`$` per line inside a block; the limits of the `q` grammar.
                regex::bytes::RegexBuilder::new(&pattern)
                    .multi_line(true)
                    .crlf(true)
                    .size_limit(query::SIZE_LIMIT)
                    .dfa_size_limit(query::DFA_SIZE_LIMIT)
                    .nest_limit(query::NEST_LIMIT)
                    .build()
                    .ok()
            })
            .map_or(Self::All, Self::Regex)
    }

    /// The needle's own rule: case-sensitive only when it has a capital.
    fn needle(text: &str) -> Self {
        if text.chars().any(char::is_uppercase) {
            return Self::Exact(Box::new(memmem::Finder::new(text.as_bytes()).into_owned()));
        }
        if text.is_ascii() {
            if let Ok(ac) = aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build([text])
            {
                return Self::Fold(ac);
            }
        }
        regex::bytes::Regex::new(&format!("(?i){}", regex::escape(text)))
            .map_or(Self::All, Self::Regex)
    }

    /// The first hit at or after `from`, as an offset into `hay`.
    pub(super) fn find(&self, hay: &[u8], from: usize) -> Option<usize> {
        let rest = hay.get(from..)?;
        match self {
            Self::All => (from < hay.len()).then_some(from),
            Self::Exact(f) => f.find(rest).map(|i| from + i),
            Self::Fold(ac) => ac.find(rest).map(|m| from + m.start()),
            Self::Regex(re) => re.find_at(hay, from).map(|m| m.start()),
        }
    }
}
