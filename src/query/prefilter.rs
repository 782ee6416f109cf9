//! A line prefilter for `q`: byte patterns such that every record the query matches has a
//! line holding one of them, so a reader can search whole blocks of a file for the patterns
//! and test (parse, group, evaluate) only the records around the hits.
//!
//! It is built from one positive term:
//! - a word or phrase (ASCII, no `\n`): the record's text contains it, so one of its lines
//!   does; with `"stream"` and `\u` beside it, because a Docker json-file line shows its
//!   `log` value unescaped (a Docker line has the `stream` key, written plainly or escaped);
//! - `level OP L`: the record's first line has a level in the set `OP L` selects, and a line's
//!   level comes only from: a vocabulary word ([`WORDS`], any ASCII case, also inside
//!   JSON and logfmt values), a bracketed letter (`[E]`), a klog letter and digit at the line
//!   start, a syslog `<PRI>` at the line start, a JSON number under a numeric level key
//!   (`"level":50`, *verified*: a hit only when the number names a wanted level), the `log`
//!   text of a Docker json-file line (every line with a `"stream"` key is a hit), or text
//!   behind an escape (`\` in JSON or logfmt) or a decoration (a BOM, ANSI colours) that the
//!   parser skips. Each has a pattern here, so no line with such a level is passed over. A
//!   JSON or logfmt line whose level is a string (`"level":"error"`, `lvl=ERR`) holds its
//!   word; so a JSON file at `level>=error` has hits only in its error lines, not in every
//!   line as when any line starting with `{` was one.
//!
//! Patterns are ASCII case-insensitive (a superset of what a case-sensitive word needs: more
//! hits to test, never fewer). Patterns marked *line-start* count only at the start of a line.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind, packed};
use memchr::{memchr, memmem};

use super::{Atom, Query};
use crate::parse::Level;
use crate::parse::level::{LETTERS, WORDS};

/// The patterns of a query's line prefilter; see the module documentation.
#[derive(Debug, Clone)]
pub struct LinePrefilter {
    finder: Finder,
    /// Per pattern: whether it is a line-start one (searched with a `\n` before it, so its
    /// hit is in the line after the `\n`).
    anchored: Vec<bool>,
    /// Whether the JSON keys ([`JSON_KEYS`]) are hits, each searched apart from the patterns
    /// with `memmem` (in Teddy's buckets beside the words, they doubled its false candidates
    /// on plain text; one `memchr` for their `"` stopped at every string of a JSON line).
    keys: bool,
    /// The levels a verified numeric level key must name (bunyan/pino numbers).
    numbers: Vec<Level>,
    /// The line-start patterns, to test at the start of the searched text.
    starts: Vec<Vec<u8>>,
    /// Whether a backslash anywhere is a hit (found apart, with `memchr`: a one-byte pattern
    /// would slow the packed search down to a byte at a time).
    backslash: bool,
}

/// The JSON keys a level prefilter searches for: Docker's `"stream"` (a hit: the level is
/// its `log` text's), then the keys whose number values the parser reads as levels
/// ([`crate::parse::json`]), each a hit only when `:` and a number naming a wanted level
/// follow (`"level": 50`).
const JSON_KEYS: [&[u8]; 4] = [b"\"stream\"", b"\"level\"", b"\"lvl\"", b"\"@l\""];

#[derive(Debug, Clone)]
enum Finder {
    /// SIMD (Teddy) over explicit case variants of short prefixes: fewer than
    /// [`PACKED_LIMIT`] patterns.
    Packed(packed::Searcher),
    /// An automaton, ASCII case-insensitive or not.
    Automaton(AhoCorasick),
}

/// Most patterns the packed searcher takes (its own limit is 128).
const PACKED_LIMIT: usize = 127;

/// Levels whose lines (klog letters) start with these letters: klog's own four, upper case.
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
            let finder = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(patterns)
                .ok()?;
            return Some(LinePrefilter {
                finder: Finder::Automaton(finder),
                anchored: vec![false; patterns.len()],
                keys: false,
                numbers: Vec::new(),
                starts: Vec::new(),
                backslash: false,
            });
        }
        let (op, level) = positive().find_map(|t| match t.atom {
            Atom::Level { op, level } => Some((op, level)),
            _ => None,
        })?;
        Some(LinePrefilter::levels(|l| op.holds(l.cmp(&level))))
    }
}

/// Every ASCII case variant of `bytes`.
fn case_variants(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for &b in bytes {
        let cases = [b.to_ascii_lowercase(), b.to_ascii_uppercase()];
        let cases = if cases[0] == cases[1] {
            &cases[..1]
        } else {
            &cases[..]
        };
        out = out
            .iter()
            .flat_map(|v| {
                cases.iter().map(move |&c| {
                    let mut w = v.clone();
                    w.push(c);
                    w
                })
            })
            .collect();
    }
    out
}

impl LinePrefilter {
    /// The prefilter of a level term whose levels are those `wanted` accepts.
    fn levels(wanted: impl Fn(Level) -> bool) -> Self {
        // Words and bracketed letters in any case: every case variant of their first three
        // bytes (a line holding the word holds one of them).
        let mut anywhere = std::collections::BTreeSet::new();
        for &(word, l) in WORDS {
            if wanted(l) {
                anywhere.extend(case_variants(&word[..word.len().min(3)]));
            }
        }
        for &(letter, l) in LETTERS {
            if wanted(l) {
                anywhere.extend(case_variants(&[b'[', letter, b']']));
            }
        }
        anywhere.insert(b"\x1b[".to_vec());
        anywhere.insert(b"\xef\xbb\xbf".to_vec());
        let numbers: Vec<Level> = [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
            Level::Fatal,
        ]
        .into_iter()
        .filter(|&l| wanted(l))
        .collect();
        let mut starts: Vec<Vec<u8>> = vec![b"<".to_vec()];
        for &(letter, l) in &KLOG_LETTERS {
            if wanted(l) {
                starts.push(vec![letter]);
            }
        }
        // Line-start patterns first: Teddy puts patterns into buckets by their ids, and in
        // this order its false candidates on plain text were fewest (256 MiB of the bench's
        // log, same process: 0.07 s, against 0.15-0.20 s with them last).
        let mut patterns: Vec<Vec<u8>> = starts
            .iter()
            .map(|start| [&b"\n"[..], start].concat())
            .collect();
        let mut anchored = vec![true; patterns.len()];
        patterns.extend(anywhere);
        anchored.resize(patterns.len(), false);
        let packed = (patterns.len() <= PACKED_LIMIT)
            .then(|| {
                // Past 64 patterns Teddy refuses by default (its heuristic); fat Teddy (AVX2,
                // 16 buckets) over these ~80 short patterns still searches at GB/s, far
                // faster than the automaton, so the limit is lifted (measured in PERFORMANCE.md).
                packed::Config::new()
                    .match_kind(packed::MatchKind::LeftmostFirst)
                    .heuristic_pattern_limits(false)
                    .builder()
                    .extend(&patterns)
                    .build()
            })
            .flatten();
        let finder = match packed {
            Some(searcher) => Finder::Packed(searcher),
            None => Finder::Automaton(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&patterns)
                    .expect("a few hundred short patterns always build"),
            ),
        };
        Self {
            finder,
            anchored,
            keys: true,
            numbers,
            starts,
            backslash: true,
        }
    }

    /// The hits in `hay`, whose first byte is a line start.
    pub fn hits<'a>(&'a self, hay: &'a [u8]) -> Hits<'a> {
        Hits {
            prefilter: self,
            hay,
            backslash: None,
            keys: [None; JSON_KEYS.len()],
        }
    }

    /// The first pattern hit at or after `from` in `rest` (`from` is where `rest` starts in
    /// the searched text), as a position in the line that holds it.
    fn pattern(&self, rest: &[u8], from: usize) -> Option<usize> {
        if self.starts.iter().any(|p| rest.starts_with(p)) {
            return Some(from);
        }
        let (start, pattern) = match &self.finder {
            Finder::Packed(s) => s.find(rest).map(|m| (m.start(), m.pattern()))?,
            Finder::Automaton(a) => a.find(rest).map(|m| (m.start(), m.pattern()))?,
        };
        Some(from + start + usize::from(self.anchored[pattern.as_usize()]))
    }

    /// The first hit of JSON key `k` ([`JSON_KEYS`]) in `rest`, as a position in it.
    fn key(&self, k: usize, rest: &[u8]) -> Option<usize> {
        let key = JSON_KEYS[k];
        let mut at = 0;
        loop {
            let start = at + memmem::find(&rest[at..], key)?;
            if k == 0 || self.numeric_level(&rest[start + key.len()..]) {
                return Some(start);
            }
            // `"level":"info"` and the like: the search goes on after the key.
            at = start + 1;
        }
    }

    /// Whether `after` a level key starts with `:` and a JSON number that names one of the
    /// wanted levels (JSON's spaces allowed around the `:`).
    fn numeric_level(&self, after: &[u8]) -> bool {
        let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
        let rest = &after[after.iter().take_while(|b| space(b)).count()..];
        let Some(rest) = rest.strip_prefix(b":") else {
            return false;
        };
        let rest = &rest[rest.iter().take_while(|b| space(b)).count()..];
        let len = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
            .count();
        std::str::from_utf8(&rest[..len])
            .ok()
            .and_then(|n| n.parse::<f64>().ok())
            .and_then(Level::from_number)
            .is_some_and(|l| self.numbers.contains(&l))
    }
}

/// The hits of a [`LinePrefilter`] in one text, found in order.
#[derive(Debug)]
pub struct Hits<'a> {
    prefilter: &'a LinePrefilter,
    hay: &'a [u8],
    /// The next backslash at or after the last search's start, once searched (`Some(None)`:
    /// there is none).
    backslash: Option<Option<usize>>,
    /// The same for each JSON key.
    keys: [Option<Option<usize>>; JSON_KEYS.len()],
}

impl Hits<'_> {
    /// A position at or after `from` (which must be a line start, and not before an
    /// earlier call's `from`) inside the first line from there that holds a pattern; `None`
    /// when no line does.
    pub fn find(&mut self, from: usize) -> Option<usize> {
        let rest = self.hay.get(from..).filter(|r| !r.is_empty())?;
        let prefilter = self.prefilter;
        let pattern = prefilter.pattern(rest, from);
        if !prefilter.backslash {
            return pattern;
        }
        let mut first = pattern;
        let mut take = |hit: Option<usize>| {
            first = match (first, hit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        };
        take(next_at(&mut self.backslash, from, || memchr(b'\\', rest)));
        if prefilter.keys {
            for (k, slot) in self.keys.iter_mut().enumerate() {
                take(next_at(slot, from, || prefilter.key(k, rest)));
            }
        }
        first
    }
}

/// The first hit at or after `from` of a search run apart, cached in `slot`: searched again
/// (`search`, over the text from `from`) only when the cached hit lies before `from`. A hit
/// at or after `from` found from an earlier start is still the first one from `from`.
fn next_at(
    slot: &mut Option<Option<usize>>,
    from: usize,
    search: impl FnOnce() -> Option<usize>,
) -> Option<usize> {
    let stale = match *slot {
        None => true,
        Some(Some(at)) => at < from,
        Some(None) => false,
    };
    if stale {
        *slot = Some(search().map(|i| from + i));
    }
    slot.flatten()
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
        p.hits(line.as_bytes()).find(0).is_some()
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
            "{\"lvl\" : 6e1,\"msg\":\"x\"}",
            "{\"@l\":\t50.0}",
            "{\"ts\":1,\"level\":\"ERROR\",\"msg\":\"x\"}",
            "ts=1 lvl=err msg=x",
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
            "{\"ts\":1,\"level\":\"info\",\"msg\":\"all fine\"}",
            "{\"ts\":1,\"lvl\":30,\"msg\":\"all fine\"}",
            "{\"level\" : 40.0,\"@l\":\"x\"}",
            "ts=1 level=info msg=\"all fine\"",
            "ts=1 lvl=WARN msg=x",
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
        let hay = b"a INFO\nb INFO\nE1201 21:14:39.1 x\nc\\d\ne\n";
        let mut hits = p.hits(hay);
        assert_eq!(hits.find(0), Some(14));
        assert_eq!(hits.find(14), Some(14));
        assert_eq!(hits.find(33), Some(34));
        assert_eq!(hits.find(37), None);
        let q = parse("Timeout level>=warn").expect("q");
        let words = q.line_prefilter().expect("pf");
        assert_eq!(words.hits(b"x\ny Timeout\n").find(0), Some(4));
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
