//! `GET /api/streams` of a hub: every host's files, from the hosts bucket (heartbeats) and
//! from the subjects the stream still holds (files whose host is gone), plus the views; and
//! whether an id names any of them ([`Hub::knows`]).
//!
//! A subject no heartbeat lists is `stale` (no agent reports the file) unless its host's
//! heartbeat is fresh and the file's last batch was stored after that heartbeat: then the
//! agent published a file it has not announced yet (a new glob match between two beats), and
//! the file is `following`. Both times are the engine's (the bucket entry's and the batch's
//! store times), so the agents' clocks play no part.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::{Hub, ReadError};
use crate::engine::beat::Beat;
use crate::engine::names::{self, Target};

/// What a hub lists.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Files, by id (`host~file`).
    pub streams: Vec<FileSummary>,
    /// Views over several files: `*~file` for each file id, `host~*` for each host, `*~*`.
    pub views: Vec<String>,
}

/// One host's file.
#[derive(Debug, Serialize)]
pub struct FileSummary {
    /// `host~file`.
    pub id: String,
    /// `host:path`.
    pub name: String,
    /// The agent's state of the file, or `stale` when its host's heartbeat stopped.
    pub state: String,
    /// Why it is waiting, in error or stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The host's id.
    pub host: String,
    /// The path as the agent was given it.
    pub path: String,
    /// When the host's heartbeat was last written (ms since the epoch), if it ever was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
}

impl Hub {
    /// Every file of every host, and the views over them.
    ///
    /// # Errors
    /// The engine did not answer.
    pub async fn list(&self) -> Result<Listing, ReadError> {
        let err = |e: &dyn std::fmt::Display| ReadError(e.to_string());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let stale_ms = u64::try_from(self.settings.stale_after.as_millis()).unwrap_or(u64::MAX);
        let mut files: BTreeMap<String, FileSummary> = BTreeMap::new();
        // Hosts with a fresh heartbeat: when the engine stored it (ms), and when it was written.
        let mut fresh: BTreeMap<String, (i64, u64)> = BTreeMap::new();
        if let Ok(kv) = self.engine.hosts(false).await {
            // The keys are the subjects of the bucket's stream (one message each), read
            // with one stream-info request: `kv.keys()` (an ordered consumer) was seen to
            // never end when a heartbeat was written while it ran, hanging the request. At
            // most as many hosts as a view merges subjects.
            let keys: Vec<String> = match kv
                .stream
                .info_with_subjects(format!("{}>", kv.prefix))
                .await
            {
                Ok(info) => info
                    .take(super::read::MAX_VIEW_SUBJECTS)
                    .try_collect::<Vec<(String, usize)>>()
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(s, _)| s.strip_prefix(&kv.prefix).map(str::to_owned))
                    .collect(),
                Err(_) => Vec::new(),
            };
            for key in keys {
                let Ok(Some(entry)) = kv.entry(&key).await else {
                    continue;
                };
                // A value no agent wrote is skipped: the subjects below still list its files.
                let Ok(beat) = serde_json::from_slice::<Beat>(&entry.value) else {
                    continue;
                };
                let host = names::untoken(&names::token(&beat.host));
                let stale = now.saturating_sub(beat.beat) > stale_ms;
                if !stale {
                    let stored = entry.created.unix_timestamp_nanos() / 1_000_000;
                    fresh.insert(
                        host.clone(),
                        (i64::try_from(stored).unwrap_or(0), beat.beat),
                    );
                }
                for f in beat.files {
                    let id = format!("{host}~{}", f.id);
                    let (state, reason) = if stale {
                        (
                            "stale".to_owned(),
                            Some(format!(
                                "no heartbeat from {host} for {} s",
                                now.saturating_sub(beat.beat) / 1000
                            )),
                        )
                    } else {
                        (f.state, f.reason)
                    };
                    files.insert(
                        id.clone(),
                        FileSummary {
                            id,
                            name: format!("{host}:{}", f.name),
                            state,
                            reason,
                            host: host.clone(),
                            path: f.name,
                            last_seen: Some(beat.beat),
                        },
                    );
                }
            }
        }
        let subjects = self
            .js_stream
            .info_with_subjects(format!("{}.>", self.prefix()))
            .await
            .map_err(|e| err(&e))?;
        let subjects: Vec<(String, usize)> = subjects
            .take(super::read::MAX_VIEW_SUBJECTS)
            .try_collect()
            .await
            .map_err(|e| err(&e))?;
        for (subject, _) in subjects {
            let Some((host, file)) = names::parse_subject(self.prefix(), &subject) else {
                continue;
            };
            let id = format!("{host}~{file}");
            if files.contains_key(&id) {
                continue;
            }
            let announced = match fresh.get(&host) {
                Some(&(stored, seen)) => self
                    .last_of(&subject)
                    .await?
                    .is_some_and(|m| m.stored_ms > stored)
                    .then_some(seen),
                None => None,
            };
            let (state, reason) = match announced {
                Some(_) => ("following".to_owned(), None),
                None => (
                    "stale".to_owned(),
                    Some(format!("no agent on {host} reports this file")),
                ),
            };
            files.insert(
                id.clone(),
                FileSummary {
                    id,
                    name: format!("{host}:{file}"),
                    state,
                    reason,
                    host,
                    path: file,
                    last_seen: announced,
                },
            );
        }
        let hosts: BTreeSet<&str> = files.values().map(|f| f.host.as_str()).collect();
        let ids: BTreeSet<&str> = files
            .keys()
            .filter_map(|id| id.split_once('~').map(|(_, f)| f))
            .collect();
        let mut views: Vec<String> = ids.iter().map(|f| format!("*~{f}")).collect();
        views.extend(hosts.iter().map(|h| format!("{h}~*")));
        views.push("*~*".to_owned());
        Ok(Listing {
            streams: files.into_values().collect(),
            views,
        })
    }

    /// Whether `target` names a file or view this hub lists (or lists now, for a view some
    /// reader already holds): the engine holds entries of it, or an agent announces it (a
    /// file that does not exist yet is announced as `waiting`, and is known). An id nobody
    /// announced and the engine holds nothing of is unknown, as a standalone server's
    /// unknown stream is.
    ///
    /// # Errors
    /// The engine did not answer.
    pub async fn knows(&self, target: &Target) -> Result<bool, ReadError> {
        if target.host.is_none() && target.file.is_none() {
            return Ok(true);
        }
        let filter = target.filter(self.prefix());
        if super::view::lock(&self.views).contains_key(&filter) {
            return Ok(true);
        }
        if self.next(&filter, 1).await?.is_some() {
            return Ok(true);
        }
        let listing = self.list().await?;
        let id = target.id();
        Ok(if target.is_view() {
            listing.views.contains(&id)
        } else {
            listing.streams.iter().any(|f| f.id == id)
        })
    }
}
