//! One authorization check, independent of Envoy: request attributes in,
//! [`Outcome`] out (allow with upstream headers, or a [`Denial`]).
//!
//! Order: credential (bearer JWT, else the mTLS SPIFFE id) → server (context
//! extension, else host/path) → MCP body → one registry decision per JSON-RPC
//! message; a batch is allowed only if every message is.

mod authenticate;
mod deny;
mod record;
mod screen;

pub use crate::identity::Caller;
pub use deny::{Denial, DenyReason, JSONRPC_AUTHZ_ERROR, JSONRPC_INVALID_REQUEST};
pub use record::{
    DecisionObserver, DecisionRecord, REQUEST_ID_HEADER, TRACEPARENT_HEADER, valid_traceparent,
};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::approvals::{Approvals, Gate, HeldCall};
use crate::authz::{Access, DecisionReason, honoured_channel};
use crate::binding::BindingKey;
use crate::binding::session::{SESSION_HEADER, unbind};
use crate::catalog::{RouteKey, Server, metadata_url, resource_url};
use crate::config::{Config, Pinning};
use crate::identity::{Identity, Interner, UpstreamHeaders, caller_headers};
use crate::jwt::{TokenCache, Verifier};
use crate::mcp::strict::logged;
use crate::mcp::{
    BodyError, BodyRejection, Limits, McpRequest, check_headers, param_headers, parse_body,
};
use crate::probe::StatusBoard;
use crate::store::Registry;

/// Envoy per-route context extension naming the target server.
pub const SERVER_EXTENSION: &str = "mcp_server";
/// The longest a Check waits for the approvals database (Envoy's ext_authz
/// timeout in the shipped configs is 1 s).
const APPROVAL_GATE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
/// Header Envoy sets when `with_request_body` cut the body short.
pub const PARTIAL_BODY_HEADER: &str = "x-envoy-auth-partial-body";

/// The parts of a request an authorization decision may use.
#[derive(Debug, Default)]
pub struct RequestView<'a> {
    /// Lowercase header names; repeated headers joined with `,` (as Envoy sends them).
    pub headers: Option<&'a HashMap<String, String>>,
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    pub body: &'a [u8],
    /// Per-route `context_extensions` set in Envoy.
    pub context_extensions: Option<&'a HashMap<String, String>>,
    /// Peer principal from the client certificate (SPIFFE id), if any.
    pub source_principal: &'a str,
    /// The request size Envoy reports (CheckRequest `size`), when known.
    pub declared_size: Option<u64>,
}

impl RequestView<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers?.get(name).map(String::as_str)
    }
}

/// The decision on one request.
#[derive(Debug)]
pub enum Outcome {
    Allow {
        caller: Caller,
        headers: UpstreamHeaders,
    },
    Deny(Denial),
}

/// Decides requests: holds verifier, token cache, registry and configuration.
pub struct Checker {
    cfg: Arc<Config>,
    verifier: Arc<Verifier>,
    registry: Arc<Registry>,
    cache: TokenCache<Arc<Identity>>,
    /// Attributes shared by the cached identities (as many sets as tokens at most).
    attributes: Interner,
    limits: Limits,
    /// Header names no client may send in another spelling.
    protected: HashSet<String>,
    /// Receives every decision record.
    observer: Option<Arc<dyn DecisionObserver>>,
    /// Live status read with `pinning: enforce` (drifted tools are denied).
    board: Option<StatusBoard>,
    /// Binds session handles and response contexts (`sessions.*`); `None`
    /// only when no key could be made, and then every session is refused.
    binding: Option<Arc<BindingKey>>,
    /// Held calls and their approvals; `None`: such calls are refused.
    approvals: Option<Arc<Approvals>>,
}

impl Checker {
    /// A checker over a configuration, its issuers and its registry.
    pub fn new(cfg: Arc<Config>, verifier: Arc<Verifier>, registry: Arc<Registry>) -> Self {
        let cache = TokenCache::new(cfg.limits.token_cache_entries);
        let attributes =
            Interner::new(usize::try_from(cfg.limits.token_cache_entries).unwrap_or(usize::MAX));
        let limits = Limits {
            max_body_bytes: cfg.limits.max_body_bytes,
            max_depth: cfg.limits.max_json_depth,
            max_batch: cfg.limits.max_batch,
        };
        let protected = screen::protected_headers(&cfg);
        let binding = match BindingKey::of(&cfg) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::error!(error = %e, "no session binding key: MCP sessions will be refused");
                None
            }
        };
        Checker {
            cfg,
            verifier,
            registry,
            cache,
            attributes,
            limits,
            protected,
            board: None,
            observer: None,
            binding,
            approvals: None,
        }
    }

    /// Holds `tools/call`s that need approval in `approvals` (without it
    /// they are refused with `approval_unavailable`).
    pub fn with_approvals(mut self, approvals: Arc<Approvals>) -> Self {
        self.approvals = Some(approvals);
        self
    }

    /// The approvals store, if configured.
    pub fn approvals(&self) -> Option<&Arc<Approvals>> {
        self.approvals.as_ref()
    }

    /// The key session handles and response contexts are bound with; the
    /// ext_proc service of the same process must use the same one.
    pub fn binding_key(&self) -> Option<&Arc<BindingKey>> {
        self.binding.as_ref()
    }

    /// Hands every decision record to `observer` (metrics, audit log).
    pub fn with_observer(mut self, observer: Arc<dyn DecisionObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Reads tool drift from `board`: with `pinning: enforce`, a `tools/call`
    /// the policies allow is still denied when its tool has drifted.
    pub fn with_status_board(mut self, board: StatusBoard) -> Self {
        self.board = Some(board);
        self
    }

    /// The configuration this checker enforces.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Decides one request.
    pub async fn check(&self, req: &RequestView<'_>) -> Outcome {
        self.check_recorded(req).await.0
    }

    /// Decides one request and returns the record of the decision too (for
    /// Envoy dynamic metadata); the observers have already seen it.
    pub async fn check_recorded(&self, req: &RequestView<'_>) -> (Outcome, DecisionRecord) {
        let started = Instant::now();
        let mut rec = DecisionRecord {
            request_id: req
                .header(REQUEST_ID_HEADER)
                .map(|v| v.chars().take(128).collect()),
            traceparent: req
                .header(TRACEPARENT_HEADER)
                .and_then(valid_traceparent)
                .map(str::to_owned),
            ..DecisionRecord::default()
        };
        let outcome = self.decide_request(req, &mut rec).await;
        match &outcome {
            Outcome::Allow { .. } => rec.outcome = Ok(()),
            Outcome::Deny(d) => {
                rec.outcome = Err(d.reason);
                rec.policies = d.policies.clone();
            }
        }
        if rec.allowed() {
            rec.policies = rec
                .decisions
                .iter()
                .flat_map(|d| d.policies.iter().cloned())
                .collect();
        }
        rec.latency = started.elapsed();
        if let Some(o) = &self.observer {
            o.record(&rec);
        }
        (outcome, rec)
    }

    async fn decide_request(&self, req: &RequestView<'_>, rec: &mut DecisionRecord) -> Outcome {
        let screened = screen::spellings(req, &self.protected)
            .and_then(|()| screen::origin(req, &self.cfg.origins.allowed));
        if let Err(d) = screened {
            return Outcome::Deny(log_deny(*d, &"-", "-", "", req.path));
        }
        let caller = match self.authenticate(req).await {
            Ok(c) => c,
            Err(mut d) => {
                d.resource_metadata = self.metadata_url(req);
                return Outcome::Deny(d);
            }
        };
        let claimed = req.header(&self.cfg.request_context.channel_header);
        rec.caller = Some(caller.clone());
        rec.channel = honoured_channel(&caller, claimed).map(str::to_owned);
        if let Some(d) = self.authorize(req, &caller, claimed, rec) {
            return Outcome::Deny(d);
        }
        let mut headers = caller_headers(&caller, &self.cfg.identity_headers);
        match self.session(req, &caller, rec.server.as_deref()) {
            Ok(Some(upstream)) => headers.set.push((SESSION_HEADER.to_owned(), upstream)),
            Ok(None) => {}
            Err(mut d) => {
                d.jsonrpc_id = rec.mcp.as_ref().and_then(|m| m.first_id().cloned());
                let server = rec.server.as_deref().unwrap_or("-");
                return Outcome::Deny(log_deny(*d, &caller, server, "", req.path));
            }
        }
        // Last: a grant is used only by a request that is otherwise allowed.
        if !rec.held.is_empty()
            && let Some(d) = self.hold(&caller, rec).await
        {
            let server = rec.server.as_deref().unwrap_or("-");
            return Outcome::Deny(log_deny(*d, &caller, server, "tools/call", req.path));
        }
        if honoured_channel(&caller, claimed).is_none() {
            // Context from an untrusted surface is ignored and never forwarded.
            headers
                .remove
                .push(self.cfg.request_context.channel_header.clone());
        }
        Outcome::Allow { caller, headers }
    }

    /// Calls held for approval: the approved grant of exactly this call is
    /// used (once), else the caller is told where to ask, or why not.
    async fn hold(&self, caller: &Caller, rec: &mut DecisionRecord) -> Option<Box<Denial>> {
        let mcp = rec.mcp.as_ref()?;
        let deny = |reason: DenyReason, message: String, approval: Option<serde_json::Value>| {
            let mut d = Denial::new(reason);
            d.message = message;
            d.approval = approval;
            d.jsonrpc_id = mcp.first_id().cloned();
            Some(Box::new(d))
        };
        let ([index], false) = (rec.held.as_slice(), mcp.batch) else {
            return deny(
                DenyReason::ApprovalRequired,
                "a call that needs approval must be sent on its own, not in a batch".into(),
                None,
            );
        };
        let call = mcp.calls.get(*index)?;
        let tool = call.tool.as_deref().unwrap_or("");
        let Some(approvals) = &self.approvals else {
            return deny(
                DenyReason::ApprovalUnavailable,
                format!(
                    "{tool} needs a person's approval, and no approvals database is configured"
                ),
                None,
            );
        };
        let held = HeldCall {
            caller,
            surface: caller.surface().map(|s| s.name.as_str()),
            server: rec.server.as_deref().unwrap_or(""),
            tool,
            arguments: call.arguments.as_ref(),
            policy_digest: rec.policy_digest.as_deref().unwrap_or(""),
        };
        // Within Envoy's ext_authz timeout: a slow database is an outage.
        let gated = tokio::time::timeout(APPROVAL_GATE_TIMEOUT, approvals.gate(&held))
            .await
            .unwrap_or_else(|_| {
                Err(crate::approvals::ApprovalError::Refused(format!(
                    "no answer from the approvals database within {APPROVAL_GATE_TIMEOUT:?}"
                )))
            });
        match gated {
            Ok(Gate::Allowed { id, approver }) => {
                tracing::info!(target: "mcp_authz::approvals", id = %id, approver = %approver, tool, "approved call used");
                rec.approval = Some((id, "used"));
                None
            }
            Ok(Gate::Pending {
                id,
                url,
                previous_expired,
                created,
            }) => {
                let again = if previous_expired {
                    " (the previous approval of this call expired)"
                } else {
                    ""
                };
                let message = format!(
                    "{tool} needs a person's approval{again}: ask an approver at {url} (request {id}), then send the same call again"
                );
                let approval = serde_json::json!({"id": id, "url": url, "status": "pending"});
                let status = match (previous_expired, created) {
                    (true, _) => "expired",
                    (false, true) => "requested",
                    (false, false) => "pending",
                };
                rec.approval = Some((id, status));
                deny(DenyReason::ApprovalRequired, message, Some(approval))
            }
            Ok(Gate::Refused { reason }) => {
                let message = format!(
                    "{tool} needs a person's approval, and this call cannot get one: {reason}"
                );
                let approval = serde_json::json!({"status": "refused", "reason": reason});
                deny(DenyReason::ApprovalRequired, message, Some(approval))
            }
            Ok(Gate::Rejected {
                id,
                approver,
                comment,
            }) => {
                let message = format!(
                    "{approver} rejected this call of {tool}: {comment} (request {id}; sending it again asks for a new approval)"
                );
                let approval = serde_json::json!({
                    "id": id, "status": "rejected", "approver": approver, "comment": comment,
                });
                rec.approval = Some((id, "rejected"));
                deny(DenyReason::ApprovalRejected, message, Some(approval))
            }
            Err(e) => {
                tracing::error!(target: "mcp_authz::approvals", error = %e, "approvals unavailable; refusing the held call");
                deny(
                    DenyReason::ApprovalUnavailable,
                    DenyReason::ApprovalUnavailable.default_message().into(),
                    None,
                )
            }
        }
    }

    /// With `sessions.bind`: the upstream's own session id inside the
    /// request's `Mcp-Session-Id` handle, which must be bound to this caller
    /// on this server ([`crate::binding::session`]).
    fn session(
        &self,
        req: &RequestView<'_>,
        caller: &Caller,
        server: Option<&str>,
    ) -> Result<Option<String>, Box<Denial>> {
        if !self.cfg.sessions.bind {
            return Ok(None);
        }
        let Some(presented) = req.header(SESSION_HEADER) else {
            return Ok(None);
        };
        let refused = |why: &dyn std::fmt::Display| {
            let mut d = Denial::new(DenyReason::SessionMismatch);
            d.message = format!("{}: {why}", DenyReason::SessionMismatch.default_message());
            Box::new(d)
        };
        let (Some(key), Some(server)) = (&self.binding, server) else {
            return Err(refused(&"no session binding key"));
        };
        unbind(key, caller, server, presented)
            .map(Some)
            .map_err(|e| refused(&e))
    }

    /// Where the protected resource metadata of the requested server is.
    fn metadata_url(&self, req: &RequestView<'_>) -> Option<String> {
        let public = self.cfg.public_url.as_deref()?;
        let snapshot = self.registry.snapshot();
        let server = snapshot.catalog.route(&self.route_key(req)?)?;
        let prefix = server.route.path_prefixes.first()?;
        Some(metadata_url(public, prefix))
    }

    fn mcp_request(&self, req: &RequestView<'_>) -> Result<McpRequest, Box<Denial>> {
        match req.method {
            // A body mcp-authz does not read must not exist at all.
            "GET" | "DELETE" if !req.body.is_empty() || screen::declares_body(req) => {
                let mut d = Denial::new(DenyReason::InvalidBody);
                d.code = JSONRPC_INVALID_REQUEST;
                d.message = format!("a {} request to an MCP endpoint has no body", req.method);
                Err(Box::new(d))
            }
            "GET" | "DELETE" => Ok(McpRequest::connect_only(req.method)),
            "POST" => {
                let truncated = screen::body_cut(req, self.limits.max_body_bytes);
                parse_body(req.body, truncated, &self.limits).map_err(|e| Box::new(body_denial(e)))
            }
            _ => Err(Box::new(Denial::new(DenyReason::MethodNotAllowed))),
        }
    }

    /// Finds the server, parses the body and asks the registry's policies
    /// about every message; then checks the MCP mirror headers.
    fn authorize(
        &self,
        req: &RequestView<'_>,
        caller: &Caller,
        channel: Option<&str>,
        rec: &mut DecisionRecord,
    ) -> Option<Denial> {
        let snapshot = self.registry.snapshot();
        rec.generation = snapshot.generation;
        rec.policy_digest = Some(snapshot.digest_hex());
        let route = self.route_key(req);
        let server = route.as_ref().and_then(|r| snapshot.catalog.route(r));
        let server_name = server.map_or("-", |s| s.name.as_str());
        // The body is read first so that every denial can echo its JSON-RPC id.
        let mcp = match self.mcp_request(req) {
            Ok(m) => m,
            Err(d) => return Some(log_deny(*d, caller, server_name, "", req.path)),
        };
        let Some(server) = server else {
            let mut d = Denial::new(DenyReason::UnknownServer);
            d.message = if route.is_some() {
                "this route names no registered MCP server".into()
            } else {
                "this route names no MCP server (no `mcp_server` context extension)".into()
            };
            d.jsonrpc_id = mcp.first_id().cloned();
            rec.mcp = Some(mcp);
            return Some(log_deny(d, caller, "-", "", req.path));
        };
        rec.server = Some(server.name.clone());
        let denial = self.authorize_messages(req, caller, channel, server, &snapshot, &mcp, rec);
        rec.mcp = Some(mcp);
        denial
    }

    /// Decides every message of a routed request, then the mirror headers.
    #[allow(clippy::too_many_arguments, reason = "the Check's parts, each named")]
    fn authorize_messages(
        &self,
        req: &RequestView<'_>,
        caller: &Caller,
        channel: Option<&str>,
        server: &Server,
        snapshot: &crate::authz::Snapshot,
        mcp: &McpRequest,
        rec: &mut DecisionRecord,
    ) -> Option<Denial> {
        if let Some(d) = self.audience(req, caller, server) {
            return Some(log_deny(d, caller, &server.name, "", req.path));
        }
        for (index, call) in mcp.calls.iter().enumerate() {
            let decision = snapshot.decide_access(&Access {
                caller,
                channel,
                server: &server.name,
                message: call,
            });
            if decision.allowed {
                if call.action == crate::policy::Action::CallTool
                    && let Some(tool) = call.tool.as_deref()
                    && snapshot.needs_approval(&server.name, tool, &decision)
                {
                    rec.held.push(index);
                }
                rec.decisions.push(decision);
                if let Some(mut d) = self.drift(server, call) {
                    d.jsonrpc_id = call.id.clone().or_else(|| mcp.first_id().cloned());
                    return Some(log_deny(d, caller, &server.name, &call.method, req.path));
                }
                continue;
            }
            // Only a denial copies the message and policies out of the record.
            let (message, policies) = (decision.message.clone(), decision.policies.clone());
            let reason = match decision.reason {
                DecisionReason::UnknownServer => DenyReason::UnknownServer,
                DecisionReason::UnknownTool => DenyReason::UnknownTool,
                DecisionReason::InvalidArguments => DenyReason::InvalidArguments,
                DecisionReason::Forbidden | DecisionReason::Allowed => DenyReason::Forbidden,
                DecisionReason::PolicyError => DenyReason::PolicyError,
                DecisionReason::Internal => DenyReason::Internal,
            };
            rec.decisions.push(decision);
            let mut d = Denial::new(reason);
            d.message = message;
            d.policies = policies;
            d.jsonrpc_id = call.id.clone().or_else(|| mcp.first_id().cloned());
            return Some(log_deny(d, caller, &server.name, &call.method, req.path));
        }
        // Headers are compared only once the caller may use the server: a
        // mismatch message may name a tool's declared parameters.
        if let Some(headers) = req.headers {
            let declared = |tool: &str| {
                server
                    .tool(tool)
                    .and_then(|t| t.input_schema.as_ref())
                    .map(param_headers)
            };
            if let Err(e) = check_headers(headers, mcp, &declared) {
                let mut d = Denial::new(DenyReason::HeaderMismatch);
                d.message = e.0;
                d.jsonrpc_id = mcp.first_id().cloned();
                return Some(log_deny(d, caller, &server.name, "", req.path));
            }
        }
        tracing::debug!(
            target: "mcp_authz::decision",
            decision = "allow",
            caller = %caller,
            server = %server.name,
            messages = mcp.calls.len(),
        );
        None
    }

    /// With `pinning: enforce`: a denial for a `tools/call` of a tool the
    /// probe found drifted (decided only after the policies allowed it, so
    /// a caller learns nothing of tools it may not call).
    fn drift(&self, server: &Server, call: &crate::mcp::McpCall) -> Option<Denial> {
        if self.cfg.pinning != Pinning::Enforce {
            return None;
        }
        let tool = call.tool.as_deref()?;
        self.board
            .as_ref()
            .filter(|b| b.drifted(&server.name, tool))
            .map(|_| Denial::new(DenyReason::ToolDrifted))
    }

    /// RFC 8707: a token from an issuer that binds audiences to resources
    /// must name this server's resource URL.
    fn audience(&self, req: &RequestView<'_>, caller: &Caller, server: &Server) -> Option<Denial> {
        let Caller::User(id) = caller else {
            return None;
        };
        if !id.require_resource_audience {
            return None;
        }
        let resource = self.cfg.public_url.as_deref().and_then(|public| {
            let prefix = server.route.path_prefixes.first()?;
            Some(resource_url(public, prefix))
        });
        if resource.as_deref().is_some_and(|r| id.accepts_resource(r)) {
            return None;
        }
        let mut d = Denial::new(DenyReason::InvalidToken);
        d.message = "the token's audience does not name this MCP server".into();
        d.resource_metadata = self.metadata_url(req);
        Some(d)
    }

    /// Which server Envoy routed to: the `mcp_server` context extension, else
    /// (only when `routing.fallback_host_path` is set) the host and path.
    fn route_key<'a>(&self, req: &RequestView<'a>) -> Option<RouteKey<'a>> {
        match req.context_extensions.and_then(|c| c.get(SERVER_EXTENSION)) {
            Some(ext) => Some(RouteKey::Extension(ext)),
            None if self.cfg.routing.fallback_host_path => Some(RouteKey::HostPath {
                host: req.host,
                path: req.path,
            }),
            None => None,
        }
    }
}

fn body_denial(BodyRejection { error: e, id }: BodyRejection) -> Denial {
    let reason = match e {
        BodyError::TooLarge(_) | BodyError::Truncated => DenyReason::BodyTooLarge,
        _ => DenyReason::InvalidBody,
    };
    let mut d = Denial::new(reason);
    d.code = e.jsonrpc_code();
    d.message = e.to_string();
    d.jsonrpc_id = id;
    d
}

/// Logs a denial; request-controlled values are truncated (see [`logged`]).
fn log_deny(
    d: Denial,
    caller: &dyn std::fmt::Display,
    server: &str,
    method: &str,
    path: &str,
) -> Denial {
    tracing::info!(
        target: "mcp_authz::decision",
        decision = "deny",
        reason = d.reason.code(),
        caller = %logged(&caller.to_string()),
        server = %logged(server),
        mcp_method = %logged(method),
        path = %logged(path),
        policies = ?d.policies,
        message = %logged(&d.message),
    );
    d
}
