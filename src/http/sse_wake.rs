//! What an SSE reader waits on: one channel per stream that carries the stream's changes, the
//! keep-alive ticks and shutdown, woken from an async worker.
//!
//! Lines are applied to a stream on a step thread (`sources/runner.rs`), outside the async
//! runtime. Waking a thousand readers from there schedules each one from outside the runtime.
//! And a reader that also waited on the shared keep-alive `Notify` and the shutdown token
//! would poll three waits (three locks shared by every reader) each time it is polled, two or
//! three times per event. So one relay task per followed stream waits on the stream's change
//! channel, the keep-alive tick and shutdown, and passes each on to a channel of its own (a
//! [`Wake`]) that the stream's readers wait on: the step thread wakes one task, the relay
//! wakes the readers from a worker, and a reader polls one wait.
//!
//! The relay also writes the stream's live edge (`edge.rs`): the readers parked there, caught
//! up, get each change written to their sockets by the relay itself, without being woken.
//!
//! The relay forwards the stream's versions unchanged (readers share encoded answers keyed by
//! them, `Stream::shared_answer`), counts ticks, and ends at shutdown, when the stream's
//! channel closes or when its last reader leaves; its ending closes the readers' channel,
//! which ends their responses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::edge::{Edge, Verdict};
use crate::stream::Stream;

/// What a reader's channel carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wake {
    /// The stream's version (its change channel's value).
    pub(crate) version: u64,
    /// Keep-alive ticks seen by this relay.
    pub(crate) ticks: u64,
}

/// Relays by stream id: the stream's address, the relay's sender and its stream's edge.
type Table = Arc<Mutex<HashMap<String, (usize, watch::Sender<Wake>, Arc<Edge>)>>>;

/// One relay per stream, for as long as readers hold it.
#[derive(Debug)]
pub(crate) struct Relays {
    /// By stream id: the stream's address (an id can name a new stream later) and the
    /// relay's sender. The relay removes its own entry when it ends, so that the readers'
    /// channel closes with it.
    relays: Table,
    keep_alive: Arc<Notify>,
    shutdown: CancellationToken,
}

impl Relays {
    /// Relays that tick with `keep_alive` and end at `shutdown`.
    pub(crate) fn new(keep_alive: Arc<Notify>, shutdown: CancellationToken) -> Self {
        Self {
            relays: Arc::default(),
            keep_alive,
            shutdown,
        }
    }

    /// A receiver marked changed whenever `stream`'s own is and on every keep-alive tick,
    /// woken from an async worker, closed at shutdown; and the stream's edge, which the relay
    /// writes (`edge.rs`). Must be called inside the runtime (it may start the stream's
    /// relay).
    pub(crate) fn subscribe(&self, stream: &Arc<Stream>) -> (watch::Receiver<Wake>, Arc<Edge>) {
        let key = Arc::as_ptr(stream) as usize;
        let id = stream.id().to_string();
        let mut relays = self.relays.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, tx, edge)) = relays.get(&id)
            && *at == key
        {
            return (tx.subscribe(), Arc::clone(edge));
        }
        let mut source = stream.subscribe();
        let version = *source.borrow_and_update();
        let (tx, rx) = watch::channel(Wake { version, ticks: 0 });
        let edge = Arc::new(Edge::new(version));
        relays.insert(id.clone(), (key, tx.clone(), Arc::clone(&edge)));
        drop(relays);
        // Weak: a relay must not keep a stream that is no longer followed alive (its channel
        // closing ends the relay).
        let weak = Arc::downgrade(stream);
        let walked = Arc::clone(&edge);
        let relays = Arc::clone(&self.relays);
        let keep_alive = Arc::clone(&self.keep_alive);
        let shutdown = self.shutdown.clone();
        // Not tracked for shutdown: it ends by itself at shutdown.
        tokio::spawn(async move {
            let mut tick = std::pin::pin!(keep_alive.notified());
            loop {
                tokio::select! {
                    changed = source.changed() => {
                        if changed.is_ok() {
                            let version = *source.borrow_and_update();
                            // The edge moves first: a reader that saw the new version may
                            // park at once; one that saw the old one may not.
                            let walk = walked.begin(version);
                            tx.send_modify(|w| w.version = version);
                            walked.write(walk, |after| match weak.upgrade() {
                                Some(stream) => super::sse_answer::live_verdict(&stream, after, version),
                                None => Verdict::Unpark,
                            });
                            continue;
                        }
                    }
                    () = tick.as_mut() => {
                        tick.set(keep_alive.notified());
                        tx.send_modify(|w| w.ticks += 1);
                        walked.keep_alive();
                        continue;
                    }
                    () = shutdown.cancelled() => {}
                    () = tx.closed() => {}
                }
                // Under the lock, so that no reader joins a relay that is ending: one that
                // joined after its last reader left keeps it.
                let ended = {
                    let mut relays = relays.lock().unwrap_or_else(PoisonError::into_inner);
                    let ended =
                        shutdown.is_cancelled() || source.has_changed().is_err() || tx.is_closed();
                    if ended && relays.get(&id).is_some_and(|(_, t, _)| t.same_channel(&tx)) {
                        relays.remove(&id);
                    }
                    ended
                };
                if ended {
                    walked.end();
                    return;
                }
            }
        });
        (rx, edge)
    }
}
