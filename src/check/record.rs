//! What one Check decided, recorded once per request for the observers
//! (metrics, audit log, Envoy dynamic metadata). Built along the Check path
//! without extra work on it: the parsed body and each message's decision are
//! moved in, not copied.

use std::time::Duration;

use super::DenyReason;
use crate::authz::Decision;
use crate::identity::Caller;
use crate::mcp::McpRequest;
pub use crate::mcp::valid_traceparent;

/// Header carrying Envoy's request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// W3C Trace Context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// One Check, as decided.
#[derive(Debug)]
pub struct DecisionRecord {
    /// `x-request-id` as Envoy sent it (truncated to 128 characters).
    pub request_id: Option<String>,
    /// `traceparent` of the request (W3C Trace Context), if well-formed.
    pub traceparent: Option<String>,
    /// The authenticated caller; `None` when authentication failed.
    pub caller: Option<Caller>,
    /// The channel honoured for the caller (trusted surfaces only).
    pub channel: Option<String>,
    /// Registered server the request was routed to.
    pub server: Option<String>,
    /// The parsed request body (or the single `connect` of a GET/DELETE).
    pub mcp: Option<McpRequest>,
    /// The decision of each message evaluated, in order (a denial stops the
    /// batch, so this may be shorter than `mcp.calls`).
    pub decisions: Vec<Decision>,
    /// `Ok` on allow; the reason on deny.
    pub outcome: Result<(), DenyReason>,
    /// Determining policy ids of the outcome (the denying ones on deny).
    pub policies: Vec<String>,
    /// Indices into `mcp.calls` of allowed `tools/call`s held for approval.
    pub held: Vec<usize>,
    /// Hex digest of the policy snapshot that decided (approvals bind to it).
    pub policy_digest: Option<String>,
    /// The approval request a held call was matched with, and what became of it.
    pub approval: Option<(String, &'static str)>,
    /// Generation of the policy and registry snapshot that decided.
    pub generation: u64,
    /// Time spent in mcp-authz on this Check.
    pub latency: Duration,
}

impl Default for DecisionRecord {
    /// An empty record whose outcome is a denial (fail closed until decided).
    fn default() -> Self {
        DecisionRecord {
            request_id: None,
            traceparent: None,
            caller: None,
            channel: None,
            server: None,
            mcp: None,
            decisions: Vec::new(),
            outcome: Err(DenyReason::Internal),
            policies: Vec::new(),
            held: Vec::new(),
            policy_digest: None,
            approval: None,
            generation: 0,
            latency: Duration::ZERO,
        }
    }
}

impl DecisionRecord {
    /// Whether the request was allowed.
    pub fn allowed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// Receives every decision record, after the decision (never on a lock the
/// Check path waits for: implementations count or hand off, then return).
pub trait DecisionObserver: Send + Sync {
    fn record(&self, record: &DecisionRecord);
}

/// Several observers as one.
impl DecisionObserver for Vec<std::sync::Arc<dyn DecisionObserver>> {
    fn record(&self, record: &DecisionRecord) {
        for o in self {
            o.record(record);
        }
    }
}
