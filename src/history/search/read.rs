//! The three readers of a search: a plain file newest first (blocks from the end) and oldest
//! first, and a `.gz` decoded forwards in either order.

use std::io;
use std::ops::ControlFlow;

use memchr::{memchr, memrchr};

use super::super::gzip;
use super::{BLOCK, MAX_LINE_SCAN, Order, Scan, Unit};
use crate::stream::Entry;

impl Scan<'_> {
    /// Newest first through a plain file: blocks from the end, each searched forwards.
    pub(super) fn backward(&mut self, unit: &Unit, from: u64, to: u64) -> io::Result<()> {
        let floor = from.saturating_sub(1);
        let mut end = to;
        let mut buf = Vec::new();
        let mut size = BLOCK;
        // Inside a line too long to search (marked already): passed over up to its start.
        let mut passing = false;
        while end > from && !self.stopped {
            let start = end.saturating_sub(size as u64).max(floor);
            buf.resize(usize::try_from(end - start).unwrap_or(size), 0);
            let n = unit.reader.read_full_at(&mut buf, start)?;
            buf.truncate(n);
            if n == 0 {
                return Ok(());
            }
            if passing {
                let Some(i) = memrchr(b'\n', &buf) else {
                    self.scanned += end - start;
                    end = start;
                    if !self.progress(false) {
                        break;
                    }
                    continue;
                };
                // The long line starts after this `\n`: the block ends there.
                passing = false;
                buf.truncate(i + 1);
                self.scanned += end - (start + i as u64 + 1);
                end = start + i as u64 + 1;
            }
            // Whole lines only: the region starts after the block's first `\n`, unless the
            // block starts at the file's start and so does the range.
            // (A `\n` in the block's last byte ends the line that starts at `end`: no line
            // starts inside the block then.)
            let skip = if start == 0 && from == 0 {
                0
            } else if let Some(i) = memchr(b'\n', &buf[..n - 1]) {
                i + 1
            } else if start > floor && size < MAX_LINE_SCAN {
                size *= 2; // a line longer than the block: read more of it
                continue;
            } else if start > floor {
                // No line starts in the last 64 MiB before `end`: that line is marked and
                // passed over, and the scan goes on before its start.
                let mark = self.long_line(unit, start + 1);
                self.report(vec![mark]);
                passing = true;
                size = BLOCK;
                self.scanned += end - start;
                end = start;
                if !self.progress(false) {
                    break;
                }
                continue;
            } else {
                // No line starts inside the range.
                break;
            };
            size = BLOCK;
            let mut found = Vec::new();
            self.matches_in(unit, &buf[skip..], start + skip as u64, &mut found);
            self.report(found.into_iter().rev().map(|(_, e)| e).collect());
            self.scanned += end - (start + skip as u64);
            end = start + skip as u64;
            if !self.progress(false) {
                break;
            }
        }
        Ok(())
    }

    /// Oldest first through a plain file: blocks from `from`, the partial last line carried.
    pub(super) fn forward(&mut self, unit: &Unit, from: u64, to: u64) -> io::Result<()> {
        let mut at = from.saturating_sub(1);
        let mut first = from > 0;
        let mut buf = Vec::new();
        let mut size = BLOCK;
        while at < to && !self.stopped {
            buf.resize(usize::try_from(to - at).unwrap_or(size).min(size), 0);
            let n = unit.reader.read_full_at(&mut buf, at)?;
            buf.truncate(n);
            if n == 0 {
                return Ok(());
            }
            let skip = if first {
                match memchr(b'\n', &buf) {
                    Some(i) => i + 1,
                    None => {
                        self.scanned += n as u64;
                        at += n as u64;
                        continue;
                    }
                }
            } else {
                0
            };
            let last_block = at + n as u64 >= to;
            let cut = if last_block {
                n
            } else if let Some(i) = memrchr(b'\n', &buf[skip..]) {
                skip + i + 1
            } else if size < MAX_LINE_SCAN {
                size *= 2;
                continue;
            } else {
                // A line longer than 64 MiB from `at + skip`: marked, and passed over up to
                // the next line's start (as the first block of a range is).
                let mark = self.long_line(unit, at + skip as u64 + 1);
                self.report(vec![mark]);
                first = true;
                size = BLOCK;
                self.scanned += n as u64;
                at += n as u64;
                if !self.progress(false) {
                    break;
                }
                continue;
            };
            first = false;
            size = BLOCK;
            let mut found = Vec::new();
            self.matches_in(unit, &buf[skip..cut], at + skip as u64, &mut found);
            self.report(found.into_iter().map(|(_, e)| e).collect());
            self.scanned += cut as u64;
            at += cut as u64;
            if !self.progress(false) {
                break;
            }
        }
        Ok(())
    }

    /// A `.gz`: one forward pass. Matches are served only once the text they lie in is
    /// verified (`gzip.rs`): at once when the file was decoded whole before, else when its
    /// member's trailer checks. Newest first, the last matches are kept and sent reversed at
    /// the end; oldest first, those waiting for a verification are at most the number still
    /// wanted (past that the pass only verifies).
    pub(super) fn gzip(&mut self, unit: &Unit, from: u64, to: u64, order: Order) -> io::Result<()> {
        let Some(gz) = unit.member.as_ref().and_then(|m| m.gzip()) else {
            return Ok(());
        };
        let known = gz.known_len();
        let mut verified = known.unwrap_or(0);
        let mut carry: Vec<u8> = Vec::with_capacity(BLOCK + (64 << 10));
        let mut carry_at = 0u64;
        // Matches in search order's source order (oldest first), with where each ends.
        let mut held: Vec<(u64, Entry)> = Vec::new();
        // Inside a line too long to search (marked already): passed over up to its end.
        let mut passing = false;
        // The carry is cut into lines when it reaches this length: a line longer than a
        // block is looked at once per block it grows by, not once per decoded chunk.
        let mut flush_at = BLOCK;
        let mut searching = true;
        let flush = |scan: &mut Self,
                     carry: &mut Vec<u8>,
                     carry_at: &mut u64,
                     held: &mut Vec<(u64, Entry)>,
                     all: bool| {
            let cut = if all {
                carry.len()
            } else {
                memrchr(b'\n', carry).map_or(0, |i| i + 1)
            };
            // Lines starting before `from` or at or after `to` are outside the range.
            let mut found = Vec::new();
            scan.matches_in(unit, &carry[..cut], *carry_at, &mut found);
            found.retain(|(_, e)| {
                let start = e.cursor.point - 1;
                start >= from && start < to
            });
            held.extend(found);
            if order == Order::Newest {
                keep_newest(held, scan.remaining);
            }
            carry.drain(..cut);
            *carry_at += cut as u64;
        };
        // Oldest first: serves the held matches that lie in verified text.
        let release = |scan: &mut Self, held: &mut Vec<(u64, Entry)>, verified: u64| {
            if order == Order::Oldest {
                let n = held.partition_point(|(end, _)| *end <= verified);
                scan.report(held.drain(..n).map(|(_, e)| e).collect());
            }
        };
        let mut last_weight = 0u64;
        let result = gz.for_each_chunk(|piece| {
            let (offset, input, chunk) = match piece {
                gzip::Piece::Text {
                    offset,
                    input,
                    bytes,
                } => (offset, input, bytes),
                gzip::Piece::Verified(at) => {
                    verified = at;
                    release(self, &mut held, verified);
                    return ControlFlow::Continue(());
                }
            };
            if (offset >= to && known.is_some()) || self.stopped {
                return ControlFlow::Break(());
            }
            if searching && offset < to {
                let mut chunk = chunk;
                if passing {
                    // The long line ends at this chunk's first `\n`, if it has one.
                    match memchr(b'\n', chunk) {
                        Some(i) => {
                            passing = false;
                            carry_at += i as u64 + 1;
                            chunk = &chunk[i + 1..];
                        }
                        None => {
                            carry_at += chunk.len() as u64;
                            chunk = &[];
                        }
                    }
                }
                carry.extend_from_slice(chunk);
            }
            if carry.len() >= flush_at {
                flush(self, &mut carry, &mut carry_at, &mut held, false);
                if carry.len() > MAX_LINE_SCAN {
                    // What is left is one line longer than 64 MiB: marked, passed over.
                    if carry_at >= from && carry_at < to {
                        let mark = self.long_line(unit, carry_at + 1);
                        held.push((carry_at + carry.len() as u64, mark));
                    }
                    carry_at += carry.len() as u64;
                    carry.clear();
                    passing = true;
                }
                flush_at = carry.len() + BLOCK;
                release(self, &mut held, verified);
                // Oldest first, more than the rest of the limit is never needed: the pass
                // goes on only to verify those held.
                if order == Order::Oldest && matches_in_held(&held) >= self.remaining {
                    searching = false;
                    carry.clear();
                }
            }
            // Progress by compressed share (the decoded length is not known yet), and a
            // cancellation noticed, on every chunk: also while the pass only verifies or
            // passes over a long line.
            let share = input.min(unit.weight);
            self.scanned += share - last_weight.min(share);
            last_weight = share;
            if !self.progress(false) {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if !passing && !self.stopped && searching {
            flush(self, &mut carry, &mut carry_at, &mut held, true);
        }
        // The pass reached the file's end (or its damage), or the range's end in a file
        // verified before; past `trusted` nothing is served.
        let trusted = match result? {
            Some(trusted) => trusted,
            None if self.stopped => return Ok(()),
            None => known.unwrap_or(0),
        };
        if !self.stopped {
            held.retain(|(end, _)| *end <= trusted);
            if order == Order::Newest {
                held.reverse();
            }
            self.report(held.into_iter().map(|(_, e)| e).collect());
        }
        Ok(())
    }
}

/// How many of `held` are matches (not marks).
fn matches_in_held(held: &[(u64, Entry)]) -> usize {
    held.iter().filter(|(_, e)| !e.notice).count()
}

/// Drops the oldest of `held` (source order) until at most `keep` matches are left.
fn keep_newest(held: &mut Vec<(u64, Entry)>, keep: usize) {
    let mut excess = matches_in_held(held).saturating_sub(keep);
    let mut cut = 0;
    while excess > 0 && cut < held.len() {
        if !held[cut].1.notice {
            excess -= 1;
        }
        cut += 1;
    }
    held.drain(..cut);
}
