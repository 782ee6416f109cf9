//! How hosts and files become NATS subject tokens, and subjects become API ids.
//!
//! A file's subject is `<prefix>.<host>.<file>`. Both tokens come from stream ids (the
//! alphabet `[A-Za-z0-9._-]`, see [`StreamId::from_name`]) with `.` written as `=`: `=` is
//! outside the id alphabet, so the mapping is injective, and it is legal in subjects and in KV
//! keys. The API id of a file is `<host>~<file>`; `~` is in neither alphabet, so the split is
//! unambiguous, and a side may be `*` to name a view over several hosts or files.

use crate::stream::StreamId;

/// A host name as a subject token (`web-1.example.com` → `web-1=example=com`).
pub fn token(id: &str) -> String {
    StreamId::from_name(id).as_str().replace('.', "=")
}

/// The id a subject token stands for (`web-1=example=com` → `web-1.example.com`).
pub fn untoken(token: &str) -> String {
    token.replace('=', ".")
}

/// What an API id names: one file of one host, or a view where either side may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host's id, or `None` for every host.
    pub host: Option<String>,
    /// The file's id, or `None` for every file.
    pub file: Option<String>,
}

impl Target {
    /// Whether some file is both `self`'s and `other`'s (each side is `*` or the same).
    pub fn overlaps(&self, other: &Self) -> bool {
        let side = |a: &Option<String>, b: &Option<String>| a.is_none() || b.is_none() || a == b;
        side(&self.host, &other.host) && side(&self.file, &other.file)
    }

    /// Parses `host~file`, `*~file`, `host~*` or `*~*`; `None` for anything else.
    pub fn parse(id: &str) -> Option<Self> {
        let (host, file) = id.split_once('~')?;
        let side = |s: &str| -> Option<Option<String>> {
            if s == "*" {
                return Some(None);
            }
            // Only ids the mapping can produce: a side that normalizes to itself.
            (!s.is_empty() && StreamId::from_name(s).as_str() == s).then(|| Some(s.to_owned()))
        };
        Some(Self {
            host: side(host)?,
            file: side(file)?,
        })
    }

    /// Whether it names more than one file.
    pub fn is_view(&self) -> bool {
        self.host.is_none() || self.file.is_none()
    }

    /// The subject filter that selects its messages under `prefix`.
    pub fn filter(&self, prefix: &str) -> String {
        let side = |s: &Option<String>| s.as_deref().map_or_else(|| "*".to_owned(), token);
        format!("{prefix}.{}.{}", side(&self.host), side(&self.file))
    }

    /// The API id (`host~file`, with `*` for a side that is open).
    pub fn id(&self) -> String {
        let side = |s: &Option<String>| s.clone().unwrap_or_else(|| "*".to_owned());
        format!("{}~{}", side(&self.host), side(&self.file))
    }
}

/// The subject of one host's file.
pub fn subject(prefix: &str, host: &str, file: &str) -> String {
    format!("{prefix}.{}.{}", token(host), token(file))
}

/// The `(host, file)` ids of a subject under `prefix`, or `None` when it is not one of ours.
pub fn parse_subject(prefix: &str, subject: &str) -> Option<(String, String)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let (host, file) = rest.split_once('.')?;
    if file.contains('.') || host.is_empty() || file.is_empty() {
        return None;
    }
    Some((untoken(host), untoken(file)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_and_subjects_match_the_design_examples() {
        assert_eq!(
            subject("cometail", "web-1.example.com", "app.log"),
            "cometail.web-1=example=com.app=log"
        );
        let t = Target::parse("web-1.example.com~app.log").expect("a file id");
        assert!(!t.is_view());
        assert_eq!(t.filter("cometail"), "cometail.web-1=example=com.app=log");
        let v = Target::parse("*~app.log").expect("a view id");
        assert!(v.is_view());
        assert_eq!(v.filter("cometail"), "cometail.*.app=log");
        assert_eq!(v.id(), "*~app.log");
        for bad in ["app.log", "~x", "a~", "a b~x", "a~b~c", "a~b/c", "..~x"] {
            assert_eq!(Target::parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse_subject("cometail", "cometail.a.b.c"), None);
        assert_eq!(parse_subject("cometail", "other.a.b"), None);
    }

    proptest! {
        #[test]
        fn subjects_round_trip_to_ids(host in "[A-Za-z0-9._-]{1,12}", file in "[A-Za-z0-9._-]{1,12}") {
            let (h, f) = (StreamId::from_name(&host), StreamId::from_name(&file));
            let s = subject("cometail", h.as_str(), f.as_str());
            let (h2, f2) = parse_subject("cometail", &s).expect("our own subject parses");
            prop_assert_eq!((h2.as_str(), f2.as_str()), (h.as_str(), f.as_str()));
            let id = format!("{h2}~{f2}");
            let t = Target::parse(&id).expect("an id we mint parses");
            prop_assert_eq!(t.filter("cometail"), s);
            prop_assert_eq!(t.id(), id);
        }
    }
}
