//! [`DecisionRecord`] → the `dynamic_metadata` of a `CheckResponse`, so that
//! Envoy's access log (and later filters) can name the caller, tool and
//! decision: `%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tool)%`.
//!
//! `tool` and `method` are what the client sent: each name is cut to
//! [`crate::mcp::strict::MAX_LOGGED_CHARS`] characters with control
//! characters escaped ([`logged`]), and the joined value to
//! [`MAX_JOINED_BYTES`], so one request never writes more than that to
//! Envoy's access log.

use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

use crate::binding::BindingKey;
use crate::binding::context::{LIST_METHODS, ListRequest, METADATA_KEY, ResponseContext};
use crate::check::{Caller, DecisionRecord};
use crate::mcp::strict::logged;

/// Keys set on every response (allow and deny); absent values are left out.
/// Lists (`tool`, `method`, `policies`) are joined with `,`.
pub const KEYS: [&str; 10] = [
    "user", "service", "surface", "server", "tool", "method", "action", "decision", "reason",
    "policies",
];

/// Longest joined `tool` or `method` value, in bytes; a longer one is cut at
/// a character boundary and ends with `…`.
pub const MAX_JOINED_BYTES: usize = 1024;

/// `items`, each [`logged`], joined with `,`, at most [`MAX_JOINED_BYTES`]
/// (plus the closing `…`).
fn joined<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&logged(item));
        if out.len() > MAX_JOINED_BYTES {
            let mut end = MAX_JOINED_BYTES;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push('…');
            break;
        }
    }
    out
}

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
    put(
        "tool",
        Some(joined(calls.iter().filter_map(|c| c.tool.as_deref()))),
    );
    put(
        "method",
        Some(joined(calls.iter().map(|c| c.method.as_str()))),
    );
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

    fn calls(tools: &[String], method: &str) -> DecisionRecord {
        DecisionRecord {
            caller: Caller::stated_user("alice", &[], &[], None, &[]).ok(),
            server: Some("knowledge".into()),
            mcp: Some(McpRequest {
                calls: tools
                    .iter()
                    .map(|t| {
                        let mut c = McpCall::for_action(Action::CallTool, Some(t), None);
                        c.method = method.to_owned();
                        c
                    })
                    .collect(),
                batch: tools.len() > 1,
            }),
            outcome: Err(DenyReason::UnknownTool),
            ..DecisionRecord::default()
        }
    }

    #[test]
    fn long_tool_and_method_are_cut() {
        // One 60 KB tool name and method: each is cut to 256 characters.
        let m = dynamic_metadata(&calls(&["t".repeat(60_000)], &"m".repeat(60_000)));
        assert_eq!(s(&m, "tool"), Some(format!("{}…", "t".repeat(256))));
        assert_eq!(s(&m, "method"), Some(format!("{}…", "m".repeat(256))));
        // Multibyte names are cut by characters, not bytes.
        let m = dynamic_metadata(&calls(&["é".repeat(300)], "tools/call"));
        assert_eq!(s(&m, "tool"), Some(format!("{}…", "é".repeat(256))));
        // A batch of many long names: the joined value stays under 1 KiB
        // (plus the closing `…`) and starts with the first names whole.
        let many: Vec<String> = (0..100)
            .map(|i| format!("{i:03}{}", "x".repeat(197)))
            .collect();
        let m = dynamic_metadata(&calls(&many, "tools/call"));
        let tool = s(&m, "tool").unwrap_or_default();
        assert!(tool.len() <= 1024 + '…'.len_utf8(), "{}", tool.len());
        assert!(tool.len() > 1000, "{}", tool.len());
        assert!(
            tool.starts_with(&format!("{},{},", many[0], many[1])),
            "{tool}"
        );
        assert!(tool.ends_with('…'));
        let method = s(&m, "method").unwrap_or_default();
        assert!(method.len() <= 1024 + '…'.len_utf8(), "{}", method.len());
        // Short names, the usual case, are untouched.
        let two = ["search_docs".to_owned(), "rate_doc".to_owned()];
        let m = dynamic_metadata(&calls(&two, "tools/call"));
        assert_eq!(s(&m, "tool").as_deref(), Some("search_docs,rate_doc"));
        assert_eq!(s(&m, "method").as_deref(), Some("tools/call,tools/call"));
    }

    #[test]
    fn control_characters_cannot_start_a_new_access_log_line() {
        let m = dynamic_metadata(&calls(&["a\nb\r\u{1b}[31m".to_owned()], "tools/call\n"));
        let tool = s(&m, "tool").unwrap_or_default();
        assert!(!tool.chars().any(char::is_control), "{tool:?}");
        assert_eq!(tool, r"a\nb\r\u{1b}[31m");
        let method = s(&m, "method").unwrap_or_default();
        assert_eq!(method, r"tools/call\n");
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
