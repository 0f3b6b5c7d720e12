//! Requests crafted so that mcp-authz might read a different JSON-RPC request
//! than the MCP server does: escapes, chunked bodies, a forged partial-body
//! flag. Each must be decided on what the server will act on, or refused.

use serde_json::json;

use crate::harness::demo::within;
use crate::harness::http::{Reply, raw_request};
use crate::harness::http_client;
use crate::harness::mcp_stack::{McpStack, Upstream};
use crate::harness::rpc::{RpcError, bearer, send, tool_call, user_token};

const REVENUE_POLICY: &str = "revenue-metrics-ads-eng-only";
/// `limits.max_body_bytes` of the quickstart, equal to Envoy's `max_request_bytes`.
const MAX_BODY_BYTES: usize = crate::harness::QUICKSTART_MAX_BODY_BYTES;

fn fay() -> String {
    user_token("fay", &["finance-analysts"], &["finance"], "ai-chat")
}

async fn post(stack: &McpStack, token: &str, extra: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let auth = bearer(token);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    let url = stack.url("/mcp/presto");
    send(&http_client(), "POST", &url, &headers, Some(body)).await
}

fn assert_revenue_denied(stack: &McpStack, case: &str, reply: &Reply) {
    let want = RpcError {
        status: 403,
        code: Some(-32001),
        reason: "forbidden",
        id: Some(json!(1)),
    };
    let error = want
        .check(reply)
        .unwrap_or_else(|e| panic!("{case}: {e}\n{}", stack.logs()));
    assert_eq!(error["data"]["policies"], json!([REVENUE_POLICY]), "{case}");
}

#[tokio::test(flavor = "multi_thread")]
async fn escaped_method_and_tool_names_are_decided_as_decoded() {
    let stack = McpStack::start(Upstream::Echo).await;
    for (case, body) in [
        (
            "escaped tool name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_revenue\u005fmetrics","arguments":{"quarter":"2026-Q3"}}}"#,
        ),
        (
            "escaped method",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"get_revenue_metrics","arguments":{"quarter":"2026-Q3"}}}"#,
        ),
    ] {
        let reply = post(&stack, &fay(), &[], body.as_bytes().to_vec()).await;
        assert_revenue_denied(&stack, case, &reply);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_name_given_twice_is_refused() {
    let stack = McpStack::start(Upstream::Echo).await;
    // Decoders disagree on which duplicate counts: neither reading is safe.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","name":"get_revenue_metrics","arguments":{"quarter":"2026-Q3"}}}"#;
    let alice = user_token("alice", &["ads-eng"], &["ads"], "ai-chat");
    let reply = post(&stack, &alice, &[], body.as_bytes().to_vec()).await;
    let want = RpcError {
        status: 400,
        code: Some(-32600),
        reason: "invalid_body",
        id: None,
    };
    want.check(&reply)
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    assert_eq!(stack.upstream_hits(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_body_is_decided_on_its_whole_content() {
    let stack = McpStack::start(Upstream::Echo).await;
    let body = tool_call(
        json!(1),
        "get_revenue_metrics",
        json!({"quarter": "2026-Q3"}),
    )
    .to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let request = |token: &str| {
        format!(
            "POST /mcp/presto HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             {:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
            head.len(),
            tail.len()
        )
    };
    let port = stack.envoy.ports.listener;
    let reply = within(
        "chunked POST",
        raw_request(port, request(&fay()).as_bytes()),
    )
    .await;
    assert_revenue_denied(&stack, "chunked, fay", &reply);

    let alice = user_token("alice", &["ads-eng"], &["ads"], "ai-chat");
    let reply = within(
        "chunked POST",
        raw_request(port, request(&alice).as_bytes()),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(reply.seen().body, body);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_cannot_clear_the_partial_body_flag() {
    let stack = McpStack::start(Upstream::Echo).await;
    // A complete call padded with whitespace past the limit: the first MAX_BODY_BYTES
    // alone are valid JSON, so only the partial-body flag tells mcp-authz
    // that it did not see the whole body.
    let mut body = tool_call(
        json!(1),
        "get_revenue_metrics",
        json!({"quarter": "2026-Q3"}),
    )
    .to_string()
    .into_bytes();
    body.resize(MAX_BODY_BYTES + 4096, b' ');
    for forged in [None, Some("false")] {
        let extra: Vec<(&str, &str)> = forged
            .map(|v| ("x-envoy-auth-partial-body", v))
            .into_iter()
            .collect();
        let reply = post(&stack, &fay(), &extra, body.clone()).await;
        let want = RpcError {
            status: 413,
            code: None,
            reason: "body_too_large",
            id: None,
        };
        want.check(&reply)
            .unwrap_or_else(|e| panic!("forged flag {forged:?}: {e}\n{}", stack.logs()));
    }
}
