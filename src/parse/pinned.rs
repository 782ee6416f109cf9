//! A stream's format given by the operator (`format` in a `[[source]]` table) instead of
//! detected: which lines of the stream are read for a time, a level and a record start.
//!
//! A pinned shape keeps the facts of lines of that shape and takes them from every other
//! line: a line that only looks like another shape (a `{` or `key=value` line inside a Java
//! trace) is then a continuation without a time, as a shapeless line always is. `plain`
//! reads no time and joins no lines: every line is an entry of its own; levels are still
//! read. Like the rest of [`super::Parser::facts`], this is a pure function of the line, so
//! the live follower and the history reader agree.

use super::{Facts, Shape};

/// The shapes a stream can be pinned to, by their names in `/api/streams`.
const SHAPES: [Shape; 11] = [
    Shape::Iso,
    Shape::BracketIso,
    Shape::Slash,
    Shape::Syslog,
    Shape::Syslog5424,
    Shape::Klog,
    Shape::Access,
    Shape::TimeOnly,
    Shape::Json,
    Shape::Docker,
    Shape::Logfmt,
];

/// A stream's format, when the operator names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinned {
    /// Only lines of this shape carry a time and start a record.
    Shape(Shape),
    /// No line carries a time or joins another.
    Plain,
}

impl Pinned {
    /// Reads a format's name: `auto` is `None` (detected), `plain`, or a shape's name.
    ///
    /// # Errors
    /// A message listing the names there are.
    pub fn parse(name: &str) -> Result<Option<Self>, String> {
        match name {
            "auto" => return Ok(None),
            "plain" => return Ok(Some(Self::Plain)),
            _ => {}
        }
        SHAPES
            .iter()
            .find(|s| s.as_str() == name)
            .map(|s| Some(Self::Shape(*s)))
            .ok_or_else(|| {
                let names: Vec<&str> = SHAPES.iter().map(|s| s.as_str()).collect();
                format!(
                    "`{name}` is not a format: auto, plain, {}",
                    names.join(", ")
                )
            })
    }

    /// The name `/api/streams` reports as the stream's `format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shape(s) => s.as_str(),
            Self::Plain => "plain",
        }
    }

    /// The facts of a line whose detected facts are `facts`, under this format.
    pub(super) fn restrict(self, facts: Facts) -> Facts {
        match self {
            Self::Shape(s) if facts.shape == Some(s) => facts,
            Self::Shape(_) => Facts {
                shape: None,
                ts: None,
                level: facts.level,
                start: false,
            },
            Self::Plain => Facts {
                shape: None,
                ts: None,
                level: facts.level,
                start: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Parser, Zone};

    #[test]
    fn names_are_auto_plain_and_the_shapes_names() {
        assert_eq!(Pinned::parse("auto"), Ok(None));
        assert_eq!(Pinned::parse("plain"), Ok(Some(Pinned::Plain)));
        for shape in SHAPES {
            let pinned = Pinned::parse(shape.as_str()).expect("a shape's name");
            assert_eq!(pinned, Some(Pinned::Shape(shape)));
            assert_eq!(pinned.map(Pinned::as_str), Some(shape.as_str()));
        }
        let e = Pinned::parse("JSON").expect_err("names are lowercase");
        assert!(e.contains("auto, plain, iso"), "{e}");
    }

    #[test]
    fn a_pinned_shape_keeps_its_lines_and_takes_the_others_facts() {
        let iso = Parser::new(Zone::utc()).with_pinned(Some(Pinned::Shape(Shape::Iso)));
        let own = iso.facts(b"2026-12-01T21:14:39Z ERROR down", 0);
        assert_eq!(own.shape, Some(Shape::Iso));
        assert!(own.start && own.ts.is_some());
        let json = iso.facts(br#"{"ts":"2026-12-01T21:14:39Z","level":"warn"}"#, 0);
        assert_eq!((json.shape, json.ts, json.start), (None, None, false));
        let plain = Parser::new(Zone::utc()).with_pinned(Some(Pinned::Plain));
        let line = plain.facts(b"2026-12-01T21:14:39Z ERROR down", 0);
        assert_eq!((line.shape, line.ts, line.start), (None, None, true));
        assert_eq!(line.level, own.level);
        assert!(plain.facts(b"    at Foo.bar(Foo.java:1)", 0).start);
    }
}
