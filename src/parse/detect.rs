//! Per-stream format detection: which shape a stream's lines have, for reporting.
//!
//! Detection never changes a line's facts (those are a pure function of the line, see
//! [`super::Parser::facts`]); shapes are dispatched by their first bytes, so knowing the
//! format in advance would not make parsing cheaper either. What the detector decides is what
//! `/api/streams` reports as the stream's `format`, and so whether the page shows a time
//! column and offers go-to-time.
//!
//! Rule: sample the first [`SAMPLE`] non-blank lines; among those that match any shape,
//! the most frequent shape wins when it has at least [`MIN_WINNER`] lines and at least 80 %.
//! Continuation lines do not count, or a Java log with long traces would never qualify.
//! Afterwards, keep the last [`WINDOW`] shape-matching lines; when the chosen shape falls
//! under half of them, sample again. A new generation (rotation, truncation) starts over.

use std::collections::VecDeque;

use super::{Facts, Shape};

/// Lines sampled before deciding.
pub const SAMPLE: usize = 64;
/// Fewest lines the winning shape needs.
pub const MIN_WINNER: usize = 3;
/// Shape-matching lines kept for the re-check.
pub const WINDOW: usize = 256;

/// A stream's format detector.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    /// Shapes seen while sampling (a small map: at most one slot per shape).
    counts: Vec<(Shape, usize)>,
    /// Non-blank lines seen while sampling.
    sampled: usize,
    /// The decided shape.
    shape: Option<Shape>,
    /// Whether each recent shape-matching line had the decided shape.
    recent: VecDeque<bool>,
    /// How many of `recent` are `true`.
    hits: usize,
    /// Whether any line had an event time (go-to-time needs one).
    timed: bool,
}

impl Detector {
    /// A detector that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The decided shape, if any.
    pub fn shape(&self) -> Option<Shape> {
        self.shape
    }

    /// Whether any line so far carried an event time.
    pub fn timed(&self) -> bool {
        self.timed
    }

    /// Starts over (a new generation).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Takes one line's facts into account. `blank` lines are not sampled.
    pub fn observe(&mut self, facts: &Facts, blank: bool) {
        self.timed |= facts.ts.is_some();
        if blank {
            return;
        }
        if self.shape.is_none() || self.sampled < SAMPLE {
            self.sample(facts);
            return;
        }
        let Some(shape) = facts.shape else {
            return;
        };
        let hit = Some(shape) == self.shape;
        self.recent.push_back(hit);
        self.hits += usize::from(hit);
        if self.recent.len() > WINDOW && self.recent.pop_front() == Some(true) {
            self.hits -= 1;
        }
        if self.recent.len() >= SAMPLE && self.hits * 2 < self.recent.len() {
            // The stream changed its layout: sample again from here.
            let timed = self.timed;
            *self = Self::default();
            self.timed = timed;
        }
    }

    fn sample(&mut self, facts: &Facts) {
        if self.sampled >= SAMPLE {
            // No winner in a full sample: keep trying with a sliding restart.
            self.sampled = 0;
            self.counts.clear();
        }
        self.sampled += 1;
        if let Some(shape) = facts.shape {
            match self.counts.iter_mut().find(|(s, _)| *s == shape) {
                Some((_, n)) => *n += 1,
                None => self.counts.push((shape, 1)),
            }
        }
        let matched: usize = self.counts.iter().map(|&(_, n)| n).sum();
        let best = self.counts.iter().copied().max_by_key(|&(_, n)| n);
        self.shape = best
            .filter(|&(_, n)| n >= MIN_WINNER && n * 5 >= matched * 4)
            .map(|(s, _)| s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(shape: Option<Shape>) -> Facts {
        Facts {
            shape,
            ts: shape.map(|_| 1),
            level: None,
            start: shape.is_some(),
        }
    }

    #[test]
    fn a_java_log_with_long_traces_is_detected() {
        let mut d = Detector::new();
        for _ in 0..3 {
            d.observe(&line(Some(Shape::Iso)), false);
            for _ in 0..30 {
                d.observe(&line(None), false);
            }
        }
        assert_eq!(d.shape(), Some(Shape::Iso));
        assert!(d.timed());
    }

    #[test]
    fn a_mixed_sample_has_no_shape_and_a_change_is_redetected() {
        let mut d = Detector::new();
        for i in 0..SAMPLE {
            let s = if i % 2 == 0 { Shape::Iso } else { Shape::Json };
            d.observe(&line(Some(s)), false);
        }
        assert_eq!(d.shape(), None);
        let mut d = Detector::new();
        for _ in 0..SAMPLE {
            d.observe(&line(Some(Shape::Iso)), false);
        }
        assert_eq!(d.shape(), Some(Shape::Iso));
        for _ in 0..(2 * SAMPLE + 3) {
            d.observe(&line(Some(Shape::Json)), false);
        }
        assert_eq!(d.shape(), Some(Shape::Json));
        d.reset();
        assert_eq!((d.shape(), d.timed()), (None, false));
    }
}
