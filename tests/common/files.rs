//! Helpers for the follow tests: a reader that collects a stream's entries through the HTTP
//! API (long polls from a cursor, so it sees every entry exactly as a client would), the open
//! file descriptors of this process, and a stream's state.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Server, wait_until};

/// The cursor before everything: reading after it yields a stream from its very start.
pub fn origin() -> String {
    cometail::stream::ORIGIN.to_string()
}

/// Collects every entry of one stream, in order, by long polling `/lines?after=…&wait=1`.
pub struct Collector {
    entries: Arc<Mutex<Vec<Value>>>,
    failure: Arc<Mutex<Option<String>>>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Collector {
    /// Starts collecting `id` from the start of the stream, the way a client's first load
    /// does: `last=10000` (history from disk), then `after=next` from there on.
    pub fn start(server: &Server, id: &str) -> Self {
        Self::start_at(&server.client, &server.url, id, None)
    }

    /// Starts collecting `id` on the server at `url`: after `cursor`, or (`None`) with a first
    /// `last=10000` request.
    pub fn start_at(client: &reqwest::Client, url: &str, id: &str, cursor: Option<&str>) -> Self {
        let entries: Arc<Mutex<Vec<Value>>> = Arc::default();
        let failure: Arc<Mutex<Option<String>>> = Arc::default();
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (entries, failure, cancel) = (entries.clone(), failure.clone(), cancel.clone());
            let client = client.clone();
            let base = format!("{url}/api/streams/{id}/lines");
            let mut cursor = cursor.map(str::to_owned);
            async move {
                loop {
                    let query = match &cursor {
                        Some(c) => format!("after={c}&wait=1&limit=10000"),
                        None => "last=10000".to_owned(),
                    };
                    let req = client.get(format!("{base}?{query}")).send();
                    let resp = tokio::select! {
                        r = req => r,
                        () = cancel.cancelled() => return,
                    };
                    let page: Value = match resp {
                        Ok(r) if r.status().is_success() => match r.json().await {
                            Ok(v) => v,
                            Err(e) => {
                                *failure.lock().unwrap() = Some(format!("bad body: {e}"));
                                return;
                            }
                        },
                        Ok(r) => {
                            *failure.lock().unwrap() = Some(format!("status {}", r.status()));
                            return;
                        }
                        // The server is gone (end of the test).
                        Err(_) => return,
                    };
                    let new = page["entries"].as_array().cloned().unwrap_or_default();
                    entries.lock().unwrap().extend(new);
                    cursor = Some(page["next"].as_str().unwrap().to_owned());
                }
            }
        });
        Self {
            entries,
            failure,
            cancel,
            task: Some(task),
        }
    }

    /// The entries as they are collected, for a thread that scans them as they arrive.
    pub fn shared(&self) -> Arc<Mutex<Vec<Value>>> {
        self.entries.clone()
    }

    /// Every entry so far, as JSON.
    pub fn entries(&self) -> Vec<Value> {
        self.check();
        self.entries.lock().unwrap().clone()
    }

    /// Number of entries so far.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// Every entry so far: a line's text, or `<notice>` for a notice.
    pub fn items(&self) -> Vec<String> {
        self.entries().iter().map(item).collect()
    }

    /// The texts of the line entries so far (notices left out).
    pub fn lines(&self) -> Vec<String> {
        self.entries()
            .iter()
            .filter_map(|e| e.get("text").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// Runs `f` on the entries so far without copying them.
    pub fn with<R>(&self, f: impl FnOnce(&[Value]) -> R) -> R {
        self.check();
        f(&self.entries.lock().unwrap())
    }

    /// Waits until `pred` holds for the items (see [`Collector::items`]).
    pub async fn wait_items(
        &self,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) {
        let mut last = Vec::new();
        let ok = tokio::time::timeout(deadline, async {
            loop {
                last = self.items();
                if pred(&last) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(ok.is_ok(), "timed out waiting for: {what}; got {last:?}");
    }

    /// Waits until the items are exactly `want`.
    pub async fn wait_exact(&self, want: &[&str], deadline: Duration) {
        self.wait_items(&format!("entries {want:?}"), deadline, |got| got == want)
            .await;
    }

    fn check(&self) {
        if let Some(f) = self.failure.lock().unwrap().as_ref() {
            panic!("reading the stream failed: {f}");
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An entry as a line's text, or `<notice>`.
pub fn item(e: &Value) -> String {
    match e.get("text").and_then(Value::as_str) {
        Some(t) => t.to_owned(),
        None => format!("<{}>", e["notice"].as_str().unwrap_or("?")),
    }
}

/// Whether `small` appears in `big` in order (not necessarily contiguously).
pub fn is_subsequence<T: PartialEq>(small: &[T], big: &[T]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

/// The targets of this process's open file descriptors (`/proc/self/fd`).
pub fn open_fds() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// The open file descriptors of this process that name a file under `dir` (deleted ones end
/// with ` (deleted)`). Scoped to a test's own dir, so tests running in parallel in the same
/// process do not disturb the count.
pub fn open_fds_under(dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    let mut fds: Vec<String> = open_fds()
        .into_iter()
        .filter(|t| t.starts_with(&prefix))
        .collect();
    fds.sort();
    fds
}

/// `state` and `reason` of stream `id` in `GET /api/streams`.
pub async fn state(server: &Server, id: &str) -> (String, Option<String>) {
    let list = server.ok_json("/api/streams").await;
    let s = list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no stream {id} in {list}"))
        .clone();
    (
        s["state"].as_str().unwrap().to_owned(),
        s.get("reason").and_then(Value::as_str).map(str::to_owned),
    )
}

/// Waits until stream `id` is in `want` state (and, if given, with that reason).
pub async fn wait_state(server: &Server, id: &str, want: &str, reason: Option<&str>) {
    wait_until(
        &format!("{id} is {want} ({reason:?})"),
        Duration::from_secs(10),
        || async {
            let (s, r) = state(server, id).await;
            s == want && (reason.is_none() || r.as_deref() == reason)
        },
    )
    .await;
}

/// Command-line arguments that select a back end: file events, or polling every 50 ms.
pub fn backend_args(poll: bool) -> Vec<&'static str> {
    if poll {
        vec!["--poll", "--poll-interval", "50ms"]
    } else {
        Vec::new()
    }
}
