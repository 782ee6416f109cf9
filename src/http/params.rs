//! Query parameters of the reading endpoints, validated into ready-to-use values.
//!
//! Every rule of the contract's "Errors" table for parameters lives here, so that `/lines`,
//! `/events`, `/raw` and the multiplexed endpoint agree on what is valid.

use std::collections::HashMap;
use std::time::Duration;

use super::error::ApiError;
use crate::stream::{Cursor, Query};

/// Most entries one page may hold (`limit`, `last`).
pub(crate) const MAX_LIMIT: usize = 10_000;
/// Default `limit`.
pub(crate) const DEFAULT_LIMIT: usize = 1_000;
/// Longest a long poll may be held (`wait`).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(120);

/// What a reading request asked for.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    /// Where to read.
    pub query: Query,
    /// Most entries in one answer.
    pub limit: usize,
    /// How long to hold the request when nothing is new (long poll).
    pub wait: Duration,
    /// Keep the response open and stream new entries (`/raw?follow=1`).
    pub follow: bool,
}

/// Parses a cursor parameter or header value.
///
/// # Errors
/// An empty or malformed cursor is a bad request.
pub(crate) fn cursor(name: &str, value: &str) -> Result<Cursor, ApiError> {
    if value.is_empty() {
        return Err(ApiError::BadRequest(format!("`{name}` is empty")));
    }
    value
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("`{name}` is not a valid cursor")))
}

fn number(params: &HashMap<String, String>, name: &str, max: u64) -> Result<Option<u64>, ApiError> {
    let Some(raw) = params.get(name) else {
        return Ok(None);
    };
    let n: u64 = raw.parse().map_err(|_| {
        ApiError::BadRequest(format!("`{name}` must be a whole number from 0 to {max}"))
    })?;
    if n > max {
        return Err(ApiError::BadRequest(format!(
            "`{name}` must be at most {max}"
        )));
    }
    Ok(Some(n))
}

/// Validates the parameters of `/lines`, `/raw` and `/events`.
///
/// `after_override` is a `Last-Event-ID` header value, which wins over `after`.
///
/// # Errors
/// Any parameter out of its range, a malformed cursor, conflicting selections.
pub(crate) fn selection(
    params: &HashMap<String, String>,
    after_override: Option<&str>,
    default_lines: usize,
) -> Result<Selection, ApiError> {
    let last = number(params, "last", MAX_LIMIT as u64)?;
    // `last=N` alone asks for N entries: `limit` defaults to N then, not to 1,000, so nothing
    // below the documented maximum is cut silently. An explicit `limit` still wins.
    let limit = match number(params, "limit", MAX_LIMIT as u64)? {
        Some(0) => return Err(ApiError::BadRequest("`limit` must be at least 1".into())),
        Some(n) => usize::try_from(n).unwrap_or(MAX_LIMIT),
        None => last
            .and_then(|n| usize::try_from(n).ok())
            .map_or(DEFAULT_LIMIT, |n| n.max(1)),
    };
    let wait = number(params, "wait", MAX_WAIT.as_secs())?;
    let after = match after_override {
        Some(id) => Some(cursor("Last-Event-ID", id)?),
        None => params
            .get("after")
            .map(|v| cursor("after", v))
            .transpose()?,
    };
    let before = params
        .get("before")
        .map(|v| cursor("before", v))
        .transpose()?;
    let chosen = usize::from(params.contains_key("after"))
        + usize::from(before.is_some())
        + usize::from(last.is_some());
    if chosen > 1 {
        return Err(ApiError::BadRequest(
            "give at most one of `after`, `before` and `last`".into(),
        ));
    }
    if wait.is_some() && after.is_none() {
        return Err(ApiError::BadRequest("`wait` needs `after`".into()));
    }
    let follow = match params.get("follow").map(String::as_str) {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err(ApiError::BadRequest("`follow` must be 1 or 0".into())),
    };
    let query = match (after, before, last) {
        (Some(c), _, _) => Query::After(c),
        (_, Some(c), _) => Query::Before(c),
        (_, _, Some(n)) => Query::Last(usize::try_from(n).unwrap_or(MAX_LIMIT)),
        _ => Query::Last(default_lines),
    };
    let query = match query {
        Query::Last(n) => Query::Last(n.min(limit)),
        q => q,
    };
    Ok(Selection {
        query,
        limit,
        wait: Duration::from_secs(wait.unwrap_or(0)),
        follow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_to_the_last_default_lines() {
        let s = selection(&params(&[]), None, 10).expect("valid");
        assert_eq!(
            (s.query, s.limit, s.wait),
            (Query::Last(10), DEFAULT_LIMIT, Duration::ZERO)
        );
    }

    #[test]
    fn contract_rules_for_bad_input() {
        let bad: &[&[(&str, &str)]] = &[
            &[("after", "")],
            &[("after", "nope")],
            &[("wait", "5")],
            &[("limit", "-1")],
            &[("limit", "0")],
            &[("limit", "x")],
            &[("last", "-3")],
            &[("wait", "121"), ("after", "0000000000000000000000000")],
            &[("last", "1"), ("before", "0000000000000000000000000")],
            &[("follow", "yes")],
            &[("follow", "")],
        ];
        for case in bad {
            assert!(
                matches!(
                    selection(&params(case), None, 10),
                    Err(ApiError::BadRequest(_))
                ),
                "{case:?}"
            );
        }
        let ok = selection(&params(&[("last", "0")]), None, 10).expect("last=0 is valid");
        assert_eq!(ok.query, Query::Last(0));
        let all = selection(&params(&[("last", "5000")]), None, 10).expect("valid");
        assert_eq!(
            (all.query, all.limit),
            (Query::Last(5000), 5000),
            "no hidden cap"
        );
        let capped = selection(&params(&[("last", "5000"), ("limit", "10")]), None, 10);
        assert_eq!(capped.expect("valid").query, Query::Last(10));
    }

    proptest! {
        #[test]
        fn any_parameters_give_an_answer_not_a_panic(
            keys in proptest::collection::vec("(after|before|last|limit|wait|follow|x)", 0..5),
            values in proptest::collection::vec("\\PC{0,30}", 5),
            header in proptest::option::of("\\PC{0,40}"),
        ) {
            let p: HashMap<String, String> = keys.into_iter().zip(values).collect();
            let _ = selection(&p, header.as_deref(), 10);
        }
    }
}
