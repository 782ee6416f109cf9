//! The value of a host's key in the hosts bucket: written by its agent, read by hubs.

use serde::{Deserialize, Serialize};

/// The value of a host's key in the hosts bucket.
#[derive(Debug, Serialize, Deserialize)]
pub struct Beat {
    /// The host's id.
    pub host: String,
    /// When this run started (ms since the epoch).
    pub started: u64,
    /// When this was written (ms since the epoch).
    pub beat: u64,
    /// How often the agent writes it (ms; 0 from agents that did not say).
    #[serde(default)]
    pub every_ms: u64,
    /// Which agent holds the host: a digest of its machine and the paths it follows, the
    /// same for a restart of the same agent, different for another agent using the name.
    #[serde(default)]
    pub claimant: String,
    /// The host's files.
    pub files: Vec<FileBeat>,
}

/// One file in a heartbeat.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileBeat {
    /// The file's id on its host.
    pub id: String,
    /// The path as given to the agent.
    pub name: String,
    /// Its state, as standalone `/api/streams` says it.
    pub state: String,
    /// Why it is waiting or in error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The sequence of its last published batch.
    pub published_seq: u64,
    /// How long entries have waited to be published (ms; 0 when caught up).
    pub behind_ms: u64,
}
