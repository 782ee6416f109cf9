//! A stream fed by its follower: events become cached entries (through the open multi-line
//! record), the budget is settled, and waiting readers are woken once per batch.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::records::{Closed, Line, Splits};
use super::{Entry, GenRecord, MAX_GENERATIONS, Stream, Update, preload};
use crate::tail::Event;

impl Stream {
    /// Applies a follower's events (made ready by [`Stream::prepare`]), in order, and wakes
    /// waiting readers once. Takes the stream's lock, but does no I/O. Lines join the open
    /// multi-line record or close it (`records.rs`); a record is an entry once closed, so
    /// also call this (with no events) by [`Stream::record_deadline`].
    pub fn apply(&self, update: Update) {
        self.stats.record(update.events());
        let Update {
            events,
            mut preload,
        } = update;
        let now = Instant::now();
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut inner = self.lock();
        let before = inner.weight();
        if events.is_empty() && inner.live.deadline().is_none_or(|d| d > now) {
            return;
        }
        let mut closed: Vec<Closed> = Vec::new();
        let first_look = preload.is_some();
        for event in events {
            match event {
                Event::Opened {
                    generation,
                    notice,
                    from,
                } => {
                    closed.extend(inner.live.restart());
                    inner.detector.reset();
                    inner.push_closed(&mut closed, self.limits.max_line_bytes);
                    let opening = notice
                        .as_ref()
                        .map(|n| Entry::notice(inner.life, &generation, 0, n));
                    if inner.cache_from.is_none() {
                        inner.cache_from = Some((generation.seq, from));
                        // The first look starts at the end of the file: its last records go
                        // into the cache at once (read by `prepare`), so first loads (`last=N`)
                        // are answered from memory. The very last one stays open, so that the
                        // first live lines may still join it.
                        let recent = preload.take().filter(|p| p.seq == generation.seq);
                        if let Some(floor) = recent.as_ref().and_then(|p| p.floor) {
                            inner.cache_floor = Some((generation.seq, floor));
                        }
                        if let Some(first) = recent.as_ref().and_then(preload::Preload::first) {
                            inner.cache_from = Some((generation.seq, first));
                        }
                        if let Some(p) = recent {
                            inner.detector = p.detector;
                            for entry in p.entries {
                                inner.push(entry);
                            }
                            if let Some(open) = p.open {
                                inner.live.hold(generation.clone(), open, now);
                            }
                        }
                    }
                    if let Some(entry) = &opening {
                        inner.push(entry.clone());
                    }
                    inner.gens.push_back(GenRecord {
                        generation,
                        opening,
                        splits: Arc::default(),
                    });
                    while inner.gens.len() > MAX_GENERATIONS {
                        inner.forget_oldest_generation();
                    }
                }
                Event::Lines { generation, lines } => {
                    let splits = inner
                        .gens
                        .iter()
                        .rev()
                        .find(|r| r.generation.seq == generation.seq)
                        .map_or_else(Arc::default, |r| r.splits.clone());
                    for raw in lines {
                        let line = Line::read(
                            raw,
                            &self.parser,
                            i64::try_from(time).unwrap_or(i64::MAX),
                            self.limits.max_line_bytes,
                            &Splits::default(),
                        );
                        inner.detector.observe(&line.facts, line.raw.len == 0);
                        inner
                            .live
                            .push(&generation, line, (&splits, time, now), &mut closed);
                    }
                    inner.push_closed(&mut closed, self.limits.max_line_bytes);
                }
                Event::State(state) => inner.state = state,
            }
        }
        if first_look {
            // The file's last record was written before we looked: it is complete unless a
            // writer is in the middle of it, and then its next lines are recorded as a split.
            closed.extend(inner.live.close_now());
        }
        // The open record closes once a look at the file, at or after its deadline, found no
        // line for it. Lines found by a late look still join: the delay was ours, not the
        // writer's.
        closed.extend(inner.live.close_due(now));
        inner.push_closed(&mut closed, self.limits.max_line_bytes);
        // Account the growth first, so that the budget's verdict includes this batch.
        let grown = inner.weight();
        self.budget.settle(before, grown);
        inner.trim(self.budget.target(self.limits.cache_bytes));
        self.budget.settle(grown, inner.weight());
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
    }

    /// When the open multi-line record closes unless a line comes first: the follower task
    /// calls [`Stream::apply`] by then.
    pub fn record_deadline(&self) -> Option<Instant> {
        self.lock().live.deadline()
    }

    /// Closes the open multi-line record now (the input ended: no line can join it).
    pub fn close_record(&self) {
        let mut inner = self.lock();
        let before = inner.weight();
        let mut closed: Vec<Closed> = inner.live.close_now().into_iter().collect();
        if closed.is_empty() {
            return;
        }
        inner.push_closed(&mut closed, self.limits.max_line_bytes);
        self.budget.settle(before, inner.weight());
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
    }
}
