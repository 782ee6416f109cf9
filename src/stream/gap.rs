//! The `gap` notices readers get where entries cannot be served: a generation that is gone,
//! the top of history that cannot be read, a line longer than the look-back, a cursor that
//! does not resolve. Every one says why, so no read ends or skips silently.

use super::disk::LOOK_BACK;
use super::read::generation;
use super::resolve::Pos;
use super::{Entry, Inner, ORIGIN};
use crate::tail::{Generation, Notice, NoticeKind};

/// A `gap` notice at the top of history: lines before `point` of `generation` were there but
/// cannot be read any more (the file was deleted, or overwritten by truncation).
pub(super) fn history_gap(life: u32, generation: &Generation, point: u64) -> Entry {
    let detail = "earlier lines of this stream are no longer available".to_owned();
    Entry::notice(
        life,
        generation,
        point,
        &Notice {
            kind: NoticeKind::Gap,
            detail,
        },
    )
}

/// A `gap` notice at the top of history: a line longer than [`LOOK_BACK`] ends at `end`; it
/// and the lines before it are not read from disk.
pub(super) fn long_line_gap(life: u32, generation: &Generation, end: u64) -> Entry {
    let detail = format!(
        "a line longer than {} MiB ends at byte {end}; it and the lines before it are not read \
         back from history",
        LOOK_BACK >> 20
    );
    Entry::notice(
        life,
        generation,
        end,
        &Notice {
            kind: NoticeKind::Gap,
            detail,
        },
    )
}

pub(super) fn gap(inner: &Inner, at: Pos, detail: String) -> Entry {
    match generation(inner, at.0) {
        Some(g) => Entry::notice(
            inner.life,
            g,
            at.1,
            &Notice {
                kind: NoticeKind::Gap,
                detail,
            },
        ),
        None => unreachable_gap(&detail),
    }
}

/// A gap at a position whose generation is unknown cannot be built from a generation; this
/// only happens when every generation was forgotten, and then there is nothing to resume from.
fn unreachable_gap(detail: &str) -> Entry {
    let json = serde_json::json!({"cursor": ORIGIN.to_string(), "notice": "gap", "detail": detail});
    Entry {
        gen_seq: 0,
        point: 0,
        cursor: ORIGIN,
        json: json.to_string().into(),
        line: format!("==> gap: {detail} <==").into(),
        notice: true,
        facts: super::Facts::default(),
        arrival: None,
        // Never cached.
        alloc: 0,
    }
}
