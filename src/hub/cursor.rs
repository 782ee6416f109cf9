//! Hub cursors: the standalone cursor's five fields and text form, filled from the engine.
//!
//! | field | in a hub |
//! | --- | --- |
//! | `ident` | digest of the JetStream stream's name and creation time: which log |
//! | `check` | checksum of the batch's payload: which message (a reused sequence differs) |
//! | `life` | derived from `ident`, so the same on every hub and across restarts |
//! | `seq` | the batch's JetStream sequence |
//! | `point` | the entry's index in the batch plus one (0: before the batch) |
//!
//! Every field is a function of engine state, so every hub mints the same text for the same
//! entry. Positions `(seq, point)` order entries as the engine stores them.

use crate::stream::Cursor;

const FNV64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a: stable across processes and versions, unlike std's seeded hashers.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV64_PRIME);
    }
    h
}

/// The identity of a stream created at `created`.
/// (`created`: nanoseconds since the epoch).
pub(super) fn ident(name: &str, created: i128) -> u64 {
    let h = fnv(name.as_bytes(), FNV64_OFFSET);
    fnv(&created.to_le_bytes(), h).max(1)
}

/// A batch's checksum.
pub(super) fn check(payload: &[u8]) -> u32 {
    let h = fnv(payload, FNV64_OFFSET);
    (h ^ (h >> 32)) as u32
}

/// The cursor of `point` in the batch at `seq`.
pub(super) fn at(ident: u64, seq: u64, point: u64, check: u32) -> Cursor {
    Cursor {
        ident,
        check,
        life: (ident as u32) | 1,
        seq,
        point,
        len: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_engine_state_gives_the_same_cursor() {
        let created = 1_796_160_025_000_000_000;
        let a = at(ident("COMETAIL", created), 7, 3, check(b"x"));
        let b = at(ident("COMETAIL", created), 7, 3, check(b"x"));
        assert_eq!(a.to_string(), b.to_string());
        assert_ne!(ident("COMETAIL", created), ident("OTHER", created));
        assert_ne!(check(b"x"), check(b"y"));
    }
}
