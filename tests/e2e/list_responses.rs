//! MCP list responses filtered for their caller, and hostile list responses
//! refused, through the real quickstart Envoy and mcp-authz (ext_authz, then
//! ext_proc on the response): a scripted upstream stands in for presto and
//! every test asserts what the client receives.
//!
//! Callers: alice (`ads-eng`, may call `get_revenue_metrics`) and fay, a
//! finance analyst who may connect to presto but is not in `ads-eng`
//! (`policies/tests/quickstart.yaml`). presto's registry lists `run_query`
//! and `get_revenue_metrics`; `secret_tool` is in no registry.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::harness::list_upstream::{ListUpstream, Scripted, sse_events};
use crate::harness::rpc::{MCP_ACCEPT, bearer, request, tool_call, user_token};
use crate::harness::{Authz, AuthzOptions, Envoy, PolicySources, envoy_in_front, http_client};

const PRESTO: &str = "/mcp/presto";

/// Every tool name a scripted list holds: none may reach a client from an
/// unreadable list.
const TOOL_NAMES: [&str; 3] = ["run_query", "get_revenue_metrics", "secret_tool"];

/// Start of the message of the JSON-RPC error replacing an unreadable list.
const UNREADABLE_MESSAGE: &str = "mcp-authz could not filter the MCP server's list response";

const PROGRESS: &str = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t-1","progress":1,"total":2,"message":"listing"}}"#;
const LOG: &str = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"presto","data":"listed"}}"#;

fn alice() -> String {
    user_token("alice", &["ads-eng"], &["ads"], "ai-chat")
}

fn fay() -> String {
    user_token("fay", &["finance-analysts"], &["finance"], "ai-chat")
}

fn run_query() -> Value {
    json!({
        "name": "run_query",
        "title": "Run a query",
        "description": "Run a read-only SQL query (é, \u{2028}, \"quoted\")",
        "inputSchema": {
            "type": "object",
            "properties": {"sql": {"type": "string"}, "catalog": {"type": "string"}},
            "required": ["sql"],
        },
        "annotations": {"readOnlyHint": true, "openWorldHint": false},
        "_meta": {"acme/owner": "data-platform", "n": [1, 2.5, -3, null]},
    })
}

fn revenue() -> Value {
    json!({
        "name": "get_revenue_metrics",
        "description": "Revenue by quarter and region",
        "inputSchema": {
            "type": "object",
            "properties": {"quarter": {"type": "string"}, "region": {"type": "string"}},
            "required": ["quarter"],
        },
        "outputSchema": {"type": "object"},
    })
}

fn secret() -> Value {
    json!({
        "name": "secret_tool",
        "description": "A tool no registry lists",
        "inputSchema": {"type": "object"},
    })
}

/// The upstream's full list: both registered tools, an unregistered one and
/// an entry without a name.
fn all_tools() -> Vec<Value> {
    vec![
        run_query(),
        revenue(),
        secret(),
        json!({"title": "a tool without a name"}),
    ]
}

fn list_response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A `tools/list` answer (id 1) holding every tool of [`all_tools`].
fn full_list_text() -> String {
    list_response(
        json!(1),
        json!({"tools": all_tools(), "nextCursor": "page-2"}),
    )
    .to_string()
}

/// A response as the client received it, body as bytes.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }

    fn media_type(&self) -> Option<&str> {
        self.header("content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim())
    }

    /// Panics if any tool name of a scripted list is in the body.
    fn assert_no_tool_names(&self, case: &str) {
        let text = self.text();
        for name in TOOL_NAMES {
            assert!(
                !text.contains(name),
                "{case}: `{name}` reached the client: {text}"
            );
        }
    }
}

/// Envoy + mcp-authz (quickstart config, changed by a patch) + the scripted
/// upstream behind all four clusters.
struct ListStack {
    // Field order is drop order: Envoy first, then mcp-authz, then the upstream.
    envoy: Envoy,
    authz: Authz,
    upstream: ListUpstream,
}

impl ListStack {
    async fn start() -> Self {
        Self::start_patched(|_| {}).await
    }

    async fn start_patched(patch: impl FnOnce(&mut Value)) -> Self {
        let upstream = ListUpstream::start().await;
        let authz =
            Authz::start_patched(&AuthzOptions::default(), &PolicySources::default(), patch).await;
        let envoy = envoy_in_front(&authz, [upstream.port; 4]).await;
        Self {
            envoy,
            authz,
            upstream,
        }
    }

    /// Scripts `answer`, POSTs `body` to presto as the bearer of `token` and
    /// returns what the client got; panics unless the request reached the upstream.
    async fn exchange(&self, token: &str, body: &Value, answer: Scripted) -> Got {
        self.upstream.answer(answer);
        let before = self.upstream.received().len();
        let sent = body.to_string();
        let got = post(&self.envoy.url(PRESTO), token, sent.as_bytes()).await;
        let received = self.upstream.received();
        assert_eq!(
            received.len(),
            before + 1,
            "the request did not reach the upstream: {got:?}\n{}",
            self.logs()
        );
        assert_eq!(
            received[before].body,
            sent.as_bytes(),
            "request body changed"
        );
        got
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.authz.log_tail(), self.envoy.log_tail())
    }
}

async fn post(url: &str, token: &str, body: &[u8]) -> Got {
    let resp = http_client()
        .post(url)
        .header("authorization", bearer(token))
        .header("content-type", "application/json")
        .header("accept", MCP_ACCEPT)
        .body(body.to_vec())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("body of POST {url}: {e:?}"))
        .to_vec();
    Got {
        status,
        headers,
        body,
    }
}

fn tools_list(id: i64) -> Value {
    request(json!(id), "tools/list")
}

/// Asserts `v` is the JSON-RPC error replacing an unreadable list answer
/// to request `id`, with `data.reason` `reason`.
fn assert_list_error(v: &Value, id: &Value, reason: &str, case: &str) {
    assert_eq!(v["jsonrpc"], "2.0", "{case}: {v}");
    assert_eq!(v["id"], *id, "{case}: {v}");
    assert!(v.get("result").is_none(), "{case}: {v}");
    assert_eq!(v["error"]["code"], -32001, "{case}: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(UNREADABLE_MESSAGE)),
        "{case}: {v}"
    );
    assert_eq!(v["error"]["data"]["reason"], reason, "{case}: {v}");
}

/// SSE text with CRLF line endings: `: stream opened`, then a progress
/// notification with an `id:` field.
fn sse_before() -> String {
    format!(
        ": stream opened\r\n\r\nid: s-1\r\nevent: message\r\nretry: 5000\r\ndata: {PROGRESS}\r\n\r\n"
    )
}

/// SSE text after the list: a log notification and a comment-only block.
fn sse_after() -> String {
    format!("id: s-3\r\nevent: message\r\ndata: {LOG}\r\n\r\n: bye\r\n\r\n")
}

/// The list as one SSE event (CRLF, an `id:`, a comment inside the event).
fn sse_list_event(list: &str) -> String {
    format!("id: s-2\r\nevent: message\r\n: the list\r\ndata: {list}\r\n\r\n")
}

/// Asserts the client got `before`, then one list event (id `s-2`, event
/// `message`) whose data is `expected`, then `after`, the other events byte
/// for byte.
fn assert_sse_list(got: &Got, before: &str, after: &str, expected: &Value, case: &str) {
    assert_eq!(got.status, 200, "{case}: {got:?}");
    assert_eq!(got.media_type(), Some("text/event-stream"), "{case}");
    let body = &got.body;
    assert!(
        body.starts_with(before.as_bytes()),
        "{case}: the events before the list changed: {}",
        got.text()
    );
    assert!(
        body.ends_with(after.as_bytes()) && body.len() >= before.len() + after.len(),
        "{case}: the events after the list changed: {}",
        got.text()
    );
    let middle = &body[before.len()..body.len() - after.len()];
    let events = sse_events(middle);
    assert_eq!(events.len(), 1, "{case}: {}", got.text());
    let ev = &events[0];
    assert_eq!(ev.field("id"), Some("s-2"), "{case}: {ev:?}");
    assert_eq!(ev.field("event"), Some("message"), "{case}: {ev:?}");
    let data: Value = serde_json::from_str(&ev.data().expect("list event data"))
        .unwrap_or_else(|e| panic!("{case}: list event data is not JSON ({e}): {ev:?}"));
    assert_eq!(data, *expected, "{case}");
}

/// A gzip member (RFC 1952) holding `data` in one stored (uncompressed)
/// deflate block: valid gzip whose bytes still show the list's text.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("a stored block holds at most 65535 bytes");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.push(1); // BFINAL, BTYPE 00 (stored)
    out.extend(len.to_le_bytes());
    out.extend((!len).to_le_bytes());
    out.extend(data);
    out.extend(crc32(data).to_le_bytes());
    out.extend(u32::from(len).to_le_bytes());
    out
}

/// CRC-32 (ISO-HDLC, as gzip uses it).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_matches_the_check_value() {
    // The standard check value of CRC-32/ISO-HDLC.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_tools_list_shows_each_caller_only_the_registered_tools_they_may_call() {
    let s = ListStack::start().await;
    let cases = [
        ("fay", fay(), vec![run_query()]),
        ("alice", alice(), vec![run_query(), revenue()]),
    ];
    for (who, token, expected) in cases {
        let got = s
            .exchange(&token, &tools_list(1), Scripted::json(full_list_text()))
            .await;
        assert_eq!(got.status, 200, "{who}: {got:?}\n{}", s.logs());
        assert_eq!(got.media_type(), Some("application/json"), "{who}");
        let v = got.json();
        // Kept tools are the upstream's objects, unchanged and in order;
        // the other fields of the message and result too.
        assert_eq!(
            v,
            list_response(json!(1), json!({"tools": expected, "nextCursor": "page-2"})),
            "{who}"
        );
        assert!(!got.text().contains("secret_tool"), "{who}: {}", got.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sse_list_split_in_small_chunks_is_filtered_and_other_events_pass_byte_for_byte() {
    let s = ListStack::start().await;
    let (before, after) = (sse_before(), sse_after());
    let stream = format!("{before}{}{after}", sse_list_event(&full_list_text()));
    const CHUNK: usize = 7;
    // Some chunk ends between the CR and the LF of a line ending.
    assert!(
        stream
            .as_bytes()
            .windows(2)
            .enumerate()
            .any(|(i, w)| w == b"\r\n" && (i + 1) % CHUNK == 0),
        "no chunk boundary splits a CRLF"
    );
    let answer = Scripted::sse(stream).in_chunks(CHUNK, Duration::from_millis(2));
    assert!(answer.chunks.len() > 100, "{}", answer.chunks.len());
    let got = s.exchange(&fay(), &tools_list(1), answer).await;
    let expected = list_response(
        json!(1),
        json!({"tools": [run_query()], "nextCursor": "page-2"}),
    );
    assert_sse_list(&got, &before, &after, &expected, "chunked SSE");
    assert!(!got.text().contains("secret_tool"), "{}", got.text());

    // The list event as a client may also receive it: a BOM first, CR line
    // endings, the JSON split over two `data:` lines (joined with LF).
    let text = full_list_text();
    let (head, tail) = text.split_at(text.find("\"result\"").expect("result key"));
    let stream = format!("\u{feff}event: message\rdata: {head}\rdata: {tail}\r\r: after\r\r");
    let got = s
        .exchange(
            &alice(),
            &tools_list(1),
            Scripted::sse(stream).in_chunks(5, Duration::from_millis(1)),
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    let events = sse_events(&got.body);
    assert_eq!(events.len(), 1, "{}", got.text());
    let data: Value = serde_json::from_str(&events[0].data().expect("data")).expect("JSON data");
    assert_eq!(
        data,
        list_response(
            json!(1),
            json!({"tools": [run_query(), revenue()], "nextCursor": "page-2"})
        )
    );
    assert!(!got.text().contains("secret_tool"), "{}", got.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sse_list_that_comes_seconds_after_the_first_event_is_still_filtered() {
    // A slow server: longer than Envoy's ext_proc timeouts (2 s) between events.
    let s = ListStack::start().await;
    let (before, after) = (sse_before(), sse_after());
    let rest = format!("{}{after}", sse_list_event(&full_list_text()));
    let answer = Scripted::sse("").with_chunks(
        vec![before.clone().into_bytes(), rest.into_bytes()],
        Duration::from_secs(3),
    );
    let got = s.exchange(&fay(), &tools_list(1), answer).await;
    let expected = list_response(
        json!(1),
        json!({"tools": [run_query()], "nextCursor": "page-2"}),
    );
    assert_sse_list(&got, &before, &after, &expected, "slow SSE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filtered_list_with_cache_fields_is_marked_private() {
    let s = ListStack::start().await;
    let cases = [
        (
            "ttlMs and a shared cacheScope",
            json!({"tools": all_tools(), "ttlMs": 60000, "cacheScope": "shared"}),
            json!({"tools": [run_query()], "ttlMs": 60000, "cacheScope": "private"}),
        ),
        (
            "ttlMs only",
            json!({"tools": all_tools(), "ttlMs": 5000}),
            json!({"tools": [run_query()], "ttlMs": 5000, "cacheScope": "private"}),
        ),
        (
            "cacheScope only",
            json!({"tools": all_tools(), "cacheScope": "shared"}),
            json!({"tools": [run_query()], "cacheScope": "private"}),
        ),
    ];
    for (case, result, expected) in cases {
        let body = list_response(json!(1), result).to_string();
        let got = s
            .exchange(&fay(), &tools_list(1), Scripted::json(body))
            .await;
        assert_eq!(got.status, 200, "{case}: {got:?}");
        assert_eq!(got.json(), list_response(json!(1), expected), "{case}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_answer_has_its_list_filtered_and_other_responses_unchanged() {
    let s = ListStack::start().await;
    let batch = json!([tools_list(1), request(json!(2), "ping")]);
    let pong = json!({"jsonrpc": "2.0", "id": 2, "result": {}});
    let list = list_response(json!(1), json!({"tools": all_tools()}));
    let filtered = list_response(json!(1), json!({"tools": [run_query()]}));

    // One JSON array, the ping answered first: responses are matched by id.
    let body = json!([pong, list]).to_string();
    let got = s.exchange(&fay(), &batch, Scripted::json(body)).await;
    assert_eq!(got.status, 200, "{got:?}\n{}", s.logs());
    assert_eq!(got.json(), json!([pong, filtered]));

    // Over SSE, one event per response (the ping's first).
    let pong_event = format!("id: b-1\r\nevent: message\r\ndata: {pong}\r\n\r\n");
    let list_event = format!("id: b-2\r\nevent: message\r\ndata: {list}\r\n\r\n");
    let got = s
        .exchange(
            &fay(),
            &batch,
            Scripted::sse(format!("{pong_event}{list_event}")),
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}\n{}", s.logs());
    assert!(
        got.body.starts_with(pong_event.as_bytes()),
        "the ping's event changed: {}\n{}",
        got.text(),
        s.logs()
    );
    let events = sse_events(&got.body[pong_event.len()..]);
    assert_eq!(events.len(), 1, "{}", got.text());
    let data: Value = serde_json::from_str(&events[0].data().expect("data")).expect("JSON data");
    assert_eq!(data, filtered);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_list_response_never_reaches_the_client() {
    let s = ListStack::start().await;
    let list = full_list_text();
    let id = json!(1);
    // JSON bodies the filter cannot read: replaced by the error, status kept.
    let bad_json = [
        ("invalid JSON", list[..list.len() - 1].to_owned()),
        (
            "duplicate `result`",
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[]}},"result":{}}}"#,
                json!({"tools": all_tools()})
            ),
        ),
        (
            "duplicate `tools`",
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[],"tools":{}}}}}"#,
                json!(all_tools())
            ),
        ),
        (
            "`result` without `tools`",
            list_response(json!(1), json!({"tool": all_tools()})).to_string(),
        ),
        (
            "`tools` not an array",
            list_response(json!(1), json!({"tools": {"secret_tool": secret()}})).to_string(),
        ),
        (
            "the message is not an object",
            json!(["run_query", "get_revenue_metrics", "secret_tool"]).to_string(),
        ),
    ];
    for (case, body) in bad_json {
        let got = s
            .exchange(&fay(), &tools_list(1), Scripted::json(body))
            .await;
        assert_eq!(got.status, 200, "{case}: {got:?}\n{}", s.logs());
        assert_eq!(got.media_type(), Some("application/json"), "{case}");
        assert_list_error(&got.json(), &id, "unreadable_response", case);
        got.assert_no_tool_names(case);
    }

    // Bodies mcp-authz will not read at all: HTTP 502 with the error.
    let not_json = [
        (
            "Content-Type: text/plain",
            Scripted::new(200, Some("text/plain"), list.clone()),
        ),
        ("no Content-Type", Scripted::new(200, None, list.clone())),
        (
            "Content-Encoding: gzip",
            Scripted::json(gzip_stored(list.as_bytes())).header("content-encoding", "gzip"),
        ),
    ];
    for (case, answer) in not_json {
        let got = s.exchange(&fay(), &tools_list(1), answer).await;
        assert_eq!(got.status, 502, "{case}: {got:?}\n{}", s.logs());
        assert_eq!(got.media_type(), Some("application/json"), "{case}");
        assert!(got.header("content-encoding").is_none(), "{case}: {got:?}");
        assert_list_error(&got.json(), &id, "unreadable_response", case);
        got.assert_no_tool_names(case);
    }

    // SSE: the events before pass, the error event replaces the broken list
    // event and everything after it (here a well-formed copy of the list).
    let before = sse_before();
    let broken = format!(
        "id: s-2\r\nevent: message\r\ndata: {}\r\n\r\n",
        &list[..list.len() - 1]
    );
    let stream = format!("{before}{broken}{}{}", sse_list_event(&list), sse_after());
    let got = s
        .exchange(
            &fay(),
            &tools_list(1),
            Scripted::sse(stream).in_chunks(64, Duration::from_millis(1)),
        )
        .await;
    let case = "SSE event with broken JSON";
    assert_eq!(got.status, 200, "{case}: {got:?}");
    assert!(
        got.body.starts_with(before.as_bytes()),
        "{case}: {}",
        got.text()
    );
    let events = sse_events(&got.body[before.len()..]);
    assert_eq!(events.len(), 1, "{case}: {}", got.text());
    assert_eq!(events[0].field("event"), Some("message"), "{case}");
    let data: Value = serde_json::from_str(&events[0].data().expect("data")).expect("JSON data");
    assert_list_error(&data, &id, "unreadable_response", case);
    got.assert_no_tool_names(case);

    // SSE: a list event the stream ends before finishing is not dispatched
    // by a client; mcp-authz drops it rather than pass it on.
    let unfinished = format!("{before}id: s-2\r\nevent: message\r\ndata: {list}");
    let got = s
        .exchange(&fay(), &tools_list(1), Scripted::sse(unfinished))
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.text(), before, "unfinished SSE event");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_over_max_body_bytes_is_refused() {
    const MAX: usize = 1024;
    let s = ListStack::start_patched(|c| c["responses"] = json!({"max_body_bytes": MAX})).await;
    let id = json!(1);
    // Within the limit: filtered as usual.
    let small = list_response(json!(1), json!({"tools": [run_query(), secret()]})).to_string();
    assert!(small.len() < MAX, "{}", small.len());
    let got = s
        .exchange(&fay(), &tools_list(1), Scripted::json(small))
        .await;
    assert_eq!(
        got.json(),
        list_response(json!(1), json!({"tools": [run_query()]})),
        "{}",
        s.logs()
    );

    // Over it (with padding in a tool's description).
    let mut padded = secret();
    padded["description"] = json!("x".repeat(2 * MAX));
    let big = list_response(json!(1), json!({"tools": [run_query(), padded]})).to_string();
    let got = s
        .exchange(
            &fay(),
            &tools_list(1),
            Scripted::json(big.clone()).in_chunks(300, Duration::from_millis(1)),
        )
        .await;
    let case = "JSON over the limit";
    assert_eq!(got.status, 200, "{case}: {got:?}");
    assert_list_error(&got.json(), &id, "response_too_large", case);
    got.assert_no_tool_names(case);

    // An SSE list event over the limit: the error event replaces it,
    // whether the event arrives in pieces or in one write (then Envoy hands
    // it to mcp-authz whole, in one body chunk).
    let before = sse_before();
    let stream = format!("{before}{}{}", sse_list_event(&big), sse_after());
    let answers = [
        (
            "SSE event over the limit, in chunks",
            Scripted::sse(stream.clone()).in_chunks(300, Duration::from_millis(30)),
        ),
        ("SSE event over the limit, one write", Scripted::sse(stream)),
    ];
    for (case, answer) in answers {
        let got = s.exchange(&fay(), &tools_list(1), answer).await;
        assert_eq!(got.status, 200, "{case}: {got:?}");
        assert!(
            got.body.starts_with(before.as_bytes()),
            "{case}: {}",
            got.text()
        );
        let events = sse_events(&got.body[before.len()..]);
        assert_eq!(events.len(), 1, "{case}: {}", got.text());
        let data: Value =
            serde_json::from_str(&events[0].data().expect("data")).expect("JSON data");
        assert_list_error(&data, &id, "response_too_large", case);
        got.assert_no_tool_names(case);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_unparsable_pass_an_unreadable_list_passes_unchanged() {
    let s = ListStack::start_patched(|c| c["responses"] = json!({"unparsable": "pass"})).await;
    let list = full_list_text();
    let invalid = list[..list.len() - 1].to_owned();
    let got = s
        .exchange(&fay(), &tools_list(1), Scripted::json(invalid.clone()))
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.text(), invalid, "invalid JSON\n{}", s.logs());

    let got = s
        .exchange(
            &fay(),
            &tools_list(1),
            Scripted::new(200, Some("text/plain"), list.clone()),
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.text(), list, "text/plain");

    // A readable list is still filtered.
    let got = s
        .exchange(&fay(), &tools_list(1), Scripted::json(list))
        .await;
    assert_eq!(
        got.json(),
        list_response(
            json!(1),
            json!({"tools": [run_query()], "nextCursor": "page-2"})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_unparsable_pass_an_oversized_list_passes_unchanged() {
    // `responses.unparsable` covers lists "over the size limit" too
    // (`ResponsesConfig` docs, issue 11).
    const MAX: usize = 1024;
    let s = ListStack::start_patched(|c| {
        c["responses"] = json!({"unparsable": "pass", "max_body_bytes": MAX})
    })
    .await;
    let mut padded = secret();
    padded["description"] = json!("x".repeat(2 * MAX));
    let big = list_response(json!(1), json!({"tools": [run_query(), padded]})).to_string();
    let got = s
        .exchange(
            &fay(),
            &tools_list(1),
            Scripted::json(big.clone()).in_chunks(300, Duration::from_millis(1)),
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.text(), big, "\n{}", s.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tools_call_answer_passes_byte_for_byte() {
    let s = ListStack::start().await;
    let call = tool_call(json!(5), "run_query", json!({"sql": "SELECT 1"}));
    // Not strict JSON (duplicate `id`), odd spacing, and a `tools` array:
    // read (an answer to a non-list request may carry a misrouted list),
    // cannot be parsed, so it is no list answer and passes byte for byte.
    let body = concat!(
        "{ \"jsonrpc\":\"2.0\", \"id\":5, \"id\":5,\n",
        "  \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"secret_tool\"}],",
        "\"tools\":[{\"name\":\"secret_tool\"}]} }\r\n"
    );
    let got = s
        .exchange(
            &fay(),
            &call,
            Scripted::json(body).header("x-upstream-marker", "kept"),
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}\n{}", s.logs());
    assert_eq!(got.text(), body);
    assert_eq!(got.header("x-upstream-marker"), Some("kept"));

    // The same over SSE, in small chunks.
    let stream = format!(
        "{}id: c-1\r\nevent: message\r\ndata: {}\r\n\r\n: end",
        sse_before(),
        body.trim_end().replace('\n', "")
    );
    let got = s
        .exchange(
            &fay(),
            &call,
            Scripted::sse(stream.clone()).in_chunks(9, Duration::from_millis(1)),
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.text(), stream);
}

/// A resumed GET stream (`Last-Event-ID`) may replay earlier answers, a
/// `tools/list` result among them: its list is filtered as on the POST
/// stream, while replayed non-list answers and notifications pass byte for
/// byte.
#[tokio::test(flavor = "multi_thread")]
async fn a_list_replayed_on_a_resumed_get_stream_is_filtered() {
    let s = ListStack::start().await;
    let call_answer =
        r#"{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"ok"}]}}"#;
    let stream = format!(
        "{}{}id: s-4\r\nevent: message\r\ndata: {call_answer}\r\n\r\n{}",
        sse_before(),
        sse_list_event(&full_list_text()),
        sse_after()
    );
    s.upstream
        .answer(Scripted::sse(stream).in_chunks(64, Duration::from_millis(1)));
    let resp = http_client()
        .get(s.envoy.url(PRESTO))
        .header("authorization", bearer(&fay()))
        .header("accept", "text/event-stream")
        .header("last-event-id", "s-0")
        .send()
        .await
        .expect("GET");
    let got = Got {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body").to_vec(),
    };
    assert_eq!(got.status, 200, "{got:?}\n{}", s.logs());
    let text = got.text();
    assert!(text.starts_with(&sse_before()), "{text}");
    assert!(
        text.contains(&format!("data: {call_answer}\r\n\r\n")),
        "{text}"
    );
    assert!(text.ends_with(&sse_after()), "{text}");
    assert!(!text.contains("get_revenue_metrics"), "{text}");
    assert!(!text.contains("secret_tool"), "{text}");
    let events = sse_events(&got.body);
    let list = events
        .iter()
        .filter_map(|e| e.data())
        .filter_map(|d| serde_json::from_str::<Value>(&d).ok())
        .find(|v| v["result"]["tools"].is_array())
        .expect("the replayed list");
    assert_eq!(list["result"]["tools"], json!([run_query()]), "{text}");
}

/// A server may route a list result to another request's stream (two
/// requests of one session reusing a JSON-RPC id: rmcp sends a response to
/// the latest stream registered for its id). A list-shaped result on the
/// stream of a request that asked for no list is filtered all the same, over
/// JSON and SSE; an ordinary answer on it passes unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn a_list_result_on_another_requests_stream_is_filtered() {
    let s = ListStack::start().await;
    let ping = request(json!(4), "ping");
    let got = s
        .exchange(&fay(), &ping, Scripted::json(full_list_text()))
        .await;
    assert_eq!(got.status, 200, "{got:?}\n{}", s.logs());
    assert_eq!(
        got.json()["result"]["tools"],
        json!([run_query()]),
        "{}",
        got.text()
    );
    let stream = format!(
        "{}{}{}",
        sse_before(),
        sse_list_event(&full_list_text()),
        sse_after()
    );
    let got = s
        .exchange(
            &fay(),
            &ping,
            Scripted::sse(stream).in_chunks(32, Duration::from_millis(1)),
        )
        .await;
    let text = got.text();
    assert!(
        !text.contains("get_revenue_metrics") && !text.contains("secret_tool"),
        "{text}"
    );
    assert!(
        text.starts_with(&sse_before()) && text.ends_with(&sse_after()),
        "{text}"
    );
    // An ordinary answer to the ping passes byte for byte.
    let pong = r#"{"jsonrpc":"2.0","id":4,"result":{}}"#;
    let got = s.exchange(&fay(), &ping, Scripted::json(pong)).await;
    assert_eq!(got.text(), pong);
}
