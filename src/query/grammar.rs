//! Parsing query text into a [`Query`].
//!
//! ```text
//! query  = ws [ term { ws1 term } ] ws          terms are ANDed
//! term   = [ "-" ] ( field | regex | phrase | word )
//! field  = path op value                        the longest path before an operator
//! path   = key { "." ( key | digits ) }      digits index an array
//! key    = ( letter | "_" | "@" ) { letter | digit | "_" | "@" | "-" }
//! op     = "!=" | ">=" | "<=" | "=" | ">" | "<"
//! value  = phrase | bare
//! regex  = "/" … "/"      only when the closing "/" is followed by whitespace or the end
//! phrase = '"' { any but '"' or "\" | "\" ( '"' | "\" ) } '"'
//! word   = bare            not starting with "-" or '"'
//! bare   = one or more characters other than whitespace and '"'
//! ```
//!
//! So `http://x` is a word, `a==b` is the field `a` with the value `=b`, `/var/log/x` is a
//! word and `/a b/` a regex. Every error names the byte range it is about.

use regex::bytes::RegexBuilder;

use super::eval::Needle;
use super::{
    Atom, DFA_SIZE_LIMIT, MAX_REGEXES, MAX_TERMS, NEST_LIMIT, Op, PATTERN_BYTES, QUERY_BYTES,
    Query, SIZE_LIMIT, SyntaxError, Term,
};
use crate::parse::Level;

fn error(message: impl Into<String>, at: usize, len: usize) -> SyntaxError {
    SyntaxError {
        message: message.into(),
        at,
        len,
    }
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses `text` into a query with its terms in evaluation order.
///
/// # Errors
/// A query over the limits, or one that does not follow the grammar; the error says where.
pub fn parse(text: &str) -> Result<Query, SyntaxError> {
    if text.len() > QUERY_BYTES {
        return Err(error(
            format!("the query is longer than {QUERY_BYTES} bytes"),
            QUERY_BYTES,
            text.len() - QUERY_BYTES,
        ));
    }
    let b = text.as_bytes();
    let mut terms = Vec::new();
    let mut regexes = 0;
    let mut i = 0;
    loop {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let (term, end) = term(text, i)?;
        if end < b.len() && !is_ws(b[end]) {
            return Err(error(
                "terms must be separated by spaces",
                end,
                char_len(text, end),
            ));
        }
        if matches!(term.atom, Atom::Regex(_)) {
            regexes += 1;
            if regexes > MAX_REGEXES {
                return Err(error(
                    format!("at most {MAX_REGEXES} regex terms"),
                    start,
                    end - start,
                ));
            }
        }
        terms.push(term);
        if terms.len() > MAX_TERMS {
            return Err(error(
                format!("at most {MAX_TERMS} terms"),
                start,
                end - start,
            ));
        }
        i = end;
    }
    terms.sort_by_key(cost);
    Ok(Query {
        terms,
        prefilter: std::sync::OnceLock::new(),
    })
}

/// Evaluation order: O(1) level facts, then literals (longest first, as they fail more
/// often), then regexes, then field terms (which parse the line).
fn cost(term: &Term) -> (u8, usize) {
    match &term.atom {
        Atom::Level { .. } => (0, 0),
        Atom::Text(n) => (1, usize::MAX - n.len()),
        Atom::Regex(_) => (2, 0),
        Atom::Field { .. } => (3, 0),
    }
}

fn char_len(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(0, char::len_utf8)
}

/// One term at `i`: the term and the byte just past it.
fn term(text: &str, mut i: usize) -> Result<(Term, usize), SyntaxError> {
    let b = text.as_bytes();
    let start = i;
    let negate = b[i] == b'-';
    if negate {
        i += 1;
        if i >= b.len() || is_ws(b[i]) {
            return Err(error("`-` must be followed by a term", start, 1));
        }
    }
    let (atom, end) = match b[i] {
        b'"' => {
            let (s, end) = phrase(text, i)?;
            (text_atom(&s, i, end)?, end)
        }
        b'/' => match regex_end(b, i) {
            Some(close) => (regex(text, i, close)?, close + 1),
            None => word(text, i)?,
        },
        _ => match field(text, i)? {
            Some(found) => found,
            None => word(text, i)?,
        },
    };
    Ok((Term { negate, atom }, end))
}

fn text_atom(s: &str, at: usize, end: usize) -> Result<Atom, SyntaxError> {
    if s.is_empty() {
        return Err(error("an empty phrase matches everything", at, end - at));
    }
    Ok(Atom::Text(Needle::new(s)))
}

/// A phrase at `i` (which holds `"`): its unescaped text and the byte past its closing quote.
fn phrase(text: &str, i: usize) -> Result<(String, usize), SyntaxError> {
    let mut out = String::new();
    let mut chars = text[i + 1..].char_indices();
    while let Some((j, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1 + j + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                Some((k, _)) => {
                    return Err(error(
                        "only \\\" and \\\\ are escapes in a phrase",
                        i + 1 + j,
                        k - j + 1,
                    ));
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(error("unterminated phrase", i, text.len() - i))
}

/// The index of the `/` closing a regex that opens at `i`: the first unescaped `/` after it
/// that is followed by whitespace or the end.
fn regex_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'/' if j + 1 == b.len() || is_ws(b[j + 1]) => return Some(j),
            _ => j += 1,
        }
    }
    None
}

fn regex(text: &str, open: usize, close: usize) -> Result<Atom, SyntaxError> {
    let pattern = &text[open + 1..close];
    let len = close + 1 - open;
    if pattern.is_empty() {
        return Err(error("an empty regex matches everything", open, len));
    }
    if pattern.len() > PATTERN_BYTES {
        return Err(error(
            format!("a regex is longer than {PATTERN_BYTES} bytes"),
            open,
            len,
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .nest_limit(NEST_LIMIT)
        .build()
        .map(Atom::Regex)
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => error(
                "the regex compiles to a program over the size limit",
                open,
                len,
            ),
            _ => error("not a valid regex (or nested deeper than 32)", open, len),
        })
}

/// A bare word at `i`.
fn word(text: &str, i: usize) -> Result<(Atom, usize), SyntaxError> {
    let (s, end) = bare(text, i)?;
    Ok((text_atom(s, i, end)?, end))
}

/// Bare text at `i`: up to whitespace; a `"` inside is an error.
fn bare(text: &str, i: usize) -> Result<(&str, usize), SyntaxError> {
    let b = text.as_bytes();
    let mut end = i;
    while end < b.len() && !is_ws(b[end]) {
        if b[end] == b'"' {
            return Err(error("a quote inside a word: quote the whole term", end, 1));
        }
        end += 1;
    }
    if end == i {
        return Err(error("a value is missing", i, 0));
    }
    Ok((&text[i..end], end))
}

/// A field term at `i`, if a path followed by an operator is there.
fn field(text: &str, i: usize) -> Result<Option<(Atom, usize)>, SyntaxError> {
    let b = text.as_bytes();
    let mut j = i;
    loop {
        // One key; after a dot, digits alone index an array.
        let first_ok = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b'@';
        if !b
            .get(j)
            .is_some_and(|&c| first_ok(c) || (j > i && c.is_ascii_digit()))
        {
            return Ok(None);
        }
        j += 1;
        while b
            .get(j)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'@' | b'-'))
        {
            j += 1;
        }
        if b.get(j) == Some(&b'.') {
            j += 1;
        } else {
            break;
        }
    }
    let path = &text[i..j];
    let (op, op_len) = match (b.get(j), b.get(j + 1)) {
        (Some(b'!'), Some(b'=')) => (Op::Ne, 2),
        (Some(b'>'), Some(b'=')) => (Op::Ge, 2),
        (Some(b'<'), Some(b'=')) => (Op::Le, 2),
        (Some(b'='), _) => (Op::Eq, 1),
        (Some(b'>'), _) => (Op::Gt, 1),
        (Some(b'<'), _) => (Op::Lt, 1),
        _ => return Ok(None),
    };
    let v = j + op_len;
    let (value, end) = if b.get(v) == Some(&b'"') {
        phrase(text, v)?
    } else {
        bare(text, v).map(|(s, e)| (s.to_owned(), e))?
    };
    let value_len = end - v;
    if path == "level" {
        let Some(level) = Level::parse(&value) else {
            return Err(error(
                "unknown level (trace, debug, info, warn, error, fatal)",
                v,
                value_len,
            ));
        };
        return Ok(Some((Atom::Level { op, level }, end)));
    }
    if !matches!(op, Op::Eq | Op::Ne) && value.trim().parse::<f64>().is_err() {
        return Err(error(
            format!("`{op}` compares numbers: the value must be a number"),
            v,
            value_len,
        ));
    }
    Ok(Some((
        Atom::Field {
            path: path.to_owned(),
            op,
            value,
        },
        end,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(q: &str) -> Vec<String> {
        parse(q)
            .expect(q)
            .terms()
            .iter()
            .map(|t| {
                let sign = if t.negate { "-" } else { "" };
                match &t.atom {
                    Atom::Text(n) => format!("{sign}text:{}", n.as_str()),
                    Atom::Regex(r) => format!("{sign}re:{}", r.as_str()),
                    Atom::Field { path, op, value } => format!("{sign}field:{path}{op}{value}"),
                    Atom::Level { op, level } => format!("{sign}level{op}{level}"),
                }
            })
            .collect()
    }

    #[test]
    fn terms_are_recognised_and_ordered_by_cost() {
        assert_eq!(
            kinds(r#"  user.id=42 /time(out|d)/ -"a \"b\"" http://x level>=WARN  "#),
            [
                "level>=warn",
                "text:http://x",
                "-text:a \"b\"",
                "re:time(out|d)",
                "field:user.id=42",
            ]
        );
        assert_eq!(kinds("a==b"), ["field:a==b"]);
        assert_eq!(kinds("/var/log/app.log"), ["text:/var/log/app.log"]);
        assert_eq!(kinds(r"/a\/b c/"), [r"re:a\/b c"]);
        assert_eq!(
            kinds(r#"msg!="disk full" n<=1.5"#),
            ["field:msg!=disk full", "field:n<=1.5"]
        );
        assert_eq!(kinds(""), Vec::<String>::new());
        assert_eq!(kinds("=x 9=1"), ["text:9=1", "text:=x"]);
        assert_eq!(kinds("a.0.b=1"), ["field:a.0.b=1"]);
    }

    #[test]
    fn errors_say_where() {
        for (q, at, len) in [
            ("ok \"open", 3, 5),
            ("a -", 2, 1),
            ("level>=loud", 7, 4),
            ("n>abc", 2, 3),
            ("x=", 2, 0),
            ("a\"b", 1, 1),
            ("\"a\"b", 3, 1),
            ("/(/ x", 0, 3),
            ("\"\"", 0, 2),
            (r#""a\x""#, 2, 2),
        ] {
            let e = parse(q).expect_err(q);
            assert_eq!((e.at, e.len), (at, len), "{q}: {e}");
        }
        let long = "a ".repeat(QUERY_BYTES);
        assert!(parse(&long).is_err());
        let many = "a ".repeat(MAX_TERMS + 1);
        assert_eq!(parse(&many).expect_err("terms").at, 2 * MAX_TERMS);
        assert!(parse("/a/ /b/ /c/ /d/ /e/").is_err());
        assert!(parse("/a{1000}{1000}/").is_err());
    }
}
