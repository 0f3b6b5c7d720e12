//! [`DecisionRecord`] → the `dynamic_metadata` of a `CheckResponse`, so that
//! Envoy's access log (and later filters) can name the caller, tool and
//! decision: `%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tool)%`.

use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

use crate::binding::BindingKey;
use crate::binding::context::{LIST_METHODS, ListRequest, METADATA_KEY, ResponseContext};
use crate::check::{Caller, DecisionRecord};

/// Keys set on every response (allow and deny); absent values are left out.
/// Lists (`tool`, `method`, `policies`) are joined with `,`.
pub const KEYS: [&str; 10] = [
    "user", "service", "surface", "server", "tool", "method", "action", "decision", "reason",
    "policies",
];

fn string(s: impl Into<String>) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

/// The sealed [`ResponseContext`] of an allowed request that was routed to a
/// server, for ext_proc (under [`METADATA_KEY`]).
pub fn response_context(rec: &DecisionRecord, key: &BindingKey) -> Option<(String, Value)> {
    let (Ok(()), Some(caller), Some(server)) = (&rec.outcome, &rec.caller, &rec.server) else {
        return None;
    };
    let lists = rec
        .mcp
        .as_ref()
        .map(|m| {
            m.calls
                .iter()
                .filter(|c| LIST_METHODS.contains(&c.method.as_str()))
                .map(|c| ListRequest {
                    id: c.id.clone(),
                    method: c.method.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let ctx = ResponseContext {
        caller: caller.clone(),
        channel: rec.channel.clone(),
        server: server.clone(),
        generation: rec.generation,
        lists,
        batch: rec.mcp.as_ref().is_some_and(|m| m.batch),
        get: rec
            .mcp
            .as_ref()
            .is_some_and(|m| matches!(m.calls.as_slice(), [c] if c.method == "GET")),
    };
    Some((METADATA_KEY.to_owned(), string(ctx.seal(key))))
}

/// The metadata of one decision.
pub fn dynamic_metadata(rec: &DecisionRecord) -> Struct {
    let mut fields = std::collections::HashMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            fields.insert(k.to_owned(), string(v));
        }
    };
    match &rec.caller {
        Some(Caller::User(id)) => {
            put("user", Some(id.user.clone()));
            put("surface", id.surface.as_ref().map(|s| s.name.clone()));
        }
        Some(Caller::Service(s)) => put("service", Some(s.clone())),
        None => {}
    }
    put("server", rec.server.clone());
    let calls = rec.mcp.as_ref().map_or(&[][..], |m| &m.calls[..]);
    let join = |f: &dyn Fn(&crate::mcp::McpCall) -> Option<&str>| {
        Some(calls.iter().filter_map(f).collect::<Vec<_>>().join(","))
    };
    put("tool", join(&|c| c.tool.as_deref()));
    put("method", join(&|c| Some(c.method.as_str())));
    put(
        "action",
        rec.decisions.last().map(|d| d.action.as_str().to_owned()),
    );
    put(
        "decision",
        Some(if rec.allowed() { "allow" } else { "deny" }.to_owned()),
    );
    put(
        "reason",
        Some(match rec.outcome {
            Ok(()) => "allowed".to_owned(),
            Err(r) => r.code().to_owned(),
        }),
    );
    put("policies", Some(rec.policies.join(",")));
    Struct { fields }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::DenyReason;
    use crate::mcp::{McpCall, McpRequest};
    use crate::policy::Action;

    fn s(m: &Struct, k: &str) -> Option<String> {
        match m.fields.get(k)?.kind.as_ref()? {
            Kind::StringValue(v) => Some(v.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_denial_names_user_tool_decision_and_reason() {
        let rec = DecisionRecord {
            caller: Caller::stated_user("bob", &[], &[], None, &[]).ok(),
            server: Some("presto".into()),
            mcp: Some(McpRequest {
                calls: vec![McpCall::for_action(Action::CallTool, Some("drop"), None)],
                batch: false,
            }),
            outcome: Err(DenyReason::Forbidden),
            policies: vec!["no-drop".into(), "p2".into()],
            ..DecisionRecord::default()
        };
        let m = dynamic_metadata(&rec);
        assert_eq!(s(&m, "user").as_deref(), Some("bob"));
        assert_eq!(s(&m, "server").as_deref(), Some("presto"));
        assert_eq!(s(&m, "tool").as_deref(), Some("drop"));
        assert_eq!(s(&m, "method").as_deref(), Some("tools/call"));
        assert_eq!(s(&m, "decision").as_deref(), Some("deny"));
        assert_eq!(s(&m, "reason").as_deref(), Some("forbidden"));
        assert_eq!(s(&m, "policies").as_deref(), Some("no-drop,p2"));
        assert_eq!(s(&m, "service"), None);
        assert!(m.fields.keys().all(|k| KEYS.contains(&k.as_str())));
    }

    #[test]
    fn an_unauthenticated_request_still_has_decision_and_reason() {
        let rec = DecisionRecord {
            outcome: Err(DenyReason::MissingToken),
            ..DecisionRecord::default()
        };
        let m = dynamic_metadata(&rec);
        assert_eq!(s(&m, "decision").as_deref(), Some("deny"));
        assert_eq!(s(&m, "reason").as_deref(), Some("missing_token"));
        assert_eq!(s(&m, "user"), None);
    }
}
