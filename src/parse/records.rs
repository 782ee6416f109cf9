//! The multi-line record rule: which lines join the record before them.
//!
//! A line that starts a record ([`super::Facts::start`]: a stamp, a JSON object, …) opens one;
//! a line that does not (a stack frame, `Caused by:`, an indented continuation, a traceback)
//! joins the record of the nearest preceding start, as long as the record stays within
//! [`Caps`] (1,000 lines and `--max-line-bytes`, lines joined with `\n`) and was not closed
//! by the live 200 ms timer. Any other line is an entry of its own. So a plain-text stream,
//! with no starts, never groups.
//!
//! The rule is *local*: whether a line joins depends only on the lines at most one cap before
//! it (and on recorded closes), so a backward reader can decide it with a bounded look back
//! ([`owner`]); a property test checks that [`Grouper`] (forward) and [`owner`] agree.

/// Bounds on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Most lines in a record.
    pub lines: usize,
    /// Most bytes of a record's text (its lines joined with `\n`).
    pub bytes: u64,
}

/// Most lines in a record by default.
pub const MAX_LINES: usize = 1000;

/// What a line is to the record being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It opens a record.
    Start,
    /// It joins the open record.
    Join,
    /// It is an entry of its own (no record open, or a cap reached).
    Alone,
    /// It would have joined a record the live timer had closed: it opens a headless record
    /// (`"cont": true`), which the next lines may join.
    Headless,
}

/// The forward grouper: feed lines in order, learn each one's role.
#[derive(Debug, Clone)]
pub struct Grouper {
    caps: Caps,
    /// The open record's line count and text bytes, if one is open.
    open: Option<(usize, u64)>,
}

impl Grouper {
    /// A grouper at the start of a generation.
    pub fn new(caps: Caps) -> Self {
        Self { caps, open: None }
    }

    /// The role of the next line, `len` bytes long, that starts a record or not.
    pub fn push(&mut self, start: bool, len: u64) -> Role {
        if start {
            self.open = Some((1, len));
            return Role::Start;
        }
        match self.open {
            Some((lines, bytes))
                if lines < self.caps.lines && bytes + 1 + len <= self.caps.bytes =>
            {
                self.open = Some((lines + 1, bytes + 1 + len));
                Role::Join
            }
            _ => {
                // Past a cap it stays past it until the next start (the rule is monotone).
                self.open = None;
                Role::Alone
            }
        }
    }

    /// Closes the open record (the generation ended): the next non-start line stands alone.
    pub fn close(&mut self) {
        self.open = None;
    }

    /// The role of a non-start line that arrived after the live timer closed the record it
    /// would have joined (a recorded split): it opens a headless record.
    pub fn push_split(&mut self, len: u64) -> Role {
        self.open = Some((1, len));
        Role::Headless
    }

    /// Whether a record is open (more lines may still join it).
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

/// A line as the backward rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineKind {
    /// Whether it starts a record (or a recorded close made it stand alone and start over).
    pub start: bool,
    /// Whether a recorded split made this non-start line open a headless record.
    pub split: bool,
    /// Its length in bytes, without `\n`.
    pub len: u64,
}

/// The index of the line whose record line `i` belongs to (itself when it starts one or
/// stands alone), looking back at most one cap; `lines[0]` is taken as a generation's first
/// line.
pub fn owner(lines: &[LineKind], i: usize, caps: Caps) -> usize {
    owner_within(lines, i, caps, true).unwrap_or(i)
}

/// [`owner`] over lines that may begin mid-generation: `None` when the answer depends on lines
/// before `lines[0]` (unless `complete`: nothing lies before `lines[0]`).
pub fn owner_within(lines: &[LineKind], i: usize, caps: Caps, complete: bool) -> Option<usize> {
    let line = lines[i];
    if line.start || line.split {
        return Some(i);
    }
    let mut bytes = line.len;
    let mut count = 1;
    let mut j = i;
    while j > 0 && count < caps.lines {
        j -= 1;
        let l = lines[j];
        bytes += 1 + l.len;
        count += 1;
        if bytes > caps.bytes {
            return Some(i);
        }
        if l.start || l.split {
            return Some(j);
        }
    }
    // Out of lines before a cap was reached: a start further back could still own line `i`.
    (complete || count >= caps.lines).then_some(i)
}

/// Whether a Docker `log` text continues the previous one, by Fluent Bit's markers: leading
/// whitespace, `at `, `Caused by:`, `Suppressed:`, `... N more`, a Python traceback header.
pub fn is_continuation_text(text: &[u8]) -> bool {
    let starts = |p: &[u8]| text.starts_with(p);
    matches!(text.first(), Some(b' ' | b'\t'))
        || starts(b"at ")
        || starts(b"Caused by:")
        || starts(b"Suppressed:")
        || starts(b"Traceback (most recent call last):")
        || (starts(b"... ") && text.ends_with(b" more"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn roles(kinds: &[(bool, u64)], caps: Caps) -> Vec<Role> {
        let mut g = Grouper::new(caps);
        kinds.iter().map(|&(s, l)| g.push(s, l)).collect()
    }

    #[test]
    fn a_trace_joins_its_record_and_caps_end_it() {
        let caps = Caps {
            lines: 3,
            bytes: 100,
        };
        let got = roles(
            &[
                (false, 5),
                (true, 10),
                (false, 5),
                (false, 5),
                (false, 5),
                (true, 1),
                (false, 90),
            ],
            caps,
        );
        use Role::*;
        assert_eq!(got, [Alone, Start, Join, Join, Alone, Start, Join]);
        let got = roles(&[(true, 10), (false, 90)], caps);
        assert_eq!(got, [Start, Alone]);
    }

    #[test]
    fn a_split_opens_a_headless_record_and_a_close_ends_it() {
        let mut g = Grouper::new(Caps {
            lines: 10,
            bytes: 100,
        });
        assert_eq!(g.push(true, 1), Role::Start);
        assert_eq!(g.push_split(1), Role::Headless);
        assert_eq!(g.push(false, 1), Role::Join);
        g.close();
        assert!(!g.is_open());
        assert_eq!(g.push(false, 1), Role::Alone);
    }

    #[test]
    fn docker_continuations_follow_the_markers() {
        for t in [
            "\tat x.y(Z.java:1)",
            "at x",
            "Caused by: e",
            "... 12 more",
            "  File \"a\"",
        ] {
            assert!(is_continuation_text(t.as_bytes()), "{t}");
        }
        assert!(!is_continuation_text(b"2026-12-01 x"));
    }

    proptest! {
        #[test]
        fn backward_owner_equals_forward_grouping(
            kinds in proptest::collection::vec((0u8..4, 0u64..40, 0u8..20), 1..300),
            max_lines in 1usize..8,
            max_bytes in 1u64..200,
        ) {
            let caps = Caps { lines: max_lines, bytes: max_bytes };
            // Forward: a split is recorded only where a record was open and the line would
            // have joined it, as the follower records them.
            let mut lines = Vec::new();
            let mut forward = Vec::new();
            let mut g = Grouper::new(caps);
            let mut current = 0;
            for (i, &(k, len, s)) in kinds.iter().enumerate() {
                let start = k == 0;
                let would_join = !start && g.is_open() && g.clone().push(false, len) == Role::Join;
                let split = s == 0 && would_join;
                let role = if split { g.push_split(len) } else { g.push(start, len) };
                if role != Role::Join {
                    current = i;
                }
                lines.push(LineKind { start, split, len });
                forward.push(current);
            }
            for (i, &want) in forward.iter().enumerate() {
                prop_assert_eq!(owner(&lines, i, caps), want, "line {}", i);
            }
        }
    }
}
