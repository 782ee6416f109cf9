//! Severity levels: the six names entries carry, the words that map to them, and the rule
//! that finds a level word near the start of a text line.
//!
//! The position rule is what keeps "a level word inside a message" from counting: only the
//! first [`TOKENS`] alphabetic tokens within [`WINDOW`] bytes after the timestamp (or the line
//! start) are looked at, and a token counts only when it is a whole run of letters.

use std::cmp::Ordering;
use std::fmt;

/// An entry's severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// A failure.
    Error,
    /// A failure that stops the program or needs attention now.
    Fatal,
}

/// The level vocabulary, written once: [`WORDS`] (which a prefilter searches for) and the
/// lookup [`Level::from_word`] does (a `match`, as fast as a hand-written one).
macro_rules! vocabulary {
    ($($level:ident: $($word:literal)|+;)+) => {
        /// Every word [`Level::from_word`] accepts (in lower case; any ASCII case is accepted)
        /// with the level it names.
        pub const WORDS: &[(&[u8], Level)] = &[$($(($word, Level::$level),)+)+];

        fn word_level(lower: &[u8]) -> Option<Level> {
            Some(match lower {
                $($($word)|+ => Level::$level,)+
                _ => return None,
            })
        }
    };
}

vocabulary! {
    Trace: b"trace" | b"verbose" | b"finest" | b"finer";
    Debug: b"debug" | b"dbg";
    Info: b"info" | b"inf" | b"information" | b"notice";
    Warn: b"warn" | b"warning" | b"wrn";
    Error: b"error" | b"err" | b"eror" | b"severe";
    Fatal: b"fatal" | b"critical" | b"crit" | b"panic" | b"emerg" | b"emergency" | b"alert";
}

/// The letters [`Level::from_letter`] accepts (upper case; either case is accepted).
pub const LETTERS: &[(u8, Level)] = &[
    (b'T', Level::Trace),
    (b'D', Level::Debug),
    (b'I', Level::Info),
    (b'W', Level::Warn),
    (b'E', Level::Error),
    (b'F', Level::Fatal),
    (b'C', Level::Fatal),
];

/// How many alphabetic tokens after the stamp the text rule looks at.
pub const TOKENS: usize = 4;
/// How many bytes after the stamp the text rule looks at.
pub const WINDOW: usize = 48;

impl Level {
    /// The name used on the wire and in queries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Fatal => "fatal",
        }
    }

    /// The level a word names (any ASCII case), from the vocabulary in the design study:
    /// lnav's, Dozzle's and Grafana's words, without those too common in prose (the study's
    /// `fine` and `note` are left out too: "all fine" would read as a debug line). The words
    /// are [`WORDS`].
    pub fn from_word(word: &[u8]) -> Option<Self> {
        if word.len() > 11 || word.len() < 3 {
            return None;
        }
        let mut buf = [0u8; 11];
        let lower = &mut buf[..word.len()];
        lower.copy_from_slice(word);
        lower.make_ascii_lowercase();
        word_level(lower)
    }

    /// The level of a one-letter code (klog's `I`, `[E]`).
    pub fn from_letter(letter: u8) -> Option<Self> {
        let upper = letter.to_ascii_uppercase();
        LETTERS
            .iter()
            .find(|(l, _)| *l == upper)
            .map(|&(_, level)| level)
    }

    /// The level of a syslog priority (`<PRI>`): its severity is `PRI mod 8`.
    pub fn from_syslog_pri(pri: u16) -> Option<Self> {
        if pri > 191 {
            return None;
        }
        Some(match pri % 8 {
            0..=2 => Self::Fatal,
            3 => Self::Error,
            4 => Self::Warn,
            5 | 6 => Self::Info,
            _ => Self::Debug,
        })
    }

    /// The level of a bunyan/pino numeric level (10 trace ... 60 fatal).
    pub fn from_number(n: f64) -> Option<Self> {
        // Exact decades only; anything else is not this convention.
        let levels = [
            (10.0, Self::Trace),
            (20.0, Self::Debug),
            (30.0, Self::Info),
            (40.0, Self::Warn),
            (50.0, Self::Error),
            (60.0, Self::Fatal),
        ];
        levels
            .iter()
            .find(|(v, _)| v.partial_cmp(&n) == Some(Ordering::Equal))
            .map(|&(_, l)| l)
    }

    /// The level named by a query or a structured value (a word of the vocabulary).
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_word(s.as_bytes())
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The level named by a word near the start of `text`: the first of its first [`TOKENS`]
/// alphabetic tokens within [`WINDOW`] bytes that is in the vocabulary. A single letter counts
/// only in brackets (`[E]`).
pub fn from_text(text: &[u8]) -> Option<Level> {
    let window = &text[..text.len().min(WINDOW)];
    let mut i = 0;
    let mut seen = 0;
    while i < window.len() && seen < TOKENS {
        if !window[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && text[i].is_ascii_alphabetic() {
            i += 1;
        }
        // A token glued to digits or underscores (`err2`, `ERROR_CODE`) is an identifier.
        let glued = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_digit() || *b == b'_');
        let token = &text[start..i];
        seen += 1;
        if glued(text.get(i)) || (start > 0 && glued(text.get(start - 1))) {
            continue;
        }
        if token.len() == 1 {
            if start > 0 && text[start - 1] == b'[' && text.get(i) == Some(&b']') {
                if let Some(l) = Level::from_letter(token[0]) {
                    return Some(l);
                }
            }
            continue;
        }
        if let Some(l) = Level::from_word(token) {
            return Some(l);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_layouts_give_their_level() {
        for (text, want) in [
            (" [main] INFO  c.x.Foo - started", Some(Level::Info)),
            (" - app - ERROR - boom", Some(Level::Error)),
            ("\tWARN\tzap message", Some(Level::Warn)),
            (" [error] 7#7: *1 open() failed", Some(Level::Error)),
            (" CRITICAL disk", Some(Level::Fatal)),
            (" [E] short", Some(Level::Error)),
            (" warning: deprecated", Some(Level::Warn)),
            (" E boom", None),
            (" ERROR_CODE=5 all fine", None),
            (
                " Fetching the list of users for the report about error codes",
                None,
            ),
            (" one two three four error", None),
            ("", None),
        ] {
            assert_eq!(from_text(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn levels_order_from_trace_to_fatal() {
        assert!(Level::Trace < Level::Debug && Level::Error < Level::Fatal);
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::from_syslog_pri(165), Some(Level::Info));
        assert_eq!(Level::from_syslog_pri(192), None);
        assert_eq!(Level::from_number(50.0), Some(Level::Error));
        assert_eq!(Level::from_number(55.0), None);
    }
}
