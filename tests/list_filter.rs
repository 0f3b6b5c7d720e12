//! Issue 11's consistency property: over random identities, surfaces and
//! channels, a tool appears in a filtered `tools/list` if and only if a
//! `tools/call` of it with no arguments is allowed — and the registry API's
//! listing of the same caller agrees. The list goes through the real path
//! of a response: the Check's context sealed by ext_authz, opened by
//! ext_proc, the JSON filtered by `ListFilter`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

use std::collections::BTreeSet;

use mcp_authz::authz::{Access, Snapshot};
use mcp_authz::binding::BindingKey;
use mcp_authz::binding::context::{ListRequest, ResponseContext};
use mcp_authz::config::Config;
use mcp_authz::ext_proc::lists::ListFilter;
use mcp_authz::identity::Caller;
use mcp_authz::mcp::McpCall;
use mcp_authz::policy::Action;
use proptest::prelude::*;
use serde_json::{Value, json};

const SERVERS: [&str; 4] = ["presto", "spark", "knowledge", "experimental"];

#[derive(Debug, Clone)]
struct Who {
    service: bool,
    user: &'static str,
    groups: Vec<String>,
    business_groups: Vec<String>,
    surface: Option<&'static str>,
    channel: Option<&'static str>,
    server: &'static str,
    /// Extra names the upstream lists besides the registered tools.
    strangers: Vec<&'static str>,
    cache_fields: bool,
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(items, 0..=items.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn who() -> impl Strategy<Value = Who> {
    (
        prop::bool::weighted(0.15),
        prop::sample::select(&["alice", "bob", "dave", "mallory"][..]),
        subset(&["ads-eng", "finance-analysts", "platform-admins", "data-eng"]),
        subset(&["ads", "finance", "infra", "marketing"]),
        prop::option::of(prop::sample::select(
            &["ai-chat", "ide", "slackbot", "cli", "dev-playground"][..],
        )),
        prop::option::of(prop::sample::select(
            &["#airflow-support", "#random", "#data-eng"][..],
        )),
        prop::sample::select(&SERVERS[..]),
        prop::sample::subsequence(
            &["secret_tool", "get_job_logs", "run_query", "RUN_QUERY", ""][..],
            0..=2,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(
                service,
                user,
                groups,
                business_groups,
                surface,
                channel,
                server,
                strangers,
                cache_fields,
            )| Who {
                service,
                user,
                groups,
                business_groups,
                surface: surface.filter(|_| !service),
                channel,
                server,
                strangers,
                cache_fields,
            },
        )
}

fn caller(w: &Who, cfg: &Config) -> Caller {
    if w.service {
        return Caller::Service("spiffe://example.org/ns/batch/sa/reporter".into());
    }
    Caller::stated_user(
        w.user,
        &w.groups,
        &w.business_groups,
        w.surface,
        &cfg.surfaces,
    )
    .unwrap()
}

/// Every tool the registry lists on `server`, plus the strangers.
fn upstream_tools(snap: &Snapshot, w: &Who) -> Vec<String> {
    let server = snap.catalog.server(w.server).unwrap();
    let mut names: Vec<String> = server.tools.iter().map(|t| t.name.clone()).collect();
    names.extend(w.strangers.iter().map(|s| (*s).to_owned()));
    names
}

fn decide(snap: &Snapshot, caller: &Caller, w: &Who, action: Action, tool: Option<&str>) -> bool {
    snap.decide_access(&Access {
        caller,
        channel: w.channel,
        server: w.server,
        message: &McpCall::for_action(action, tool, None),
    })
    .allowed
}

/// The response body a server sends for `tools/list` id 7.
fn tools_body(names: &[String], cache_fields: bool) -> Vec<u8> {
    let tools: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "description": format!("does {n}"), "inputSchema": {"type": "object"}}))
        .collect();
    let mut result = json!({"tools": tools, "nextCursor": "page-2"});
    if cache_fields {
        result["ttlMs"] = json!(60_000);
        result["cacheScope"] = json!("shared");
    }
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 7, "result": result})).unwrap()
}

/// The context as ext_proc receives it: sealed by the Check's side, opened
/// with the same key and configuration.
fn context(cfg: &Config, key: &BindingKey, w: &Who, method: &str) -> ResponseContext {
    let ctx = ResponseContext {
        caller: caller(w, cfg),
        channel: w.channel.map(str::to_owned),
        server: w.server.to_owned(),
        generation: 0,
        lists: vec![ListRequest {
            id: Some(json!(7)),
            method: method.to_owned(),
        }],
        batch: false,
        get: false,
    };
    ResponseContext::open(key, &ctx.seal(key), &cfg.surfaces).unwrap()
}

fn listed(body: &[u8], field: &str) -> (Vec<String>, Value) {
    let v: Value = serde_json::from_slice(body).unwrap();
    let names = v["result"][field]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap_or("<no name>").to_owned())
        .collect();
    (names, v)
}

#[test]
fn a_tool_is_listed_iff_its_call_without_arguments_is_allowed() {
    let cfg = mcp_authz::config::load(None).unwrap();
    let snap = Snapshot::load(&cfg).unwrap();
    let key = BindingKey::from_secret(&[5u8; 32]);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    });
    let seen_hidden = std::cell::Cell::new(0usize);
    let seen_shown = std::cell::Cell::new(0usize);
    runner
        .run(&who(), |w| {
            let ctx = context(&cfg, &key, &w, "tools/list");
            let names = upstream_tools(&snap, &w);
            let body = tools_body(&names, w.cache_fields);
            let filter = ListFilter {
                snapshot: &snap,
                ctx: &ctx,
            };
            let (out, removed) = filter
                .filter_text(&body)
                .unwrap()
                .expect("a list is rewritten");
            let (kept, v) = listed(&out, "tools");
            let caller = caller(&w, &cfg);
            let want: Vec<String> = names
                .iter()
                .filter(|n| decide(&snap, &caller, &w, Action::CallTool, Some(n)))
                .cloned()
                .collect();
            prop_assert_eq!(&kept, &want, "{:?}", w);
            prop_assert_eq!(removed.items, names.len() - want.len());
            // Unregistered tools are never listed.
            prop_assert!(!kept.iter().any(|k| w.strangers.contains(&k.as_str())
                && snap.catalog.server(w.server).unwrap().tool(k).is_none()));
            // The registry API's listing of the same caller agrees.
            let visible: BTreeSet<String> = snap
                .visible_to(&caller, w.channel)
                .into_iter()
                .filter(|s| s.server.name == w.server)
                .flat_map(|s| s.tools.into_iter().map(|t| t.tool.name.clone()))
                .collect();
            let kept_set: BTreeSet<String> = kept.iter().cloned().collect();
            prop_assert_eq!(kept_set, visible);
            // Everything but the list is untouched; cacheScope is private.
            prop_assert_eq!(&v["result"]["nextCursor"], &json!("page-2"));
            prop_assert_eq!(&v["id"], &json!(7));
            if w.cache_fields {
                prop_assert_eq!(&v["result"]["cacheScope"], &json!("private"));
                prop_assert_eq!(&v["result"]["ttlMs"], &json!(60_000));
            } else {
                prop_assert!(v["result"].get("cacheScope").is_none());
            }
            for t in v["result"]["tools"].as_array().unwrap() {
                let n = t["name"].as_str().unwrap();
                prop_assert_eq!(&t["description"], &json!(format!("does {n}")));
            }
            if want.len() < names.len() {
                seen_hidden.set(seen_hidden.get() + 1);
            }
            if !want.is_empty() {
                seen_shown.set(seen_shown.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // The property was exercised both ways, not vacuously.
    let (hidden, shown) = (seen_hidden.get(), seen_shown.get());
    assert!(hidden > 50 && shown > 50, "{hidden} {shown}");
}

#[test]
fn prompts_and_resources_follow_the_server_level_decision() {
    let cfg = mcp_authz::config::load(None).unwrap();
    let snap = Snapshot::load(&cfg).unwrap();
    let key = BindingKey::from_secret(&[5u8; 32]);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 150,
        ..ProptestConfig::default()
    });
    runner
        .run(&who(), |w| {
            let caller = caller(&w, &cfg);
            for (method, field, action) in [
                ("prompts/list", "prompts", Action::GetPrompt),
                ("resources/list", "resources", Action::ReadResource),
                (
                    "resources/templates/list",
                    "resourceTemplates",
                    Action::ReadResource,
                ),
            ] {
                let ctx = context(&cfg, &key, &w, method);
                let items = json!([{"name": "a", "uri": "x://a"}, {"name": "b", "uri": "x://b"}]);
                let body = serde_json::to_vec(
                    &json!({"jsonrpc": "2.0", "id": 7, "result": {field: items}}),
                )
                .unwrap();
                let filter = ListFilter {
                    snapshot: &snap,
                    ctx: &ctx,
                };
                let (out, _) = filter.filter_text(&body).unwrap().unwrap();
                let (kept, _) = listed(&out, field);
                let allowed = decide(&snap, &caller, &w, action, None);
                prop_assert_eq!(
                    kept.len(),
                    if allowed { 2 } else { 0 },
                    "{} {:?}",
                    method,
                    w
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn responses_that_answer_no_list_pass_untouched() {
    let cfg = mcp_authz::config::load(None).unwrap();
    let snap = Snapshot::load(&cfg).unwrap();
    let key = BindingKey::from_secret(&[5u8; 32]);
    let w = Who {
        service: false,
        user: "dave",
        groups: vec![],
        business_groups: vec!["finance".into()],
        surface: Some("ai-chat"),
        channel: None,
        server: "presto",
        strangers: vec![],
        cache_fields: false,
    };
    let ctx = context(&cfg, &key, &w, "tools/list");
    let filter = ListFilter {
        snapshot: &snap,
        ctx: &ctx,
    };
    // A notification and a server request on the list's stream, and an error answer.
    for body in [
        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}),
        json!({"jsonrpc": "2.0", "id": 9, "method": "sampling/createMessage", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32603, "message": "boom"}}),
    ] {
        let bytes = serde_json::to_vec(&body).unwrap();
        assert_eq!(filter.filter_text(&bytes).unwrap(), None, "{body}");
    }
    // Text two decoders could read differently is refused, not guessed.
    for bad in [
        &br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[]},"result":{"tools":[{"name":"x"}]}}"#[..],
        br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[],"Tools":[{"name":"x"}]}}"#,
        br#"{"jsonrpc":"2.0","id":7,"result":{"toolz":[]}}"#,
        br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[]}"#,
    ] {
        assert!(
            filter.filter_text(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
