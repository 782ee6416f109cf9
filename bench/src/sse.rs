//! An incremental Server-Sent Events parser (the WHATWG event-stream format, minus `retry`).
//!
//! It owns splitting a decoded body into lines and lines into events; it does not own what an
//! event's data means. Invariant: after `feed`, the caller drops the consumed prefix of its
//! buffer; only an incomplete last line is kept.

/// Accumulates the fields of the event being parsed.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    data: Vec<u8>,
    has_data: bool,
    event: Vec<u8>,
    /// Comment lines (`: keep-alive`) seen so far.
    pub(crate) comments: u64,
}

impl SseParser {
    /// Parses the complete lines in `buf`, calling `on_event(event_name, data)` for each event
    /// that ends (blank line). Returns the number of bytes consumed.
    pub(crate) fn feed(&mut self, buf: &[u8], mut on_event: impl FnMut(&[u8], &[u8])) -> usize {
        let mut pos = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) {
            let mut line = &buf[pos..pos + nl];
            pos += nl + 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.is_empty() {
                if self.has_data {
                    on_event(&self.event, &self.data);
                }
                self.data.clear();
                self.event.clear();
                self.has_data = false;
                continue;
            }
            if line[0] == b':' {
                self.comments += 1;
                continue;
            }
            let (field, value) = match memchr::memchr(b':', line) {
                Some(c) => {
                    let v = &line[c + 1..];
                    (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &b""[..]),
            };
            match field {
                b"data" => {
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                }
                b"event" => {
                    self.event.clear();
                    self.event.extend_from_slice(value);
                }
                _ => {}
            }
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_feeds_are_reassembled() {
        let wire = b": keep-alive\n\nevent: entries\nid: c1\ndata: {\"a\":1}\n\ndata: x\r\ndata: y\r\n\r\n";
        for piece in 1..wire.len() {
            let mut p = SseParser::default();
            let mut buf = Vec::new();
            let mut got = Vec::new();
            for part in wire.chunks(piece) {
                buf.extend_from_slice(part);
                let used = p.feed(&buf, |e, d| got.push((e.to_vec(), d.to_vec())));
                buf.drain(..used);
            }
            assert_eq!(
                got,
                vec![
                    (b"entries".to_vec(), b"{\"a\":1}".to_vec()),
                    (Vec::new(), b"x\ny".to_vec())
                ],
                "piece {piece}"
            );
            assert_eq!(p.comments, 1);
            assert!(buf.is_empty());
        }
    }
}
