//! Just enough RFC 6455 WebSocket for a client: unmasked frames in, masked frames out.
//!
//! It owns framing only (no extensions are offered, so no compression is negotiated); what
//! the text means (engine.io / socket.io packets) is the caller's.

use std::io;

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// Largest frame accepted.
const MAX_FRAME: u64 = 64 * 1024 * 1024;
/// Any constant mask is valid for a client; the server only unmasks.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A complete message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A text (or binary) message, reassembled from continuation frames.
    Text(Vec<u8>),
    /// A ping to answer with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// The server closed the connection.
    Close,
}

/// Splits bytes from the socket into frames. Invariant: `buf[pos..]` is undecoded.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
    partial: Vec<u8>,
}

impl FrameReader {
    /// A reader that starts with `leftover` bytes already read past the HTTP head.
    pub(crate) fn new(leftover: Vec<u8>) -> Self {
        Self {
            buf: leftover,
            pos: 0,
            partial: Vec::new(),
        }
    }

    /// Decodes the complete frames buffered now.
    ///
    /// # Errors
    /// An oversized frame.
    pub(crate) fn decode(&mut self) -> io::Result<Vec<Frame>> {
        let mut frames = Vec::new();
        loop {
            let b = &self.buf[self.pos..];
            if b.len() < 2 {
                break;
            }
            let fin = b[0] & 0x80 != 0;
            let opcode = b[0] & 0x0f;
            let masked = b[1] & 0x80 != 0;
            let (len, mut hdr) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(a), 10)
                }
                126 | 127 => break,
                n => (u64::from(n), 2),
            };
            if len > MAX_FRAME {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "WebSocket frame too large",
                ));
            }
            let mask = if masked {
                if b.len() < hdr + 4 {
                    break;
                }
                hdr += 4;
                Some([b[hdr - 4], b[hdr - 3], b[hdr - 2], b[hdr - 1]])
            } else {
                None
            };
            let len = len as usize;
            if b.len() < hdr + len {
                break;
            }
            let mut payload = b[hdr..hdr + len].to_vec();
            if let Some(m) = mask {
                for (i, x) in payload.iter_mut().enumerate() {
                    *x ^= m[i % 4];
                }
            }
            self.pos += hdr + len;
            match opcode {
                0x0..=0x2 => {
                    self.partial.extend_from_slice(&payload);
                    if fin {
                        frames.push(Frame::Text(std::mem::take(&mut self.partial)));
                    }
                }
                0x8 => frames.push(Frame::Close),
                0x9 => frames.push(Frame::Ping(payload)),
                _ => {}
            }
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        Ok(frames)
    }

    /// Returns the frames buffered, reading the socket until there is at least one.
    ///
    /// # Errors
    /// Read failure, early close, oversized frame.
    pub(crate) async fn read(&mut self, stream: &mut TcpStream) -> io::Result<Vec<Frame>> {
        loop {
            let frames = self.decode()?;
            if !frames.is_empty() {
                return Ok(frames);
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let old = self.buf.len();
            self.buf.resize(old + 16 * 1024, 0);
            let n = stream.read(&mut self.buf[old..]).await;
            self.buf.truncate(old + *n.as_ref().unwrap_or(&0));
            if n? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "WebSocket closed",
                ));
            }
        }
    }
}

/// Encodes a masked client text frame into `out` (cleared first).
pub(crate) fn encode_text(payload: &[u8], out: &mut Vec<u8>) {
    encode(0x1, payload, out);
}

/// Encodes a masked client frame with `opcode` into `out` (cleared first).
pub(crate) fn encode(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_all_length_forms_decode_in_pieces() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&[0x81, 3]);
        wire.extend_from_slice(b"40,");
        let long = vec![b'a'; 300];
        wire.extend_from_slice(&[0x81, 126, 1, 44]);
        wire.extend_from_slice(&long);
        wire.extend_from_slice(&[0x01, 2, b'4', b'2', 0x80, 1, b'x']); // fragmented
        wire.extend_from_slice(&[0x89, 0, 0x88, 0]);
        let mut r = FrameReader::default();
        let mut got = Vec::new();
        for b in wire {
            r.buf.push(b);
            got.extend(r.decode().expect("valid"));
        }
        assert_eq!(
            got,
            vec![
                Frame::Text(b"40,".to_vec()),
                Frame::Text(long),
                Frame::Text(b"42x".to_vec()),
                Frame::Ping(Vec::new()),
                Frame::Close
            ]
        );
    }

    #[test]
    fn client_frames_are_masked_and_decodable() {
        let mut out = Vec::new();
        encode_text(&[b'z'; 200], &mut out);
        assert_eq!(out[1], 0x80 | 126);
        let mut r = FrameReader::new(out);
        assert_eq!(
            r.decode().expect("valid"),
            vec![Frame::Text(vec![b'z'; 200])]
        );
    }
}
