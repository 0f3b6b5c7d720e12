//! A hand-written upstream standing in for an MCP server behind Envoy: it
//! answers every request with the response the test scripted (status,
//! headers, body written chunk by chunk with a pause between chunks), so a
//! test can send what no well-behaved MCP server would, and it records the
//! requests it received.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

/// One scripted HTTP response.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    /// Response headers, written in this order (repeats allowed).
    pub headers: Vec<(String, String)>,
    /// The body, one write (and one HTTP/1.1 chunk) per element.
    pub chunks: Vec<Vec<u8>>,
    /// How long to wait before each chunk after the first.
    pub pause: Duration,
}

impl Scripted {
    /// A `status` response with `Content-Type: content_type` (none when
    /// `None`) and `body` sent whole with a `Content-Length`.
    pub fn new(status: u16, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        let headers = content_type
            .map(|c| vec![("content-type".to_owned(), c.to_owned())])
            .unwrap_or_default();
        Scripted {
            status,
            headers,
            chunks: vec![body.into()],
            pause: Duration::ZERO,
        }
    }

    /// 200 `application/json`.
    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, Some("application/json"), body)
    }

    /// 200 `text/event-stream`.
    pub fn sse(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, Some("text/event-stream"), body)
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends the body in chunks of `size` bytes, `pause` apart (chunked
    /// transfer encoding, each chunk flushed on its own).
    pub fn in_chunks(mut self, size: usize, pause: Duration) -> Self {
        let whole = self.body();
        self.chunks = whole.chunks(size).map(<[u8]>::to_vec).collect();
        self.pause = pause;
        self
    }

    /// Sends the body as exactly these chunks, `pause` apart.
    pub fn with_chunks(mut self, chunks: Vec<Vec<u8>>, pause: Duration) -> Self {
        self.chunks = chunks;
        self.pause = pause;
        self
    }

    /// The whole body, as the upstream writes it.
    pub fn body(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// Every header as received, repeated headers as separate entries.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        super::header_values(&self.headers, name)
    }
}

/// The scripted upstream; aborted on drop.
pub struct ListUpstream {
    pub port: u16,
    state: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    answer: Mutex<Scripted>,
    received: Mutex<Vec<Received>>,
}

impl ListUpstream {
    /// Binds a free port on 127.0.0.1 and serves in the current runtime,
    /// answering an empty JSON object until [`ListUpstream::answer`] is called.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind list upstream");
        let port = listener.local_addr().expect("list upstream addr").port();
        let state = Arc::new(Shared {
            answer: Mutex::new(Scripted::json("{}")),
            received: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(respond)
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("list upstream");
        });
        Self { port, state, task }
    }

    /// Every later request gets `answer`.
    pub fn answer(&self, answer: Scripted) {
        *self.state.answer.lock().expect("answer lock") = answer;
    }

    /// The requests received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received lock").clone()
    }
}

impl Drop for ListUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn respond(State(state): State<Arc<Shared>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    state
        .received
        .lock()
        .expect("received lock")
        .push(Received {
            headers,
            body: body.to_vec(),
        });
    let script = state.answer.lock().expect("answer lock").clone();
    let mut builder =
        Response::builder().status(StatusCode::from_u16(script.status).expect("status code"));
    for (name, value) in &script.headers {
        builder = builder.header(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
    }
    let body = if script.chunks.len() <= 1 {
        // Whole, with a `Content-Length`.
        Body::from(script.body())
    } else {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(1);
        tokio::spawn(async move {
            for (i, chunk) in script.chunks.into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(script.pause).await;
                }
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
            }
        });
        Body::from_stream(ReceiverStream::new(rx))
    };
    builder.body(body).expect("scripted response")
}

/// One server-sent event as a client reads it (WHATWG HTML, "Server-sent
/// events"): its fields in order, comments left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub fields: Vec<(String, String)>,
}

impl SseEvent {
    /// The `data` lines joined with LF; `None` without a `data` field.
    pub fn data(&self) -> Option<String> {
        let lines: Vec<&str> = self
            .fields
            .iter()
            .filter(|(n, _)| n == "data")
            .map(|(_, v)| v.as_str())
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    /// The last value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The events of an event stream a client would dispatch, written here
/// independently of mcp-authz's own reader: lines end with CRLF, LF or CR,
/// an empty line ends an event, `:` starts a comment, one space after the
/// field's colon is dropped, a leading BOM is skipped, and an event the
/// stream ends before finishing is not dispatched.
pub fn sse_events(body: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut events = Vec::new();
    let mut fields = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
        if line.is_empty() {
            if !fields.is_empty() {
                events.push(SseEvent {
                    fields: std::mem::take(&mut fields),
                });
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        fields.push((name.to_owned(), value.to_owned()));
    }
    events
}
