//! A followed source as readers see it: entries, cursors, history and waiting.
//!
//! A [`Stream`] is fed by its follower's events and answers one question for every reader
//! (long poll, SSE, plain text, history, a first load): "the entries after — or before — this
//! position". Recent entries are kept in memory, encoded once, for fan-out; everything older is
//! read back from the file on disk, which is the history. Readers never subscribe to a
//! broadcast: they read from their own cursor and, when nothing is new, wait on a `watch`
//! channel that the stream bumps on every change. So a slow reader costs nothing while it does
//! not read, and a reconnect is just another read.
//!
//! Invariant (`cache_from`): every entry whose position is after `cache_from` is in the cache,
//! in order, with no holes; entries at or before it are read from disk (or are gone).

mod cursor;
mod disk;
mod read;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;

use crate::tail::{Event, FileState, Generation, Notice, RawLine, line_text};

pub use cursor::{Cursor, CursorError};
pub use read::{Page, Query};

/// How many generations a stream remembers (older cursors get a `gap`).
const MAX_GENERATIONS: usize = 64;

/// A stream's URL-safe identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    /// An id derived from a file name: characters outside `[A-Za-z0-9._-]` become `_`.
    pub fn from_name(name: &str) -> Self {
        let id: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // "." and ".." would be read as path segments by clients; keep ids plain.
        if id.is_empty() || id.chars().all(|c| c == '.') {
            Self(format!("stream{id}"))
        } else {
            Self(id)
        }
    }

    /// `self` with a numeric suffix, to make a colliding id unique.
    pub fn with_suffix(&self, n: usize) -> Self {
        Self(format!("{}-{n}", self.0))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Limits of one stream; each bounds memory a stream holds.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Bytes of recent entries kept in memory (encoded forms counted). Older entries are
    /// served from disk; at the limit the oldest cached entries are dropped.
    pub cache_bytes: usize,
    /// Longest line kept whole (the follower's setting, needed to read history alike).
    pub max_line_bytes: usize,
}

/// One entry, with its encoded forms ready to send.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Generation sequence number; with `point`, the entry's position in stream order.
    pub(crate) gen_seq: u64,
    pub(crate) point: u64,
    /// The entry's cursor.
    pub cursor: Cursor,
    /// The entry as a JSON object (`{"cursor":…,"text":…}`), encoded once for every reader.
    pub json: Bytes,
    /// The entry as a line of plain text, without a `\n`: a line's text, or a notice
    /// rendered as `==> rotated: … <==`.
    pub line: Bytes,
    /// Whether this is a notice rather than a line of the file.
    pub(crate) notice: bool,
}

impl Entry {
    /// A line entry's text (UTF-8, without its `\n`), or `None` for a notice.
    pub fn text(&self) -> Option<&[u8]> {
        (!self.notice).then_some(&self.line[..])
    }

    fn key(&self) -> (u64, u64) {
        (self.gen_seq, self.point)
    }

    fn weight(&self) -> usize {
        // Both forms usually share one buffer (see `Entry::line`).
        self.json.len() + self.line.len() + std::mem::size_of::<Self>()
    }

    fn line(
        life: u32,
        generation: &Generation,
        line: &RawLine,
        max_line_bytes: usize,
        time: Option<u64>,
    ) -> Self {
        let point = line.start + 1;
        let cursor = cursor_for(life, generation, point);
        let (text, truncated) = line_text(&line.head, line.len, max_line_bytes);
        // Both forms share one allocation, sized up front: cached entries are the server's
        // main memory and its main allocation cost (keys, a cursor and a time take under 100
        // bytes; only escapes can outgrow this).
        let mut buf = Vec::with_capacity(2 * text.len() + 100);
        serde_json::to_writer(
            &mut buf,
            &LineJson {
                cursor,
                text: &text,
                truncated,
                time,
            },
        )
        .expect("a struct of strings and integers always serializes");
        let split = buf.len();
        buf.extend_from_slice(text.as_bytes());
        let buf = Bytes::from(buf);
        Self {
            gen_seq: generation.seq,
            point,
            cursor,
            json: buf.slice(..split),
            line: buf.slice(split..),
            notice: false,
        }
    }

    fn notice(life: u32, generation: &Generation, point: u64, notice: &Notice) -> Self {
        let cursor = cursor_for(life, generation, point);
        let json = serde_json::to_vec(&NoticeJson {
            cursor: &cursor.to_string(),
            notice: notice.kind.as_str(),
            detail: &notice.detail,
        })
        .expect("a struct of strings always serializes");
        let line = format!(
            "==> {}: {} <==",
            notice.kind.as_str(),
            notice.detail.replace(['\n', '\r'], " ")
        );
        Self {
            gen_seq: generation.seq,
            point,
            cursor,
            json: json.into(),
            line: line.into(),
            notice: true,
        }
    }
}

#[derive(Serialize)]
struct LineJson<'a> {
    #[serde(serialize_with = "as_text")]
    cursor: Cursor,
    text: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<u64>,
}

/// Writes a cursor's text form straight into the JSON, without an intermediate `String`.
fn as_text<S: serde::Serializer>(cursor: &Cursor, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(cursor)
}

#[derive(Serialize)]
struct NoticeJson<'a> {
    cursor: &'a str,
    notice: &'a str,
    detail: &'a str,
}

fn cursor_for(life: u32, generation: &Generation, point: u64) -> Cursor {
    // The follower reads a generation's first bytes before any of its lines, so the prefix
    // covers every point handed out; 0 is a harmless fallback that can only cause a `gap`.
    Cursor {
        ident: generation.ident,
        check: generation.check(point).unwrap_or(0),
        life,
        seq: generation.seq,
        point,
    }
}

/// The cursor that lies before everything, handed out while a stream has no file yet.
pub const ORIGIN: Cursor = Cursor {
    ident: 0,
    check: 0,
    life: 0,
    seq: 0,
    point: 0,
};

/// A generation as the stream remembers it.
#[derive(Debug, Clone)]
struct GenRecord {
    generation: Arc<Generation>,
    /// The notice that opens it, at point 0.
    opening: Option<Entry>,
}

#[derive(Debug)]
struct Inner {
    gens: VecDeque<GenRecord>,
    cache: VecDeque<Entry>,
    cache_weight: usize,
    /// See the module invariant. `None` until the first generation opens.
    cache_from: Option<(u64, u64)>,
    /// The position of the last entry at or before `cache_from`, when known: a reader there
    /// has nothing left to read on disk, even once the file is gone.
    cache_floor: Option<(u64, u64)>,
    /// This stream's run (see `cursor.rs`): cursors it issued name generations exactly.
    life: u32,
    state: FileState,
}

/// A followed source; see the module documentation.
#[derive(Debug)]
pub struct Stream {
    id: StreamId,
    name: String,
    limits: StreamLimits,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    /// The last answer encoded for a reader, shared with every reader that asks the same
    /// question at the same version (see [`Stream::shared_answer`]).
    shared: Mutex<Option<SharedAnswer>>,
}

/// An encoded answer to "entries after `after`", valid for readers at `version` or later.
#[derive(Debug, Clone)]
struct SharedAnswer {
    after: Cursor,
    version: u64,
    answer: Bytes,
    next: Cursor,
}

/// What `GET /api/streams` says of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The stream's id.
    pub id: String,
    /// The path as given.
    pub name: String,
    /// `following`, `waiting` or `error`.
    pub state: &'static str,
    /// Why it is waiting or in error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Stream {
    /// A stream with no file yet.
    pub fn new(id: StreamId, name: String, limits: StreamLimits) -> Self {
        Self {
            id,
            name,
            limits,
            inner: Mutex::new(Inner {
                gens: VecDeque::new(),
                cache: VecDeque::new(),
                cache_weight: 0,
                cache_from: None,
                cache_floor: None,
                life: cursor::life(),
                state: FileState::Waiting("not looked at yet".into()),
            }),
            changed: watch::Sender::new(0),
            shared: Mutex::new(None),
        }
    }

    /// The stream's id.
    pub fn id(&self) -> &StreamId {
        &self.id
    }

    /// The path as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An answer another reader already encoded for "entries after `after`" at `version`
    /// (the value its `subscribe` receiver saw), and its `next`.
    ///
    /// When a line is appended, every reader waiting at the newest cursor asks the same
    /// question; the first encodes the answer and the rest send the same bytes, so a batch is
    /// encoded once however many clients follow the stream. Entries never change once
    /// appended, so an answer computed at one version is still a correct (prefix) answer at any
    /// later version; the version in the key only makes readers that saw newer entries compute
    /// a fresher answer.
    pub fn shared_answer(&self, after: Cursor, version: u64) -> Option<(Bytes, Cursor)> {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared
            .as_ref()
            .filter(|s| s.after == after && s.version == version)
            .map(|s| (s.answer.clone(), s.next))
    }

    /// Offers an encoded answer to readers asking the same question; see
    /// [`Stream::shared_answer`].
    pub fn share_answer(&self, after: Cursor, version: u64, answer: Bytes, next: Cursor) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.as_ref().is_none_or(|s| s.version <= version) {
            *shared = Some(SharedAnswer {
                after,
                version,
                answer,
                next,
            });
        }
    }

    /// A receiver that is marked changed whenever entries are appended or the state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The stream's state and name, for listings.
    pub fn summary(&self) -> Summary {
        let inner = self.lock();
        let (state, reason) = match &inner.state {
            FileState::Following => ("following", None),
            FileState::Waiting(r) => ("waiting", Some(r.clone())),
            FileState::Error(r) => ("error", Some(r.clone())),
        };
        Summary {
            id: self.id.to_string(),
            name: self.name.clone(),
            state,
            reason,
        }
    }

    /// Whether a file is open and followed.
    pub fn is_following(&self) -> bool {
        self.lock().state == FileState::Following
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way that
        // matters more than stopping the whole stream would, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a follower's events, in order, and wakes waiting readers once.
    pub fn apply(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut inner = self.lock();
        for event in events {
            match event {
                Event::Opened {
                    generation,
                    notice,
                    from,
                } => {
                    let opening = notice
                        .as_ref()
                        .map(|n| Entry::notice(inner.life, &generation, 0, n));
                    if inner.cache_from.is_none() {
                        // The first look starts at the end of the file: its last lines go into
                        // the cache at once, so first loads (`last=N`) are answered from memory.
                        let max = self.limits.max_line_bytes;
                        let mut recent = recent_lines(&generation, from, max).into_iter();
                        inner.cache_from = Some((generation.seq, from));
                        if let Some(floor) = recent.next() {
                            inner.cache_floor = Some((generation.seq, floor.start + 1));
                            let life = inner.life;
                            let mut first_cached = None;
                            for line in recent {
                                first_cached.get_or_insert(line.start);
                                inner.push(Entry::line(life, &generation, &line, max, None));
                            }
                            inner.cache_from = Some((generation.seq, first_cached.unwrap_or(from)));
                        }
                    }
                    if let Some(entry) = &opening {
                        inner.push(entry.clone());
                    }
                    inner.gens.push_back(GenRecord {
                        generation,
                        opening,
                    });
                    while inner.gens.len() > MAX_GENERATIONS {
                        inner.forget_oldest_generation();
                    }
                }
                Event::Lines { generation, lines } => {
                    for line in &lines {
                        let life = inner.life;
                        inner.push(Entry::line(
                            life,
                            &generation,
                            line,
                            self.limits.max_line_bytes,
                            Some(time),
                        ));
                    }
                }
                Event::State(state) => inner.state = state,
            }
        }
        inner.trim(self.limits.cache_bytes);
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
    }
}

impl Inner {
    fn push(&mut self, entry: Entry) {
        self.cache_weight += entry.weight();
        self.cache.push_back(entry);
    }

    /// Drops the oldest cached entries beyond the budget, moving `cache_from` past them.
    fn trim(&mut self, budget: usize) {
        while self.cache_weight > budget && self.cache.len() > 1 {
            let Some(old) = self.cache.pop_front() else {
                break;
            };
            self.cache_weight -= old.weight();
            // Entries up to the dropped one's end are now on disk only. Its end is where the
            // next cached entry of the same generation starts, or the generation's end.
            let end = match self.cache.front() {
                Some(next) if next.gen_seq == old.gen_seq => next.point - 1,
                _ => self
                    .gens
                    .iter()
                    .find(|r| r.generation.seq == old.gen_seq)
                    .map_or(old.point, |r| r.generation.end()),
            };
            self.cache_from = Some((old.gen_seq, end.max(old.point.saturating_sub(1))));
            self.cache_floor = Some(old.key());
        }
    }

    /// Forgets the oldest generation, and any of its entries still cached: a cursor into it
    /// can no longer be resolved, so serving its entries could only send them twice.
    fn forget_oldest_generation(&mut self) {
        let Some(old) = self.gens.pop_front() else {
            return;
        };
        let seq = old.generation.seq;
        while self.cache.front().is_some_and(|e| e.gen_seq <= seq) {
            if let Some(e) = self.cache.pop_front() {
                self.cache_weight -= e.weight();
            }
        }
        if self.cache_from.is_some_and(|cf| cf.0 <= seq) {
            // Everything of later generations is cached; nothing of this one is readable.
            self.cache_from = Some((seq, u64::MAX));
            self.cache_floor = None;
        }
    }
}

/// How many of a file's last lines are put in the cache when it is first opened at its end,
/// and how many bytes of them at most.
const RECENT_LINES: usize = 1000;
const RECENT_BYTES: usize = 1 << 20;

/// The last complete lines before byte `from` of a generation, in file order (read once,
/// when the file is first opened at its end, on the thread applying the first look). The first
/// of them only marks `cache_floor`; the others are cached.
fn recent_lines(generation: &Generation, from: u64, max_line_bytes: usize) -> Vec<RawLine> {
    let Some(file) = generation.file() else {
        return Vec::new();
    };
    let extent = disk::Extent {
        end: from,
        unterminated_ok: false,
    };
    let mut out: Vec<RawLine> = Vec::new();
    let mut before = from;
    let mut bytes = 0;
    while out.len() <= RECENT_LINES && bytes < RECENT_BYTES {
        let Ok((mut lines, at_start)) =
            disk::lines_before(&file, before, extent, max_line_bytes, 64)
        else {
            break;
        };
        bytes += lines.iter().map(|l| l.head.len()).sum::<usize>();
        let Some(first) = lines.first() else { break };
        before = first.start;
        lines.append(&mut out);
        out = lines;
        if at_start {
            break;
        }
    }
    let excess = out.len().saturating_sub(RECENT_LINES + 1);
    out.drain(..excess);
    out
}
