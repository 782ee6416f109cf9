//! `download=1` on `/raw` and `/lines`: the answer as a file to save
//! (`Content-Disposition: attachment`), named after the stream and the range asked for.

use std::collections::HashMap;

use axum::http::HeaderValue;
use axum::http::header::CONTENT_DISPOSITION;
use axum::response::Response;

use super::error::ApiError;

/// The `Content-Disposition` value `download` asks for, if any: `attachment;
/// filename="<id>[-<at>][-<until>].<ext>"`, with every character outside `[A-Za-z0-9._-]`
/// made `_` (ids already are; `at` may hold `:` and `+`), so the header needs no quoting.
///
/// # Errors
/// `download` other than `1`, `true`, `0`, `false`.
pub(super) fn disposition(
    params: &HashMap<String, String>,
    id: &str,
    ext: &str,
) -> Result<Option<HeaderValue>, ApiError> {
    match params.get("download").map(String::as_str) {
        None | Some("0" | "false") => return Ok(None),
        Some("1" | "true") => {}
        Some(_) => return Err(ApiError::BadRequest("`download` must be 1 or 0".into())),
    }
    let mut name = id.to_owned();
    for key in ["at", "until"] {
        if let Some(v) = params.get(key) {
            name.push('-');
            name.push_str(v);
        }
    }
    let name: String = name
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let value = format!("attachment; filename=\"{name}.{ext}\"");
    Ok(HeaderValue::from_str(&value).ok())
}

/// Adds the header to `response` when there is one.
pub(super) fn attach(mut response: Response, value: Option<HeaderValue>) -> Response {
    if let Some(v) = value {
        response.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn names_carry_the_range_and_only_safe_characters() {
        let p = params(&[("download", "1"), ("at", "2026-12-01T14:05:00+01:00")]);
        let v = disposition(&p, "app.log", "log")
            .expect("valid")
            .expect("asked");
        assert_eq!(
            v.to_str().expect("ascii"),
            "attachment; filename=\"app.log-2026-12-01T14_05_00_01_00.log\""
        );
        assert!(
            disposition(&params(&[]), "a", "log")
                .expect("valid")
                .is_none()
        );
        assert!(
            disposition(&params(&[("download", "0")]), "a", "log")
                .expect("valid")
                .is_none()
        );
        assert!(disposition(&params(&[("download", "yes")]), "a", "log").is_err());
        let evil = params(&[("download", "1"), ("until", "\"\r\nX: y")]);
        let v = disposition(&evil, "a", "json")
            .expect("valid")
            .expect("asked");
        assert_eq!(
            v.to_str().expect("ascii"),
            "attachment; filename=\"a-___X__y.json\""
        );
    }
}
