//! Examples of evaluation, and the planner against a naive reference evaluator.

use proptest::prelude::*;
use serde_json::Value as Json;

use super::*;
use crate::query::parse;

fn hit(q: &str, text: &str, level: Option<Level>) -> bool {
    parse(q).expect(q).matches(&Record {
        text: text.as_bytes(),
        level,
    })
}

#[test]
fn words_use_smart_case_and_phrases_match_whole() {
    assert!(hit("timeout", "Read TIMEOUT after 5s", None));
    assert!(!hit("Timeout", "Read TIMEOUT after 5s", None));
    assert!(hit("\"after 5s\"", "Read TIMEOUT after 5s", None));
    assert!(!hit("\"after  5s\"", "Read TIMEOUT after 5s", None));
    assert!(hit("ошибка", "ОШИБКА диска", None));
    assert!(hit("-debug", "an info line", None));
    assert!(!hit("-info", "an info line", None));
    // The whole record is searched, not only its first line.
    assert!(hit(
        "Exception",
        "2026 ERROR x\n\tat a.B\nCaused by: java.io.IOException",
        None
    ));
}

#[test]
fn fields_compare_by_type_and_missing_keys_differ_from_bad_values() {
    let json = r#"{"status":500,"code":"500","ok":false,"user":{"id":"u1","tags":["a","b"]},"msg":"disk full","n":null}"#;
    for (q, want) in [
        ("status=500", true),
        ("code=500", true),
        ("code=500.0", true),
        ("status>=500", true),
        ("status<500", false),
        ("code>499.5", true),
        ("ok=false", true),
        ("n=null", true),
        ("user.id=u1", true),
        ("user.tags.1=b", true),
        ("user=u1", false),
        ("msg=\"disk full\"", true),
        ("msg=disk", false),
        ("missing!=x", true),
        ("missing=x", false),
        ("-missing=x", true),
        ("status!=500", false),
        ("msg>1", false),
    ] {
        assert_eq!(hit(q, json, None), want, "{q}");
    }
    let logfmt = "time=2026-12-01T21:14:39Z level=warn status=404 path=/x";
    assert!(hit("status>=400 path=/x", logfmt, None));
    assert!(!hit("status=200", logfmt, None));
    assert!(!hit("status=404", "plain text status=404", None));
}

#[test]
fn level_terms_use_the_derived_level() {
    assert!(hit("level>=warn", "x", Some(Level::Error)));
    assert!(!hit("level>=warn", "x", Some(Level::Info)));
    assert!(!hit("level>=warn", "x", None));
    assert!(hit("level=err", "x", Some(Level::Error)));
    assert!(hit("-level=debug", "x", None));
}

// The reference: no planner, no prefilter, no lazy fields; text folded by hand.

fn reference(q: &str, text: &str, level: Option<Level>) -> bool {
    let query = parse(q).expect(q);
    let first = text.split('\n').next().unwrap_or_default();
    query.terms().iter().all(|t| {
        let hit = match &t.atom {
            Atom::Level { op, level: l } => level.is_some_and(|x| op.holds(x.cmp(l))),
            Atom::Text(n) => {
                let s = n.as_str();
                if s.chars().any(char::is_uppercase) {
                    text.contains(s)
                } else {
                    text.to_ascii_lowercase().contains(&s.to_ascii_lowercase())
                }
            }
            Atom::Regex(re) => re.is_match(text.as_bytes()),
            Atom::Field { path, op, value } => {
                let v = reference_field(first, path);
                reference_compare(v.as_ref(), *op, value)
            }
        };
        hit != t.negate
    })
}

fn reference_field(line: &str, path: &str) -> Option<Json> {
    if line.starts_with('{') {
        let obj: serde_json::Map<String, Json> = serde_json::from_str(line).ok()?;
        if let Some(v) = obj.get(path) {
            return Some(v.clone());
        }
        let mut cur = &Json::Object(obj);
        for seg in path.split('.') {
            cur = match cur {
                Json::Object(m) => m.get(seg)?,
                Json::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        return Some(cur.clone());
    }
    let pairs: Vec<(String, String)> = line
        .split(' ')
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    if pairs.len() < 2 || !line.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    pairs
        .into_iter()
        .find(|(k, _)| k == path)
        .map(|(_, v)| Json::String(v))
}

fn reference_compare(v: Option<&Json>, op: Op, value: &str) -> bool {
    let num = |s: &str| s.trim().parse::<f64>().ok();
    let eq = match v {
        Some(Json::String(s)) => {
            s == value || matches!((num(s), num(value)), (Some(a), Some(b)) if a == b)
        }
        Some(Json::Number(n)) => matches!((n.as_f64(), num(value)), (Some(a), Some(b)) if a == b),
        Some(Json::Bool(b)) => value == b.to_string(),
        Some(Json::Null) => value == "null",
        _ => false,
    };
    match op {
        Op::Eq => eq,
        Op::Ne => !eq,
        _ => {
            let left = match v {
                Some(Json::String(s)) => num(s),
                Some(Json::Number(n)) => n.as_f64(),
                _ => None,
            };
            match (left, num(value)) {
                (Some(l), Some(r)) => l.partial_cmp(&r).is_some_and(|o| op.holds(o)),
                _ => false,
            }
        }
    }
}

const WORDS: [&str; 8] = [
    "error", "Error", "disk", "full", "user", "x1", "timeout", "GET",
];

fn corpus_line() -> impl Strategy<Value = String> {
    let word = proptest::sample::select(WORDS.to_vec());
    prop_oneof![
        proptest::collection::vec(word.clone(), 0..6).prop_map(|w| w.join(" ")),
        (0u32..3, word.clone(), 0u32..600).prop_map(|(l, w, s)| {
            let level = ["warn", "error", "info"][l as usize];
            format!(r#"{{"level":"{level}","msg":"{w} full","status":{s},"user":{{"id":"{w}"}}}}"#)
        }),
        (word.clone(), 0u32..600)
            .prop_map(|(w, s)| format!("time=1 level=warn status={s} user={w}")),
        (word.clone(), word)
            .prop_map(|(a, b)| format!("2026-12-01T00:00:00Z ERROR {a}\n\tat {b}.x")),
    ]
}

fn query_text() -> impl Strategy<Value = String> {
    let word = proptest::sample::select(WORDS.to_vec());
    let term = prop_oneof![
        word.clone().prop_map(str::to_owned),
        (word.clone(), word.clone()).prop_map(|(a, b)| format!("\"{a} {b}\"")),
        word.clone().prop_map(|w| format!("/{w}|x[0-9]/")),
        (0u32..600, 0usize..6)
            .prop_map(|(n, o)| format!("status{}{n}", ["=", "!=", ">", ">=", "<", "<="][o])),
        word.clone().prop_map(|w| format!("user.id={w}")),
        word.prop_map(|w| format!("user={w}")),
        (0usize..6, 0usize..3).prop_map(|(l, o)| {
            format!(
                "level{}{}",
                ["=", ">=", "<"][o],
                ["trace", "debug", "info", "warn", "error", "fatal"][l]
            )
        }),
    ];
    proptest::collection::vec((any::<bool>(), term), 0..5).prop_map(|ts| {
        ts.into_iter()
            .map(|(neg, t)| if neg { format!("-{t}") } else { t })
            .collect::<Vec<_>>()
            .join(" ")
    })
}

proptest! {
    #[test]
    fn evaluation_equals_reference(
        q in query_text(),
        lines in proptest::collection::vec((corpus_line(), proptest::option::of(0usize..6)), 1..20),
    ) {
        let levels = [Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error, Level::Fatal];
        for (text, l) in &lines {
            let level = l.map(|i| levels[i]);
            prop_assert_eq!(hit(&q, text, level), reference(&q, text, level), "{} on {}", q, text);
        }
    }

    #[test]
    fn any_query_text_parses_or_fails_cleanly(q in "\\PC{0,80}", text in "\\PC{0,80}") {
        if let Ok(query) = parse(&q) {
            let _ = query.matches(&Record { text: text.as_bytes(), level: Some(Level::Info) });
        }
    }
}
