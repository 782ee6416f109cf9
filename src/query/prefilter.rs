//! A line prefilter for `q`: byte patterns such that every record the query matches has a
//! line holding one of them, so a reader can search whole blocks of a file for the patterns
//! and test (parse, group, evaluate) only the records around the hits.
//!
//! It is built from one positive term:
//! - a word or phrase (ASCII, no `\n`): the record's text contains it, so one of its lines
//!   does; with `"stream"` and `\u` beside it, because a Docker json-file line shows its
//!   `log` value unescaped (a Docker line has the `stream` key, written plainly or escaped);
//! - `level OP L`: the record's first line has a level in the set `OP L` selects, and a line's
//!   level comes only from: a vocabulary word ([`level::WORDS`], any ASCII case, also inside
//!   JSON and logfmt values), a bracketed letter (`[E]`), a klog letter and digit at the line
//!   start, a syslog `<PRI>` at the line start, a JSON line (numbers and nested keys), or text
//!   behind an escape (`\` in JSON or logfmt) or a decoration (a BOM, ANSI colours) that the
//!   parser skips. Each has a pattern here, so no line with such a level is passed over.
//!
//! Patterns are ASCII case-insensitive (a superset of what a case-sensitive word needs: more
//! hits to test, never fewer). Patterns marked *line-start* count only at the start of a line.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::{Atom, Query};
use crate::parse::Level;
use crate::parse::level::{LETTERS, WORDS};

/// The patterns of a query's line prefilter; see the module documentation.
#[derive(Debug, Clone)]
pub struct LinePrefilter {
    /// Every pattern; a line-start one is searched with a `\n` before it.
    finder: AhoCorasick,
    /// Per pattern: whether it is a line-start one (its hit is in the line after the `\n`).
    anchored: Vec<bool>,
    /// The line-start patterns, to test at the start of the searched text.
    starts: Vec<Vec<u8>>,
}

/// Levels whose lines (klog letters) start with these letters: klog's own four.
const KLOG_LETTERS: [(u8, Level); 4] = [
    (b'I', Level::Info),
    (b'W', Level::Warn),
    (b'E', Level::Error),
    (b'F', Level::Fatal),
];

impl Query {
    /// The line prefilter of this query, if one of its terms gives one (a positive ASCII word
    /// or phrase, preferred the longest, else a positive level term). Built once.
    pub fn line_prefilter(&self) -> Option<&LinePrefilter> {
        self.prefilter
            .get_or_init(|| self.build_prefilter())
            .as_ref()
    }

    fn build_prefilter(&self) -> Option<LinePrefilter> {
        let positive = || self.terms.iter().filter(|t| !t.negate);
        let word = positive()
            .filter_map(|t| match &t.atom {
                Atom::Text(n) if n.as_str().is_ascii() && !n.as_str().contains('\n') => {
                    Some(n.as_str())
                }
                _ => None,
            })
            .max_by_key(|w| w.len());
        if let Some(word) = word {
            let patterns = [word.as_bytes(), b"\"stream\"", b"\\u"];
            return LinePrefilter::new(patterns.iter().map(|p| (p.to_vec(), false)).collect());
        }
        let (op, level) = positive().find_map(|t| match t.atom {
            Atom::Level { op, level } => Some((op, level)),
            _ => None,
        })?;
        let wanted = |l: Level| op.holds(l.cmp(&level));
        let mut patterns: Vec<(Vec<u8>, bool)> = Vec::new();
        for &(word, l) in WORDS {
            if wanted(l) {
                patterns.push((word.to_vec(), false));
            }
        }
        for &(letter, l) in LETTERS {
            if wanted(l) {
                patterns.push((vec![b'[', letter, b']'], false));
            }
        }
        for &(letter, l) in &KLOG_LETTERS {
            if wanted(l) {
                for digit in b'0'..=b'9' {
                    patterns.push((vec![letter, digit], true));
                }
            }
        }
        for any in [&b"\\"[..], b"\x1b[", b"\xef\xbb\xbf"] {
            patterns.push((any.to_vec(), false));
        }
        for start in [b"{", b"<"] {
            patterns.push((start.to_vec(), true));
        }
        LinePrefilter::new(patterns)
    }
}

impl LinePrefilter {
    fn new(patterns: Vec<(Vec<u8>, bool)>) -> Option<Self> {
        let searched = patterns.iter().map(|(p, anchored)| {
            if *anchored {
                let mut with = vec![b'\n'];
                with.extend_from_slice(p);
                with
            } else {
                p.clone()
            }
        });
        let finder = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(searched)
            .ok()?;
        let anchored = patterns.iter().map(|(_, a)| *a).collect();
        let starts = patterns
            .into_iter()
            .filter(|(_, a)| *a)
            .map(|(p, _)| p)
            .collect();
        Some(Self {
            finder,
            anchored,
            starts,
        })
    }

    /// A position at or after `from` (which must be a line start in `hay`) inside the first
    /// line from there that holds a pattern; `None` when no line does.
    pub fn find(&self, hay: &[u8], from: usize) -> Option<usize> {
        let rest = hay.get(from..)?;
        if self
            .starts
            .iter()
            .any(|p| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p))
        {
            return Some(from);
        }
        let m = self.finder.find(rest)?;
        let at = from + m.start();
        Some(if self.anchored[m.pattern().as_usize()] {
            at + 1
        } else {
            at
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Parser, Zone};
    use crate::query::parse;

    /// Whether the prefilter of `q` finds a hit in `line` (searched alone, as a block).
    fn hits(q: &str, line: &str) -> bool {
        let q = parse(q).expect("query");
        let p = q.line_prefilter().expect("a prefilter");
        p.find(line.as_bytes(), 0).is_some()
    }

    #[test]
    fn every_spelling_of_a_level_is_a_hit() {
        let parser = Parser::new(Zone::utc());
        let lines = [
            "2026-12-01T21:14:39Z ERROR x",
            "2026-12-01T21:14:39Z eRrOr x",
            "2026-12-01T21:14:39Z [main] Severe x",
            "2026-12-01T21:14:39Z [e] x",
            "2026-12-01T21:14:39Z [C] x",
            "E1201 21:14:39.123456 1 a.go:1] x",
            "F1201 21:14:39.123456 1 a.go:1] x",
            "<11>1 2026-12-01T21:14:39Z h a 1 - - x",
            "<3>Dec  1 21:14:39 h a: x",
            "{\"level\":50}",
            "{\"level\":\"\\u0065rror\"}",
            "{\"log\":{\"level\":\"crit\"}}",
            "{\"log\":\"E1201 21:14:39.123456 1 a.go:1] x\",\"stream\":\"s\",\"time\":\"t\"}",
            "ts=1 level=\"e\\rror\" msg=x",
            "\u{feff}E1201 21:14:39.123456 1 a.go:1] x",
            "\x1b[31mE1201 21:14:39.123456 1 a.go:1] x",
            "an untimed PANIC line",
        ];
        for line in lines {
            let level = parser.facts(line.as_bytes(), 0).level;
            assert!(level >= Some(Level::Error), "{line:?} reads as {level:?}");
            assert!(hits("level>=error", line), "{line:?}");
        }
        for line in [
            "2026-12-01T21:14:39Z INFO all fine",
            "I1201 21:14:39.1 1 a.go:1] x",
        ] {
            assert!(!hits("level>=error", line), "{line:?}");
        }
        assert!(hits("level<=info", "2026-12-01T21:14:39Z Notice x"));
        assert!(!hits("level<=info", "2026-12-01T21:14:39Z WARN x"));
    }

    #[test]
    fn hits_are_in_the_line_that_holds_the_pattern() {
        let q = parse("level>=error").expect("q");
        let p = q.line_prefilter().expect("pf");
        let hay = b"a INFO\nb INFO\nE1201 21:14:39.1 x\nc\n";
        assert_eq!(p.find(hay, 0), Some(14));
        assert_eq!(p.find(hay, 14), Some(14));
        assert_eq!(p.find(hay, 33), None);
        let q = parse("Timeout level>=warn").expect("q");
        let words = q.line_prefilter().expect("pf");
        assert_eq!(words.find(b"x\ny Timeout\n", 0), Some(4));
        assert!(
            parse("-level>=error")
                .expect("q")
                .line_prefilter()
                .is_none()
        );
    }

    #[test]
    fn every_vocabulary_word_and_letter_names_its_level() {
        for &(word, level) in WORDS {
            assert_eq!(Level::from_word(word), Some(level));
            assert_eq!(Level::from_word(&word.to_ascii_uppercase()), Some(level));
        }
        for &(letter, level) in LETTERS {
            assert_eq!(Level::from_letter(letter.to_ascii_lowercase()), Some(level));
        }
    }
}
