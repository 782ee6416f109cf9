//! `at=` into a stream's rotated files: when the stream's own generations hold nothing timed
//! wholly before the time (`TimeSeek::open_back`), the search goes on into its members, newest
//! first: a member without any timed line is passed over, one holding a record at or after
//! the time is the answer so far, and one holding a timed record before the time ends the
//! search (older files are older still).
//! `.gz` members are searched through their decompressing reader (each probe may decompress
//! from a checkpoint), plain ones by offset.

use std::io;

use super::member::Member;
use super::{chain, cursor};
use crate::stream::disk::ReadAt as _;
use crate::stream::{Stream, TimeSeek};

/// A member's text, as the time search reads it.
struct Text<'a>(&'a Member);

impl crate::parse::seek::ReadAt for Text<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_full_at(buf, offset)
    }
}

/// `found` (the stream's own search) continued into its rotated files when it is open back.
/// Blocking.
///
/// # Errors
/// A read failed.
pub(crate) fn seek_back(stream: &Stream, target: i64, mut found: TimeSeek) -> io::Result<TimeSeek> {
    if !found.open_back {
        return Ok(found);
    }
    for link in chain(stream).links.iter().rev() {
        let member = &link.member;
        let s = stream.seek_in(&Text(member), member.len()?, target)?;
        found.probes += s.probes;
        found.bytes += s.bytes;
        if s.found {
            found.cursor = cursor(&member.generation, s.offset);
            found.found = true;
        }
        if s.earlier {
            // A timed record before the time: older files are older still.
            found.open_back = false;
            break;
        }
    }
    Ok(found)
}
