//! Response-side list filtering (issue 11) through the real quickstart Envoy:
//! presto's `tools/list` as alice (ads-eng) and as fay (a finance analyst who
//! may connect to presto but not call `get_revenue_metrics`), with the demo
//! servers answering with SSE (stateful) and with JSON (stateless), listed by
//! two real MCP clients: rmcp and the official Python SDK (`tests/e2e/py`).
//!
//! Expected lists come from the registry file, not from mcp-authz; the demo
//! server itself lists every tool to anyone (checked directly, past Envoy).

use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::harness::demo::client::{call_tool, connect, error_text, result_text, tool_names};
use crate::harness::demo::servers::{ResponseMode, ServerName};
use crate::harness::demo::{DemoStack, within};
use crate::harness::http::Reply;
use crate::harness::rpc::{bearer, notification, request, send, user_token};
use crate::harness::{http_client, repo_path};

/// The tool the finance analyst may not call (policy `revenue-metrics-ads-eng-only`).
const REVENUE_TOOL: &str = "get_revenue_metrics";

/// How long the Python client may take, start-up included (its own exchange
/// deadline is shorter, see `tests/e2e/py/list_tools.py`).
const PYTHON_DEADLINE: Duration = Duration::from_secs(60);

/// Exit status of `list_tools.py` when the `mcp` package is missing.
const PYTHON_SDK_MISSING: i32 = 3;

/// A caller and the presto tools it must be listed.
struct Caller {
    who: &'static str,
    token: String,
    /// Sorted.
    expected: Vec<String>,
}

/// Presto's tools in `examples/quickstart/registry.yaml` (the registry the
/// quickstart mcp-authz loads), sorted.
fn presto_registry_tools() -> Vec<String> {
    let path = repo_path("examples/quickstart/registry.yaml");
    let text = std::fs::read_to_string(&path).expect("read the quickstart registry");
    let registry: Value = serde_saphyr::from_str(&text).expect("the registry is YAML");
    let presto = registry["servers"]
        .as_array()
        .expect("registry `servers`")
        .iter()
        .find(|s| s["name"] == "presto")
        .expect("presto is registered");
    let mut names: Vec<String> = presto["tools"]
        .as_array()
        .expect("presto `tools`")
        .iter()
        .map(|t| t["name"].as_str().expect("tool name").to_owned())
        .collect();
    names.sort();
    names
}

/// alice (ads-eng: every presto tool) and fay (finance: all but the revenue tool).
fn callers() -> [Caller; 2] {
    let all = presto_registry_tools();
    assert!(
        all.iter().any(|t| t == REVENUE_TOOL) && all.len() >= 2,
        "the registry no longer has {REVENUE_TOOL} and another presto tool: {all:?}"
    );
    let without_revenue = all.iter().filter(|t| *t != REVENUE_TOOL).cloned().collect();
    [
        Caller {
            who: "alice (ads-eng)",
            token: user_token("alice", &["ads-eng"], &["ads"], "ai-chat"),
            expected: all,
        },
        Caller {
            who: "fay (finance analyst)",
            token: user_token("fay", &["finance-analysts"], &["finance"], "ai-chat"),
            expected: without_revenue,
        },
    ]
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// The `content-type` essence a `tools/list` answer must have in `mode`.
fn media_type(mode: ResponseMode) -> &'static str {
    match mode {
        ResponseMode::Sse => "text/event-stream",
        ResponseMode::Json => "application/json",
    }
}

/// The JSON-RPC messages of a reply: the body itself (`application/json`) or
/// every non-empty `data` of an SSE body.
fn messages(reply: &Reply) -> Vec<Value> {
    let media = reply
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => vec![reply.json()],
        Some("text/event-stream") => reply
            .body
            .replace("\r\n", "\n")
            .split("\n\n")
            .filter_map(|event| {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                let data = data.join("\n");
                (!data.trim().is_empty()).then(|| {
                    serde_json::from_str(&data)
                        .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {data:?}"))
                })
            })
            .collect(),
        other => panic!("neither JSON nor SSE ({other:?}): {reply:?}"),
    }
}

/// The `result` of the response with `id` in `reply`; panics on anything else.
fn rpc_result(reply: &Reply, id: i64) -> Value {
    assert_eq!(reply.status, 200, "{reply:?}");
    let all = messages(reply);
    let msg = all
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no response with id {id} in {all:?}"));
    assert!(msg.get("error").is_none(), "JSON-RPC error: {msg}");
    msg["result"].clone()
}

/// A `tools/list` on the wire, by hand, through Envoy.
struct WireList {
    /// `content-type` essence of the `tools/list` answer.
    media: String,
    /// The `Mcp-Session-Id` the client was given, if any.
    session: Option<String>,
    tools: Vec<String>,
}

/// initialize, notifications/initialized, tools/list to `/mcp/presto` as
/// the bearer of `token`, with plain HTTP requests.
async fn wire_list(stack: &DemoStack, token: &str) -> WireList {
    let http = http_client();
    let url = stack.url("/mcp/presto");
    let auth = bearer(token);
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "list-filter-e2e", "version": "1"},
        },
    });
    let headers = [("authorization", auth.as_str())];
    let reply = send(&http, "POST", &url, &headers, Some(init.to_string().into())).await;
    let version = rpc_result(&reply, 1)["protocolVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no protocolVersion: {reply:?}"))
        .to_owned();
    let session = reply.header("mcp-session-id").map(str::to_owned);
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("mcp-protocol-version", version.as_str()),
    ];
    if let Some(id) = &session {
        headers.push(("mcp-session-id", id.as_str()));
    }
    let initialized = notification("notifications/initialized").to_string();
    let reply = send(&http, "POST", &url, &headers, Some(initialized.into())).await;
    assert_eq!(
        reply.status,
        202,
        "notifications/initialized: {reply:?}\n{}",
        stack.logs()
    );
    let list = request(json!(2), "tools/list").to_string();
    let reply = send(&http, "POST", &url, &headers, Some(list.into())).await;
    let tools = rpc_result(&reply, 2)["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no result.tools: {reply:?}"))
        .iter()
        .map(|t| t["name"].as_str().expect("tool name").to_owned())
        .collect();
    let media = reply
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    WireList {
        media,
        session,
        tools,
    }
}

/// The upstream answered in `mode` (SSE with a session, or JSON without) and
/// what came through Envoy was filtered per caller.
async fn assert_wire(stack: &DemoStack, mode: ResponseMode) {
    for caller in callers() {
        let wire = wire_list(stack, &caller.token).await;
        assert_eq!(
            wire.media,
            media_type(mode),
            "{}: tools/list answer through Envoy",
            caller.who
        );
        match (mode, &wire.session) {
            // The upstream's own id (a UUID) is replaced by a bound handle.
            (ResponseMode::Sse, Some(handle)) => assert!(
                handle.starts_with("mcpz1."),
                "{}: the upstream session id reached the client unbound",
                caller.who
            ),
            (ResponseMode::Json, None) => {}
            (_, session) => panic!(
                "{}: {mode:?} upstream, session header present: {}",
                caller.who,
                session.is_some()
            ),
        }
        assert_eq!(
            sorted(wire.tools),
            caller.expected,
            "{}: raw tools/list through Envoy ({mode:?} upstream)\n{}",
            caller.who,
            stack.logs()
        );
    }
}

/// The demo server lists every presto tool to anyone: a tool missing from a
/// caller's list was removed by the gateway, not by the server.
async fn assert_upstream_lists_everything(stack: &DemoStack) {
    let url = stack.servers.direct_url(ServerName::Presto);
    let client = within("initialize (direct)", connect(&url, Vec::new()))
        .await
        .unwrap_or_else(|e| panic!("initialize {url}: {e:#}"));
    let tools = within("tools/list (direct)", tool_names(&client))
        .await
        .expect("tools/list (direct)");
    assert_eq!(sorted(tools), presto_registry_tools(), "presto, unfiltered");
    client.cancel().await.expect("close the direct session");
}

/// rmcp through Envoy: each caller's list, then a tool call on the same
/// (bound) session.
async fn rmcp_lists(mode: ResponseMode) {
    let stack = DemoStack::start(mode).await;
    assert_upstream_lists_everything(&stack).await;
    assert_wire(&stack, mode).await;
    let url = stack.url("/mcp/presto");
    for caller in callers() {
        let headers = vec![("authorization".to_owned(), bearer(&caller.token))];
        let client = within("initialize", connect(&url, headers))
            .await
            .unwrap_or_else(|e| {
                panic!("{}: initialize {url}: {e:#}\n{}", caller.who, stack.logs())
            });
        let tools = within("tools/list", tool_names(&client))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{}: tools/list: {}\n{}",
                    caller.who,
                    error_text(&e),
                    stack.logs()
                )
            });
        assert_eq!(
            sorted(tools),
            caller.expected,
            "{}: rmcp tools/list ({mode:?} upstream)\n{}",
            caller.who,
            stack.logs()
        );
        let call = within(
            "tools/call run_query",
            call_tool(&client, "run_query", json!({"sql": "SELECT 1"})),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{}: run_query after the list: {}\n{}",
                caller.who,
                error_text(&e),
                stack.logs()
            )
        });
        assert!(result_text(&call).contains("SELECT 1"), "{call:?}");
        client.cancel().await.expect("close session");
    }
}

/// Tool names the official Python SDK lists at `url` as the bearer of
/// `token`; panics (never skips) when the SDK is not installed.
async fn python_tool_names(url: &str, token: &str, logs: impl Fn() -> String) -> Vec<String> {
    let python = repo_path(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup (it installs Envoy and the Python MCP SDK there)",
        python.display()
    );
    let child = Command::new(&python)
        .arg(repo_path("tests/e2e/py/list_tools.py"))
        .arg(url)
        // Not on the command line: argv is visible to every local user.
        .env("MCP_BEARER_TOKEN", token)
        .env_remove("PYTHONPATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
    let waited = tokio::time::timeout(
        PYTHON_DEADLINE,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let out = match waited {
        Ok(joined) => joined
            .expect("wait task")
            .expect("wait for the Python client"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!(
                "the Python MCP client did not finish within {PYTHON_DEADLINE:?}\n{}",
                logs()
            );
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(PYTHON_SDK_MISSING) => panic!(
            "the Python MCP SDK (PyPI `mcp`) is not installed in .venv: run scripts/setup\n{stderr}"
        ),
        _ => panic!(
            "the Python MCP client failed ({}):\n{stderr}\n{}",
            out.status,
            logs()
        ),
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("Python client output is not a JSON list of names ({e}): {stdout:?}\n{stderr}")
    })
}

/// The Python SDK through Envoy: each caller's list.
async fn python_lists(mode: ResponseMode) {
    let stack = DemoStack::start(mode).await;
    assert_upstream_lists_everything(&stack).await;
    assert_wire(&stack, mode).await;
    let url = stack.url("/mcp/presto");
    for caller in callers() {
        let tools = python_tool_names(&url, &caller.token, || stack.logs()).await;
        assert_eq!(
            sorted(tools),
            caller.expected,
            "{}: Python SDK tools/list ({mode:?} upstream)\n{}",
            caller.who,
            stack.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rmcp_client_lists_only_callable_tools_from_an_sse_upstream() {
    rmcp_lists(ResponseMode::Sse).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rmcp_client_lists_only_callable_tools_from_a_json_upstream() {
    rmcp_lists(ResponseMode::Json).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_lists_only_callable_tools_from_an_sse_upstream() {
    python_lists(ResponseMode::Sse).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_lists_only_callable_tools_from_a_json_upstream() {
    python_lists(ResponseMode::Json).await;
}
