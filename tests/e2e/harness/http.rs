//! Client side of the tests: requests through Envoy and what came back.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::echo::Seen;
use super::{MCP_BODY, http_client};

/// A response as the MCP client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// Reads status, headers and the whole body of a response.
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("response body");
        Reply {
            status,
            headers,
            body,
        }
    }
}

impl Reply {
    /// What the echo upstream saw; panics unless the request reached it.
    pub fn seen(&self) -> Seen {
        assert_eq!(
            self.status, 200,
            "request did not reach the upstream: {self:?}"
        );
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an echo reply ({e}): {self:?}"))
    }

    /// The body as JSON; panics if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }

    /// The single value of response header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }
}

/// POSTs [`MCP_BODY`] as JSON to `url` with `headers` (repeats allowed).
pub async fn post(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
        map.append(name, HeaderValue::from_str(value).expect("header value"));
    }
    let resp = http_client()
        .post(url)
        .header("content-type", "application/json")
        .headers(map)
        .body(MCP_BODY)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    Reply::read(resp).await
}

/// Sends `head` (request line and headers, CRLF-separated, no final blank
/// line) plus [`MCP_BODY`] over a raw TCP connection, byte for byte: header
/// names keep their case on the wire.
pub async fn raw_post(port: u16, head: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!(
        "{head}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{MCP_BODY}",
        MCP_BODY.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    parse_response(&raw)
}

/// Sends `request` (a whole HTTP/1.1 request, byte for byte, e.g. with a
/// chunked body) over a raw TCP connection and reads the response to EOF;
/// the request should say `Connection: close`.
pub async fn raw_request(port: u16, request: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut headers = HeaderMap::new();
    for line in lines {
        let (n, v) = line.split_once(':').expect("header line");
        headers.append(
            HeaderName::from_bytes(n.trim().as_bytes()).expect("name"),
            HeaderValue::from_str(v.trim()).expect("value"),
        );
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}
