//! List results filtered per caller: one JSON-RPC message (or batch) in,
//! the same message out without what the caller may not use.
//!
//! - `tools/list`: a tool stays iff a `tools/call` of it with no arguments
//!   is allowed ([`Snapshot::decide_access`], the very evaluation a Check of
//!   that call gets; a tool the registry does not list is never allowed).
//! - `prompts/list`, `resources/list`, `resources/templates/list`: the
//!   policy model gates prompts and resources per server (`get_prompt`,
//!   `read_resource` on `Server::"…"`), so the list is kept whole or emptied.
//! - When the MCP 2026-07-28 list fields (`ttlMs`, `cacheScope`) are present,
//!   `cacheScope` becomes `"private"`: the list is this caller's.

use serde_json::{Map, Value, json};

use crate::authz::{Access, Snapshot};
use crate::binding::context::ResponseContext;
use crate::mcp::McpCall;
use crate::mcp::strict::parse;
use crate::policy::Action;

/// JSON-RPC error code of a list response mcp-authz could not read
/// (implementation-defined range, as for its denials).
pub const JSONRPC_UNREADABLE_RESPONSE: i64 = -32001;

/// Why a list response cannot be filtered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the list response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the list response is not valid JSON-RPC: {0}")]
    Unparsable(String),
}

impl ResponseError {
    /// Stable label (logs, metrics, the error's `data.reason`).
    pub fn code(&self) -> &'static str {
        match self {
            ResponseError::TooLarge(_) => "response_too_large",
            ResponseError::Unparsable(_) => "unreadable_response",
        }
    }
}

/// What one filtering pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// List entries removed (tools, prompts, resources, templates).
    pub items: usize,
    /// List entries kept.
    pub kept: usize,
}

/// Filters the list results of one caller's response messages.
pub struct ListFilter<'a> {
    pub snapshot: &'a Snapshot,
    pub ctx: &'a ResponseContext,
}

impl ListFilter<'_> {
    /// Filters one JSON text (a message or a batch). `Ok(None)`: nothing to
    /// change, pass the original bytes. Every response message the request's
    /// list calls answer must carry a well-formed list result.
    ///
    /// # Errors
    /// [`ResponseError::Unparsable`] for text that is not strict JSON (see
    /// [`crate::mcp::strict`]), or a list answer without its list.
    pub fn filter_text(&self, text: &[u8]) -> Result<Option<(Vec<u8>, Removed)>, ResponseError> {
        // An answer to no list request is parsed only if it could hold a
        // list result: a list field name, or an escape that could spell one.
        if self.infers() && !maybe_list(text) {
            return Ok(None);
        }
        let mut value = parse(text).map_err(|e| ResponseError::Unparsable(e.to_string()))?;
        let mut removed = Removed::default();
        let changed = match &mut value {
            Value::Array(items) => {
                let mut any = false;
                for item in items.iter_mut() {
                    any |= self.filter_message(item, true, &mut removed)?;
                }
                any
            }
            other => self.filter_message(other, false, &mut removed)?,
        };
        if !changed {
            return Ok(None);
        }
        let bytes = serde_json::to_vec(&value)
            .map_err(|e| ResponseError::Unparsable(format!("cannot re-encode: {e}")))?;
        Ok(Some((bytes, removed)))
    }

    /// The list method a response message answers, if any: the list request
    /// with an equal id (numbers compared by value), else, for a request
    /// that was a single message (no batch) and a list call, that call: a
    /// response on its stream answers it, whatever id the server echoed.
    fn answered(&self, id: Option<&Value>, batch: bool) -> Option<&str> {
        let same = |a: &Value, b: &Value| match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            _ => a == b,
        };
        let by_id = id.and_then(|id| {
            self.ctx
                .lists
                .iter()
                .find(|l| l.id.as_ref().is_some_and(|l| same(l, id)))
        });
        match (by_id, self.ctx.lists.as_slice()) {
            (Some(l), _) => Some(&l.method),
            (None, [only]) if !batch && !self.ctx.batch => Some(&only.method),
            _ => None,
        }
    }

    /// Whether list results are recognised by their shape: for answers to
    /// requests without list calls (a list routed to another stream) and on
    /// GET streams (which may replay earlier answers).
    fn infers(&self) -> bool {
        self.ctx.get || self.ctx.lists.is_empty()
    }

    /// On a stream that asked for no list, the list a response's result is
    /// shaped like.
    fn shaped_like_a_list(result: Option<&Value>) -> Option<&'static str> {
        let result = result?.as_object()?;
        [
            ("tools", "tools/list"),
            ("prompts", "prompts/list"),
            ("resources", "resources/list"),
            ("resourceTemplates", "resources/templates/list"),
        ]
        .into_iter()
        .find(|(field, _)| result.get(*field).is_some_and(Value::is_array))
        .map(|(_, method)| method)
    }

    /// Filters one message in place; `true` when it changed.
    fn filter_message(
        &self,
        message: &mut Value,
        batch: bool,
        removed: &mut Removed,
    ) -> Result<bool, ResponseError> {
        let Value::Object(obj) = message else {
            return Err(ResponseError::Unparsable(
                "a JSON-RPC message is not an object".into(),
            ));
        };
        // Requests and notifications from the server carry `method`; a
        // message that is both a request and a response means two things.
        let response = obj.contains_key("result") || obj.contains_key("error");
        if obj.contains_key("method") {
            if response {
                return Err(ResponseError::Unparsable(
                    "a message carries both `method` and `result`/`error`".into(),
                ));
            }
            return Ok(false);
        }
        if !obj.contains_key("result") {
            return Ok(false);
        }
        let inferred = if self.infers() {
            Self::shaped_like_a_list(obj.get("result"))
        } else {
            None
        };
        let Some(method) = self.answered(obj.get("id"), batch).or(inferred) else {
            return Ok(false);
        };
        let (field, action) = match method {
            "tools/list" => ("tools", Action::CallTool),
            "prompts/list" => ("prompts", Action::GetPrompt),
            "resources/list" => ("resources", Action::ReadResource),
            "resources/templates/list" => ("resourceTemplates", Action::ReadResource),
            _ => return Ok(false),
        };
        let Some(Value::Object(result)) = obj.get_mut("result") else {
            return Err(ResponseError::Unparsable(format!(
                "the {method} result is not an object"
            )));
        };
        let Some(Value::Array(items)) = result.get_mut(field) else {
            return Err(ResponseError::Unparsable(format!(
                "the {method} result has no `{field}` array"
            )));
        };
        let before = items.len();
        if action == Action::CallTool {
            items.retain(|t| self.tool_allowed(t));
        } else if !self.allowed(&McpCall::for_action(action, None, None)) {
            items.clear();
        }
        removed.items += before - items.len();
        removed.kept += items.len();
        mark_private(result);
        Ok(true)
    }

    /// A listed tool stays iff it has a string `name` and a `tools/call` of
    /// it without arguments is allowed.
    fn tool_allowed(&self, tool: &Value) -> bool {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return false;
        };
        self.allowed(&McpCall::for_action(Action::CallTool, Some(name), None))
    }

    fn allowed(&self, message: &McpCall) -> bool {
        self.snapshot
            .decide_access(&Access {
                caller: &self.ctx.caller,
                channel: self.ctx.channel.as_deref(),
                server: &self.ctx.server,
                message,
            })
            .allowed
    }
}

/// MCP 2026-07-28: a list result carrying `ttlMs` or `cacheScope` is
/// marked `cacheScope: "private"` once filtered for one caller.
fn mark_private(result: &mut Map<String, Value>) {
    if result.contains_key("ttlMs") || result.contains_key("cacheScope") {
        result.insert("cacheScope".into(), Value::String("private".into()));
    }
}

/// The JSON-RPC error that replaces an unreadable list response: one error
/// object per list request of the context (an array for several).
pub fn error_body(ctx: Option<&ResponseContext>, e: &ResponseError) -> Vec<u8> {
    let message = format!("mcp-authz could not filter the MCP server's list response: {e}");
    let error = |id: Value| error_object(id, &message, e.code());
    let ids: Vec<Value> = ctx
        .map(|c| {
            c.lists
                .iter()
                .map(|l| l.id.clone().unwrap_or(Value::Null))
                .collect()
        })
        .unwrap_or_default();
    let body = match ids.as_slice() {
        [] => error(Value::Null),
        [one] => error(one.clone()),
        many => Value::Array(many.iter().cloned().map(error).collect()),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// One JSON-RPC error object of a refused response (code
/// [`JSONRPC_UNREADABLE_RESPONSE`], `data.reason` the stable label).
pub fn error_object(id: Value, message: &str, reason: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": JSONRPC_UNREADABLE_RESPONSE,
            "message": message,
            "data": {"reason": reason},
        }
    })
}

/// Whether `text` may hold a list result: it names a list field, or has a
/// `\u` escape that could spell one.
fn maybe_list(text: &[u8]) -> bool {
    [&b"tools"[..], b"prompts", b"resource", b"\\u"]
        .iter()
        .any(|needle| text.windows(needle.len()).any(|w| w == *needle))
}
