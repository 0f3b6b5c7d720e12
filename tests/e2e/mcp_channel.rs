//! The channel a request comes from (`x-mcp-channel`): honoured and forwarded
//! from a surface trusted for context (slackbot), ignored and stripped from
//! any other, so an upstream never sees a channel no trusted surface vouched for.

use serde_json::json;

use crate::harness::http::Reply;
use crate::harness::http_client;
use crate::harness::mcp_stack::{McpStack, Upstream};
use crate::harness::rpc::{bearer, send, tool_call, user_token};

const CHANNEL_HEADER: &str = "x-mcp-channel";
const AIRFLOW: &str = "#airflow-support";

async fn post(
    stack: &McpStack,
    server: &str,
    token: &str,
    tool: &str,
    channel: Option<&str>,
) -> Reply {
    let auth = bearer(token);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(channel.map(|c| (CHANNEL_HEADER, c)));
    let body = tool_call(json!(1), tool, json!({"job_id": "job-1", "query": "spark"}));
    let url = stack.url(&format!("/mcp/{server}"));
    send(
        &http_client(),
        "POST",
        &url,
        &headers,
        Some(body.to_string().into_bytes()),
    )
    .await
}

fn assert_channel_denial(stack: &McpStack, case: &str, reply: &Reply) {
    assert_eq!(reply.status, 403, "{case}: {reply:?}\n{}", stack.logs());
    let body = reply.json();
    assert_eq!(
        body["error"]["data"]["policies"],
        json!(["channel-scoped-tools"]),
        "{case}: {body}"
    );
    assert_eq!(
        body["error"]["message"], "Spark tools are available only in #airflow-support",
        "{case}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_surface_channel_is_honoured_and_forwarded() {
    let stack = McpStack::start(Upstream::Echo).await;
    let slackbot = user_token("sam", &["data-eng"], &[], "slackbot");

    let reply = post(&stack, "spark", &slackbot, "get_job_logs", Some(AIRFLOW)).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let seen = reply.seen();
    assert_eq!(seen.all(CHANNEL_HEADER), [AIRFLOW], "{seen:?}");
    assert_eq!(seen.all("x-forwarded-surface"), ["slackbot"], "{seen:?}");

    let reply = post(
        &stack,
        "spark",
        &slackbot,
        "summarize_failure",
        Some("#random"),
    )
    .await;
    assert_channel_denial(&stack, "slackbot from #random", &reply);
    let reply = post(&stack, "spark", &slackbot, "get_job_logs", None).await;
    assert_channel_denial(&stack, "slackbot without a channel", &reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_surface_channel_is_ignored_and_stripped() {
    let stack = McpStack::start(Upstream::Echo).await;
    let ai_chat = user_token("sam", &["data-eng"], &[], "ai-chat");

    let reply = post(&stack, "spark", &ai_chat, "get_job_logs", Some(AIRFLOW)).await;
    assert_channel_denial(&stack, "ai-chat claiming #airflow-support", &reply);

    // Where no policy needs a channel the request passes, without the header
    // (every copy, whatever its case).
    let auth = bearer(&ai_chat);
    let headers = [
        ("authorization", auth.as_str()),
        (CHANNEL_HEADER, AIRFLOW),
        ("X-MCP-Channel", "#finance"),
    ];
    let body = tool_call(json!(1), "search_docs", json!({"query": "spark"}));
    let url = stack.url("/mcp/knowledge");
    let reply = send(
        &http_client(),
        "POST",
        &url,
        &headers,
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let seen = reply.seen();
    assert!(
        seen.all(CHANNEL_HEADER).is_empty(),
        "channel reached the upstream: {seen:?}"
    );
    assert_eq!(seen.all("x-forwarded-user"), ["sam"], "{seen:?}");
}
