//! logfmt lines (`time=… level=warn msg="disk full" path=/var`): a small tokenizer and the
//! rule that decides a line is logfmt.
//!
//! A line is logfmt when it starts with an identifier and `=`, has at least two pairs, and has
//! a time key (`time`, `ts`, `t`) or a level key (`level`, `lvl`); prose with one `a=b` in it
//! is not.

use std::borrow::Cow;

use super::level::Level;

/// One `key=value` pair (a bare `key` has an empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The key, as written.
    pub key: &'a str,
    /// The value, unquoted (`\"` and `\\` unescaped).
    pub value: Cow<'a, str>,
}

/// Iterates over the pairs of a logfmt line; stops at an unterminated quote.
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    rest: &'a str,
}

/// The pairs of `line`.
pub fn pairs(line: &str) -> Pairs<'_> {
    Pairs { rest: line }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Pair<'a>;

    fn next(&mut self) -> Option<Pair<'a>> {
        let s = self.rest.trim_start_matches([' ', '\t']);
        if s.is_empty() {
            return None;
        }
        let key_end = s.find([' ', '\t', '=', '"']).unwrap_or(s.len());
        let key = &s[..key_end];
        let after = &s[key_end..];
        let Some(value_part) = after.strip_prefix('=') else {
            if key.is_empty() {
                // A stray quote: not logfmt from here on.
                self.rest = "";
                return None;
            }
            self.rest = after;
            return Some(Pair {
                key,
                value: Cow::Borrowed(""),
            });
        };
        if let Some(quoted) = value_part.strip_prefix('"') {
            // Find the closing quote; only a value with escapes is copied.
            let bytes = quoted.as_bytes();
            let mut i = 0;
            let mut escaped = false;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    escaped = true;
                    i += 1;
                }
                i += 1;
            }
            if i >= bytes.len() || key.is_empty() {
                self.rest = "";
                return None;
            }
            self.rest = &quoted[i + 1..];
            let raw = &quoted[..i];
            let value = if escaped {
                let mut out = String::with_capacity(raw.len());
                let mut chars = raw.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => out.extend(chars.next()),
                        c => out.push(c),
                    }
                }
                Cow::Owned(out)
            } else {
                Cow::Borrowed(raw)
            };
            return Some(Pair { key, value });
        }
        let value_end = value_part.find([' ', '\t']).unwrap_or(value_part.len());
        self.rest = &value_part[value_end..];
        if key.is_empty() {
            self.rest = "";
            return None;
        }
        Some(Pair {
            key,
            value: Cow::Borrowed(&value_part[..value_end]),
        })
    }
}

/// What a logfmt line says: its time text and level, if it is a logfmt line at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogfmtFacts<'a> {
    /// The value of the first time key.
    pub time: Option<Cow<'a, str>>,
    /// The level of the first usable level key.
    pub level: Option<Level>,
}

/// Whether `line` starts like logfmt: an identifier followed by `=`.
pub fn starts_like(line: &[u8]) -> bool {
    let Some(&first) = line.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return false;
    }
    let end = line
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@')))
        .unwrap_or(line.len());
    line.get(end) == Some(&b'=')
}

/// The facts of a logfmt line, or none when the line is not logfmt by the rule above.
pub fn facts(line: &str) -> Option<LogfmtFacts<'_>> {
    if !starts_like(line.as_bytes()) {
        return None;
    }
    let mut count = 0;
    let mut keyed = false;
    let mut facts = LogfmtFacts {
        time: None,
        level: None,
    };
    for pair in pairs(line).take(64) {
        count += 1;
        match pair.key {
            "time" | "ts" | "t" => {
                keyed = true;
                if facts.time.is_none() {
                    facts.time = Some(pair.value);
                }
            }
            "level" | "lvl" => {
                keyed = true;
                if facts.level.is_none() {
                    facts.level = Level::parse(&pair.value);
                }
            }
            _ => {}
        }
    }
    (count >= 2 && keyed).then_some(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_unquote_values_and_keep_bare_keys() {
        let got: Vec<_> = pairs(r#"a=1 msg="disk \"full\"" flag b= c=x=y"#)
            .map(|p| (p.key, p.value.into_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "1".to_owned()),
                ("msg", "disk \"full\"".to_owned()),
                ("flag", String::new()),
                ("b", String::new()),
                ("c", "x=y".to_owned()),
            ]
        );
        assert_eq!(pairs(r#"a="open"#).count(), 0);
    }

    #[test]
    fn logfmt_needs_two_pairs_and_a_time_or_level_key() {
        let f = facts("time=2026-12-01T21:14:39Z level=WARN msg=x").expect("logfmt");
        assert_eq!(f.level, Some(Level::Warn));
        assert_eq!(f.time.as_deref(), Some("2026-12-01T21:14:39Z"));
        assert!(facts("a=1 b=2").is_none());
        assert!(facts("level=warn").is_none());
        assert!(facts("note: level=warn b=1").is_none());
    }
}
