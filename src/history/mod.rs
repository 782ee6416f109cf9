//! A followed file's older history: its rotated files, read as one history with it.
//!
//! The chain (`chain.rs`) lists the rotated siblings of a stream's path, oldest first. Those
//! the stream does not read itself (it keeps the generations it saw rotate, while their files
//! are there) are *members*: history before the stream's first generation. Paging `before=`
//! runs from the stream's first line into the newest member, on to the oldest, then `prev` is
//! `null`; reading `after=` a member's cursor runs forward to the stream's first generation.
//!
//! Member cursors name content, not files (`member.rs`): `life` 0, `seq` `MEMBER_SEQ`, the
//! digest of the member's first decompressed KiB and the usual checksum, so they survive
//! `app.log.1` → `app.log.2.gz`. A cursor that matches no member (deleted by `rotate N`), or
//! several (identical first KiB), gets a `gap`, never a guess.
//!
//! Opened members are kept in one process-wide cache keyed by (device, inode, size, mtime), so
//! a `.gz`'s checkpoints (`gzip.rs`) serve every reader and every stream; it holds at most
//! [`MAX_CACHED`] members (open files), and drops those no chain lists when it is full.
//! Everything here blocks on file I/O: call it off the async workers.

pub(crate) mod chain;
mod found;
pub(crate) mod gzip;
mod member;
pub mod search;
mod seek;
mod sift;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::stream::disk::{Extent, Top, lines_before_bounded, lines_from};
use crate::stream::{Cursor, Entry, FOREIGN_LIFE, Page, Query, Stream};
use crate::tail::{Generation, Notice, NoticeKind};
pub(crate) use found::{Found, found};
use member::Stamp;
pub(crate) use member::{MEMBER_SEQ, Member};
pub(crate) use seek::seek_back;

/// Most rotated files kept open (with their `.gz` checkpoints) across all streams.
pub const MAX_CACHED: usize = 256;

static MEMBERS: LazyLock<Mutex<HashMap<Stamp, Arc<Member>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether `c` points into a rotated file.
pub fn is_member_cursor(c: &Cursor) -> bool {
    c.life == FOREIGN_LIFE && c.seq == MEMBER_SEQ
}

/// Whether a read of `query` involves the chain at all (only reads that start in a member).
pub fn involves(query: &Query) -> bool {
    match query {
        Query::After(c) | Query::Before(c) => is_member_cursor(c),
        Query::Last(_) => false,
    }
}

/// A member and the name it has now.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// The file name, as found.
    pub name: String,
    pub member: Arc<Member>,
}

/// A stream's members, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    pub links: Vec<Link>,
}

/// The members of `stream`'s history (empty when its history does not continue into rotated
/// files), looked for now. Blocking; a reader on the async side takes [`found`] (shared and
/// single-flight) and [`chain_of`] instead.
pub(crate) fn chain(stream: &Stream) -> Chain {
    let Some(rotated) = stream.rotated() else {
        return Chain::default();
    };
    chain_of(
        stream,
        &found::look(Path::new(stream.name()), &rotated.patterns, None),
    )
}

/// The members of `stream`'s history among the rotated files `found`: those the stream does
/// not read itself. In memory.
pub(crate) fn chain_of(stream: &Stream, found: &Found) -> Chain {
    let gens = stream.generations();
    let mut links: Vec<Link> = found
        .links
        .iter()
        .filter(|l| !gens.iter().any(|g| covers(g, &l.member)))
        .cloned()
        .collect();
    // Twins: logrotate writes `NAME.gz` beside the original and unlinks the original after;
    // while both exist the plain one is read (the `.gz` may be partial).
    let plain: Vec<u64> = links
        .iter()
        .filter(|l| !l.member.compressed())
        .map(|l| l.member.generation.ident)
        .collect();
    links.retain(|l| !l.member.compressed() || !plain.contains(&l.member.generation.ident));
    let mut cache = lock();
    // Members no chain lists go when the cache is full, or when the `.gz` checkpoints near
    // their budget (dropping a member frees its index; `gzip.rs` thins indexes past it).
    if cache.len() > MAX_CACHED || gzip::checkpoint_bytes() > gzip::CHECKPOINT_BUDGET / 4 * 3 {
        cache.retain(|_, m| links.iter().any(|l| Arc::ptr_eq(&l.member, m)));
    }
    Chain { links }
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<Stamp, Arc<Member>>> {
    MEMBERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `member` holds the text of generation `g` (whose file the stream let go): the
/// same first bytes, and at least as long.
fn holds(member: &Member, g: &Generation) -> bool {
    let n = g.prefix_len().min(member.head.len());
    n > 0
        && (n == member.head.len() || n >= 256)
        && g.prefix_matches(&member.head)
        && member.len().is_ok_and(|len| len >= g.end())
}

/// A read of a stream cursor into a generation whose file the stream let go, as a read of
/// the rotated file that holds its text now (`app.log.1` compressed to `app.log.2.gz`): the
/// same point in the same text. `None` when the cursor is not such a one, or no member holds
/// the text (the stream's own `gap` answers then). Blocking.
pub(crate) fn rebind(stream: &Stream, chain: &Chain, query: &Query) -> Option<Query> {
    let (Query::After(c) | Query::Before(c)) = query else {
        return None;
    };
    let g = stream.let_go(c)?;
    let mut holders = chain.links.iter().filter(|l| holds(&l.member, &g));
    let link = holders.next()?;
    if holders.next().is_some() {
        return None;
    }
    let moved = cursor(&link.member.generation, c.point);
    Some(match query {
        Query::After(_) => Query::After(moved),
        _ => Query::Before(moved),
    })
}

/// Whether the stream reads `member`'s text itself: the very file a generation still holds
/// (its bytes are the generation's, however few of them it has read yet: a file renamed
/// while the follower drains it, or before it looked), or a generation with the same first
/// bytes whose file it still has (held, or the same inode, which it finds again by identity).
fn covers(g: &Generation, member: &Member) -> bool {
    let same_file = g.id.dev == member.stamp.dev && g.id.ino == member.stamp.ino;
    let held = g.file().is_some();
    // A held file's inode cannot be reused, and a truncation releases it: the same inode is
    // the same text, even when the generation knows none of it yet (an empty file).
    if same_file && held && g.prefix_matches(&member.head) {
        return true;
    }
    let n = g.prefix_len().min(member.head.len());
    let same_text = n > 0 && (n == member.head.len() || n >= 256) && g.prefix_matches(&member.head);
    same_text && (same_file || held)
}

/// A member cursor at `point`.
fn cursor(g: &Generation, point: u64) -> Cursor {
    Cursor {
        ident: g.ident,
        check: g.check(point).unwrap_or(0),
        life: FOREIGN_LIFE,
        seq: MEMBER_SEQ,
        point,
        len: 0,
    }
}

fn notice(kind: NoticeKind, detail: String) -> Notice {
    Notice { kind, detail }
}

impl Chain {
    /// The member and point `c` names, or `None` (gone, ambiguous, or past its end).
    pub(crate) fn resolve(&self, c: &Cursor) -> Option<(usize, u64)> {
        let mut hits = self.links.iter().enumerate().filter(|(_, l)| {
            let g = &l.member.generation;
            g.ident == c.ident && g.check(c.point) == Some(c.check)
        });
        let (i, link) = hits.next()?;
        if hits.next().is_some() {
            return None;
        }
        let len = link.member.len().ok()?;
        (c.point <= len + 1).then_some((i, c.point))
    }

    /// The cursor just past the newest member's last line (`before` it is all of the chain).
    pub(crate) fn end(&self) -> Option<Cursor> {
        let link = self.links.last()?;
        let len = link.member.len().ok()?;
        Some(cursor(&link.member.generation, len + 1))
    }

    /// The opening notice of member `i`: a marker where one file's history begins.
    fn opening(&self, stream: &Stream, i: usize) -> Entry {
        let link = &self.links[i];
        stream.foreign_notice(
            &link.member.generation,
            0,
            &notice(NoticeKind::Rotated, format!("older history: {}", link.name)),
        )
    }

    /// A `gap` after a damaged `.gz`'s last readable line, if it is damaged.
    fn damage(&self, stream: &Stream, i: usize, len: u64) -> Option<Entry> {
        let link = &self.links[i];
        let why = link.member.damage()?;
        Some(stream.foreign_notice(
            &link.member.generation,
            len + 1,
            &notice(
                NoticeKind::Gap,
                format!("{} cannot be read further: {why}", link.name),
            ),
        ))
    }

    /// The last `limit` entries before `from` (`None`: the end of the newest member), in
    /// stream order; `prev` is `None` at the oldest member's start.
    pub(crate) fn read_before(
        &self,
        stream: &Stream,
        from: Option<(usize, u64)>,
        limit: usize,
    ) -> Page {
        let mut older: Vec<Entry> = Vec::new(); // newest first
        let (mut i, mut before, mut with_opening, mut from_end) = match from {
            Some((i, p)) => (i, Some(p.saturating_sub(1)), p > 0, false),
            None => (self.links.len().saturating_sub(1), None, true, true),
        };
        let mut at_start = self.links.is_empty();
        while !at_start && older.len() < limit {
            let member = &self.links[i].member;
            let Ok(len) = member.len() else {
                at_start = true;
                break;
            };
            if from_end {
                older.extend(self.damage(stream, i, len));
            }
            // A damaged `.gz` ends inside a line: that part is not served as a line.
            let extent = Extent {
                end: len,
                unterminated_ok: member.damage().is_none(),
            };
            let room = limit - older.len();
            let Ok((lines, top)) = lines_before_bounded(
                &**member,
                before.unwrap_or(len).min(len),
                extent,
                stream.max_line_bytes(),
                room,
            ) else {
                at_start = true;
                break;
            };
            older.extend(
                lines
                    .iter()
                    .rev()
                    .map(|l| stream.foreign_line(&member.generation, l)),
            );
            if let Top::LongLine { end } = top {
                older.push(stream.foreign_notice(
                    &member.generation,
                    end,
                    &notice(
                        NoticeKind::Gap,
                        "history stops at a line longer than can be looked back over".into(),
                    ),
                ));
                at_start = true;
                break;
            }
            if top != Top::Start || older.len() >= limit {
                break;
            }
            if with_opening {
                older.push(self.opening(stream, i));
            }
            if i == 0 {
                at_start = true;
                break;
            }
            i -= 1;
            before = None;
            with_opening = true;
            from_end = true;
        }
        let overflow = older.len().saturating_sub(limit);
        older.truncate(limit);
        older.reverse();
        let prev = if at_start && overflow == 0 {
            None
        } else {
            older.first().map(|e| e.cursor)
        };
        let next = older
            .last()
            .map(|e| e.cursor)
            .or_else(|| self.end())
            .unwrap_or(crate::stream::ORIGIN);
        Page {
            entries: older,
            next,
            prev,
        }
    }

    /// Up to `limit` entries after `(i, point)`, and whether the newest member's end was
    /// reached (the stream's own history follows).
    pub(crate) fn read_after(
        &self,
        stream: &Stream,
        (mut i, mut from): (usize, u64),
        limit: usize,
    ) -> (Vec<Entry>, bool) {
        let mut out = Vec::new();
        while out.len() < limit {
            let member = &self.links[i].member;
            let Ok(len) = member.len() else {
                return (out, true);
            };
            // A damaged `.gz` ends inside a line: that part is not served as a line.
            let extent = Extent {
                end: len,
                unterminated_ok: member.damage().is_none(),
            };
            let room = limit - out.len();
            let Ok(lines) = lines_from(&**member, from, extent, stream.max_line_bytes(), room)
            else {
                return (out, true);
            };
            let full = lines.len() >= room;
            out.extend(
                lines
                    .iter()
                    .map(|l| stream.foreign_line(&member.generation, l)),
            );
            if full {
                return (out, false);
            }
            out.extend(self.damage(stream, i, len));
            i += 1;
            if i == self.links.len() {
                return (out, true);
            }
            out.push(self.opening(stream, i));
            from = 0;
        }
        (out, false)
    }
}

/// Reads a page that starts at a member cursor (see [`involves`]).
pub(crate) fn read(stream: &Stream, chain: &Chain, query: &Query, limit: usize) -> Page {
    match *query {
        Query::Before(c) => match chain.resolve(&c) {
            Some(at) => {
                let mut page = chain.read_before(stream, Some(at), limit);
                if page.entries.is_empty() {
                    page.next = c;
                }
                page
            }
            None => lost(stream, chain, c),
        },
        Query::After(c) => {
            let (entries, to_stream) = match chain.resolve(&c) {
                Some(at) => chain.read_after(stream, at, limit),
                None => {
                    let mut page = lost(stream, chain, c);
                    if !chain.links.is_empty() {
                        let (rest, end) = chain.read_after(stream, (0, 0), limit);
                        page.entries.extend(rest);
                        (page.entries, end)
                    } else {
                        (page.entries, true)
                    }
                }
            };
            after_page(stream, chain, entries, to_stream, c, limit)
        }
        Query::Last(n) => stream.read(query, n),
    }
}

/// Entries read forward in the chain, continued into the stream's own history when the chain
/// ended.
fn after_page(
    stream: &Stream,
    chain: &Chain,
    mut entries: Vec<Entry>,
    to_stream: bool,
    c: Cursor,
    limit: usize,
) -> Page {
    let mut next = entries.last().map_or(c, |e| e.cursor);
    if to_stream && entries.len() < limit {
        // The stream's history goes on after the newest of its generations whose text a
        // rotated file holds (compressed while cometail ran): the entries it may still cache
        // of those generations were just read from their rotated files.
        let held = stream
            .generations()
            .into_iter()
            .rev()
            .find(|g| g.file().is_none() && chain.links.iter().any(|l| holds(&l.member, g)));
        let from = held.map_or(crate::stream::ORIGIN, |g| stream.after_end(&g));
        let mut page = stream.read(&Query::After(from), limit - entries.len());
        // As in `extend_back`: no `gap` for a let-go generation whose text was just read.
        if let Some(first) = page.entries.first() {
            let newest = chain.links.last().map(|l| &l.member);
            let lost = stream.let_go(&first.cursor);
            if first.line.starts_with(b"==> gap:")
                && newest.zip(lost).is_some_and(|(m, g)| holds(m, &g))
            {
                page.entries.remove(0);
            }
        }
        entries.extend(page.entries);
        next = page.next;
    }
    let prev = entries.first().map(|e| e.cursor).or(Some(c));
    Page {
        entries,
        next,
        prev,
    }
}

/// A page for a member cursor that names no member: a `gap`, and nothing before it.
fn lost(stream: &Stream, chain: &Chain, c: Cursor) -> Page {
    let detail = "the rotated file this cursor points into is no longer there (deleted, or \
                  no longer told apart from another by its first KiB)";
    let generation = chain
        .links
        .first()
        .map(|l| l.member.generation.clone())
        .or_else(|| stream.generations().first().cloned());
    let Some(g) = generation else {
        return Page {
            entries: Vec::new(),
            next: c,
            prev: None,
        };
    };
    let gap = stream.foreign_notice(&g, 0, &notice(NoticeKind::Gap, detail.into()));
    Page {
        next: gap.cursor,
        entries: vec![gap],
        prev: None,
    }
}

/// Continues a page from the stream's own history back into the chain where the stream's
/// history starts (`prev` is `None`): fills the page up to `limit` from the newest member,
/// and sets `prev` so that paging goes on.
pub(crate) fn extend_back(stream: &Stream, chain: &Chain, mut page: Page, limit: usize) -> Page {
    if page.prev.is_some() {
        return page;
    }
    if chain.links.is_empty() {
        return page;
    }
    // The stream's history may start with a `gap` for a generation it let go whose text the
    // newest member holds (compressed while cometail ran): that text is not lost, it follows.
    if let Some(first) = page.entries.first() {
        let newest = chain.links.last().map(|l| &l.member);
        let lost = stream.let_go(&first.cursor);
        if first.line.starts_with(b"==> gap:")
            && newest.zip(lost).is_some_and(|(m, g)| holds(m, &g))
        {
            page.entries.remove(0);
        }
    }
    if page.entries.len() >= limit {
        page.prev = chain.end();
        return page;
    }
    let older = chain.read_before(stream, None, limit - page.entries.len());
    if page.entries.is_empty() && older.entries.is_empty() {
        page.prev = older.prev;
        return page;
    }
    let mut entries = older.entries;
    entries.append(&mut page.entries);
    Page {
        next: page.next,
        prev: older.prev,
        entries,
    }
}
