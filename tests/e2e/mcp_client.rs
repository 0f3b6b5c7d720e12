//! A real MCP client (rmcp) → Envoy → mcp-authz → the real demo MCP servers:
//! per-tool, per-argument and per-channel decisions as a user's client sees them.

use rmcp::ServiceError;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::harness::demo::client::{
    McpClient, call_tool, connect, error_text, result_text, tool_names,
};
use crate::harness::demo::within;
use crate::harness::mcp_stack::{McpStack, Upstream};
use crate::harness::rpc::{bearer, user_token};

const REVENUE_MESSAGE: &str = "get_revenue_metrics is limited to the ads-eng group";
const FINANCE_MESSAGE: &str =
    "queries on finance.* tables are limited to the Finance business group";
const SPARK_CHANNEL_MESSAGE: &str = "Spark tools are available only in #airflow-support";

/// An initialized session with `/mcp/<server>` as the bearer of `token`.
async fn session(stack: &McpStack, server: &str, token: &str, extra: &[(&str, &str)]) -> McpClient {
    let mut headers = vec![("authorization".to_owned(), bearer(token))];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let url = stack.url(&format!("/mcp/{server}"));
    within("initialize", connect(&url, headers))
        .await
        .unwrap_or_else(|e| panic!("initialize {url}: {e:#}\n{}", stack.logs()))
}

async fn call(client: &McpClient, tool: &str, args: Value) -> Result<CallToolResult, ServiceError> {
    within(&format!("tools/call {tool}"), call_tool(client, tool, args)).await
}

/// The tool's text output; panics unless the call reached the tool and succeeded.
async fn allowed(stack: &McpStack, client: &McpClient, tool: &str, args: Value) -> String {
    match call(client, tool, args).await {
        Ok(r) if r.is_error != Some(true) => result_text(&r),
        Ok(r) => panic!("{tool} failed in the tool: {}", result_text(&r)),
        Err(e) => panic!("{tool} denied: {}\n{}", error_text(&e), stack.logs()),
    }
}

/// The JSON-RPC error body of a 403, as the rmcp client reports it (the body
/// travels in the transport error's text, see `examples/demo_mcp_servers/client.rs`).
async fn forbidden(client: &McpClient, tool: &str, args: Value) -> Value {
    let err = match call(client, tool, args).await {
        Ok(r) => panic!("{tool} was allowed: {}", result_text(&r)),
        Err(e) => error_text(&e),
    };
    const MARK: &str = "HTTP 403 Forbidden: ";
    let at = err
        .find(MARK)
        .unwrap_or_else(|| panic!("{tool}: not a 403 from the gateway: {err}"));
    let mut values =
        serde_json::Deserializer::from_str(&err[at + MARK.len()..]).into_iter::<Value>();
    match values.next() {
        Some(Ok(body)) => body,
        other => panic!("{tool}: 403 body is not JSON ({other:?}): {err}"),
    }
}

/// Asserts a policy denial: message, determining policy, and the echoed id of
/// the denied request (rmcp numbers its requests).
fn assert_policy_denial(body: &Value, message: &str, policy: &str) {
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(
        body["id"].is_number(),
        "denied request's id not echoed: {body}"
    );
    assert_eq!(body["error"]["code"], -32001, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
    assert_eq!(body["error"]["data"]["reason"], "forbidden", "{body}");
    assert_eq!(body["error"]["data"]["policies"], json!([policy]), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_chat_user_initializes_lists_and_searches_knowledge() {
    let stack = McpStack::start(Upstream::DemoServers).await;
    let token = user_token("alice", &["eng"], &["ads"], "ai-chat");
    let client = session(&stack, "knowledge", &token, &[]).await;
    let info = client.peer_info().expect("handshake done");
    let server = info.server_info.as_ref().expect("server info");
    assert_eq!(server.name, "knowledge");
    let tools = within("tools/list", tool_names(&client))
        .await
        .expect("tools/list");
    assert_eq!(tools, ["rate_doc", "search_docs"]);
    let text = allowed(
        &stack,
        &client,
        "search_docs",
        json!({"query": "spark memory", "limit": 1}),
    )
    .await;
    assert!(text.contains("Spark memory tuning"), "{text}");
    client.cancel().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread")]
async fn ads_engineer_gets_revenue_metrics_from_presto() {
    let stack = McpStack::start(Upstream::DemoServers).await;
    let token = user_token("alice", &["ads-eng"], &["ads"], "ai-chat");
    let client = session(&stack, "presto", &token, &[]).await;
    let text = allowed(
        &stack,
        &client,
        "get_revenue_metrics",
        json!({"quarter": "2026-Q3"}),
    )
    .await;
    let metrics: Value = serde_json::from_str(&text).expect("metrics are JSON");
    assert_eq!(metrics["quarter"], "2026-Q3", "{metrics}");
    assert!(
        metrics["total"].as_u64().is_some_and(|t| t > 0),
        "{metrics}"
    );
    client.cancel().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_tool_call_shows_the_policy_message_and_the_session_keeps_working() {
    let stack = McpStack::start(Upstream::DemoServers).await;
    let fay = user_token("fay", &["finance-analysts"], &["finance"], "ai-chat");
    let client = session(&stack, "presto", &fay, &[]).await;
    let body = forbidden(
        &client,
        "get_revenue_metrics",
        json!({"quarter": "2026-Q3"}),
    )
    .await;
    assert_policy_denial(&body, REVENUE_MESSAGE, "revenue-metrics-ads-eng-only");
    let text = allowed(&stack, &client, "run_query", json!({"sql": "SELECT 1"})).await;
    assert!(text.contains("SELECT 1"), "{text}");
    client.cancel().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_on_finance_tables_are_decided_by_the_sql_argument() {
    let stack = McpStack::start(Upstream::DemoServers).await;
    let alice = user_token("alice", &["eng"], &["ads"], "ai-chat");
    let client = session(&stack, "presto", &alice, &[]).await;
    let body = forbidden(
        &client,
        "run_query",
        json!({"sql": "SELECT * FROM finance.x"}),
    )
    .await;
    assert_policy_denial(&body, FINANCE_MESSAGE, "finance-tables-finance-only");
    let text = allowed(
        &stack,
        &client,
        "run_query",
        json!({"sql": "SELECT * FROM ads.clicks"}),
    )
    .await;
    assert!(text.contains("ads.clicks"), "{text}");
    client.cancel().await.expect("close session");

    let fay = user_token("fay", &["finance-analysts"], &["finance"], "ai-chat");
    let client = session(&stack, "presto", &fay, &[]).await;
    let text = allowed(
        &stack,
        &client,
        "run_query",
        json!({"sql": "SELECT * FROM finance.x"}),
    )
    .await;
    assert!(text.contains("finance.x"), "{text}");
    client.cancel().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread")]
async fn spark_tools_need_the_channel_that_slackbot_passes() {
    let stack = McpStack::start(Upstream::DemoServers).await;
    let logs_args = json!({"job_id": "job-20260914-0042", "lines": 2});
    let channel = [("x-mcp-channel", "#airflow-support")];

    let slackbot = user_token("sam", &["data-eng"], &[], "slackbot");
    let client = session(&stack, "spark", &slackbot, &channel).await;
    let text = allowed(&stack, &client, "get_job_logs", logs_args.clone()).await;
    assert!(text.contains("job-20260914-0042"), "{text}");
    client.cancel().await.expect("close session");

    // Same surface, no channel: connecting and listing need none, calling
    // does; the list shows only tools a call would be allowed, so none.
    let client = session(&stack, "spark", &slackbot, &[]).await;
    let tools = within("tools/list", tool_names(&client))
        .await
        .expect("tools/list");
    assert!(tools.is_empty(), "{tools:?}");
    let body = forbidden(&client, "get_job_logs", logs_args.clone()).await;
    assert_policy_denial(&body, SPARK_CHANNEL_MESSAGE, "channel-scoped-tools");
    client.cancel().await.expect("close session");

    // ai-chat is not trusted for context: its channel header counts for nothing.
    let ai_chat = user_token("sam", &["data-eng"], &[], "ai-chat");
    let client = session(&stack, "spark", &ai_chat, &channel).await;
    let body = forbidden(&client, "get_job_logs", logs_args).await;
    assert_policy_denial(&body, SPARK_CHANNEL_MESSAGE, "channel-scoped-tools");
    client.cancel().await.expect("close session");
}

#[tokio::test(flavor = "multi_thread")]
async fn mistyped_argument_and_unknown_tool_reach_the_client_as_errors_of_that_call() {
    let stack = McpStack::start(Upstream::DemoServers).await;
    let fay = user_token("fay", &["finance-analysts"], &["finance"], "ai-chat");
    let client = session(&stack, "presto", &fay, &[]).await;

    // A 400 with a JSON-RPC body is answered to the pending request it names
    // by id; without the echoed id the client would wait forever.
    match call(&client, "run_query", json!({"sql": 5})).await {
        Err(ServiceError::McpError(e)) => {
            assert!(
                e.message.contains("argument `sql` must be a string"),
                "{e:?}"
            );
            let reason = e.data.as_ref().map(|d| d["reason"].clone());
            assert_eq!(reason, Some(json!("invalid_arguments")), "{e:?}");
        }
        other => panic!("expected a JSON-RPC error, got {other:?}\n{}", stack.logs()),
    }

    let body = forbidden(&client, "drop_tables", json!({})).await;
    assert_eq!(body["error"]["data"]["reason"], "unknown_tool", "{body}");
    assert!(body["id"].is_number(), "{body}");

    let text = allowed(&stack, &client, "run_query", json!({"sql": "SELECT 2"})).await;
    assert!(text.contains("SELECT 2"), "{text}");
    client.cancel().await.expect("close session");
}
