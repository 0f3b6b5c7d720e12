//! MCP streamable HTTP traffic → typed requests: the JSON-RPC body (one
//! message or a batch) and the HTTP method become Cedar actions, tools and
//! arguments. Every malformed input is an error, never "no MCP request".

mod headers;
mod parse;
pub mod strict;
mod trace;

pub use headers::{
    HeaderMismatch, JSONRPC_HEADER_MISMATCH, MCP_METHOD, MCP_NAME, MCP_PARAM_PREFIX,
    MCP_PROTOCOL_VERSION, ParamHeaders, check_headers, param_headers,
};
pub use parse::{
    BodyError, BodyRejection, Limits, META_PROTOCOL_VERSION, META_TRACEPARENT, META_TRACESTATE,
    depth_exceeds, parse_body,
};
pub use trace::{parent_span_id, trace_id, valid_traceparent};

use serde_json::{Map, Value};

use crate::policy::Action;

/// One JSON-RPC message of a request body, as authorization sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpCall {
    /// JSON-RPC id (requests only; notifications and responses have none we echo).
    pub id: Option<Value>,
    /// JSON-RPC method; empty for a response sent by the client.
    pub method: String,
    pub action: Action,
    /// Tool name for `tools/call`.
    pub tool: Option<String>,
    /// Tool arguments for `tools/call`.
    pub arguments: Option<Map<String, Value>>,
    /// What `Mcp-Name` mirrors: the tool or prompt name, or the resource URI.
    pub name: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, if present.
    pub protocol_version: Option<String>,
    /// `params._meta.traceparent`, if present and well-formed (W3C Trace Context).
    pub traceparent: Option<String>,
}

impl McpCall {
    /// The message a client sends for `action` (and `tool`, `arguments` for
    /// `call_tool`): the canonical JSON-RPC method of each action. Used where
    /// a question is asked without a body (`explain`, test cases, the API).
    pub fn for_action(
        action: Action,
        tool: Option<&str>,
        arguments: Option<Map<String, Value>>,
    ) -> Self {
        let method = match action {
            Action::Connect => "initialize",
            Action::CallTool => "tools/call",
            Action::ListTools => "tools/list",
            Action::ReadResource => "resources/read",
            Action::GetPrompt => "prompts/get",
            // Approving is done by a person, never through an MCP message.
            Action::Approve => "",
        };
        let call_tool = action == Action::CallTool;
        let on_tool = call_tool || action == Action::Approve;
        McpCall {
            id: None,
            method: method.to_owned(),
            action,
            tool: tool.filter(|_| on_tool).map(str::to_owned),
            name: tool.filter(|_| on_tool).map(str::to_owned),
            arguments: call_tool.then(|| arguments.unwrap_or_default()),
            protocol_version: None,
            traceparent: None,
        }
    }

    /// A message that needs only `connect` and names nothing.
    pub fn connect(method: &str) -> Self {
        McpCall {
            id: None,
            method: method.to_owned(),
            action: Action::Connect,
            tool: None,
            arguments: None,
            name: None,
            protocol_version: None,
            traceparent: None,
        }
    }
}

/// What an HTTP request to an MCP endpoint asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct McpRequest {
    /// Every message of the body in order; a GET or DELETE has one `connect`.
    pub calls: Vec<McpCall>,
    /// Whether the body was a JSON array.
    pub batch: bool,
}

impl McpRequest {
    /// A request with no body (GET opens the server stream, DELETE ends the session).
    pub fn connect_only(method: &str) -> Self {
        McpRequest {
            calls: vec![McpCall::connect(method)],
            batch: false,
        }
    }

    /// The id to echo in an error for the whole request: the first request id.
    pub fn first_id(&self) -> Option<&Value> {
        self.calls.iter().find_map(|c| c.id.as_ref())
    }
}

/// Maps a JSON-RPC method to the Cedar action it needs.
///
/// `initialize`, `ping`, notifications and every method not listed below need
/// only `connect` (the server answers unknown methods itself).
pub fn action_of(method: &str) -> Action {
    match method {
        "tools/call" => Action::CallTool,
        "tools/list" => Action::ListTools,
        "resources/read" => Action::ReadResource,
        "prompts/get" => Action::GetPrompt,
        _ => Action::Connect,
    }
}
