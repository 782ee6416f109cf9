//! A Server-Sent Events client for tests that parses the stream by the WHATWG rules
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>):
//! lines end at CR LF, LF or CR; a leading BOM is dropped; `:` lines are comments; a field's
//! value loses one leading space; `data` lines are joined with LF; an empty line dispatches.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event: String,
    pub data: String,
    /// The last event id after this event (it persists across events, as in browsers).
    pub id: String,
    pub retry: Option<u64>,
}

impl Event {
    /// The event's data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {:?}", self.data))
    }
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    started: bool,
    last_was_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: String,
    retry: Option<u64>,
    pub comments: usize,
}

impl Parser {
    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.last_was_cr && b == b'\n' {
                self.last_was_cr = false;
                continue;
            }
            self.last_was_cr = b == b'\r';
            if b == b'\n' || b == b'\r' {
                let line = std::mem::take(&mut self.buf);
                let mut line = String::from_utf8_lossy(&line).into_owned();
                if !self.started {
                    self.started = true;
                    if let Some(rest) = line.strip_prefix('\u{feff}') {
                        line = rest.to_owned();
                    }
                }
                if let Some(e) = self.line(&line) {
                    out.push(e);
                }
            } else {
                self.buf.push(b);
            }
        }
        out
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let event = if self.has_data {
                Some(Event {
                    event: if self.event.is_empty() {
                        "message".into()
                    } else {
                        self.event.clone()
                    },
                    data: self.data.clone(),
                    id: self.last_id.clone(),
                    retry: self.retry,
                })
            } else {
                None
            };
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return event;
        }
        if line.starts_with(':') {
            self.comments += 1;
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = value.to_owned(),
            "retry" => self.retry = value.parse().ok().or(self.retry),
            _ => {}
        }
        None
    }
}

/// An open SSE connection.
pub struct Connection {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    pub parser: Parser,
    pending: std::collections::VecDeque<Event>,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
}

impl Connection {
    /// Opens `url` with an optional `Last-Event-ID`.
    pub async fn open(client: &reqwest::Client, url: &str, last_event_id: Option<&str>) -> Self {
        let mut req = client.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Self {
            stream: Box::pin(resp.bytes_stream()),
            parser: Parser::default(),
            pending: Default::default(),
            status,
            headers,
        }
    }

    /// The next event, or `None` if the stream ended; panics after `deadline`.
    pub async fn next(&mut self, deadline: Duration) -> Option<Event> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let chunk = tokio::time::timeout_at(end, self.stream.next())
                .await
                .expect("SSE event within deadline");
            match chunk {
                Some(Ok(bytes)) => self.pending.extend(self.parser.feed(&bytes)),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Reads events until `count` line entries have arrived; returns them (as JSON entries)
    /// and the last event id.
    pub async fn entries(&mut self, count: usize, deadline: Duration) -> (Vec<Value>, String) {
        let mut out = Vec::new();
        let mut id = String::new();
        let end = tokio::time::Instant::now() + deadline;
        while out.len() < count {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next(left).await.expect("stream open");
            id = e.id.clone();
            out.extend(e.json()["entries"].as_array().unwrap().iter().cloned());
        }
        (out, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_follows_the_whatwg_rules() {
        let mut p = Parser::default();
        let events =
            p.feed(b"\xef\xbb\xbfretry: 5\r\n: c\rdata: a\r\ndata:b\nid: 7\nevent: x\n\ndata\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(
            (
                events[0].event.as_str(),
                events[0].data.as_str(),
                events[0].id.as_str()
            ),
            ("x", "a\nb", "7")
        );
        assert_eq!(
            (
                events[1].event.as_str(),
                events[1].data.as_str(),
                events[1].id.as_str()
            ),
            ("message", "", "7")
        );
        assert_eq!(p.comments, 1);
        assert_eq!(events[0].retry, Some(5));
    }
}
