//! The one place a request becomes an authorization query: a verified caller
//! (user or service), the channel it claims, the server Envoy routed to and
//! one MCP message. Check, `explain`, policy test cases and the registry API
//! all build their question as an [`Access`], so they cannot disagree on the
//! surface, the channel's trust, the JSON-RPC method or the arguments.

use serde_json::{Map, Value};

use crate::identity::Caller;
use crate::mcp::McpCall;
use crate::policy::Action;

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub enum Principal<'a> {
    User {
        id: &'a str,
        groups: &'a [String],
        business_groups: &'a [String],
    },
    /// A workload identified by its SPIFFE id.
    Service { id: &'a str },
}

/// Request context passed to Cedar besides the surface.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallContext<'a> {
    /// JSON-RPC method (empty for a request without a body).
    pub mcp_method: &'a str,
    /// Channel passed by a trusted surface.
    pub channel: Option<&'a str>,
    /// `tools/call` arguments.
    pub arguments: Option<&'a Map<String, Value>>,
    /// For [`Action::Approve`]: the user id of whoever asked for the held
    /// call (`context.requester`, a `User`).
    pub requester: Option<&'a str>,
}

/// One authorization question.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub principal: Principal<'a>,
    /// Surface name; `None` for a client that is not a configured surface.
    pub surface: Option<&'a str>,
    pub server: &'a str,
    pub action: Action,
    /// Tool name, for [`Action::CallTool`].
    pub tool: Option<&'a str>,
    pub context: CallContext<'a>,
}

impl<'a> Principal<'a> {
    /// The Cedar principal of a caller.
    pub fn of(caller: &'a Caller) -> Self {
        match caller {
            Caller::User(id) => Principal::User {
                id: &id.user,
                groups: &id.groups,
                business_groups: &id.business_groups,
            },
            Caller::Service(id) => Principal::Service { id },
        }
    }
}

/// The channel a caller's request claims, honoured only from a surface
/// trusted for context (`trusted_for_context`); from any other caller it is
/// ignored (and Check strips it before the upstream).
pub fn honoured_channel<'a>(caller: &Caller, claimed: Option<&'a str>) -> Option<&'a str> {
    let trusted = caller.surface().is_some_and(|s| s.trusted_for_context);
    claimed.filter(|c| trusted && !c.is_empty())
}

/// One MCP message of one caller to one server.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub caller: &'a Caller,
    /// The channel the request claims (see [`honoured_channel`]).
    pub channel: Option<&'a str>,
    /// Registered server name.
    pub server: &'a str,
    pub message: &'a McpCall,
}

impl<'a> Access<'a> {
    /// The authorization query of this access.
    pub fn query(&self) -> Query<'a> {
        let m = self.message;
        Query {
            principal: Principal::of(self.caller),
            surface: self.caller.surface().map(|s| s.name.as_str()),
            server: self.server,
            action: m.action,
            tool: m.tool.as_deref(),
            context: CallContext {
                mcp_method: &m.method,
                channel: honoured_channel(self.caller, self.channel),
                arguments: m.arguments.as_ref(),
                requester: None,
            },
        }
    }
}

/// Arguments of a message, for callers that build one by hand.
pub type Arguments = Map<String, Value>;
