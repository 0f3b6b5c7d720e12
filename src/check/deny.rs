//! Every reason mcp-authz denies a request, and the one place that turns a
//! reason into an HTTP status, a `WWW-Authenticate` challenge, a JSON-RPC
//! error body and a metric label.

use serde_json::{Value, json};

use crate::config::Denials;

/// JSON-RPC error code used for authorization failures (server-defined range).
pub const JSONRPC_AUTHZ_ERROR: i64 = -32001;
/// JSON-RPC 2.0 "Invalid Request".
pub const JSONRPC_INVALID_REQUEST: i64 = -32600;

/// Why a request is denied. The label is stable: clients and dashboards rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No bearer credential at all.
    MissingToken,
    /// A bearer token that failed any check (which one is only logged).
    InvalidToken,
    /// The credential itself is malformed, e.g. two `authorization` headers.
    InvalidRequest,
    /// The request names no registered MCP server.
    UnknownServer,
    /// `tools/call` of a tool the server does not list.
    UnknownTool,
    /// The body is not a valid MCP JSON-RPC message or batch.
    InvalidBody,
    /// The body is over the size limit or was truncated by the proxy.
    BodyTooLarge,
    /// An HTTP method MCP's streamable HTTP transport does not use.
    MethodNotAllowed,
    /// Tool arguments do not match the tool's input schema.
    InvalidArguments,
    /// A policy forbids the request, or none permits it.
    Forbidden,
    /// mcp-authz could not decide (internal error): fail closed.
    Internal,
    /// An MCP header (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`,
    /// `MCP-Protocol-Version`) contradicts the body.
    HeaderMismatch,
    /// A header spelled so that a framework would read it as one mcp-authz
    /// sets or trusts (`X_Forwarded_Groups` for `x-forwarded-groups`).
    ForbiddenHeader,
    /// A browser origin not in `origins.allowed` (DNS rebinding defence).
    InvalidOrigin,
    /// A `forbid` policy that could apply failed to evaluate: deny.
    PolicyError,
    /// `tools/call` of a tool whose live definition no longer matches its
    /// pinned `definition_digest` (with `pinning: enforce`).
    ToolDrifted,
    /// An `Mcp-Session-Id` that mcp-authz did not bind to this caller and
    /// server: another caller's session, a forged or unbound handle.
    SessionMismatch,
    /// A `tools/call` held until a person approves it (the error carries the
    /// approval id and URL).
    ApprovalRequired,
    /// An approver rejected exactly this call (the error carries the comment).
    ApprovalRejected,
    /// The call needs approval and the approvals database is not configured
    /// or not reachable: fail closed.
    ApprovalUnavailable,
}

impl DenyReason {
    /// Stable machine-readable label, also the metric label.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::MissingToken => "missing_token",
            DenyReason::InvalidToken => "invalid_token",
            DenyReason::InvalidRequest => "invalid_request",
            DenyReason::UnknownServer => "unknown_server",
            DenyReason::UnknownTool => "unknown_tool",
            DenyReason::InvalidBody => "invalid_body",
            DenyReason::BodyTooLarge => "body_too_large",
            DenyReason::MethodNotAllowed => "method_not_allowed",
            DenyReason::InvalidArguments => "invalid_arguments",
            DenyReason::Forbidden => "forbidden",
            DenyReason::Internal => "internal_error",
            DenyReason::HeaderMismatch => "header_mismatch",
            DenyReason::ForbiddenHeader => "forbidden_header",
            DenyReason::InvalidOrigin => "invalid_origin",
            DenyReason::PolicyError => "policy_error",
            DenyReason::ToolDrifted => "tool_drifted",
            DenyReason::SessionMismatch => "session_mismatch",
            DenyReason::ApprovalRequired => "approval_required",
            DenyReason::ApprovalRejected => "approval_rejected",
            DenyReason::ApprovalUnavailable => "approval_unavailable",
        }
    }

    /// HTTP status returned to the client.
    pub fn http_status(self) -> u16 {
        match self {
            DenyReason::MissingToken | DenyReason::InvalidToken | DenyReason::InvalidRequest => 401,
            DenyReason::UnknownServer
            | DenyReason::UnknownTool
            | DenyReason::Forbidden
            | DenyReason::InvalidOrigin
            | DenyReason::PolicyError
            | DenyReason::ToolDrifted
            | DenyReason::SessionMismatch
            | DenyReason::ApprovalRequired
            | DenyReason::ApprovalRejected => 403,
            DenyReason::InvalidBody
            | DenyReason::InvalidArguments
            | DenyReason::HeaderMismatch
            | DenyReason::ForbiddenHeader => 400,
            DenyReason::BodyTooLarge => 413,
            DenyReason::MethodNotAllowed => 405,
            DenyReason::Internal | DenyReason::ApprovalUnavailable => 503,
        }
    }

    /// Message shown to the client; never says which token check failed.
    pub fn default_message(self) -> &'static str {
        match self {
            DenyReason::MissingToken => "authentication required: send a bearer token",
            DenyReason::InvalidToken => "invalid token",
            DenyReason::InvalidRequest => "malformed credentials: send exactly one bearer token",
            DenyReason::UnknownServer => "not a registered MCP server",
            DenyReason::UnknownTool => "unknown tool",
            DenyReason::InvalidBody => "invalid JSON-RPC request",
            DenyReason::BodyTooLarge => "request body too large",
            DenyReason::MethodNotAllowed => "MCP endpoints accept POST, GET and DELETE",
            DenyReason::InvalidArguments => "tool arguments do not match the tool's input schema",
            DenyReason::Forbidden => "forbidden by policy",
            DenyReason::Internal => "authorization is unavailable, try again",
            DenyReason::HeaderMismatch => "an MCP header does not match the request body",
            DenyReason::ForbiddenHeader => "a request header is spelled like an identity header",
            DenyReason::InvalidOrigin => "origin not allowed",
            DenyReason::PolicyError => "a policy that forbids this request could not be evaluated",
            DenyReason::ToolDrifted => {
                "this tool's definition changed since it was approved; ask its owner to re-pin it"
            }
            DenyReason::SessionMismatch => {
                "this MCP session was not opened by this caller on this server: start a new session"
            }
            DenyReason::ApprovalRequired => "this call needs a person's approval",
            DenyReason::ApprovalRejected => "an approver rejected this call",
            DenyReason::ApprovalUnavailable => {
                "this call needs approval, and approvals are unavailable"
            }
        }
    }

    /// RFC 6750 error code for the challenge, if any. A request without any
    /// credential gets a challenge without an error code (RFC 6750 §3.1).
    fn bearer_error(self) -> Option<&'static str> {
        match self {
            DenyReason::InvalidToken => Some("invalid_token"),
            DenyReason::InvalidRequest => Some("invalid_request"),
            DenyReason::MissingToken
            | DenyReason::UnknownServer
            | DenyReason::UnknownTool
            | DenyReason::InvalidBody
            | DenyReason::BodyTooLarge
            | DenyReason::MethodNotAllowed
            | DenyReason::InvalidArguments
            | DenyReason::Forbidden
            | DenyReason::Internal
            | DenyReason::HeaderMismatch
            | DenyReason::ForbiddenHeader
            | DenyReason::InvalidOrigin
            | DenyReason::PolicyError
            | DenyReason::ToolDrifted
            | DenyReason::SessionMismatch
            | DenyReason::ApprovalRequired
            | DenyReason::ApprovalRejected
            | DenyReason::ApprovalUnavailable => None,
        }
    }
}

/// A denial on its way to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    pub reason: DenyReason,
    /// Client-facing message.
    pub message: String,
    /// The JSON-RPC `id` of the denied request, echoed in the error body.
    pub jsonrpc_id: Option<Value>,
    /// Ids of the policies that determined a policy denial.
    pub policies: Vec<String>,
    /// JSON-RPC error code: -32001 for authorization, -32700/-32600 for bodies.
    pub code: i64,
    /// RFC 9728 metadata URL of the server the request was for (401 only).
    pub resource_metadata: Option<String>,
    /// `error.data.approval` of a held call: id, url, status, approver, comment.
    pub approval: Option<Value>,
}

impl Denial {
    /// A denial with the reason's default message.
    pub fn new(reason: DenyReason) -> Self {
        let code = match reason {
            DenyReason::HeaderMismatch => crate::mcp::JSONRPC_HEADER_MISMATCH,
            DenyReason::ForbiddenHeader => JSONRPC_INVALID_REQUEST,
            _ => JSONRPC_AUTHZ_ERROR,
        };
        Denial {
            reason,
            message: reason.default_message().to_owned(),
            jsonrpc_id: None,
            policies: Vec::new(),
            code,
            resource_metadata: None,
            approval: None,
        }
    }

    /// JSON-RPC error object an MCP client can show.
    pub fn body(&self) -> String {
        let mut data = json!({ "reason": self.reason.code(), "policies": self.policies });
        if let Some(a) = &self.approval {
            data["approval"] = a.clone();
        }
        json!({
            "jsonrpc": "2.0",
            "id": self.jsonrpc_id.clone().unwrap_or(Value::Null),
            "error": {
                "code": self.code,
                "message": self.message,
                "data": data,
            }
        })
        .to_string()
    }

    /// `WWW-Authenticate` value for 401 responses (RFC 6750, RFC 9728).
    pub fn www_authenticate(&self, cfg: &Denials) -> Option<String> {
        if self.reason.http_status() != 401 {
            return None;
        }
        let mut v = format!("Bearer realm=\"{}\"", cfg.realm);
        if let Some(e) = self.reason.bearer_error() {
            v.push_str(&format!(", error=\"{e}\""));
        }
        if let Some(url) = self
            .resource_metadata
            .as_ref()
            .or(cfg.resource_metadata_url.as_ref())
        {
            v.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn denials() -> Denials {
        Denials {
            realm: "mcp-authz".into(),
            resource_metadata_url: Some("https://x/.well-known/oauth-protected-resource".into()),
        }
    }

    #[test]
    fn invalid_token_challenge_names_the_error_and_metadata() {
        let d = Denial::new(DenyReason::InvalidToken);
        assert_eq!(
            d.www_authenticate(&denials()).unwrap(),
            "Bearer realm=\"mcp-authz\", error=\"invalid_token\", \
             resource_metadata=\"https://x/.well-known/oauth-protected-resource\""
        );
    }

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        let d = Denial::new(DenyReason::MissingToken);
        assert!(!d.www_authenticate(&denials()).unwrap().contains("error="));
    }

    /// Every reason. The match below has no wildcard: a new variant does not
    /// compile until it is listed there, and the test checks the two agree.
    const ALL: [DenyReason; 20] = [
        DenyReason::MissingToken,
        DenyReason::InvalidToken,
        DenyReason::InvalidRequest,
        DenyReason::UnknownServer,
        DenyReason::UnknownTool,
        DenyReason::InvalidBody,
        DenyReason::BodyTooLarge,
        DenyReason::MethodNotAllowed,
        DenyReason::InvalidArguments,
        DenyReason::Forbidden,
        DenyReason::Internal,
        DenyReason::HeaderMismatch,
        DenyReason::ForbiddenHeader,
        DenyReason::InvalidOrigin,
        DenyReason::PolicyError,
        DenyReason::ToolDrifted,
        DenyReason::SessionMismatch,
        DenyReason::ApprovalRequired,
        DenyReason::ApprovalRejected,
        DenyReason::ApprovalUnavailable,
    ];

    /// The position of `r` in [`ALL`].
    fn position(r: DenyReason) -> usize {
        match r {
            DenyReason::MissingToken => 0,
            DenyReason::InvalidToken => 1,
            DenyReason::InvalidRequest => 2,
            DenyReason::UnknownServer => 3,
            DenyReason::UnknownTool => 4,
            DenyReason::InvalidBody => 5,
            DenyReason::BodyTooLarge => 6,
            DenyReason::MethodNotAllowed => 7,
            DenyReason::InvalidArguments => 8,
            DenyReason::Forbidden => 9,
            DenyReason::Internal => 10,
            DenyReason::HeaderMismatch => 11,
            DenyReason::ForbiddenHeader => 12,
            DenyReason::InvalidOrigin => 13,
            DenyReason::PolicyError => 14,
            DenyReason::ToolDrifted => 15,
            DenyReason::SessionMismatch => 16,
            DenyReason::ApprovalRequired => 17,
            DenyReason::ApprovalRejected => 18,
            DenyReason::ApprovalUnavailable => 19,
        }
    }

    /// (HTTP status, code) of each row of the README's "### Denials" table.
    fn readme_denials() -> Vec<(u16, String)> {
        let readme = include_str!("../../README.md");
        let start = readme.find("\n### Denials\n").unwrap();
        readme[start..]
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|row| {
                let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
                let status = cells[cells.len() - 3].trim().parse().unwrap();
                let code = cells[cells.len() - 1].trim().trim_matches('`').to_owned();
                (status, code)
            })
            .collect()
    }

    #[test]
    fn every_reason_code_is_in_the_readme_table() {
        for (i, r) in ALL.iter().enumerate() {
            assert_eq!(position(*r), i, "{r:?} is out of place in ALL");
        }
        let table = readme_denials();
        assert!(table.len() >= ALL.len(), "{table:?}");
        for r in ALL {
            let rows: Vec<u16> = table
                .iter()
                .filter(|(_, code)| code == r.code())
                .map(|(status, _)| *status)
                .collect();
            assert!(
                !rows.is_empty(),
                "`{}` is not in README's Denials table",
                r.code()
            );
            assert!(
                rows.iter().all(|s| *s == r.http_status()),
                "README gives `{}` HTTP {rows:?}, mcp-authz answers {}",
                r.code(),
                r.http_status()
            );
        }
        // And the table names no code mcp-authz does not send.
        for (_, code) in &table {
            assert!(
                ALL.iter().any(|r| r.code() == code),
                "unknown code `{code}`"
            );
        }
    }

    #[test]
    fn body_is_a_jsonrpc_error_with_the_reason() {
        let mut d = Denial::new(DenyReason::InvalidToken);
        d.jsonrpc_id = Some(json!(7));
        let v: Value = serde_json::from_str(&d.body()).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["data"]["reason"], "invalid_token");
        assert_eq!(v["error"]["code"], JSONRPC_AUTHZ_ERROR);
    }
}
