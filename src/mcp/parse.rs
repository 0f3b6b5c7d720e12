//! Parsing a request body under limits: size, nesting depth, batch size.

use serde_json::{Map, Value};

use super::strict::{self, fold, quoted};
use super::{McpCall, McpRequest, action_of};
use crate::policy::Action;

/// Fields mcp-authz reads from a JSON-RPC message object.
const MESSAGE_FIELDS: &[&str] = &["jsonrpc", "id", "method", "params", "result", "error"];
/// Fields mcp-authz reads from `params`.
const PARAMS_FIELDS: &[&str] = &["name", "arguments", "uri", "_meta"];
/// `_meta` key carrying the protocol version (MCP 2026-07-28).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the W3C trace context of the message.
pub const META_TRACEPARENT: &str = "traceparent";
/// `_meta` key carrying vendor trace state (accepted, not read).
pub const META_TRACESTATE: &str = "tracestate";

/// Limits on untrusted bodies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_depth: usize,
    pub max_batch: usize,
}

/// Why a body is refused. Each maps to a JSON-RPC error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body was truncated by the proxy")]
    Truncated,
    #[error("a POST to an MCP endpoint needs a JSON-RPC body")]
    Empty,
    #[error("request body is nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("request body is not JSON: {0}")]
    NotJson(String),
    /// Valid JSON that decoders of other languages could read differently.
    #[error("request body is ambiguous: {0}")]
    Ambiguous(String),
    #[error("not a JSON-RPC 2.0 message: {0}")]
    NotJsonRpc(String),
    #[error("batch of {0} messages is over the limit of {1}")]
    BatchTooLarge(usize, usize),
    #[error("empty batch")]
    EmptyBatch,
}

/// A refused body, with the id to echo in the error (the first valid request
/// id of a body that parsed as JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct BodyRejection {
    pub error: BodyError,
    pub id: Option<Value>,
}

impl From<BodyError> for BodyRejection {
    fn from(error: BodyError) -> Self {
        BodyRejection { error, id: None }
    }
}

/// The first string or number `id` of a message or batch.
fn first_id(v: &Value) -> Option<Value> {
    let of = |m: &Value| match m.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
        _ => None,
    };
    match v {
        Value::Array(items) => items.iter().find_map(of),
        m => of(m),
    }
}

impl BodyError {
    /// JSON-RPC error code: -32700 for unparsable JSON, -32600 otherwise.
    pub fn jsonrpc_code(&self) -> i64 {
        match self {
            BodyError::NotJson(_) | BodyError::TooDeep(_) => -32700,
            _ => -32600,
        }
    }
}

/// Whether JSON text nests deeper than `max` arrays/objects, counted without
/// parsing (brackets inside strings skipped), so a deeply nested body is
/// refused before any parser recurses into it.
pub fn depth_exceeds(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses an MCP POST body. `truncated` is Envoy's partial-body signal.
pub fn parse_body(
    body: &[u8],
    truncated: bool,
    limits: &Limits,
) -> Result<McpRequest, BodyRejection> {
    if truncated {
        return Err(BodyError::Truncated.into());
    }
    if body.len() > limits.max_body_bytes {
        return Err(BodyError::TooLarge(limits.max_body_bytes).into());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty.into());
    }
    if depth_exceeds(body, limits.max_depth) {
        return Err(BodyError::TooDeep(limits.max_depth).into());
    }
    let value = strict::parse(body).map_err(|e| match e {
        strict::StrictError::Syntax(m) => BodyError::NotJson(m),
        strict::StrictError::Ambiguous(m) => BodyError::Ambiguous(m),
    })?;
    let id = first_id(&value);
    messages(value, limits).map_err(|error| BodyRejection { error, id })
}

fn messages(value: Value, limits: &Limits) -> Result<McpRequest, BodyError> {
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(BodyError::EmptyBatch);
            }
            if items.len() > limits.max_batch {
                return Err(BodyError::BatchTooLarge(items.len(), limits.max_batch));
            }
            let calls = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    message(v).map_err(|e| BodyError::NotJsonRpc(format!("batch element {i}: {e}")))
                })
                .collect::<Result<_, _>>()?;
            Ok(McpRequest { calls, batch: true })
        }
        v => Ok(McpRequest {
            calls: vec![message(v).map_err(BodyError::NotJsonRpc)?],
            batch: false,
        }),
    }
}

/// Refuses a key that a case-insensitive decoder would take for one of
/// `fields` without being spelled exactly like it (`"Method"` for `method`).
fn exact_fields(m: &Map<String, Value>, fields: &[&str], at: &str) -> Result<(), String> {
    for key in m.keys() {
        if fields.contains(&key.as_str()) {
            continue;
        }
        let folded = fold(key);
        if let Some(field) = fields.iter().find(|f| fold(f) == folded) {
            return Err(format!(
                "key `{at}{}` must be spelled `{field}`",
                quoted(key)
            ));
        }
    }
    Ok(())
}

fn message(v: Value) -> Result<McpCall, String> {
    let Value::Object(mut m) = v else {
        return Err("a message must be a JSON object".into());
    };
    exact_fields(&m, MESSAGE_FIELDS, "")?;
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err("`jsonrpc` must be \"2.0\"".into());
    }
    let id = match m.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
        Some(Value::Null) => return Err("`id` must not be null".into()),
        Some(_) => return Err("`id` must be a string or a number".into()),
    };
    let method = match m.remove("method") {
        Some(Value::String(s)) => s,
        Some(_) => return Err("`method` must be a string".into()),
        None if id.is_some() && (m.contains_key("result") || m.contains_key("error")) => {
            // A client's response to a server request (sampling, elicitation).
            return Ok(McpCall::connect(""));
        }
        None => return Err("a message needs `method` (or `result`/`error` with an `id`)".into()),
    };
    let params = match m.remove("params") {
        None => None,
        Some(Value::Object(p)) => {
            exact_fields(&p, PARAMS_FIELDS, "params.")?;
            Some(p)
        }
        Some(Value::Array(_)) if method != "tools/call" => None,
        Some(_) => return Err("`params` must be an object".into()),
    };
    let action = action_of(&method);
    let protocol_version = params.as_ref().map(protocol_version).transpose()?.flatten();
    let traceparent = params.as_ref().map(traceparent).transpose()?.flatten();
    let name = match (action, &params) {
        (Action::ReadResource, Some(p)) => optional_string(p, "uri")?,
        (Action::GetPrompt, Some(p)) => optional_string(p, "name")?,
        _ => None,
    };
    let (tool, arguments) = if action == Action::CallTool {
        tool_call(params)?
    } else {
        (None, None)
    };
    Ok(McpCall {
        id,
        name: tool.clone().or(name),
        method,
        action,
        tool,
        arguments,
        protocol_version,
        traceparent,
    })
}

fn optional_string(p: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match p.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`params.{key}` must be a string")),
    }
}

/// `params._meta["io.modelcontextprotocol/protocolVersion"]`, if present.
fn protocol_version(p: &Map<String, Value>) -> Result<Option<String>, String> {
    let meta = match p.get("_meta") {
        None => return Ok(None),
        Some(Value::Object(meta)) => meta,
        Some(_) => return Err("`params._meta` must be an object".into()),
    };
    exact_fields(
        meta,
        &[META_PROTOCOL_VERSION, META_TRACEPARENT, META_TRACESTATE],
        "params._meta.",
    )?;
    if meta.get(META_TRACESTATE).is_some_and(|v| !v.is_string()) {
        return Err(format!("`params._meta.{META_TRACESTATE}` must be a string"));
    }
    match meta.get(META_PROTOCOL_VERSION) {
        None => Ok(None),
        Some(Value::String(v)) => Ok(Some(v.clone())),
        Some(_) => Err(format!(
            "`params._meta.{META_PROTOCOL_VERSION}` must be a string"
        )),
    }
}

/// `params._meta.traceparent` when well-formed; a malformed one is dropped
/// (it is never a reason to deny, nor logged as sent), a non-string refused.
fn traceparent(p: &Map<String, Value>) -> Result<Option<String>, String> {
    match p.get("_meta").and_then(|m| m.get(META_TRACEPARENT)) {
        None => Ok(None),
        Some(Value::String(v)) => Ok(super::valid_traceparent(v).map(str::to_owned)),
        Some(_) => Err(format!(
            "`params._meta.{META_TRACEPARENT}` must be a string"
        )),
    }
}

/// Tool name and arguments of a `tools/call`.
type ToolCall = (Option<String>, Option<Map<String, Value>>);

fn tool_call(params: Option<Map<String, Value>>) -> Result<ToolCall, String> {
    let Some(mut p) = params else {
        return Err("`tools/call` needs `params`".into());
    };
    let name = match p.remove("name") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err("`tools/call` needs `params.name`, a non-empty string".into()),
    };
    let args = match p.remove("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a,
        Some(_) => return Err("`params.arguments` must be an object".into()),
    };
    Ok((Some(name), Some(args)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const L: Limits = Limits {
        max_body_bytes: 1024,
        max_depth: 8,
        max_batch: 3,
    };

    fn parse(v: &str) -> Result<McpRequest, BodyError> {
        parse_body(v.as_bytes(), false, &L).map_err(|r| r.error)
    }

    #[test]
    fn tools_call_yields_tool_and_arguments() {
        let r = parse(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"select 1"}}}"#).unwrap();
        let c = &r.calls[0];
        assert_eq!(c.action, Action::CallTool);
        assert_eq!(c.tool.as_deref(), Some("run_query"));
        assert_eq!(c.arguments.as_ref().unwrap()["sql"], "select 1");
        assert_eq!(c.id, Some(json!(7)));
    }

    #[test]
    fn methods_map_to_actions() {
        for (m, a) in [
            ("initialize", Action::Connect),
            ("ping", Action::Connect),
            ("notifications/initialized", Action::Connect),
            ("tools/list", Action::ListTools),
            ("resources/read", Action::ReadResource),
            ("prompts/get", Action::GetPrompt),
        ] {
            let r = parse(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{m}"}}"#)).unwrap();
            assert_eq!(r.calls[0].action, a, "{m}");
        }
    }

    #[test]
    fn batch_keeps_every_element() {
        let r = parse(r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"x","result":{}}]"#).unwrap();
        assert!(r.batch);
        assert_eq!(r.calls.len(), 3);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(matches!(parse("not json"), Err(BodyError::NotJson(_))));
        assert!(matches!(parse(""), Err(BodyError::Empty)));
        assert!(matches!(parse("[]"), Err(BodyError::EmptyBatch)));
        assert!(matches!(
            parse(r#"{"id":1,"method":"x"}"#),
            Err(BodyError::NotJsonRpc(_))
        ));
        assert!(matches!(
            parse(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#),
            Err(BodyError::NotJsonRpc(_))
        ));
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#),
            Err(BodyError::NotJsonRpc(_))
        ));
        assert!(matches!(
            parse(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#
            ),
            Err(BodyError::NotJsonRpc(_))
        ));
        assert!(matches!(
            parse("[[[[[[[[[[1]]]]]]]]]]"),
            Err(BodyError::TooDeep(8))
        ));
        assert_eq!(
            parse_body(b"{}", true, &L).unwrap_err().error,
            BodyError::Truncated
        );
        let big = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#,
            "x".repeat(2000)
        );
        assert!(matches!(parse(&big), Err(BodyError::TooLarge(1024))));
        let four = r#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"}]"#;
        assert!(matches!(parse(four), Err(BodyError::BatchTooLarge(4, 3))));
    }

    #[test]
    fn refusal_echoes_the_first_request_id() {
        let r = parse_body(br#"{"jsonrpc":"1.0","id":3,"method":"x"}"#, false, &L).unwrap_err();
        assert_eq!(r.id, Some(json!(3)));
        let r = parse_body(
            br#"[{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":"b","method":7}]"#,
            false,
            &L,
        )
        .unwrap_err();
        assert_eq!(r.id, Some(json!("b")));
        let r = parse_body(b"{not json", false, &L).unwrap_err();
        assert_eq!(r.id, None);
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_depth() {
        let r = parse(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"q":"[[[[[[[[[[[[\"{{{{{{"}}}"#,
        );
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn keys_a_case_insensitive_decoder_would_read_are_refused() {
        for body in [
            // Judged a response by an exact reader, a tools/call by Go.
            r#"{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","METHOD":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","Arguments":{}}}"#,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"limit\":1,\"LIMIT\":2}}}",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","name":"get_revenue_metrics"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolversion":"x"}}}"#,
        ] {
            let e = parse(body).unwrap_err();
            assert!(
                matches!(e, BodyError::Ambiguous(_) | BodyError::NotJsonRpc(_)),
                "{body}: {e:?}"
            );
            assert_eq!(e.jsonrpc_code(), -32600, "{body}");
        }
    }

    #[test]
    fn meta_traceparent_is_read_when_well_formed_and_dropped_otherwise() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"traceparent":"{tp}","tracestate":"k=v"}}}}}}"#
        );
        assert_eq!(
            parse(&body).unwrap().calls[0].traceparent.as_deref(),
            Some(tp)
        );
        let bad = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"traceparent":"00-zz"}}}"#;
        assert_eq!(parse(bad).unwrap().calls[0].traceparent, None);
        for refused in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"traceparent":7}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"tracestate":[]}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"TraceParent":"x"}}}"#,
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn mcp_name_subject_and_protocol_version_are_read() {
        let r = parse(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#).unwrap();
        assert_eq!(r.calls[0].name.as_deref(), Some("file:///x"));
        assert_eq!(r.calls[0].protocol_version.as_deref(), Some("2026-07-28"));
    }
}
