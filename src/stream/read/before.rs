//! Reading backwards: the last entries before a position, from the cache and from disk (the
//! same snapshot-read-relock discipline as the forward read in `mod.rs`).

use super::*;

impl Stream {
    /// The last `limit` entries before `end` (`None`: the end of the stream).
    pub(super) fn read_before(&self, end: Option<Pos>, limit: usize, disk: bool) -> Option<Page> {
        self.read_back(end, limit, disk, None).map(|(page, _)| page)
    }

    /// [`Self::read_before`], with a sieve: the last `limit` entries before `end` that pass
    /// it (notices always do), read back until then, the start of the history or the sieve's
    /// budget. `prev` is then before the oldest entry *examined* (`None` at the start), and
    /// the second value is that oldest position examined, also at the start (where an older
    /// history, the rotated files', goes on). Without a sieve, it is the page's first entry.
    pub(super) fn read_back(
        &self,
        end: Option<Pos>,
        limit: usize,
        disk: bool,
        mut sieve: Option<&mut Sieve<'_>>,
    ) -> Option<(Page, Option<Cursor>)> {
        let inner = self.lock();
        let Some(cf) = inner.cache_from else {
            let page = Page {
                entries: Vec::new(),
                next: ORIGIN,
                prev: None,
            };
            return Some((page, None));
        };
        let head = inner.cache.back().map_or(cf, Entry::key);
        let next = position_cursor(&inner, head);
        // `next` is after the newest entry returned; for the last entries through a sieve,
        // after the newest examined: the head.
        let sieved = sieve.is_some();
        let newest = |entries: &[Entry]| match entries.last() {
            Some(e) if end.is_some() || !sieved => e.cursor,
            _ => next,
        };
        let stop = inner
            .cache
            .partition_point(|e| end.is_none_or(|end| e.key() < end));
        let mut budget = Budget::new(limit);
        let mut first = stop;
        let cached: Vec<Entry> = match sieve.as_deref_mut() {
            None => {
                while first > 0 && budget.fits(stop - first, inner.cache[first - 1].json.len()) {
                    first -= 1;
                    budget.take(inner.cache[first].json.len());
                }
                inner.cache.range(first..stop).cloned().collect()
            }
            Some(s) => {
                // Newest first, each examined; `first` stays at the oldest one handled.
                let mut kept = Vec::new();
                while first > 0 && kept.len() < limit && !s.spent() {
                    let e = &inner.cache[first - 1];
                    if s.entry(e) {
                        if !budget.fits(kept.len(), e.json.len()) {
                            break;
                        }
                        budget.take(e.json.len());
                        kept.push(e.clone());
                    }
                    first -= 1;
                }
                kept.reverse();
                kept
            }
        };
        // The oldest entry examined: with a sieve, matched or not.
        let mut examined = if sieved {
            inner.cache.range(first..stop).next().map(|e| e.cursor)
        } else {
            cached.first().map(|e| e.cursor)
        };
        // Where the disk part would start: lines of generation `g` starting before byte
        // `before`, and `g`'s opening notice if it comes before `end`.
        let (mut g, mut before, mut with_opening) = match end {
            Some(end) if end <= cf => (end.0, end.1.saturating_sub(1), end.1 > 0),
            _ => (cf.0, cf.1, true),
        };
        let full = cached.len() >= limit || first > 0;
        if full || !history_before(&inner, g, before, with_opening) {
            let prev = match examined {
                Some(oldest) if full => Some(oldest),
                // `last=0`: nothing returned, but history may lie before the end.
                None if limit == 0
                    && (!inner.cache.is_empty()
                        || history_before(&inner, g, before, with_opening)) =>
                {
                    // Just past the newest generation's last byte, so that `before` it
                    // includes the very last line.
                    match end {
                        Some(e) => Some(position_cursor(&inner, e)),
                        None => inner
                            .gens
                            .back()
                            .map(|r| cursor_for(inner.life, &r.generation, r.generation.end() + 1)),
                    }
                }
                _ => None,
            };
            let next = newest(&cached);
            let page = Page {
                entries: cached,
                next,
                prev,
            };
            return Some((page, examined));
        }
        if !disk {
            return None;
        }
        let gens: Vec<GenRecord> = inner.gens.iter().cloned().collect();
        let life = inner.life;
        drop(inner);

        let mut older: Vec<Entry> = Vec::new(); // in reverse stream order
        let mut at_start = false;
        // Where a gap stands when generation `g` cannot be read: lines before it are lost.
        let mut gap_at = before;
        loop {
            let Some(rec) = gens.iter().find(|r| r.generation.seq == g) else {
                at_start = true;
                break;
            };
            let room = limit - cached.len() - older.len();
            if room == 0 {
                break;
            }
            let in_cache_gen = g == cf.0;
            let extent = Extent {
                end: if in_cache_gen {
                    cf.1
                } else {
                    rec.generation.end()
                },
                unterminated_ok: !in_cache_gen && rec.generation.finished(),
            };
            let Some(file) = self.file_of(&rec.generation, reusable(&gens, &rec.generation)) else {
                if gap_at > 0 {
                    older.push(history_gap(life, &rec.generation, gap_at));
                }
                at_start = true;
                break;
            };
            if let Some(s) = sieve.as_deref_mut() {
                // Sifted back from `before` to the generation's start, grouped as a forward
                // read from there groups.
                let start = rec.generation.start();
                let reading = self.reading(&rec.splits);
                let Ok(back) = sift_before(&file, start, before, extent, reading, room, s) else {
                    at_start = true;
                    break;
                };
                older.extend(
                    (back.records.iter().rev()).map(|r| self.disk_entry(life, &rec.generation, r)),
                );
                if back.from < before.min(extent.end) {
                    examined = Some(cursor_for(life, &rec.generation, back.from + 1));
                }
                if back.from > start || older.len() + cached.len() >= limit || s.spent() {
                    break;
                }
            } else {
                let Ok((mut kept, top)) =
                    self.back_unsifted(&file, rec, (before, extent), life, room)
                else {
                    at_start = true;
                    break;
                };
                older.append(&mut kept);
                if let Top::LongLine { end } = top {
                    // History stops at a line longer than the look-back, and says so.
                    older.push(long_line_gap(life, &rec.generation, end));
                    at_start = true;
                    break;
                }
                if top != Top::Start || older.len() + cached.len() >= limit {
                    break;
                }
            }
            if with_opening {
                if let Some(opening) = &rec.opening {
                    examined = Some(opening.cursor);
                    older.push(opening.clone());
                }
            }
            // On to the previous generation: its file is held, found again, or a gap.
            match gens.iter().rev().find(|r| r.generation.seq < g) {
                Some(p) => {
                    g = p.generation.seq;
                    before = p.generation.end();
                    gap_at = before + 1;
                    with_opening = true;
                }
                None => {
                    at_start = true;
                    break;
                }
            }
        }
        older.reverse();
        let mut overflow = (older.len() + cached.len()).saturating_sub(limit);
        // History read from disk is bounded in bytes as well as entries (at least one entry).
        let mut bytes: usize = cached.iter().map(|e| e.json.len()).sum();
        let mut keep = 0;
        for e in older.iter().skip(overflow).rev() {
            if keep + cached.len() > 0 && bytes + e.json.len() > PAGE_BYTES {
                break;
            }
            bytes += e.json.len();
            keep += 1;
        }
        overflow = older.len() - keep;
        let mut entries: Vec<Entry> = older.into_iter().skip(overflow).collect();
        entries.extend(cached);
        if !sieved || overflow > 0 {
            examined = entries.first().map(|e| e.cursor);
        }
        let prev = if at_start && overflow == 0 {
            None
        } else {
            examined
        };
        let next = newest(&entries);
        let page = Page {
            entries,
            next,
            prev,
        };
        Some((page, examined))
    }

    /// The entry of a record read back from a generation's file.
    fn disk_entry(&self, life: u32, generation: &Generation, record: &Record) -> Entry {
        Entry::record(life, generation, record, self.limits.max_line_bytes, None)
    }

    /// The last `room` entries before byte `before` of a generation, newest first, read
    /// without a sieve, and what lies above them.
    fn back_unsifted(
        &self,
        file: &File,
        rec: &GenRecord,
        (before, extent): (u64, Extent),
        life: u32,
        room: usize,
    ) -> std::io::Result<(Vec<Entry>, Top)> {
        let (records, mut top) =
            records_before(file, before, extent, self.reading(&rec.splits), room)?;
        let start = rec.generation.start();
        let entry = |record: &Record| self.disk_entry(life, &rec.generation, record);
        let mut kept: Vec<Entry> = Vec::new(); // newest first
        let mut crossed = false;
        for record in records.iter().rev() {
            let entry = entry(record);
            if entry.point <= start {
                crossed = true;
                break;
            }
            kept.push(entry);
        }
        if crossed {
            // A segment's history stops at its start: what lies before is an earlier
            // generation's. Its first lines may have been grouped with that generation's
            // last record here, where live they began a generation: read them again
            // forwards from the start, as they were delivered (at most one record).
            let boundary = kept.last().map_or(before.min(extent.end), |e| e.point - 1);
            let head = Extent {
                end: boundary,
                unterminated_ok: false,
            };
            let reading = self.reading(&rec.splits);
            let first = records_from(file, start, head, reading, (usize::MAX, None))?;
            kept.extend(first.iter().rev().map(entry));
            top = Top::Start;
        }
        Ok((kept, top))
    }
}

/// Whether anything can be read before byte `before` of generation `g` (counting its opening
/// notice when `with_opening`) or in an earlier generation.
fn history_before(inner: &Inner, g: u64, before: u64, with_opening: bool) -> bool {
    // A generation whose file was let go may still be found again by identity (or its loss
    // must be told with a gap): either way the answer needs the disk, never a silent start.
    let rec = inner.gens.iter().find(|r| r.generation.seq == g);
    let here =
        rec.is_some_and(|r| before > r.generation.start() || (with_opening && r.opening.is_some()));
    here || inner.gens.iter().any(|r| r.generation.seq < g)
}
