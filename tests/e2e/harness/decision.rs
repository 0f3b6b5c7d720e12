//! The decision a request through Envoy should get, and a checker that says
//! exactly how a response differs from it.

use serde_json::Value;

use super::echo::Seen;

/// JSON-RPC error code of every mcp-authz denial.
pub const JSONRPC_AUTHZ_ERROR: i64 = -32001;

/// What a client should get back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// 200 from the echo upstream.
    Allow,
    /// 403 with a JSON-RPC error body.
    Deny {
        /// `error.data.reason`, e.g. `forbidden`.
        reason: &'static str,
        /// `error.data.policies`, sorted.
        policies: Vec<String>,
        /// `error.message`, exactly.
        message: String,
    },
}

impl Expected {
    /// Denied by policy: `policies` determined it, `message` is what the user reads.
    pub fn forbidden(policies: &[&str], message: impl Into<String>) -> Self {
        let mut policies: Vec<String> = policies.iter().map(|p| (*p).to_owned()).collect();
        policies.sort();
        Expected::Deny {
            reason: "forbidden",
            policies,
            message: message.into(),
        }
    }

    /// `Ok` when `status` and `body` are this outcome, else what differs.
    pub fn check(&self, status: u16, body: &str) -> Result<(), String> {
        match self {
            Expected::Allow => {
                if status != 200 {
                    return Err(format!("expected 200, got {status}: {body}"));
                }
                serde_json::from_str::<Seen>(body)
                    .map(drop)
                    .map_err(|e| format!("200 but not from the upstream ({e}): {body}"))
            }
            Expected::Deny {
                reason,
                policies,
                message,
            } => {
                if status != 403 {
                    return Err(format!("expected 403 {reason}, got {status}: {body}"));
                }
                let v: Value = serde_json::from_str(body)
                    .map_err(|e| format!("403 body is not JSON ({e}): {body}"))?;
                let mut got_policies: Option<Vec<&str>> = v["error"]["data"]["policies"]
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_str).collect());
                // Which determining policy is listed first is not part of the contract.
                if let Some(p) = &mut got_policies {
                    p.sort_unstable();
                }
                // The denial echoes the JSON-RPC id of MCP_BODY.
                let mismatch = v["jsonrpc"] != "2.0"
                    || v["id"] != 1
                    || v["error"]["code"] != JSONRPC_AUTHZ_ERROR
                    || v["error"]["data"]["reason"] != *reason
                    || got_policies.as_deref() != Some(&policies_ref(policies)[..])
                    || v["error"]["message"] != message.as_str();
                if mismatch {
                    return Err(format!(
                        "expected 403 reason `{reason}`, policies {policies:?}, \
                         message `{message}`; got {body}"
                    ));
                }
                Ok(())
            }
        }
    }
}

fn policies_ref(p: &[String]) -> Vec<&str> {
    p.iter().map(String::as_str).collect()
}
