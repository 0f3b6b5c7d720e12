//! Raw HTTP through Envoy: how mcp-authz reads JSON-RPC bodies (batches,
//! malformed messages, size and depth limits) and HTTP methods. The echo
//! upstream shows exactly what an allowed request delivered.

use serde_json::{Value, json};

use crate::harness::http::Reply;
use crate::harness::mcp_stack::{McpStack, Upstream};
use crate::harness::rpc::{RpcError, bearer, notification, request, send, tool_call, user_token};
use crate::harness::{Seen, http_client};

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const AUTHZ_ERROR: i64 = -32001;
/// `limits.max_body_bytes` of the quickstart, equal to Envoy's `max_request_bytes`.
const MAX_BODY_BYTES: usize = crate::harness::QUICKSTART_MAX_BODY_BYTES;
/// `limits.max_batch` of the quickstart.
const MAX_BATCH: usize = 32;

async fn echo_stack() -> McpStack {
    McpStack::start(Upstream::Echo).await
}

/// One bearer of a token, talking to the stack's servers.
struct Caller<'a> {
    stack: &'a McpStack,
    auth: String,
}

impl Caller<'_> {
    fn new<'a>(stack: &'a McpStack, token: &str) -> Caller<'a> {
        Caller {
            stack,
            auth: bearer(token),
        }
    }

    async fn send(&self, method: &str, server: &str, body: Option<Vec<u8>>) -> Reply {
        let url = self.stack.url(&format!("/mcp/{server}"));
        let headers = [("authorization", self.auth.as_str())];
        send(&http_client(), method, &url, &headers, body).await
    }

    async fn post(&self, server: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.send("POST", server, Some(body.into())).await
    }

    /// Asserts `reply` is `want` and returns the error object.
    fn denied(&self, case: &str, reply: &Reply, want: RpcError) -> Value {
        want.check(reply)
            .unwrap_or_else(|e| panic!("{case}: {e}\n{}", self.stack.logs()))
    }

    /// Asserts the upstream received `body` as sent.
    fn delivered(&self, case: &str, reply: &Reply, body: &[u8]) -> Seen {
        assert_eq!(
            reply.status,
            200,
            "{case}: {reply:?}\n{}",
            self.stack.logs()
        );
        let seen = reply.seen();
        assert_eq!(
            seen.body.as_bytes(),
            body,
            "{case}: body changed on the way"
        );
        seen
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn alice() -> String {
    user_token("alice", &["ads-eng"], &["ads"], "ai-chat")
}

fn invalid(status: u16, code: i64, id: Value) -> RpcError {
    RpcError {
        status,
        code: Some(code),
        reason: if status == 413 {
            "body_too_large"
        } else {
            "invalid_body"
        },
        id: Some(id),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_with_one_denied_call_is_denied_whole_with_that_calls_id() {
    let stack = echo_stack().await;
    let fay = user_token("fay", &["finance-analysts"], &["finance"], "ai-chat");
    let caller = Caller::new(&stack, &fay);
    let batch = json!([
        request(json!(1), "tools/list"),
        tool_call(json!("allowed"), "run_query", json!({"sql": "SELECT 1"})),
        notification("notifications/initialized"),
        tool_call(
            json!("denied-7"),
            "get_revenue_metrics",
            json!({"quarter": "2026-Q3"})
        ),
        request(json!(9), "ping"),
    ]);
    let reply = caller.post("presto", bytes(&batch)).await;
    let error = caller.denied(
        "mixed batch",
        &reply,
        RpcError {
            status: 403,
            code: Some(AUTHZ_ERROR),
            reason: "forbidden",
            id: Some(json!("denied-7")),
        },
    );
    assert_eq!(
        error["message"],
        "get_revenue_metrics is limited to the ads-eng group"
    );
    assert_eq!(
        error["data"]["policies"],
        json!(["revenue-metrics-ads-eng-only"])
    );
    assert!(reply.header("www-authenticate").is_none(), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_of_allowed_messages_reaches_the_upstream_unchanged() {
    let stack = echo_stack().await;
    let caller = Caller::new(&stack, &alice());
    let batch = bytes(&json!([
        request(json!(1), "tools/list"),
        tool_call(
            json!(2),
            "get_revenue_metrics",
            json!({"quarter": "2026-Q3"})
        ),
        tool_call(
            json!(3),
            "run_query",
            json!({"sql": "SELECT * FROM ads.clicks"})
        ),
        notification("notifications/initialized"),
        json!({"jsonrpc": "2.0", "id": "srv-1", "result": {}}),
    ]));
    let reply = caller.post("presto", batch.clone()).await;
    let seen = caller.delivered("allowed batch", &reply, &batch);
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/mcp");

    // The largest batch the limit allows.
    let full = bytes(&json!(pings(MAX_BATCH)));
    let reply = caller.post("knowledge", full.clone()).await;
    caller.delivered("batch at the limit", &reply, &full);
}

fn pings(n: usize) -> Vec<Value> {
    (1..=n).map(|i| request(json!(i), "ping")).collect()
}

/// A body mcp-authz must refuse with 400: the JSON-RPC error code, and the id
/// to echo (the first valid request id; null when the body has none or
/// cannot be parsed).
struct Malformed {
    case: &'static str,
    body: String,
    code: i64,
    id: Value,
}

fn malformed(case: &'static str, body: &str, code: i64, id: Value) -> Malformed {
    Malformed {
        case,
        body: body.to_owned(),
        code,
        id,
    }
}

#[rustfmt::skip]
fn malformed_bodies() -> Vec<Malformed> {
    vec![
        malformed("not JSON", "hello", PARSE_ERROR, Value::Null),
        malformed("cut JSON", r#"{"jsonrpc":"2.0","id":1,"method":"#, PARSE_ERROR, Value::Null),
        malformed("empty body", "", INVALID_REQUEST, Value::Null),
        malformed("a JSON string", r#""tools/list""#, INVALID_REQUEST, Value::Null),
        malformed("no jsonrpc", r#"{"id":2,"method":"tools/list"}"#, INVALID_REQUEST, json!(2)),
        malformed("jsonrpc 1.0", r#"{"jsonrpc":"1.0","id":3,"method":"tools/list"}"#, INVALID_REQUEST, json!(3)),
        malformed("id null", r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#, INVALID_REQUEST, Value::Null),
        malformed("id object", r#"{"jsonrpc":"2.0","id":{"n":4},"method":"tools/list"}"#, INVALID_REQUEST, Value::Null),
        malformed("no method", r#"{"jsonrpc":"2.0","id":5}"#, INVALID_REQUEST, json!(5)),
        malformed("params a string", r#"{"jsonrpc":"2.0","id":6,"method":"tools/list","params":"all"}"#, INVALID_REQUEST, json!(6)),
        malformed("tools/call without params", r#"{"jsonrpc":"2.0","id":7,"method":"tools/call"}"#, INVALID_REQUEST, json!(7)),
        malformed("tools/call without name", r#"{"jsonrpc":"2.0","id":"eight","method":"tools/call","params":{"arguments":{}}}"#, INVALID_REQUEST, json!("eight")),
        malformed("tools/call params an array", r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":["search_docs"]}"#, INVALID_REQUEST, json!(9)),
        malformed("arguments an array", r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"search_docs","arguments":["x"]}}"#, INVALID_REQUEST, json!(10)),
        malformed("empty batch", "[]", INVALID_REQUEST, Value::Null),
        malformed("batch with a bad element", r#"[{"jsonrpc":"2.0","id":11,"method":"ping"},{"jsonrpc":"2.0","id":12}]"#, INVALID_REQUEST, json!(11)),
        malformed("batch over the limit", &json!(pings(MAX_BATCH + 1)).to_string(), INVALID_REQUEST, json!(1)),
    ]
}

/// Posts every malformed body and collects the replies that are not `want(case)`.
async fn refusals(want: impl Fn(&Malformed) -> RpcError) {
    let stack = echo_stack().await;
    let caller = Caller::new(&stack, &alice());
    let mut failures = Vec::new();
    for m in malformed_bodies() {
        let reply = caller.post("knowledge", m.body.clone()).await;
        if let Err(e) = want(&m).check(&reply) {
            let shown: String = m.body.chars().take(120).collect();
            failures.push(format!("{} ({shown}): {e}", m.case));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed bodies:\n{}\n{}",
        failures.len(),
        malformed_bodies().len(),
        failures.join("\n"),
        stack.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_are_400_with_their_jsonrpc_error_code() {
    refusals(|m| RpcError {
        id: None,
        ..invalid(400, m.code, Value::Null)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_echo_the_first_request_id() {
    refusals(|m| invalid(400, m.code, m.id.clone())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_limit_is_413_and_a_body_at_the_limit_passes() {
    let stack = echo_stack().await;
    let caller = Caller::new(&stack, &alice());
    let at_limit = padded_search(MAX_BODY_BYTES);
    let reply = caller.post("knowledge", at_limit.clone()).await;
    caller.delivered("body of exactly the limit", &reply, &at_limit);

    // Envoy hands mcp-authz the first MAX_BODY_BYTES and flags the body as partial.
    for size in [MAX_BODY_BYTES + 1, MAX_BODY_BYTES + 4_464] {
        let reply = caller.post("knowledge", padded_search(size)).await;
        caller.denied(
            &format!("{size}-byte body"),
            &reply,
            invalid(413, INVALID_REQUEST, Value::Null),
        );
    }
}

/// A valid `search_docs` call of exactly `size` bytes.
fn padded_search(size: usize) -> Vec<u8> {
    let empty = bytes(&tool_call(json!(1), "search_docs", json!({"query": ""})));
    let body = bytes(&tool_call(
        json!(1),
        "search_docs",
        json!({"query": "x".repeat(size - empty.len())}),
    ));
    assert_eq!(body.len(), size);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn deeply_nested_body_is_a_parse_error() {
    let stack = echo_stack().await;
    let caller = Caller::new(&stack, &alice());
    let nest = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    // 40 levels inside the arguments of an otherwise valid call. Refused before
    // it is parsed, so its id is not known: JSON-RPC's parse error has id null.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{{"name":"search_docs","arguments":{{"query":"q","x":{}}}}}}}"#,
        nest(37)
    );
    let reply = caller.post("knowledge", deep).await;
    caller.denied("40 levels", &reply, invalid(400, PARSE_ERROR, Value::Null));

    // 32 levels (the limit) are fine.
    let ok = format!(
        r#"{{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{{"name":"search_docs","arguments":{{"query":"q","x":{}}}}}}}"#,
        nest(29)
    );
    let reply = caller.post("knowledge", ok.clone()).await;
    caller.delivered("32 levels", &reply, ok.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_other_than_post_get_delete_are_405() {
    let stack = echo_stack().await;
    let caller = Caller::new(&stack, &alice());
    let body = bytes(&request(json!(1), "tools/list"));
    for method in ["PUT", "PATCH"] {
        let reply = caller.send(method, "knowledge", Some(body.clone())).await;
        let want = RpcError {
            status: 405,
            code: Some(AUTHZ_ERROR),
            reason: "method_not_allowed",
            id: Some(Value::Null),
        };
        caller.denied(method, &reply, want);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_delete_need_only_connect() {
    let stack = echo_stack().await;
    let alice = Caller::new(&stack, &alice());
    for method in ["GET", "DELETE"] {
        let reply = alice.send(method, "presto", None).await;
        assert_eq!(reply.status, 200, "{method}: {reply:?}\n{}", stack.logs());
        let seen = reply.seen();
        assert_eq!(seen.method, method);
        assert_eq!(seen.all("x-forwarded-user"), ["alice"], "{seen:?}");
    }
    // Connect is still decided: marketing may not even open presto's stream.
    let mallory = user_token("mallory", &["marketing-ops"], &["marketing"], "ai-chat");
    let reply = Caller::new(&stack, &mallory)
        .send("GET", "presto", None)
        .await;
    let want = RpcError {
        status: 403,
        code: Some(AUTHZ_ERROR),
        reason: "forbidden",
        id: Some(Value::Null),
    };
    let error = alice.denied("mallory GET presto", &reply, want);
    assert_eq!(error["data"]["policies"], json!(["business-group-gate"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn get_to_a_real_mcp_server_passes_authorization() {
    let stack = McpStack::start(Upstream::DemoServers).await;
    let auth = bearer(&alice());
    let url = stack.url("/mcp/knowledge");
    let reply = send(
        &http_client(),
        "GET",
        &url,
        &[("authorization", &auth), ("accept", "text/event-stream")],
        None,
    )
    .await;
    // Without a session the server refuses the stream itself; what matters is
    // that the answer is the server's, not a denial from mcp-authz.
    assert!(
        !reply.body.contains("\"reason\""),
        "GET was denied by mcp-authz: {reply:?}\n{}",
        stack.logs()
    );
    assert!(![401, 403, 405, 503].contains(&reply.status), "{reply:?}");
}
