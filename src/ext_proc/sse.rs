//! Server-sent events (WHATWG HTML, "Server-sent events", §9.2.6) split and
//! read as an MCP client reads them, so that mcp-authz filters exactly the
//! events a client dispatches.
//!
//! Lines end with CRLF, LF or CR; an empty line ends an event; a line
//! `field: value` (one optional space after the colon), a line without a
//! colon is a field with an empty value, a line starting with `:` is a
//! comment; `data` lines join with LF; a leading U+FEFF of the stream is
//! skipped. An event the stream ends before finishing is not dispatched
//! by a client, and mcp-authz drops it.

/// An incremental splitter of an event stream into whole events.
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned without finding the end of an event.
    scanned: usize,
    /// Where the line being scanned starts in `buf`.
    line_start: usize,
    max_event_bytes: usize,
    /// No event was split off yet (a BOM may start the stream).
    first: bool,
}

/// One whole event: its raw bytes (with the terminating empty line).
#[derive(Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub bytes: Vec<u8>,
    /// The first event of the stream (its BOM, if any, is not a field).
    pub first: bool,
}

/// What one [`Splitter::push`] produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Whole events within the limit, in order.
    pub events: Vec<RawEvent>,
    /// Set when an event (finished or not) exceeds the limit: every byte
    /// from the start of that event on. The splitter is then spent.
    pub too_large: Option<Vec<u8>>,
}

impl Splitter {
    pub fn new(max_event_bytes: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            scanned: 0,
            line_start: 0,
            max_event_bytes,
            first: true,
        }
    }

    /// Feeds `data`; returns the events it completed, in order, and stops at
    /// the first event over the limit (finished or not).
    pub fn push(&mut self, data: &[u8]) -> Pushed {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b != b'\n' && b != b'\r' {
                i += 1;
                continue;
            }
            // A CR at the end of what we have may be the first half of CRLF.
            if b == b'\r' && i + 1 == self.buf.len() {
                break;
            }
            let end = if b == b'\r' && self.buf[i + 1] == b'\n' {
                i + 2
            } else {
                i + 1
            };
            let empty_line = i == self.line_start;
            self.line_start = end;
            i = end;
            if empty_line {
                if end > self.max_event_bytes {
                    return self.spent(out);
                }
                let rest = self.buf.split_off(end);
                let bytes = std::mem::replace(&mut self.buf, rest);
                out.push(RawEvent {
                    bytes,
                    first: std::mem::replace(&mut self.first, false),
                });
                i = 0;
                self.line_start = 0;
            }
        }
        self.scanned = i;
        if self.buf.len() > self.max_event_bytes {
            return self.spent(out);
        }
        Pushed {
            events: out,
            too_large: None,
        }
    }

    /// Gives up at an event over the limit: `events` so far, then every
    /// byte not yet split off.
    fn spent(&mut self, events: Vec<RawEvent>) -> Pushed {
        self.scanned = 0;
        self.line_start = 0;
        Pushed {
            events,
            too_large: Some(std::mem::take(&mut self.buf)),
        }
    }

    /// Bytes of an unfinished event (dropped at the end of the stream).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The unfinished event's bytes, taken out.
    pub fn take_pending(&mut self) -> Vec<u8> {
        self.scanned = 0;
        self.line_start = 0;
        std::mem::take(&mut self.buf)
    }
}

/// One event's fields, as a client reads them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Event<'a> {
    /// `data` lines joined with LF; `None` when the event has no `data` field.
    pub data: Option<Vec<u8>>,
    /// The other lines (fields and comments), raw, without terminators.
    pub other_lines: Vec<&'a [u8]>,
}

/// Reads the fields of one raw event.
pub fn fields(ev: &RawEvent) -> Event<'_> {
    let mut bytes = ev.bytes.as_slice();
    if ev.first {
        bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    }
    let mut out = Event::default();
    let mut data_lines: Vec<&[u8]> = Vec::new();
    for line in lines(bytes) {
        if line.is_empty() {
            continue;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => {
                out.other_lines.push(line);
                continue;
            }
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if name == b"data" {
            data_lines.push(value);
        } else {
            out.other_lines.push(line);
        }
    }
    if !data_lines.is_empty() {
        out.data = Some(data_lines.join(&b'\n'));
    }
    out
}

/// The lines of `bytes` (CRLF, LF or CR terminated; the last may be unterminated).
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        match end {
            None => {
                let line = rest;
                rest = &[];
                Some(line)
            }
            Some(e) => {
                let line = &rest[..e];
                let skip = if rest[e] == b'\r' && rest.get(e + 1) == Some(&b'\n') {
                    e + 2
                } else {
                    e + 1
                };
                rest = &rest[skip..];
                Some(line)
            }
        }
    })
}

/// An event rebuilt with new `data` (one line: compact JSON has no line
/// breaks) and the original other lines in their order.
pub fn rebuild(ev: &Event<'_>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    for line in &ev.other_lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn split_all(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = Splitter::new(1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            let pushed = s.push(c);
            assert_eq!(pushed.too_large, None);
            out.extend(pushed.events.into_iter().map(|e| e.bytes));
        }
        out
    }

    #[test]
    fn events_end_at_an_empty_line_of_any_line_ending() {
        let all = b"data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\n";
        let events = split_all(&[all]);
        assert_eq!(
            events,
            vec![
                b"data: a\n\n".to_vec(),
                b"data: b\r\n\r\n".to_vec(),
                b"data: c\r\r".to_vec()
            ]
        );
    }

    #[test]
    fn a_split_crlf_is_not_two_line_ends() {
        // "data: a\r" + "\n" + "\r\n": one event, not an empty line after CR.
        let events = split_all(&[b"data: a\r", b"\n", b"\r", b"\n"]);
        assert_eq!(events, vec![b"data: a\r\n\r\n".to_vec()]);
        // Byte by byte gives the same events as one chunk.
        let text = b"id: 1\nevent: message\ndata: {\"x\":1}\n\n: ping\n\ndata: y\r\n\r\n";
        let one = split_all(&[text]);
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split_all(&bytes), one);
        assert_eq!(one.len(), 3);
    }

    #[test]
    fn fields_follow_the_spec() {
        let ev = RawEvent {
            bytes: "\u{feff}id: 7\ndata:{\"a\":1}\ndata\ndata:  two\n: c\nevent:message\n\n"
                .as_bytes()
                .to_vec(),
            first: true,
        };
        let f = fields(&ev);
        assert_eq!(f.data.as_deref(), Some(&b"{\"a\":1}\n\n two"[..]));
        assert_eq!(
            f.other_lines,
            vec![&b"id: 7"[..], &b": c"[..], &b"event:message"[..]]
        );
        let empty_first = RawEvent {
            bytes: b"data:\ndata: x\n\n".to_vec(),
            first: false,
        };
        assert_eq!(fields(&empty_first).data.as_deref(), Some(&b"\nx"[..]));
        let no_data = RawEvent {
            bytes: b": ping\n\n".to_vec(),
            first: false,
        };
        assert_eq!(fields(&no_data).data, None);
    }

    #[test]
    fn an_event_over_the_limit_is_refused_finished_or_not() {
        let mut s = Splitter::new(16);
        assert_eq!(s.push(b"data: 0123456789"), Pushed::default());
        let p = s.push(b"abcdef");
        assert!(p.events.is_empty());
        assert_eq!(p.too_large.as_deref(), Some(&b"data: 0123456789abcdef"[..]));
        // A whole event over the limit in one chunk, after a small one.
        let mut s = Splitter::new(16);
        let p = s.push(b"data: a\n\ndata: 0123456789abcdef\n\ndata: b\n\n");
        assert_eq!(p.events.len(), 1);
        assert_eq!(
            p.too_large.as_deref(),
            Some(&b"data: 0123456789abcdef\n\ndata: b\n\n"[..])
        );
        // Exactly the limit passes.
        let mut s = Splitter::new(16);
        let p = s.push(b"data: 01234567\n\n");
        assert_eq!((p.events.len(), p.too_large), (1, None));
    }
}
