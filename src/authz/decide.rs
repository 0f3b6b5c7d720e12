//! Authorization questions answered from a [`Snapshot`]: one decision, and
//! the servers an identity may see.

use std::collections::HashSet;

use cedar_policy::{Context, Entities, Entity, EntityUid, Request, RestrictedExpression};

use super::arguments::context_value;
use super::entities::surface_or_unknown;
use super::query::{Access, Principal, Query};
use super::snapshot::Snapshot;
use crate::catalog::Server;
use crate::config::UNKNOWN_SURFACE;
use crate::identity::Caller;
use crate::mcp::McpCall;
use crate::mcp::strict::{logged, quoted};
use crate::policy::message::{MessageVars, render};
use crate::policy::names::{BUSINESS_GROUP, GROUP, SERVER, SERVICE, USER, tool_uid, uid};
use crate::policy::{Action, Evaluation, PolicyEngine};

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionReason {
    Allowed,
    /// Only registered servers are approved.
    UnknownServer,
    /// The server does not list this tool.
    UnknownTool,
    /// A policy forbids it, or none permits it.
    Forbidden,
    /// Tool arguments do not match the tool's input schema.
    InvalidArguments,
    /// A `forbid` policy that could apply failed to evaluate: denied.
    PolicyError,
    /// Entities or request could not be built: fail closed.
    Internal,
}

/// The answer, with what determined it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: DecisionReason,
    /// The action whose evaluation decided (`connect` is always evaluated first).
    pub action: Action,
    /// Determining policy ids.
    pub policies: Vec<String>,
    /// Evaluation errors (`policy id: message`); an erroring `forbid`
    /// denies, an erroring `permit` grants nothing.
    pub errors: Vec<String>,
    /// What a denied user reads.
    pub message: String,
    /// The shadow policies' answer, when shadow policies are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_allowed: Option<bool>,
}

impl Decision {
    fn deny(reason: DecisionReason, action: Action, message: String) -> Self {
        Decision {
            allowed: false,
            reason,
            action,
            policies: vec![],
            errors: vec![],
            message,
            shadow_allowed: None,
        }
    }
}

fn principal_entity(p: &Principal<'_>) -> Result<(EntityUid, Entity), String> {
    match p {
        Principal::User {
            id,
            groups,
            business_groups,
        } => {
            let u = uid(&USER, id);
            let parents: HashSet<EntityUid> = groups
                .iter()
                .map(|g| uid(&GROUP, g))
                .chain(business_groups.iter().map(|b| uid(&BUSINESS_GROUP, b)))
                .collect();
            Ok((u.clone(), Entity::new_no_attrs(u, parents)))
        }
        Principal::Service { id } => {
            let u = uid(&SERVICE, id);
            Ok((u.clone(), Entity::new_no_attrs(u, HashSet::new())))
        }
    }
}

/// One Cedar evaluation of a decision: an action on a resource, with the
/// tool entity (for `call_tool`) and the `context.arguments` value.
struct Stage<'a> {
    action: Action,
    resource: EntityUid,
    tool: Option<&'a str>,
    arguments: RestrictedExpression,
}

/// `context.arguments` when no tool's arguments apply: an empty record.
fn no_arguments(server: &str) -> RestrictedExpression {
    context_value(server, "", &[], None).unwrap_or_else(|_| RestrictedExpression::new_bool(false))
}

impl Snapshot {
    /// Decides one MCP message of one caller: the entry point every front
    /// door uses (Check, `explain`, `policy test`, the registry API).
    pub fn decide_access(&self, a: &Access<'_>) -> Decision {
        self.decide(&a.query())
    }

    /// Decides one query: `connect` to the server first, then the query's own
    /// action (on the tool for `call_tool`); both must allow.
    pub fn decide(&self, q: &Query<'_>) -> Decision {
        let key = self.memo.key(q);
        if let Some(d) = key.as_deref().and_then(|k| self.memo.get(k)) {
            return Decision::clone(&d);
        }
        let d = self.decide_uncached(q);
        if !d.errors.is_empty() {
            tracing::warn!(
                target: "mcp_authz::decision",
                server = q.server,
                action = d.action.as_str(),
                tool = %logged(q.tool.unwrap_or("")),
                errors = ?d.errors.iter().map(|e| logged(e)).collect::<Vec<_>>(),
                "policy evaluation errors"
            );
        }
        // A decision with evaluation errors is never cached: it is logged each time.
        if let Some(k) = key
            && d.reason != DecisionReason::Internal
            && d.errors.is_empty()
        {
            self.memo.insert(k, std::sync::Arc::new(d.clone()));
        }
        d
    }

    fn decide_uncached(&self, q: &Query<'_>) -> Decision {
        let Some(server) = self.catalog.server(q.server) else {
            return Decision::deny(
                DecisionReason::UnknownServer,
                Action::Connect,
                format!("`{}` is not a registered MCP server", q.server),
            );
        };
        let mut decision = self.decide_on(q, server, &self.engine);
        if let Some(shadow) = &self.shadow {
            let s = self.decide_on(q, server, shadow);
            if s.allowed != decision.allowed {
                tracing::warn!(
                    target: "mcp_authz::shadow",
                    server = q.server,
                    tool = %logged(q.tool.unwrap_or("")),
                    action = q.action.as_str(),
                    enforced = decision.allowed,
                    shadow = s.allowed,
                    shadow_policies = ?s.policies,
                    enforced_policies = ?decision.policies,
                    "shadow policies disagree with the enforced decision"
                );
            }
            decision.shadow_allowed = Some(s.allowed);
        }
        decision
    }

    /// `connect` first, so that nothing about the server's tools (names,
    /// argument types) is revealed to a caller who may not use the server;
    /// then the query's own action.
    fn decide_on(&self, q: &Query<'_>, server: &Server, engine: &PolicyEngine) -> Decision {
        if q.action == Action::Approve {
            return self.decide_approve(q, server, engine);
        }
        let on_server = |action| Stage {
            action,
            resource: uid(&SERVER, &server.name),
            tool: None,
            arguments: no_arguments(&server.name),
        };
        let connect = match self.evaluate(q, server, engine, on_server(Action::Connect)) {
            Ok(e) => e,
            Err(d) => return d,
        };
        if !connect.allowed || q.action == Action::Connect {
            return self.finish(q, server, engine, Action::Connect, connect);
        }
        let stage = if q.action == Action::CallTool {
            match self.tool_stage(q, server) {
                Ok(stage) => stage,
                Err(d) => return d,
            }
        } else {
            on_server(q.action)
        };
        let action = stage.action;
        match self.evaluate(q, server, engine, stage) {
            Ok(e) => self.finish(q, server, engine, action, e),
            Err(d) => d,
        }
    }

    /// `approve` on a registered tool: asked by a person (web UI, API), not
    /// an MCP client, so there is no `connect` stage and no surface.
    fn decide_approve(&self, q: &Query<'_>, server: &Server, engine: &PolicyEngine) -> Decision {
        let Some(tool) = q.tool.and_then(|t| server.tool(t)) else {
            return Decision::deny(
                DecisionReason::UnknownTool,
                Action::Approve,
                format!(
                    "{} has no tool `{}`",
                    server.title,
                    quoted(q.tool.unwrap_or(""))
                ),
            );
        };
        let stage = Stage {
            action: Action::Approve,
            resource: tool_uid(&server.name, &tool.name),
            tool: Some(&tool.name),
            arguments: no_arguments(&server.name),
        };
        match self.evaluate(q, server, engine, stage) {
            Ok(e) => self.finish(q, server, engine, Action::Approve, e),
            Err(d) => d,
        }
    }

    /// The `call_tool` stage: the tool must be registered and its arguments
    /// must match its input schema.
    fn tool_stage<'s>(&self, q: &Query<'_>, server: &'s Server) -> Result<Stage<'s>, Decision> {
        let Some(tool) = q.tool.and_then(|t| server.tool(t)) else {
            let message = match q.tool {
                Some(t) => format!("{} has no tool `{}`", server.title, quoted(t)),
                None => "no tool named".into(),
            };
            return Err(Decision::deny(
                DecisionReason::UnknownTool,
                Action::CallTool,
                message,
            ));
        };
        let arguments = context_value(
            &server.name,
            &tool.name,
            &tool.arguments,
            q.context.arguments,
        )
        .map_err(|e| {
            Decision::deny(
                DecisionReason::InvalidArguments,
                Action::CallTool,
                format!("{}: {e}", tool.name),
            )
        })?;
        Ok(Stage {
            action: Action::CallTool,
            resource: tool_uid(&server.name, &tool.name),
            tool: Some(&tool.name),
            arguments,
        })
    }

    /// One Cedar evaluation; an unbuildable request is an internal denial.
    fn evaluate(
        &self,
        q: &Query<'_>,
        server: &Server,
        engine: &PolicyEngine,
        stage: Stage<'_>,
    ) -> Result<Evaluation, Decision> {
        let Stage {
            action,
            resource,
            tool,
            arguments,
        } = stage;
        let internal = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "cannot build the Cedar request; denying");
            Decision::deny(
                DecisionReason::Internal,
                action,
                "authorization failed".into(),
            )
        };
        let (principal, entities, context) = self
            .request_parts(q, server, tool, arguments)
            .map_err(|e| internal(&e))?;
        let req = Request::new(principal, action.uid(), resource, context, None)
            .map_err(|e| internal(&e))?;
        Ok(engine.evaluate(&req, &entities, action, &server.name))
    }

    fn request_parts(
        &self,
        q: &Query<'_>,
        server: &Server,
        tool: Option<&str>,
        arguments: RestrictedExpression,
    ) -> Result<(EntityUid, Entities, Context), String> {
        let (principal, principal_entity) = principal_entity(&q.principal)?;
        let surface = surface_or_unknown(&self.entities, q.surface);
        let mut list = vec![principal_entity, surface.clone()];
        if let Some(e) = self.entities.servers.get(&server.name) {
            list.push(e.clone());
        }
        if let Some(t) = tool
            && let Some(e) = self.entities.tools.get(&format!("{}/{t}", server.name))
        {
            list.push(e.clone());
        }
        let entities = Entities::from_entities(list, None).map_err(|e| e.to_string())?;
        let mut pairs = vec![
            (
                "surface".to_owned(),
                RestrictedExpression::new_entity_uid(surface.uid()),
            ),
            (
                "mcp_method".to_owned(),
                RestrictedExpression::new_string(q.context.mcp_method.to_owned()),
            ),
            ("arguments".to_owned(), arguments),
        ];
        if let Some(c) = q.context.channel {
            pairs.push((
                "channel".to_owned(),
                RestrictedExpression::new_string(c.to_owned()),
            ));
        }
        if let Some(r) = q.context.requester {
            pairs.push((
                "requester".to_owned(),
                RestrictedExpression::new_entity_uid(uid(&USER, r)),
            ));
        }
        let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
        Ok((principal, entities, context))
    }

    fn finish(
        &self,
        q: &Query<'_>,
        server: &Server,
        engine: &PolicyEngine,
        action: Action,
        eval: Evaluation,
    ) -> Decision {
        let Evaluation {
            allowed,
            determining,
            errors,
            failed_forbids,
        } = eval;
        if !failed_forbids.is_empty() {
            let message = format!(
                "policy {} could not be evaluated for this request, so it is denied",
                failed_forbids
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Decision {
                allowed: false,
                reason: DecisionReason::PolicyError,
                action,
                policies: failed_forbids,
                errors,
                message,
                shadow_allowed: None,
            };
        }
        if allowed {
            return Decision {
                allowed,
                reason: DecisionReason::Allowed,
                action,
                policies: determining,
                errors,
                message: String::new(),
                shadow_allowed: None,
            };
        }
        let vars = self.message_vars(q, server);
        let message = match determining.first().and_then(|id| engine.info(id)) {
            Some(info) => render(&info.message, &vars),
            None if action == Action::Connect => match q.principal {
                Principal::Service { .. } => {
                    render("no policy permits service {user} to reach {server}", &vars)
                }
                Principal::User { .. } => {
                    render("no policy permits {surface} to reach {server}", &vars)
                }
            },
            None => format!("no policy permits {} on {}", action.as_str(), vars.server),
        };
        Decision {
            allowed,
            reason: DecisionReason::Forbidden,
            action,
            policies: determining,
            errors,
            message,
            shadow_allowed: None,
        }
    }

    fn message_vars(&self, q: &Query<'_>, server: &Server) -> MessageVars {
        MessageVars {
            server: server.title.clone(),
            server_name: server.name.clone(),
            tool: q.tool.unwrap_or("").to_owned(),
            surface: q.surface.unwrap_or(UNKNOWN_SURFACE).to_owned(),
            user: match q.principal {
                Principal::User { id, .. } | Principal::Service { id } => id.to_owned(),
            },
            approved_business_groups: server
                .approved_business_groups
                .iter()
                .map(|b| self.catalog.business_group_title(b).to_owned())
                .collect(),
            support_channel: server.support_channel.clone().unwrap_or_default(),
            channels: server.channels.clone(),
        }
    }

    /// What `caller` may use, from the same policies as its calls: every
    /// server it may `connect` to, each with the tools a `tools/call` with no
    /// arguments would allow (a tool whose rules read its arguments is listed
    /// and marked [`VisibleTool::conditional`]).
    pub fn visible_to(&self, caller: &Caller, channel: Option<&str>) -> Vec<VisibleServer<'_>> {
        let ask = |server: &str, message: &McpCall| {
            self.decide_access(&Access {
                caller,
                channel,
                server,
                message,
            })
        };
        let connect = McpCall::for_action(Action::Connect, None, None);
        let mut out = Vec::new();
        for server in &self.catalog.servers {
            if !ask(&server.name, &connect).allowed {
                continue;
            }
            let tools = server
                .tools
                .iter()
                .filter(|t| {
                    let call = McpCall::for_action(Action::CallTool, Some(&t.name), None);
                    ask(&server.name, &call).allowed
                })
                .map(|tool| VisibleTool {
                    tool,
                    conditional: self.engine.reads_arguments(&server.name, &tool.name),
                })
                .collect();
            out.push(VisibleServer { server, tools });
        }
        out
    }
}

/// A server a caller may connect to, with the tools it may call.
#[derive(Debug)]
pub struct VisibleServer<'a> {
    pub server: &'a Server,
    pub tools: Vec<VisibleTool<'a>>,
}

/// A tool a caller may call with no arguments.
#[derive(Debug)]
pub struct VisibleTool<'a> {
    pub tool: &'a crate::catalog::Tool,
    /// Some policy that can apply to calls of this tool reads
    /// `context.arguments`: whether a given call is allowed depends on them.
    pub conditional: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::authz::{CallContext, Principal, Query};
    use serde_json::{Map, Value};
    use std::path::PathBuf;

    fn alice<'a>(groups: &'a [String], bgs: &'a [String]) -> Principal<'a> {
        Principal::User {
            id: "alice",
            groups,
            business_groups: bgs,
        }
    }

    #[test]
    fn shadow_policies_are_evaluated_but_not_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let shadow: PathBuf = dir.path().join("shadow.cedar");
        std::fs::write(
            &shadow,
            "@id(\"shadow-knowledge-off\")\n@message(\"off\")\nforbid (principal, action, resource == McpServer::\"knowledge\");\n\
             @id(\"shadow-permit-all\")\n@message(\"on\")\npermit (principal, action, resource);",
        )
        .unwrap();
        let mut cfg = crate::config::load(None).unwrap();
        cfg.policies.shadow = vec![shadow];
        let snap = Snapshot::load(&cfg).unwrap();
        let q = Query {
            principal: alice(&[], &[]),
            surface: Some("ai-chat"),
            server: "knowledge",
            action: Action::Connect,
            tool: None,
            context: CallContext::default(),
        };
        let d = snap.decide(&q);
        assert!(d.allowed, "the enforced policies decide");
        assert_eq!(d.shadow_allowed, Some(false));
    }

    #[test]
    fn visible_servers_follow_the_same_policies_as_calls() {
        let cfg = crate::config::load(None).unwrap();
        let snap = Snapshot::load(&cfg).unwrap();
        let who = |bgs: &[String], surface| {
            Caller::stated_user("alice", &[], bgs, Some(surface), &cfg.surfaces).unwrap()
        };
        let seen = snap.visible_to(&who(&["finance".to_string()], "ai-chat"), None);
        let names: Vec<_> = seen.iter().map(|v| v.server.name.as_str()).collect();
        assert_eq!(names, ["presto", "spark", "knowledge"]);
        let presto: Vec<_> = seen[0].tools.iter().map(|t| t.tool.name.as_str()).collect();
        assert_eq!(
            presto,
            ["run_query", "drop_table"],
            "get_revenue_metrics needs ads-eng"
        );
        let none = snap.visible_to(&who(&[], "dev-playground"), None);
        let names: Vec<_> = none.iter().map(|v| v.server.name.as_str()).collect();
        assert_eq!(names, ["experimental"]);
    }

    fn call<'a>(
        p: Principal<'a>,
        server: &'a str,
        tool: &'a str,
        args: Option<&'a Map<String, Value>>,
    ) -> Query<'a> {
        Query {
            principal: p,
            surface: Some("ai-chat"),
            server,
            action: Action::CallTool,
            tool: Some(tool),
            context: CallContext {
                mcp_method: "tools/call",
                channel: None,
                arguments: args,
                requester: None,
            },
        }
    }

    #[test]
    fn nothing_about_tools_is_revealed_before_connect() {
        let snap = Snapshot::load(&crate::config::load(None).unwrap()).unwrap();
        let bad_args = serde_json::json!({"query": 5})
            .as_object()
            .cloned()
            .unwrap();
        // alice has no approved business group: presto is closed to her.
        for (tool, args) in [("no_such_tool", None), ("run_query", Some(&bad_args))] {
            let d = snap.decide(&call(alice(&[], &[]), "presto", tool, args));
            assert_eq!(d.reason, DecisionReason::Forbidden, "{tool}");
            assert_eq!(d.action, Action::Connect, "{tool}");
            assert!(!d.message.contains(tool), "{}", d.message);
        }
        let bgs = ["finance".to_string()];
        let d = snap.decide(&call(alice(&[], &bgs), "presto", "no_such_tool", None));
        assert_eq!(d.reason, DecisionReason::UnknownTool);
    }

    #[test]
    fn an_erroring_forbid_denies_and_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cap = dir.path().join("cap.cedar");
        std::fs::write(
            &cap,
            "@id(\"limit-cap\")\n@message(\"at most 100 results\")\n\
             forbid (principal, action == Action::\"call_tool\", resource == Tool::\"knowledge/search_docs\")\n\
             when { context.arguments has knowledge && context.arguments.knowledge has search_docs &&\n\
             context.arguments.knowledge.search_docs has limit && context.arguments.knowledge.search_docs.limit * 10 > 1000 };",
        )
        .unwrap();
        let mut cfg = crate::config::load(None).unwrap();
        cfg.policies.files.push(cap);
        let snap = Snapshot::load(&cfg).unwrap();
        let args = |n: i64| {
            serde_json::json!({"query": "x", "limit": n})
                .as_object()
                .cloned()
                .unwrap()
        };
        let (small, big, overflow) = (args(5), args(500), args(922_337_203_685_477_581));
        let d = snap.decide(&call(
            alice(&[], &[]),
            "knowledge",
            "search_docs",
            Some(&small),
        ));
        assert!(d.allowed, "{d:?}");
        let d = snap.decide(&call(
            alice(&[], &[]),
            "knowledge",
            "search_docs",
            Some(&big),
        ));
        assert_eq!((d.allowed, d.reason), (false, DecisionReason::Forbidden));
        for _ in 0..2 {
            let d = snap.decide(&call(
                alice(&[], &[]),
                "knowledge",
                "search_docs",
                Some(&overflow),
            ));
            assert_eq!(
                (d.allowed, d.reason),
                (false, DecisionReason::PolicyError),
                "{d:?}"
            );
            assert_eq!(d.policies, ["limit-cap"]);
            assert!(!d.errors.is_empty());
        }
        let cached = |args| {
            let q = call(alice(&[], &[]), "knowledge", "search_docs", Some(args));
            snap.memo.key(&q).and_then(|k| snap.memo.get(&k)).is_some()
        };
        assert!(cached(&big), "a clean decision is cached");
        assert!(!cached(&overflow), "a decision with errors is not");
    }
}
