//! Writing a taken-over connection's body (`detach.rs`) straight to its socket in chunked
//! transfer coding, without buffers kept in the connection's task.
//!
//! A detached connection's task lives as long as its client, and tokio keeps a task's future
//! at its largest size for the whole life of the task, idle or not. So what one write needs
//! (the gathered chunks, their size lines, the `IoSlice`s of one `writev`: ~1.8 KiB) lives on
//! the stack of a plain function ([`write_batch`]) that writes what the socket takes at once.
//! Only when the socket is full does the rest move to the heap ([`Rest`]: the unsent pieces,
//! sharing the chunks' bytes rather than copying them), for as long as the client is slow.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use futures_util::{FutureExt, StreamExt};
use tokio::net::TcpStream;

use super::detach::Chunks;

/// Most chunks gathered into one `writev`.
const BATCH: usize = 16;
/// Bytes after which no more chunks are gathered.
const BATCH_BYTES: usize = 256 * 1024;
/// Most pieces of a [`Rest`] handed to one `writev`.
const REST_SLICES: usize = 3 * BATCH;

/// What a write left unsent: pieces of the chunked coding, in order. A chunk's piece shares
/// the chunk's bytes; size lines and CRLFs are a few bytes each.
#[derive(Debug, Default)]
pub(super) struct Rest(VecDeque<Bytes>);

impl Rest {
    /// All of `bytes`, unsent.
    pub(super) fn of(bytes: Bytes) -> Self {
        Self(VecDeque::from([bytes]))
    }

    /// Bytes left to send.
    pub(super) fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    /// Writes what the socket takes now, without waiting; `WouldBlock` leaves it all.
    fn write_now(&mut self, tcp: &TcpStream) -> io::Result<()> {
        let mut slices = [IoSlice::new(&[]); REST_SLICES];
        let mut count = 0;
        for (slot, piece) in slices.iter_mut().zip(&self.0) {
            *slot = IoSlice::new(piece);
            count += 1;
        }
        let mut written = match tcp.try_write_vectored(&slices[..count]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        while written > 0 {
            let Some(piece) = self.0.front_mut() else {
                break;
            };
            if written < piece.len() {
                piece.advance(written);
                break;
            }
            written -= piece.len();
            self.0.pop_front();
        }
        Ok(())
    }
}

/// Sends all of `rest`, waiting for the socket to take it.
pub(super) async fn send(tcp: &TcpStream, mut rest: Rest) -> io::Result<()> {
    while !rest.0.is_empty() {
        tcp.writable().await?;
        rest.write_now(tcp)?;
    }
    Ok(())
}

/// What [`write_batch`] did.
#[derive(Debug)]
pub(super) struct Written {
    /// What the socket did not take (to [`send`] next), if anything.
    pub(super) rest: Option<Rest>,
    /// Whether the chunks ended after the ones written.
    pub(super) ended: bool,
}

/// Writes `first` and the chunks ready right after it (a client that fell behind has several:
/// up to [`BATCH`] chunks or [`BATCH_BYTES`]) in chunked coding, in one `writev` when the
/// socket takes them all; what it does not take comes back as a [`Rest`].
///
/// # Errors
/// The socket failed (the client is gone).
pub(super) fn write_batch(
    tcp: &TcpStream,
    first: Bytes,
    chunks: &mut Chunks,
) -> io::Result<Written> {
    let mut batch: [Bytes; BATCH] = Default::default();
    let (mut n, mut bytes, mut ended) = (0, 0, false);
    let mut next = Some(first);
    while let Some(chunk) = next.take() {
        bytes += chunk.len();
        if !chunk.is_empty() {
            batch[n] = chunk;
            n += 1;
        }
        if n == BATCH || bytes >= BATCH_BYTES {
            break;
        }
        match chunks.next().now_or_never() {
            Some(Some(chunk)) => next = Some(chunk),
            Some(None) => ended = true,
            None => {}
        }
    }
    Ok(Written {
        rest: write_coded(tcp, &batch[..n])?,
        ended,
    })
}

/// Writes `batch` (at most [`BATCH`] chunks) in chunked coding in one `writev`, without
/// waiting; what the socket does not take comes back as a [`Rest`] (all of it when the socket
/// is full).
///
/// # Errors
/// The socket failed (the client is gone).
pub(super) fn write_coded(tcp: &TcpStream, batch: &[Bytes]) -> io::Result<Option<Rest>> {
    let n = batch.len().min(BATCH);
    let batch = &batch[..n];
    let mut sizes = [[0u8; 18]; BATCH];
    let mut lines: [&[u8]; BATCH] = [&[]; BATCH];
    for ((line, size), chunk) in lines.iter_mut().zip(&mut sizes).zip(batch) {
        *line = size_line(size, chunk.len());
    }
    let mut slices = [IoSlice::new(&[]); 3 * BATCH];
    for (i, chunk) in batch.iter().enumerate() {
        slices[3 * i] = IoSlice::new(lines[i]);
        slices[3 * i + 1] = IoSlice::new(chunk);
        slices[3 * i + 2] = IoSlice::new(b"\r\n");
    }
    let slices = &slices[..3 * n];
    let total: usize = slices.iter().map(|s| s.len()).sum();
    let written = match tcp.try_write_vectored(slices) {
        Ok(0) if total > 0 => return Err(io::ErrorKind::WriteZero.into()),
        Ok(written) => written,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if written == total {
        return Ok(None);
    }
    // The socket is full: keep the unsent pieces, sharing the chunks' bytes.
    let mut rest = Rest::default();
    let mut skip = written;
    for (i, chunk) in batch.iter().enumerate() {
        let pieces = [
            Bytes::copy_from_slice(lines[i]),
            chunk.clone(),
            Bytes::from_static(b"\r\n"),
        ];
        for mut piece in pieces {
            if skip >= piece.len() {
                skip -= piece.len();
                continue;
            }
            piece.advance(skip);
            skip = 0;
            rest.0.push_back(piece);
        }
    }
    Ok(Some(rest))
}

/// Sends the terminating chunk and shuts the socket down for writing.
pub(super) async fn end(tcp: &TcpStream) {
    let _ = send(tcp, Rest::of(Bytes::from_static(b"0\r\n\r\n"))).await;
    let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write);
}

/// Bytes of a chunk of `len` bytes in chunked coding (size line, data, CRLF).
pub(super) fn coded_len(len: usize) -> usize {
    size_line(&mut [0; 18], len).len() + len + 2
}

/// The chunk-size line of a chunk of `len` bytes, written into `buf`.
fn size_line(buf: &mut [u8; 18], len: usize) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut at = 16;
    let mut rest = len;
    loop {
        at -= 1;
        buf[at] = HEX[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    &buf[at..]
}

#[cfg(test)]
pub(super) mod tests {
    use super::{Chunks, Rest, send, size_line, write_batch};
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpSocket, TcpStream};

    /// A connected pair over loopback with small socket buffers: (writer, reader).
    pub(in crate::http) async fn pair() -> (TcpStream, TcpStream) {
        let listening = TcpSocket::new_v4().expect("socket");
        listening.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        listening
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let listener = listening.listen(1).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let connecting = TcpSocket::new_v4().expect("socket");
        connecting.set_send_buffer_size(4096).expect("SO_SNDBUF");
        let (writer, reader) = tokio::join!(connecting.connect(addr), listener.accept());
        (writer.expect("connect"), reader.expect("accept").0)
    }

    /// `chunks` in chunked coding.
    pub(in crate::http) fn coded(chunks: &[Bytes]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[tokio::test]
    async fn a_batch_the_socket_cannot_take_at_once_is_sent_whole_and_in_order() {
        let (writer, mut reader) = pair().await;
        // 16 chunks of ~15 KiB, distinct bytes (one batch): far more than the small socket
        // buffers take while nobody reads, so the first write is partial and the rest waits.
        let chunks: Vec<Bytes> = (0..16u8)
            .map(|i| Bytes::from(vec![b'a' + i; 15 * 1024 + usize::from(i)]))
            .collect();
        let mut rest_of: Chunks = Box::pin(futures_util::stream::iter(chunks[1..].to_vec()));
        let written = write_batch(&writer, chunks[0].clone(), &mut rest_of).expect("write");
        assert!(!written.ended, "the stream did not end");
        let rest = written.rest.expect("a full socket leaves a rest");
        let want = coded(&chunks);
        let read = tokio::spawn(async move {
            let mut got = vec![0u8; want.len()];
            reader.read_exact(&mut got).await.expect("read");
            (got, want)
        });
        let deadline = std::time::Duration::from_secs(10);
        tokio::time::timeout(deadline, send(&writer, rest))
            .await
            .expect("sent within the deadline")
            .expect("sent");
        let (got, want) = tokio::time::timeout(deadline, read)
            .await
            .expect("read within the deadline")
            .expect("reader");
        assert!(
            got == want,
            "the bytes on the wire are the chunks, coded, in order"
        );
    }

    #[tokio::test]
    async fn a_batch_the_socket_takes_leaves_no_rest_and_notes_the_end() {
        let (writer, mut reader) = pair().await;
        let chunks = [Bytes::from_static(b"one"), Bytes::from_static(b"two")];
        let mut rest_of: Chunks = Box::pin(futures_util::stream::iter([chunks[1].clone()]));
        let written = write_batch(&writer, chunks[0].clone(), &mut rest_of).expect("write");
        assert!(
            written.rest.is_none(),
            "a small batch goes out in one write"
        );
        assert!(written.ended, "the stream's end was seen");
        let want = coded(&chunks);
        let mut got = vec![0u8; want.len()];
        reader.read_exact(&mut got).await.expect("read");
        assert_eq!(got, want);
        drop(Rest::of(Bytes::new()));
    }

    #[test]
    fn size_lines_are_lowercase_hex_without_padding() {
        for (len, want) in [
            (0, "0\r\n"),
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (4096, "1000\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            let mut buf = [0u8; 18];
            assert_eq!(size_line(&mut buf, len), want.as_bytes(), "{len}");
        }
    }
}
