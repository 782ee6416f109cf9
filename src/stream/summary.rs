//! What `GET /api/streams` says of a stream: its state, why, and what its lines look like.

use serde::Serialize;

use super::{Phase, Stream};
use crate::tail::FileState;

/// What `GET /api/streams` says of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The stream's id.
    pub id: String,
    /// The path as given.
    pub name: String,
    /// `following`, `waiting`, `error`, `ended` (its input ended), `gone` (its file and
    /// history are gone; the stream is dropped soon) or, for a command, `exited`.
    pub state: &'static str,
    /// Why it is waiting or in error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The layout most of its lines have (`iso`, `json`, `logfmt`, `syslog`, …; see
    /// `parse::Shape`), once detected from the first lines of its current file; or the
    /// format its `[[source]]` table gives (also `plain`: no times, no records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    /// Whether any of its lines carried an event time (so `at=` can find something).
    pub timed: bool,
}

impl Stream {
    /// The stream's state and name, for listings.
    pub fn summary(&self) -> Summary {
        let inner = self.lock();
        let (state, reason) = match (inner.phase, &inner.state, &inner.process) {
            (Phase::Ended, ..) => ("ended", Some("the input ended".to_owned())),
            (Phase::Gone, ..) => ("gone", Some("the file was deleted".to_owned())),
            (Phase::Live, _, Some((state, reason))) => (*state, Some(reason.clone())),
            (Phase::Live, FileState::Following, None) => ("following", None),
            (Phase::Live, FileState::Waiting(r), None) => ("waiting", Some(r.clone())),
            (Phase::Live, FileState::Error(r), None) => ("error", Some(r.clone())),
        };
        Summary {
            id: self.id.to_string(),
            name: self.name.clone(),
            state,
            reason,
            format: match self.parser.pinned() {
                Some(pinned) => Some(pinned.as_str()),
                None => inner.detector.shape().map(crate::parse::Shape::as_str),
            },
            timed: inner.detector.timed(),
        }
    }
}
