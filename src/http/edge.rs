//! The live edge of a followed stream: the detached SSE clients that have sent everything
//! and wait for the next entry, written by one task per stream instead of waking each
//! client's own task.
//!
//! Without it, an append woke every reader's task (a wake-up storm: one schedule, one poll
//! of the body and its waits, one shared-answer lookup per client), and each task wrote its
//! own copy of the shared event. Here a caught-up SSE connection that left hyper (`detach.rs`)
//! *parks* its `Feed` on the stream's [`Edge`]; the stream's relay (`sse_wake.rs`), already
//! woken once per change, walks the parked clients and writes the shared encoded event to
//! each socket without waiting (`try_write`), then leaves them parked at the new position.
//! Events that arrive while the relay is still walking are written together at its next
//! walk: one write per client per walk, however many events it covers.
//!
//! A client goes back to its own task (is *unparked*, with the position it has reached)
//! whenever the edge cannot simply write to it: its socket did not take the whole event (the
//! unsent rest waits in [`Client`] for its task to send first), its task holds bytes it has
//! not written yet (not *armed*), the answer is not in the stream's cache, more entries
//! follow than one event carries, or the relay ends. The task then reads and writes as
//! before, so slow clients stay bounded exactly as before: the edge holds at most one event
//! of theirs.
//!
//! Invariant: the edge writes to a socket only while its client is parked and armed, and both
//! the task's writes and the edge's happen under the client's lock, so bytes never
//! interleave; a client parks only at the stream's end at the edge's current version, so no
//! event is skipped or sent twice.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::TcpStream;

use super::chunked::{self, Rest};
use super::metrics::ClientLag;
use crate::stream::{Answer, Cursor};

/// A detached connection's socket, shared by its task (`detach.rs`) and, while it is
/// parked, its stream's edge.
#[derive(Debug)]
pub(crate) struct Client {
    pub(super) tcp: TcpStream,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// What the edge could not write at once; the task sends it before anything else.
    rest: Option<Rest>,
    /// Whether the task holds nothing unsent: only then may the edge write.
    armed: bool,
    park: Park,
}

/// Where a client's `Feed` is.
#[derive(Debug, Default)]
enum Park {
    /// Run by its task.
    #[default]
    Out,
    /// Parked on its stream's edge; the waker of its task once it waits.
    In(Option<Waker>),
    /// Given back by the edge: everything up to this cursor was written.
    Back(Cursor),
}

impl State {
    fn unpark(&mut self, at: Cursor) {
        if let Park::In(Some(waker)) = std::mem::replace(&mut self.park, Park::Back(at)) {
            waker.wake();
        }
    }
}

impl Client {
    pub(super) fn new(tcp: TcpStream) -> Arc<Self> {
        Arc::new(Self {
            tcp,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The task holds nothing unsent (and no rest waits): the edge may write.
    pub(super) fn arm(&self) {
        let mut state = self.state();
        state.armed = state.rest.is_none();
    }

    /// The task is about to write: the edge must not.
    pub(super) fn disarm(&self) {
        self.state().armed = false;
    }

    /// What the edge left unsent, for the task to send first.
    pub(super) fn take_rest(&self) -> Option<Rest> {
        self.state().rest.take()
    }

    /// Waits until the edge gives the client back; the cursor reached (`after` if it was
    /// not parked).
    pub(crate) async fn parked(&self, after: Cursor) -> Cursor {
        std::future::poll_fn(|cx| self.poll_back(cx, after)).await
    }

    fn poll_back(&self, cx: &Context<'_>, after: Cursor) -> Poll<Cursor> {
        let mut state = self.state();
        match &mut state.park {
            Park::In(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Park::Back(at) => {
                let at = *at;
                state.park = Park::Out;
                Poll::Ready(at)
            }
            Park::Out => Poll::Ready(after),
        }
    }
}

/// What the edge writes to the clients parked at one cursor.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// Nothing new after it: they stay parked.
    Nothing,
    /// This event (and, when it is not `complete`, give them back after it).
    Event(Answer),
    /// The answer needs their own task (not cached, rotated history…): give them back.
    Unpark,
}

/// One parked client.
#[derive(Debug)]
struct Seat {
    /// Weak: a closed connection's socket is freed at once, not at the next walk.
    client: Weak<Client>,
    /// The last entry written to it.
    after: Cursor,
    lag: Arc<ClientLag>,
}

/// The parked clients of one stream, written by its relay.
#[derive(Debug)]
pub(crate) struct Edge {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The stream's version the parked clients have everything of.
    version: u64,
    ended: bool,
    seats: Vec<Seat>,
}

/// The seats of one walk, taken out of the edge so that clients park meanwhile.
#[derive(Debug)]
pub(crate) struct Walk(Vec<Seat>);

impl Edge {
    pub(crate) fn new(version: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                version,
                ended: false,
                seats: Vec::new(),
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parks `client`, which has sent everything up to `after`, the stream's end at
    /// `version`; `false` (not parked) when the edge has moved past `version` or ended: the
    /// caller then waits for the change as usual.
    pub(crate) fn park(
        &self,
        client: &Arc<Client>,
        version: u64,
        after: Cursor,
        lag: Arc<ClientLag>,
    ) -> bool {
        let mut inner = self.inner();
        if inner.ended || inner.version != version {
            return false;
        }
        client.state().park = Park::In(None);
        inner.seats.push(Seat {
            client: Arc::downgrade(client),
            after,
            lag,
        });
        true
    }

    /// The stream moved to `version`: clients park against it from now on; the clients
    /// parked before are returned, to [`Edge::write`].
    pub(crate) fn begin(&self, version: u64) -> Walk {
        let mut inner = self.inner();
        inner.version = version;
        Walk(std::mem::take(&mut inner.seats))
    }

    /// Writes each client of `walk` what `verdict` says for its cursor (asked once per
    /// distinct cursor: all clients at the edge share one), and parks again those it wrote
    /// to.
    ///
    /// It runs on the relay's task without yielding: a walk over 10,000 clients is one
    /// `writev` each, a few tens of milliseconds on one worker, while the other workers run
    /// everything else.
    pub(crate) fn write(&self, walk: Walk, mut verdict: impl FnMut(Cursor) -> Verdict) {
        let now = Instant::now();
        let mut asked: Option<(Cursor, Verdict)> = None;
        let mut kept = Vec::with_capacity(walk.0.len());
        for mut seat in walk.0 {
            let Some(client) = seat.client.upgrade() else {
                continue;
            };
            let what = match &asked {
                Some((at, what)) if *at == seat.after => what,
                _ => &asked.insert((seat.after, verdict(seat.after))).1,
            };
            let keep = match what {
                Verdict::Nothing => client.still_parked(),
                Verdict::Unpark => {
                    client.state().unpark(seat.after);
                    false
                }
                Verdict::Event(answer) => match client.write_parked(&answer.bytes, answer.next) {
                    Outcome::Whole => {
                        seat.after = answer.next;
                        seat.lag.live(answer.next, now);
                        if !answer.complete {
                            // More entries follow than the event carried: its task reads them.
                            client.state().unpark(seat.after);
                        }
                        answer.complete
                    }
                    Outcome::Part => {
                        seat.lag.live(answer.next, now);
                        false
                    }
                    Outcome::Skipped | Outcome::Full | Outcome::Failed => {
                        client.state().unpark(seat.after);
                        false
                    }
                },
            };
            if keep {
                kept.push(seat);
            }
        }
        self.seat_again(kept);
    }

    /// Writes a keep-alive comment to every parked client that can take it now.
    pub(crate) fn keep_alive(&self) {
        let seats = std::mem::take(&mut self.inner().seats);
        let comment = Bytes::from_static(b": keep-alive\n\n");
        let mut kept = Vec::with_capacity(seats.len());
        for seat in seats {
            let Some(client) = seat.client.upgrade() else {
                continue;
            };
            let keep = match client.write_parked(&comment, seat.after) {
                Outcome::Whole | Outcome::Full => true,
                // Busy with its own writes, or back with its task already.
                Outcome::Skipped => client.still_parked(),
                Outcome::Part => false,
                Outcome::Failed => {
                    client.state().unpark(seat.after);
                    false
                }
            };
            if keep {
                kept.push(seat);
            }
        }
        self.seat_again(kept);
    }

    /// Puts the seats of a walk back (or gives them back, when the relay ended meanwhile).
    fn seat_again(&self, mut kept: Vec<Seat>) {
        let mut inner = self.inner();
        if inner.ended {
            drop(inner);
            kept.iter().for_each(give_back);
        } else {
            inner.seats.append(&mut kept);
        }
    }

    /// The relay ends: every parked client goes back to its task (which then sees its
    /// channel closed and ends its response).
    pub(crate) fn end(&self) {
        let seats = {
            let mut inner = self.inner();
            inner.ended = true;
            std::mem::take(&mut inner.seats)
        };
        seats.iter().for_each(give_back);
    }
}

fn give_back(seat: &Seat) {
    if let Some(client) = seat.client.upgrade() {
        client.state().unpark(seat.after);
    }
}

/// What one write of the edge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The socket took all of it.
    Whole,
    /// The socket took part of it; the rest waits for the task, to which the client went
    /// back.
    Part,
    /// The socket took none of it (full).
    Full,
    /// Not written: the client is not parked, or its task holds bytes of its own.
    Skipped,
    /// The socket failed; its task meets the failure at its next write or read and ends.
    Failed,
}

impl Client {
    /// Whether the client is still parked (its `Feed` may have gone back meanwhile).
    fn still_parked(&self) -> bool {
        matches!(self.state().park, Park::In(_))
    }

    /// Writes `chunk`, which ends at `next`, when the client is parked and armed.
    fn write_parked(&self, chunk: &Bytes, next: Cursor) -> Outcome {
        let mut state = self.state();
        if !matches!(state.park, Park::In(_)) || !state.armed {
            return Outcome::Skipped;
        }
        match chunked::write_coded(&self.tcp, std::slice::from_ref(chunk)) {
            Ok(None) => Outcome::Whole,
            Ok(Some(rest)) if rest.len() == chunked::coded_len(chunk.len()) => Outcome::Full,
            Ok(Some(rest)) => {
                state.rest = Some(rest);
                state.armed = false;
                state.unpark(next);
                Outcome::Part
            }
            Err(_) => Outcome::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    use super::{Client, Edge, Verdict};
    use crate::http::chunked::send;
    use crate::http::chunked::tests::{coded, pair};
    use crate::http::metrics::ClientLag;
    use crate::stream::{Answer, Cursor, ORIGIN};

    const DEADLINE: Duration = Duration::from_secs(10);

    fn at(point: u64) -> Cursor {
        Cursor { point, ..ORIGIN }
    }

    fn event(bytes: Bytes, next: Cursor) -> Verdict {
        Verdict::Event(Answer {
            bytes,
            next,
            complete: true,
        })
    }

    /// A client over a real socket pair, armed (`true`: the edge may write for it) or not,
    /// parked at version 1 after `at(0)` on a new edge; the socket's reading end.
    async fn parked(armed: bool) -> (Arc<Client>, Edge, tokio::net::TcpStream) {
        let (writer, reader) = pair().await;
        let client = Client::new(writer);
        if armed {
            client.arm();
        } else {
            client.disarm();
        }
        let edge = Edge::new(1);
        assert!(edge.park(&client, 1, at(0), Arc::new(ClientLag::default())));
        (client, edge, reader)
    }

    /// The cursor the client is given back at, if it was.
    fn back(client: &Client) -> Option<Cursor> {
        use futures_util::FutureExt;
        client.parked(ORIGIN).now_or_never()
    }

    #[tokio::test]
    async fn parked_clients_get_each_event_and_stay_parked_at_its_end() {
        let (client, edge, mut reader) = parked(true).await;
        let (one, two) = (Bytes::from_static(b"one"), Bytes::from_static(b"two"));
        edge.write(edge.begin(2), |after| {
            assert_eq!(after, at(0));
            event(one.clone(), at(1))
        });
        assert_eq!(back(&client), None, "written, still parked");
        edge.write(edge.begin(3), |after| {
            assert_eq!(
                after,
                at(1),
                "the next event is asked after the last written"
            );
            event(two.clone(), at(2))
        });
        let want = coded(&[one, two]);
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(DEADLINE, reader.read_exact(&mut got))
            .await
            .expect("read within the deadline")
            .expect("read");
        assert_eq!(got, want);
        assert_eq!(back(&client), None);
        edge.end();
        assert_eq!(back(&client), Some(at(2)), "the relay's end gives it back");
    }

    #[tokio::test]
    async fn a_client_whose_socket_is_full_goes_back_with_the_unsent_rest_to_send_first() {
        let (client, edge, mut reader) = parked(true).await;
        // Far more than the small socket buffers take while nobody reads.
        let big = Bytes::from(vec![b'x'; 1 << 20]);
        edge.write(edge.begin(2), |_| event(big.clone(), at(1)));
        assert_eq!(back(&client), Some(at(1)), "given back after the event");
        let rest = client
            .take_rest()
            .expect("the unsent rest waits for the task");
        let want = coded(&[big]);
        let read = tokio::spawn(async move {
            let mut got = vec![0u8; want.len()];
            reader.read_exact(&mut got).await.expect("read");
            (got, want)
        });
        tokio::time::timeout(DEADLINE, send(&client.tcp, rest))
            .await
            .expect("sent within the deadline")
            .expect("sent");
        let (got, want) = tokio::time::timeout(DEADLINE, read)
            .await
            .expect("read within the deadline")
            .expect("reader");
        assert!(got == want, "the event arrives whole, once");
    }

    #[tokio::test]
    async fn a_client_whose_task_holds_bytes_is_given_back_unwritten() {
        let (client, edge, _reader) = parked(false).await;
        edge.write(edge.begin(2), |_| event(Bytes::from_static(b"e"), at(1)));
        assert_eq!(
            back(&client),
            Some(at(0)),
            "back where it was, to read the event itself"
        );
        assert!(client.take_rest().is_none(), "nothing was written");
    }

    #[tokio::test]
    async fn a_client_cannot_park_at_a_version_the_edge_has_passed() {
        let (writer, _reader) = pair().await;
        let client = Client::new(writer);
        let edge = Edge::new(1);
        drop(edge.begin(2));
        let lag = Arc::new(ClientLag::default());
        assert!(!edge.park(&client, 1, at(0), lag.clone()));
        assert!(edge.park(&client, 2, at(0), lag.clone()));
        edge.end();
        assert!(!edge.park(&client, 2, at(0), lag), "nor on an ended edge");
    }
}
