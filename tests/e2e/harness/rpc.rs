//! Raw JSON-RPC over HTTP through Envoy: request bodies, demo tokens for any
//! user, and the exact JSON-RPC error a denial must carry.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::http::Reply;
use super::tokens::{demo_claims, demo_token};

/// The `Accept` an MCP streamable HTTP client sends with a POST.
pub const MCP_ACCEPT: &str = "application/json, text/event-stream";

/// A demo token for `user` in `groups` and `business_groups`, issued to the
/// OAuth client of `surface` (the quickstart's surfaces use their name as client id).
pub fn user_token(user: &str, groups: &[&str], business_groups: &[&str], surface: &str) -> String {
    let mut claims = demo_claims(user);
    claims["groups"] = json!(groups);
    claims["business_groups"] = json!(business_groups);
    claims["azp"] = json!(surface);
    demo_token(&claims)
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A JSON-RPC request `method` with `id` and no params.
pub fn request(id: Value, method: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method})
}

/// A JSON-RPC notification `method`.
pub fn notification(method: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": method})
}

/// A `tools/call` of `tool` with `arguments`.
pub fn tool_call(id: Value, tool: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    })
}

/// Sends `method` to `url` with `headers` (repeats allowed) and, if given,
/// `body` as `application/json`; never follows redirects.
pub async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
        map.append(name, HeaderValue::from_str(value).expect("header value"));
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
    let mut req = client.request(method.clone(), url).headers(map);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .header("accept", MCP_ACCEPT)
            .body(body);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    Reply::read(resp).await
}

/// The JSON-RPC error a denial must carry.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub status: u16,
    /// `error.code`; `None` when the test does not pin it.
    pub code: Option<i64>,
    /// `error.data.reason`.
    pub reason: &'static str,
    /// The echoed `id`; `None` when the test does not pin it.
    pub id: Option<Value>,
}

impl RpcError {
    /// `Ok(error object)` when `reply` is this error, else what differs.
    pub fn check(&self, reply: &Reply) -> Result<Value, String> {
        let body: Value = serde_json::from_str(&reply.body)
            .map_err(|e| format!("body is not JSON ({e}): {reply:?}"))?;
        let error = &body["error"];
        let code_ok = self.code.is_none_or(|c| error["code"] == c);
        let ok = reply.status == self.status
            && body["jsonrpc"] == "2.0"
            && self.id.as_ref().is_none_or(|id| body["id"] == *id)
            && code_ok
            && error["data"]["reason"] == self.reason
            && error["message"].is_string()
            && error["data"]["policies"].is_array()
            && reply.header("content-type") == Some("application/json");
        if ok {
            Ok(error.clone())
        } else {
            Err(format!(
                "expected HTTP {} with error code {:?}, reason `{}`, id {:?}; got HTTP {} {} \
                 (content-type {:?})",
                self.status,
                self.code,
                self.reason,
                self.id,
                reply.status,
                reply.body,
                reply.header("content-type"),
            ))
        }
    }
}
