//! Composite positions of a multi-stream read (`pages.rs`): one cut per stream, joined by `,`.
//! A cut is `ID:C` (just after entry `C`) or `ID~C` (just before it). Stream ids never hold
//! `:`, and a hub's ids hold `~` (`HOST~FILE`) while cursors hold neither, so a component is
//! split at its last separator.

use super::error::ApiError;
use super::params::cursor;
use crate::stream::Cursor;

/// A cut in one stream: between two entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// Just after this entry (`ID:C`).
    After(Cursor),
    /// Just before this entry (`ID~C`).
    Before(Cursor),
}

impl Cut {
    fn write(self, id: &str, out: &mut String) {
        let (sep, c) = match self {
            Self::After(c) => (':', c),
            Self::Before(c) => ('~', c),
        };
        out.push_str(id);
        out.push(sep);
        out.push_str(&c.to_string());
    }
}

/// Parses a composite naming every stream of `ids` once.
pub(super) fn composite(value: &str, name: &str, ids: &[String]) -> Result<Vec<Cut>, ApiError> {
    let mut cuts: Vec<Option<Cut>> = vec![None; ids.len()];
    for part in value.split(',').filter(|s| !s.is_empty()) {
        // The last separator: cursors hold neither, and a hub's ids hold `~` (HOST~FILE).
        let at = part.rfind([':', '~']).ok_or_else(|| {
            ApiError::BadRequest(format!("`{name}` must be ID:CURSOR or ID~CURSOR pairs"))
        })?;
        let (id, rest) = part.split_at(at);
        let c = cursor(name, &rest[1..])?;
        let Some(i) = ids.iter().position(|s| s == id) else {
            return Err(ApiError::BadRequest(format!(
                "`{name}` names `{id}`, which is not one of `streams`"
            )));
        };
        if cuts[i].is_some() {
            return Err(ApiError::BadRequest(format!("`{name}` names `{id}` twice")));
        }
        cuts[i] = Some(if rest.starts_with(':') {
            Cut::After(c)
        } else {
            Cut::Before(c)
        });
    }
    cuts.into_iter()
        .zip(ids)
        .map(|(c, id)| {
            c.ok_or_else(|| ApiError::BadRequest(format!("`{name}` has no position for `{id}`")))
        })
        .collect()
}

/// The composite naming `cuts`, one per stream of `ids`, in their order.
pub(super) fn composite_text(ids: &[String], cuts: &[Cut]) -> String {
    let mut out = String::new();
    for (i, (id, cut)) in ids.iter().zip(cuts).enumerate() {
        if i > 0 {
            out.push(',');
        }
        cut.write(id, &mut out);
    }
    out
}
