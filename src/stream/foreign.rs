//! Entries for bytes the stream does not follow itself: the rotated files of its history
//! (`history/`). They are built by the same rule as every entry (`Entry::record`), so a line read
//! from `app.log.2.gz` is the entry it was when it was live, except for its cursor, which names
//! the rotated file by content (`life` 0, see `history`).

use std::sync::Arc;

use super::entry::now_ms;
use super::records::{Line, Record, Splits};
use super::{Entry, Stream};
use crate::tail::{Generation, Notice, RawLine};

/// The `life` of cursors into rotated files: never a run's (those are odd), and only
/// [`ORIGIN`](super::ORIGIN) otherwise has it, whose `seq` is 0.
pub(crate) const FOREIGN_LIFE: u32 = 0;

impl Stream {
    /// The entry of `line`, read from a rotated file whose cursors `generation` makes.
    pub(crate) fn foreign_line(&self, generation: &Generation, line: &RawLine) -> Entry {
        self.single_line(FOREIGN_LIFE, generation, line)
    }

    /// A notice at `point` of a rotated file.
    pub(crate) fn foreign_notice(
        &self,
        generation: &Generation,
        point: u64,
        notice: &Notice,
    ) -> Entry {
        Entry::notice(FOREIGN_LIFE, generation, point, notice)
    }

    /// The longest line kept whole.
    pub(crate) fn max_line_bytes(&self) -> usize {
        self.limits.max_line_bytes
    }

    /// The generations the stream reads itself with the file each is read from now, by the
    /// rule its own reads follow: held, or let go and found again by identity (a renamed
    /// `app.log.2`) unless a newer generation took its bytes over (truncation). Those with
    /// no file are left out. Blocking (it may read the directory): call it off the async
    /// workers.
    pub(crate) fn readable_generations(&self) -> Vec<(Arc<Generation>, Arc<std::fs::File>)> {
        let gens: Vec<(Arc<Generation>, bool)> = {
            let inner = self.lock();
            inner
                .gens
                .iter()
                .map(|r| {
                    let own = super::resolve::reusable(&inner.gens, &r.generation);
                    (r.generation.clone(), own)
                })
                .collect()
        };
        gens.into_iter()
            .filter_map(|(g, own)| {
                let file = g.file().or_else(|| {
                    own.then(|| super::resolve::reopen(&self.name, &g))
                        .flatten()
                })?;
                Some((g, file))
            })
            .collect()
    }

    /// The generations the stream reads itself (held, or found again by identity).
    pub(crate) fn generations(&self) -> Vec<Arc<Generation>> {
        self.lock()
            .gens
            .iter()
            .map(|r| r.generation.clone())
            .collect()
    }
}

/// Where a stream's older history lies beyond its own generations: its rotated siblings,
/// found by name (`history::chain`), and the files these extra globs match.
#[derive(Debug, Clone, Default)]
pub struct Rotated {
    /// `--rotated` globs.
    pub patterns: Vec<glob::Pattern>,
}

impl Stream {
    /// Lets history continue into the rotated files (file sources only; set once).
    pub fn set_rotated(&self, rotated: Rotated) {
        let _ = self.rotated.set(rotated);
    }

    /// Where older history lies, if the stream's history continues into rotated files.
    pub fn rotated(&self) -> Option<&Rotated> {
        self.rotated.get()
    }
}

impl Stream {
    /// The generation `c` names exactly (issued by this run), if the stream has let its file
    /// go: its text may be in a rotated file now (`history::rebind`).
    pub(crate) fn let_go(&self, c: &super::Cursor) -> Option<Arc<Generation>> {
        let inner = self.lock();
        if c.life != inner.life {
            return None;
        }
        inner
            .gens
            .iter()
            .find(|r| r.generation.seq == c.seq && r.generation.ident == c.ident)
            .filter(|r| r.generation.file().is_none())
            .map(|r| r.generation.clone())
    }
}

impl Stream {
    /// The cursor after every entry of `generation` (one of this run's): reading after it
    /// goes on in the next generation.
    pub(crate) fn after_end(&self, generation: &Generation) -> super::Cursor {
        super::cursor_for(self.life(), generation, generation.end() + 1)
    }

    /// This run's `life`, which the cursors of its own generations carry.
    pub(crate) fn life(&self) -> u32 {
        self.lock().life
    }

    /// A notice at `point` of `generation`, with cursors of `life` (a search's mark).
    pub(crate) fn notice_of(
        &self,
        life: u32,
        generation: &Generation,
        point: u64,
        notice: &Notice,
    ) -> Entry {
        Entry::notice(life, generation, point, notice)
    }

    /// The entry of `line` of `generation`, with cursors of `life` (a search's match).
    pub(crate) fn entry_of(&self, life: u32, generation: &Generation, line: &RawLine) -> Entry {
        self.single_line(life, generation, line)
    }

    /// The entry of one line on its own (rotated files and search matches are read line by
    /// line: their continuation lines are entries of their own), by the rule every entry
    /// follows (`Entry::record`).
    fn single_line(&self, life: u32, generation: &Generation, line: &RawLine) -> Entry {
        let max = self.limits.max_line_bytes;
        let line = Line::read(
            line.clone(),
            &self.parser,
            now_ms(),
            max,
            &Splits::default(),
        );
        Entry::record(life, generation, &Record::one(line, false), max, None)
    }
}
