//! The MCP 2026-07-28 headers that mirror the body (`Mcp-Method`, `Mcp-Name`,
//! `Mcp-Param-*`, `MCP-Protocol-Version`) checked against it.
//!
//! Envoy filters, load balancers and the MCP server may decide from these
//! headers while mcp-authz decides from the body, so a present header that
//! contradicts the body is refused for every protocol version (the spec's
//! HTTP 400 with JSON-RPC `-32020` HeaderMismatch). Absent headers are not
//! required: clients of older protocol versions do not send them.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::strict::quoted;
use super::{McpCall, McpRequest};

/// JSON-RPC error code of a header that contradicts the body (MCP 2026-07-28).
pub const JSONRPC_HEADER_MISMATCH: i64 = -32020;
/// Header mirroring the JSON-RPC method.
pub const MCP_METHOD: &str = "mcp-method";
/// Header mirroring the tool or prompt name, or the resource URI.
pub const MCP_NAME: &str = "mcp-name";
/// Header carrying the negotiated protocol version.
pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// Prefix of the headers mirroring `x-mcp-header` tool arguments.
pub const MCP_PARAM_PREFIX: &str = "mcp-param-";

/// A header that contradicts the body; the message says which and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderMismatch(pub String);

/// The arguments of a tool that `x-mcp-header` mirrors, as
/// (lowercase header suffix, path of property names in the arguments).
pub type ParamHeaders = Vec<(String, Vec<String>)>;

/// Decodes a header value: `=?base64?…?=` is standard Base64 of UTF-8 text;
/// anything else is taken literally.
fn decode(value: &str) -> Result<String, HeaderMismatch> {
    let Some(b64) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Ok(value.to_owned());
    };
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            HeaderMismatch(format!(
                "`{}` is not valid Base64 of UTF-8 text",
                quoted(value)
            ))
        })
}

/// The `x-mcp-header` declarations of a tool input schema: properties reached
/// through `properties` keys only, as the transport spec requires.
pub fn param_headers(schema: &Value) -> ParamHeaders {
    fn walk(schema: &Value, path: &mut Vec<String>, out: &mut ParamHeaders) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, prop) in props {
            path.push(name.clone());
            if let Some(h) = prop.get("x-mcp-header").and_then(Value::as_str) {
                out.push((h.to_ascii_lowercase(), path.clone()));
            }
            walk(prop, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out);
    out
}

/// Largest magnitude up to which every integer is exact as an `f64` (2^53).
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

fn same_value(header: &str, body: &Value) -> bool {
    match body {
        Value::String(s) => header == s,
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        // Integers compare numerically (`42.0` mirrors `42`), exactly.
        Value::Number(n) => match (n.as_i64(), header.parse::<i64>()) {
            (Some(b), Ok(h)) => b == h,
            _ => header
                .parse::<f64>()
                .is_ok_and(|h| h.is_finite() && h.abs() <= EXACT_F64 && n.as_f64() == Some(h)),
        },
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

fn check_call(
    headers: &HashMap<String, String>,
    call: &McpCall,
    declared: &dyn Fn(&str) -> Option<ParamHeaders>,
) -> Result<(), HeaderMismatch> {
    if let Some(m) = headers.get(MCP_METHOD)
        && *m != call.method
    {
        return Err(HeaderMismatch(format!(
            "header `Mcp-Method: {}` does not match the body's method `{}`",
            quoted(m),
            quoted(&call.method)
        )));
    }
    if let Some(n) = headers.get(MCP_NAME)
        && call.name.as_deref() != Some(decode(n)?.as_str())
    {
        return Err(HeaderMismatch(format!(
            "header `Mcp-Name: {}` does not match the body's name `{}`",
            quoted(n),
            quoted(call.name.as_deref().unwrap_or(""))
        )));
    }
    if let (Some(h), Some(b)) = (headers.get(MCP_PROTOCOL_VERSION), &call.protocol_version)
        && h != b
    {
        return Err(HeaderMismatch(format!(
            "header `MCP-Protocol-Version: {}` does not match `_meta` protocol version `{}`",
            quoted(h),
            quoted(b)
        )));
    }
    let params: Vec<_> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(MCP_PARAM_PREFIX)?, v)))
        .collect();
    if params.is_empty() {
        return Ok(());
    }
    let (Some(tool), Some(args)) = (call.tool.as_deref(), &call.arguments) else {
        return Err(HeaderMismatch(
            "`Mcp-Param-*` headers are only sent with `tools/call`".into(),
        ));
    };
    let decls = declared(tool).unwrap_or_default();
    for (suffix, value) in params {
        let Some((_, path)) = decls.iter().find(|(h, _)| h == suffix) else {
            return Err(HeaderMismatch(format!(
                "header `Mcp-Param-{}` is not declared (`x-mcp-header`) by the registered input schema of `{}`",
                quoted(suffix),
                quoted(tool)
            )));
        };
        let mut v = None;
        let mut obj = Some(args);
        for key in path {
            v = obj.and_then(|o| o.get(key));
            obj = v.and_then(Value::as_object);
        }
        let decoded = decode(value)?;
        if !v.is_some_and(|v| same_value(&decoded, v)) {
            return Err(HeaderMismatch(format!(
                "header `Mcp-Param-{}` does not match argument `{}`",
                quoted(suffix),
                quoted(&path.join("."))
            )));
        }
    }
    Ok(())
}

/// Checks every message of `req` against the mirroring headers present in
/// `headers` (lowercase names). `declared(tool)` gives a tool's
/// `x-mcp-header` arguments from the registry.
pub fn check_headers(
    headers: &HashMap<String, String>,
    req: &McpRequest,
    declared: &dyn Fn(&str) -> Option<ParamHeaders>,
) -> Result<(), HeaderMismatch> {
    req.calls
        .iter()
        .try_for_each(|c| check_call(headers, c, declared))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mcp::{Limits, parse_body};
    use serde_json::json;

    fn req(body: Value) -> McpRequest {
        let l = Limits {
            max_body_bytes: 4096,
            max_depth: 16,
            max_batch: 4,
        };
        parse_body(body.to_string().as_bytes(), false, &l).unwrap()
    }

    fn call() -> McpRequest {
        req(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
            "name":"run_query","arguments":{"region":"eu","n":42,"opts":{"dry":true}},
            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}),
        )
    }

    fn schema() -> Option<ParamHeaders> {
        Some(param_headers(&json!({"type":"object","properties":{
            "region":{"type":"string","x-mcp-header":"Region"},
            "n":{"type":"integer","x-mcp-header":"N"},
            "opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"}}}}})))
    }

    fn check(pairs: &[(&str, &str)]) -> Result<(), HeaderMismatch> {
        let h = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        check_headers(&h, &call(), &|_| schema())
    }

    #[test]
    fn matching_headers_pass() {
        check(&[
            ("mcp-method", "tools/call"),
            ("mcp-name", "run_query"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-param-region", "eu"),
            ("mcp-param-n", "42.0"),
            ("mcp-param-dry", "true"),
        ])
        .unwrap();
        check(&[("mcp-name", "=?base64?cnVuX3F1ZXJ5?=")]).unwrap();
        check(&[]).unwrap();
    }

    #[test]
    fn contradicting_headers_are_mismatches() {
        for pairs in [
            &[("mcp-method", "tools/list")][..],
            &[("mcp-name", "get_revenue_metrics")],
            &[("mcp-name", "=?base64?not base64?=")],
            &[("mcp-protocol-version", "2025-11-25")],
            &[("mcp-param-region", "us")],
            &[("mcp-param-n", "43")],
            &[("mcp-param-dry", "false")],
            &[("mcp-param-undeclared", "x")],
            &[("mcp-method", "tools/call,tools/call")],
        ] {
            assert!(check(pairs).is_err(), "{pairs:?}");
        }
    }

    #[test]
    fn name_header_without_a_name_in_the_body_is_a_mismatch() {
        let h = [("mcp-name".to_string(), "x".to_string())].into();
        let r = req(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
        assert!(check_headers(&h, &r, &|_| None).is_err());
    }

    #[test]
    fn resource_uri_is_the_name_of_a_read() {
        let h = [("mcp-name".to_string(), "file:///a".to_string())].into();
        let r = req(
            json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}),
        );
        check_headers(&h, &r, &|_| None).unwrap();
    }
}
