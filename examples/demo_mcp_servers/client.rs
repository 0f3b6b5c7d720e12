//! Test-side MCP client helpers (rmcp streamable HTTP client with custom headers) for talking to the demo servers, directly or through Envoy.
//!
//! Include from a test with
//! `#[path = "../../examples/demo_mcp_servers/client.rs"] mod client;`.
//!
//! # How a denied request reaches the caller
//!
//! rmcp's reqwest client (`rmcp` 3.11, `transport/common/reqwest/streamable_http_client.rs`)
//! maps a non-2xx answer to a POST as follows (each case checked by
//! `tests/demo_servers.rs` or by hand against a stand-in gateway):
//!
//! * **401 or 403 without `WWW-Authenticate`** (what Envoy sends for an
//!   ext_authz denial unless the authz server adds that header): the body is
//!   *not* parsed as JSON-RPC, even with `content-type: application/json`; the
//!   POST fails with `StreamableHttpError::UnexpectedServerResponse("HTTP 403 Forbidden: <body>")`,
//!   body verbatim (truncated to the client's error-body limit). After the
//!   handshake that is `ServiceError::TransportSend(DynamicTransportError { error, .. })`,
//!   displayed as
//!   `Transport send error: Transport [rmcp::transport::worker::WorkerTransport<...>] error:
//!   unexpected server response: HTTP 403 Forbidden: {"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"..."}}`.
//!   During the handshake ([`connect`]) it is `ClientInitializeError::TransportError`,
//!   displayed `Send message error Transport [...] error: unexpected server
//!   response: HTTP 401 Unauthorized: {...}, when send initialize request`.
//!   So the status and the JSON-RPC error message are both in the `Display`
//!   text (see [`error_text`]), but not as an `McpError`. The session survives:
//!   a later allowed call on the same client works.
//! * **401 / 403 with `WWW-Authenticate`**: `StreamableHttpError::AuthRequired` /
//!   `InsufficientScope` (displayed `Auth required` / `Insufficient scope`, source
//!   `authorization required: <header>` / `insufficient scope: <header>`). The
//!   body is dropped; only the header survives, also via `ServiceError::auth_challenge()`.
//! * **Other 4xx, and 5xx, with an `application/json` JSON-RPC error body**: returned
//!   as that JSON-RPC error, `ServiceError::McpError(ErrorData { code, message, .. })`
//!   (`Mcp error: -32001: <message>`); the HTTP status is lost.
//! * **Other 4xx without one**: `UnexpectedServerResponse("HTTP <status>: <body>")`.
//! * **429, and 5xx without a JSON body**: `StreamableHttpError::HttpStatus`
//!   (`HTTP <code>`, with `retry_after`); the body is dropped.
//!
//! On the wire (rmcp 3.11 client against these servers): `initialize` offers
//! protocol `2026-07-28`, the server answers `2025-11-25`, so the session is
//! stateful: `notifications/initialized`, a body-less `GET` (SSE stream) and,
//! on [`McpClient::cancel`](rmcp::service::RunningService::cancel), a
//! body-less `DELETE`, all carrying `mcp-session-id`, `mcp-protocol-version`
//! and the custom headers. `tools/call` params carry `_meta.progressToken`.

// Each including test uses a different subset of this module.
#![allow(dead_code)]

use std::collections::HashMap;

use anyhow::Context as _;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::{
    RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
        Tool,
    },
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

/// A connected, initialized MCP client session.
pub type McpClient = RunningService<RoleClient, ClientConfig>;

/// Connects to the MCP endpoint `url` (e.g. `http://127.0.0.1:10000/presto/mcp`),
/// sending `headers` (e.g. `("authorization", "Bearer ...")`) on every request,
/// and performs the MCP handshake.
///
/// On a handshake failure the error chain holds rmcp's `ClientInitializeError`
/// (downcast with `err.downcast_ref::<rmcp::service::ClientInitializeError>()`);
/// `format!("{err:#}")` shows the HTTP status and body, see the module docs.
pub async fn connect(url: &str, headers: Vec<(String, String)>) -> anyhow::Result<McpClient> {
    let mut custom_headers = HashMap::new();
    for (name, value) in headers {
        let name = HeaderName::try_from(name.as_str())
            .with_context(|| format!("invalid header name {name:?}"))?;
        let value = HeaderValue::try_from(value.as_str())
            .with_context(|| format!("invalid value for header {name}"))?;
        custom_headers.insert(name, value);
    }
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).custom_headers(custom_headers),
    );
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("mcp-authz-test-client", env!("CARGO_PKG_VERSION")),
    );
    let client = info.serve(transport).await?;
    Ok(client)
}

/// `tools/list`, all pages.
pub async fn list_tools(client: &McpClient) -> Result<Vec<Tool>, ServiceError> {
    client.list_all_tools().await
}

/// Names of the listed tools, in the server's order.
pub async fn tool_names(client: &McpClient) -> Result<Vec<String>, ServiceError> {
    Ok(list_tools(client)
        .await?
        .into_iter()
        .map(|t| t.name.to_string())
        .collect())
}

/// `tools/call` of `name` with `args` (a JSON object, or `null` for none).
///
/// A tool-level failure is `Ok` with `is_error == Some(true)`; a denial by the
/// gateway or a JSON-RPC error is `Err`, see the module docs.
pub async fn call_tool(
    client: &McpClient,
    name: &str,
    args: serde_json::Value,
) -> Result<CallToolResult, ServiceError> {
    let mut params = CallToolRequestParams::new(name.to_owned());
    match args {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => params = params.with_arguments(map),
        other => {
            return Err(ServiceError::McpError(rmcp::ErrorData::invalid_params(
                format!("tool arguments must be a JSON object, got {other}"),
                None,
            )));
        }
    }
    client.call_tool(params).await
}

/// The text blocks of a tool result, joined by newlines.
pub fn result_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An error and all its sources, joined by `": "`: the text in which a test
/// finds the HTTP status and the JSON-RPC error message of a denial.
pub fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        // thiserror's `{0}`-style messages often repeat their source's text.
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}
