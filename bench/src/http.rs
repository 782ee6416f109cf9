//! A deliberately minimal HTTP/1.1 client over a tokio `TcpStream`.
//!
//! It owns connecting (optionally from a chosen loopback source address, so that more than
//! one address's ~28k ephemeral ports can be used), writing a `GET`, parsing the response head,
//! and decoding the body (`Content-Length`, `chunked`, or read-until-close) incrementally into
//! a caller-owned buffer. It does not own what the body means (SSE, JSON): see `sse` and
//! `marks`. Invariant: `raw[raw_pos..]` are bytes read from the socket but not yet decoded.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest response head accepted; a server sending more is treated as broken.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// Opens a TCP connection to `server`, bound to `source` (port chosen by the kernel) if given.
///
/// # Errors
/// Socket creation, bind or connect failure.
pub(crate) async fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        // Ports in TIME_WAIT from a previous run on the same address may be reused.
        sock.set_reuseaddr(true)?;
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = sock.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The parsed status line and the headers this client acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// HTTP status code.
    pub(crate) status: u16,
    /// How the body is delimited.
    pub(crate) body: BodyKind,
    /// `Connection: close` was sent (or HTTP/1.0 without keep-alive).
    pub(crate) close: bool,
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
    /// No body at all (101 Switching Protocols, 204, 304).
    None,
}

/// Parses a complete response head (without the final blank line requirement checked here).
///
/// # Errors
/// A malformed status line.
pub(crate) fn parse_head(head: &[u8]) -> io::Result<Head> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<u64>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            close = v.contains("close") || (close && !v.contains("keep-alive"));
        }
    }
    let body = if status == 101 || status == 204 || status == 304 {
        BodyKind::None
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(n) = length {
        BodyKind::Length(n)
    } else {
        BodyKind::UntilClose
    };
    Ok(Head {
        status,
        body,
        close,
    })
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// State of an incremental body decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size line; holds the size so far and whether an extension began.
    Size(u64, bool),
    /// Inside chunk data with this many bytes left.
    Data(u64),
    /// After chunk data: skipping the CRLF.
    DataEnd,
    /// After the last chunk: skipping trailer lines; `true` when the current line is empty.
    Trailer(bool),
}

/// Decodes a body incrementally; feed it raw bytes, get body bytes appended to `out`.
#[derive(Debug, Clone)]
pub(crate) struct BodyDecoder {
    kind: BodyKind,
    remaining: u64,
    chunk: Chunk,
    done: bool,
}

impl BodyDecoder {
    /// A decoder for a body delimited as `kind`.
    pub(crate) fn new(kind: BodyKind) -> Self {
        let (remaining, done) = match kind {
            BodyKind::Length(n) => (n, n == 0),
            BodyKind::None => (0, true),
            _ => (0, false),
        };
        Self {
            kind,
            remaining,
            chunk: Chunk::Size(0, false),
            done,
        }
    }

    /// The body is complete.
    pub(crate) fn done(&self) -> bool {
        self.done
    }

    /// Decodes from `input`, appending body bytes to `out`; returns how many input bytes were
    /// consumed (fewer than `input.len()` only once the body is complete).
    ///
    /// # Errors
    /// A malformed chunk size.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<usize> {
        match self.kind {
            BodyKind::None => Ok(0),
            BodyKind::UntilClose => {
                out.extend_from_slice(input);
                Ok(input.len())
            }
            BodyKind::Length(_) => {
                let n = (self.remaining.min(input.len() as u64)) as usize;
                out.extend_from_slice(&input[..n]);
                self.remaining -= n as u64;
                self.done = self.remaining == 0;
                Ok(n)
            }
            BodyKind::Chunked => self.feed_chunked(input, out),
        }
    }

    fn feed_chunked(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<usize> {
        let mut i = 0;
        while i < input.len() && !self.done {
            match self.chunk {
                Chunk::Size(size, ext) => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' => {
                            self.chunk = if size == 0 {
                                Chunk::Trailer(true)
                            } else {
                                Chunk::Data(size)
                            };
                        }
                        b'\r' => {}
                        _ if ext => {}
                        b';' => self.chunk = Chunk::Size(size, true),
                        _ => {
                            let d = (b as char)
                                .to_digit(16)
                                .ok_or_else(|| bad(format!("bad chunk size byte {b:#x}")))?;
                            let size = size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(u64::from(d)))
                                .ok_or_else(|| bad("chunk size overflow".into()))?;
                            self.chunk = Chunk::Size(size, false);
                        }
                    }
                }
                Chunk::Data(left) => {
                    let n = left.min((input.len() - i) as u64) as usize;
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    self.chunk = if left == n as u64 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left - n as u64)
                    };
                }
                Chunk::DataEnd => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        self.chunk = Chunk::Size(0, false);
                    }
                }
                Chunk::Trailer(empty) => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' if empty => self.done = true,
                        b'\n' => self.chunk = Chunk::Trailer(true),
                        b'\r' => {}
                        _ => self.chunk = Chunk::Trailer(false),
                    }
                }
            }
        }
        Ok(i)
    }
}

/// One HTTP/1.1 connection: send requests, read heads and bodies.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    host: String,
    raw: Vec<u8>,
    raw_pos: usize,
    /// The peer closed its side.
    eof: bool,
}

impl Conn {
    /// Wraps a connected stream; `host` is sent as the `Host` header.
    pub(crate) fn new(stream: TcpStream, host: String) -> Self {
        Self {
            stream,
            host,
            raw: Vec::new(),
            raw_pos: 0,
            eof: false,
        }
    }

    /// Connects (see [`connect`]) and wraps the stream.
    ///
    /// # Errors
    /// Connect failure.
    pub(crate) async fn open(server: SocketAddr, source: Option<IpAddr>) -> io::Result<Self> {
        let stream = connect(server, source).await?;
        Ok(Self::new(stream, server.to_string()))
    }

    /// The underlying stream (for protocols that take over after the head, like WebSocket).
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Takes the bytes read past the head but not decoded yet.
    pub(crate) fn take_leftover(&mut self) -> Vec<u8> {
        let rest = self.raw.split_off(self.raw_pos);
        self.raw.clear();
        self.raw_pos = 0;
        rest
    }

    /// Writes a `GET path` request with optional extra header lines (each ending in CRLF).
    ///
    /// # Errors
    /// Write failure.
    pub(crate) async fn send_get(&mut self, path: &str, extra_headers: &str) -> io::Result<()> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra_headers}\r\n",
            self.host
        );
        self.stream.write_all(req.as_bytes()).await
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.raw_pos == self.raw.len() {
            self.raw.clear();
            self.raw_pos = 0;
        }
        let old = self.raw.len();
        self.raw.resize(old + READ_CHUNK, 0);
        let n = self.stream.read(&mut self.raw[old..]).await;
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.raw.truncate(old);
                return Err(e);
            }
        };
        self.raw.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// Reads the response head.
    ///
    /// # Errors
    /// Read failure, early close, oversized or malformed head.
    pub(crate) async fn read_head(&mut self) -> io::Result<Head> {
        loop {
            let pending = &self.raw[self.raw_pos..];
            if let Some(end) = memchr::memmem::find(pending, b"\r\n\r\n") {
                let head = parse_head(&pending[..end])?;
                self.raw_pos += end + 4;
                return Ok(head);
            }
            if pending.len() > MAX_HEAD_BYTES {
                return Err(bad("response head too large".into()));
            }
            if self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before head",
                ));
            }
        }
    }

    /// Decodes buffered bytes, reading the socket once if none are buffered; appends body
    /// bytes to `out`. Returns `false` when the body is complete (or the peer closed).
    ///
    /// # Errors
    /// Read failure or malformed chunking.
    pub(crate) async fn read_body_some(
        &mut self,
        dec: &mut BodyDecoder,
        out: &mut Vec<u8>,
    ) -> io::Result<bool> {
        if dec.done() {
            return Ok(false);
        }
        if self.raw_pos == self.raw.len() && (self.eof || self.fill().await? == 0) {
            return if matches!(dec.kind, BodyKind::UntilClose) {
                Ok(false)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside body",
                ))
            };
        }
        let used = dec.feed(&self.raw[self.raw_pos..], out)?;
        self.raw_pos += used;
        Ok(!dec.done())
    }

    /// Reads a whole body into `out`.
    ///
    /// # Errors
    /// As [`Conn::read_body_some`].
    pub(crate) async fn read_body(&mut self, head: &Head, out: &mut Vec<u8>) -> io::Result<()> {
        let mut dec = BodyDecoder::new(head.body);
        while self.read_body_some(&mut dec, out).await? {}
        Ok(())
    }

    /// `GET path` and the whole response: status and body.
    ///
    /// # Errors
    /// As the steps it takes.
    pub(crate) async fn get(&mut self, path: &str) -> io::Result<(Head, Vec<u8>)> {
        self.send_get(path, "").await?;
        let head = self.read_head().await?;
        let mut body = Vec::new();
        self.read_body(&head, &mut body).await?;
        Ok((head, body))
    }
}

/// One-shot `GET http://addr/path` on a fresh connection.
///
/// # Errors
/// As [`Conn::get`].
pub(crate) async fn get_once(addr: SocketAddr, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut conn = Conn::open(addr, None).await?;
    let (head, body) = conn.get(path).await?;
    Ok((head.status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(kind: BodyKind, wire: &[u8], piece: usize) -> (Vec<u8>, bool, usize) {
        let mut dec = BodyDecoder::new(kind);
        let mut out = Vec::new();
        let mut used = 0;
        for part in wire.chunks(piece) {
            used += dec.feed(part, &mut out).expect("valid");
            if dec.done() {
                break;
            }
        }
        (out, dec.done(), used)
    }

    #[test]
    fn chunked_body_decodes_whatever_the_read_sizes() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\nEXTRA";
        for piece in 1..wire.len() {
            let (out, done, used) = decode_in_pieces(BodyKind::Chunked, wire, piece);
            assert_eq!(out, b"hello world!", "piece {piece}");
            assert!(done);
            assert!(used <= wire.len() - 5 + piece);
        }
    }

    #[test]
    fn chunked_body_with_trailers_ends_after_the_blank_line() {
        let wire = b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
        let (out, done, used) = decode_in_pieces(BodyKind::Chunked, wire, 4);
        assert_eq!(out, b"abc");
        assert!(done);
        assert_eq!(used, wire.len());
    }

    #[test]
    fn content_length_body_stops_at_its_length() {
        let (out, done, used) = decode_in_pieces(BodyKind::Length(4), b"abcdefg", 3);
        assert_eq!(out, b"abcd");
        assert!(done);
        assert_eq!(used, 4);
    }

    #[test]
    fn bad_chunk_size_is_an_error() {
        let mut dec = BodyDecoder::new(BodyKind::Chunked);
        assert!(dec.feed(b"zz\r\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn head_parsing_finds_status_and_framing() {
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked",
        )
        .expect("valid");
        assert_eq!(
            h,
            Head {
                status: 200,
                body: BodyKind::Chunked,
                close: false
            }
        );
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nConnection: close")
            .expect("valid");
        assert_eq!(
            h,
            Head {
                status: 404,
                body: BodyKind::Length(12),
                close: true
            }
        );
        let h =
            parse_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket").expect("valid");
        assert_eq!(h.body, BodyKind::None);
        assert!(parse_head(b"garbage").is_err());
    }
}
