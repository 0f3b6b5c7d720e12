//! Bodies that another JSON decoder, or the upstream, would read differently
//! from mcp-authz (issue 8): keys that are duplicates or equal under case
//! folding (item 1), and bodies longer than Envoy's buffer (item 4).

use crate::harness::http::{Reply, raw_request};
use crate::harness::rpc::{RpcError, bearer, send, user_token};
use crate::harness::{Stack, h2, http_client};

/// Envoy's `with_request_body.max_request_bytes` and mcp-authz's `limits.max_body_bytes`.
/// The shipped `limits.max_body_bytes` (and Envoy's `max_request_bytes`).
const BUFFER: usize = crate::harness::QUICKSTART_MAX_BODY_BYTES;
/// Allowed for alice on presto.
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
/// A call alice may not make (`revenue-metrics-ads-eng-only`), 117 bytes.
const FORBIDDEN_CALL: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_revenue_metrics","arguments":{"quarter":"26Q3"}}}"#;

/// alice reaches presto (business group `ads`) but not revenue metrics.
fn alice() -> String {
    user_token("alice", &["eng"], &["ads"], "ai-chat")
}

async fn post(stack: &Stack, body: &[u8]) -> Reply {
    let auth = bearer(&alice());
    let url = stack.envoy.url("/mcp/presto");
    send(
        &http_client(),
        "POST",
        &url,
        &[("authorization", &auth)],
        Some(body.to_vec()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_that_another_decoder_reads_differently_are_refused() {
    let stack = Stack::quickstart().await;
    let args = r#"{"name":"run_query","arguments":{"sql":"select 1"}}"#;
    let cases: Vec<(&str, String)> = vec![
        ("`Method` beside `method`", format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","Method":"tools/call","params":{args}}}"#
        )),
        ("`METHOD` beside `method`", format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","METHOD":"tools/call","params":{args}}}"#
        )),
        ("escaped `\\u004dethod`", format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","\u004dethod":"tools/call","params":{args}}}"#
        )),
        ("a response carrying `Method`", format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{}},"Method":"tools/call","params":{args}}}"#
        )),
        ("`method` twice", format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","method":"tools/call","params":{args}}}"#
        )),
        ("`paramſ` (U+017F folds to `s`)", format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{args},"paramſ":{{"name":"get_revenue_metrics","arguments":{{"quarter":"2026-Q3"}}}}}}"#
        )),
        ("`Name` beside `name`", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","Name":"get_revenue_metrics","arguments":{"sql":"select 1"}}}"#.into()),
        ("`NAME` beside `name`", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","NAME":"get_revenue_metrics","arguments":{"sql":"select 1"}}}"#.into()),
        ("`name` twice", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","name":"get_revenue_metrics","arguments":{"quarter":"2026-Q3"}}}"#.into()),
        ("`Arguments` beside `arguments`", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"select 1"},"Arguments":{"sql":"select * from finance.revenue"}}}"#.into()),
        ("`Limit` beside `limit`", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"select 1","limit":5,"Limit":50000}}}"#.into()),
        ("`SQL` beside `sql`", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"select 1","SQL":"select * from finance.revenue"}}}"#.into()),
        ("`ſql` beside `sql`", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"select 1","ſql":"select * from finance.revenue"}}}"#.into()),
        ("`sql` twice", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"select 1","sql":"select * from finance.revenue"}}}"#.into()),
        ("in a batch element", format!(
            r#"[{TOOLS_LIST},{{"jsonrpc":"2.0","id":2,"method":"initialize","Method":"tools/call","params":{args}}}]"#
        )),
    ];
    let invalid = RpcError {
        status: 400,
        code: Some(-32600),
        reason: "invalid_body",
        id: None,
    };
    for (case, body) in &cases {
        let reply = post(&stack, body.as_bytes()).await;
        invalid
            .check(&reply)
            .unwrap_or_else(|e| panic!("{case}: {e}\n{}", stack.logs()));
    }
    assert_eq!(
        stack.echo.hits(),
        0,
        "an ambiguous body reached the upstream"
    );

    // Control: the unambiguous call passes.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"select 1"}}}"#;
    let reply = post(&stack, body.as_bytes()).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(reply.seen().body, body);
}

/// How a body travels to Envoy.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Http1ContentLength,
    Http1Chunked,
    Http2,
}

const TRANSPORTS: [Transport; 3] = [
    Transport::Http1ContentLength,
    Transport::Http1Chunked,
    Transport::Http2,
];

async fn post_over(stack: &Stack, transport: Transport, body: &[u8]) -> Reply {
    let auth = bearer(&alice());
    let port = stack.envoy.ports.listener;
    match transport {
        Transport::Http1ContentLength => post(stack, body).await,
        Transport::Http1Chunked => {
            let mut request = format!(
                "POST /mcp/presto HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\
                 Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
                 Connection: close\r\n\r\n"
            )
            .into_bytes();
            // Uneven chunks, one ending right at the buffer limit when the body passes it.
            for chunk in body.chunks(16_384) {
                request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                request.extend_from_slice(chunk);
                request.extend_from_slice(b"\r\n");
            }
            request.extend_from_slice(b"0\r\n\r\n");
            raw_request(port, &request).await
        }
        Transport::Http2 => {
            let headers = [
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ];
            h2::request(port, "POST", "/mcp/presto", &headers, body.to_vec())
                .await
                .unwrap_or_else(|e| panic!("HTTP/2 POST: {e}"))
        }
    }
}

/// `TOOLS_LIST` padded with spaces to `len` bytes.
fn padded_tools_list(len: usize) -> Vec<u8> {
    let mut body = TOOLS_LIST.as_bytes().to_vec();
    body.resize(len, b' ');
    body
}

fn too_large() -> RpcError {
    RpcError {
        status: 413,
        code: None,
        reason: "body_too_large",
        id: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn body_past_the_buffer_is_refused_every_time_on_every_transport() {
    let stack = Stack::quickstart().await;
    // The first BUFFER bytes alone are an allowed request; the tail is a forbidden one.
    let mut body = padded_tools_list(BUFFER);
    body.extend_from_slice(FORBIDDEN_CALL.as_bytes());
    assert_eq!(body.len(), BUFFER + FORBIDDEN_CALL.len());
    for transport in TRANSPORTS {
        for attempt in 1..=20 {
            let reply = post_over(&stack, transport, &body).await;
            too_large().check(&reply).unwrap_or_else(|e| {
                panic!("{transport:?}, attempt {attempt}: {e}\n{}", stack.logs())
            });
        }
    }
    assert_eq!(
        stack.echo.hits(),
        0,
        "the unchecked tail reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn body_of_exactly_the_buffer_size_passes_and_one_byte_more_does_not() {
    let stack = Stack::quickstart().await;
    let exact = padded_tools_list(BUFFER);
    let over = padded_tools_list(BUFFER + 1);
    for transport in TRANSPORTS {
        let reply = post_over(&stack, transport, &exact).await;
        assert_eq!(
            reply.status,
            200,
            "{transport:?}, {} bytes: {reply:?}\n{}",
            exact.len(),
            stack.logs()
        );
        assert_eq!(reply.seen().body.len(), BUFFER, "{transport:?}");

        let reply = post_over(&stack, transport, &over).await;
        too_large().check(&reply).unwrap_or_else(|e| {
            panic!("{transport:?}, {} bytes: {e}\n{}", over.len(), stack.logs())
        });
    }
    assert_eq!(stack.echo.hits(), TRANSPORTS.len());
}
