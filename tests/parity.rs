//! One decision core: random questions asked three ways — a real Check (a
//! DEMO-ONLY token, a JSON-RPC body, Envoy's context extension, through
//! `Checker`), `mcp-authz explain` and a policy test case — must get the
//! same decision and the same determining policies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

use std::collections::HashMap;
use std::sync::Arc;

use mcp_authz::authz::{Case, Snapshot};
use mcp_authz::check::{Checker, Outcome, RequestView};
use mcp_authz::cli::explain;
use mcp_authz::cli::{ConfigArg, MembershipArgs, dev_token};
use mcp_authz::config::Config;
use mcp_authz::jwt::Verifier;
use mcp_authz::store::Registry;
use proptest::prelude::*;
use serde_json::{Value, json};

const SERVICE: &str = "spiffe://example.org/ns/batch/sa/reporter";

#[derive(Debug, Clone)]
struct Question {
    service: bool,
    user: &'static str,
    groups: Vec<String>,
    business_groups: Vec<String>,
    surface: Option<&'static str>,
    channel: Option<&'static str>,
    server: &'static str,
    action: &'static str,
    tool: Option<&'static str>,
    arguments: Option<Value>,
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(items, 0..=items.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn question() -> impl Strategy<Value = Question> {
    let tools: &'static [(&str, &str)] = &[
        ("presto", "run_query"),
        ("presto", "get_revenue_metrics"),
        ("spark", "get_job_logs"),
        ("spark", "summarize_failure"),
        ("knowledge", "search_docs"),
        ("knowledge", "rate_doc"),
        ("experimental", "try_anything"),
        ("presto", "no_such_tool"),
    ];
    let target = prop_oneof![
        prop::sample::select(&["presto", "spark", "knowledge", "experimental"][..]).prop_flat_map(
            |s| (
                Just(s),
                prop::sample::select(&["connect", "list_tools"][..]),
                Just(None)
            )
        ),
        prop::sample::select(tools).prop_map(|(s, t)| (s, "call_tool", Some(t))),
    ];
    let arguments = prop::option::of(prop::sample::select(vec![
        json!({}),
        json!({"query": "select 1", "sql": "select 1"}),
        json!({"query": 5}),
        json!({"query": "x", "limit": 5}),
        json!({"query": "x", "limit": 500}),
        json!({"quarter": "2026-Q3"}),
    ]));
    (
        prop::bool::weighted(0.2),
        prop::sample::select(&["alice", "bob", "mallory"][..]),
        subset(&["ads-eng", "finance-analysts", "platform-admins", "data-eng"]),
        subset(&["ads", "finance", "infra", "marketing"]),
        prop::option::of(prop::sample::select(
            &["ai-chat", "ide", "slackbot", "cli", "dev-playground"][..],
        )),
        prop::option::of(prop::sample::select(&["#airflow-support", "#random"][..])),
        target,
        arguments,
    )
        .prop_map(
            |(
                service,
                user,
                groups,
                business_groups,
                surface,
                channel,
                (server, action, tool),
                arguments,
            )| {
                Question {
                    service,
                    user,
                    groups,
                    business_groups,
                    surface: surface.filter(|_| !service),
                    channel,
                    server,
                    action,
                    tool,
                    arguments: arguments.filter(|_| tool.is_some()),
                }
            },
        )
}

/// (allowed, determining policies) as each front door reports them.
type Answer = (bool, Vec<String>);

fn member(q: &Question) -> MembershipArgs {
    MembershipArgs {
        groups: q.groups.clone(),
        business_groups: q.business_groups.clone(),
        surface: q.surface.map(str::to_owned),
    }
}

fn body(q: &Question) -> String {
    let method = match q.action {
        "connect" => "initialize",
        "list_tools" => "tools/list",
        _ => "tools/call",
    };
    let mut m = json!({"jsonrpc": "2.0", "id": 1, "method": method});
    if let Some(t) = q.tool {
        m["params"] = json!({"name": t, "arguments": q.arguments.clone().unwrap_or(json!({}))});
    }
    m.to_string()
}

async fn via_check(q: &Question, cfg: &Config, checker: &Checker) -> Answer {
    let mut headers: HashMap<String, String> =
        [("content-type".to_string(), "application/json".to_string())].into();
    if !q.service {
        let token = dev_token::mint(
            &dev_token::Args {
                config: ConfigArg { config: None },
                user: q.user.to_owned(),
                member: member(q),
                expires_in: "1h".into(),
                issuer: None,
            },
            cfg,
        )
        .unwrap();
        headers.insert("authorization".into(), format!("Bearer {token}"));
    }
    if let Some(c) = q.channel {
        headers.insert(cfg.request_context.channel_header.clone(), c.to_owned());
    }
    let ext: HashMap<String, String> = [("mcp_server".to_string(), q.server.to_owned())].into();
    let body = body(q);
    let path = format!("/mcp/{}", q.server);
    let view = RequestView {
        headers: Some(&headers),
        method: "POST",
        path: &path,
        host: "127.0.0.1:10000",
        body: body.as_bytes(),
        context_extensions: Some(&ext),
        source_principal: if q.service { SERVICE } else { "" },
        declared_size: Some(body.len() as u64),
    };
    match checker.check(&view).await {
        Outcome::Allow { .. } => (true, Vec::new()),
        Outcome::Deny(d) => (false, d.policies),
    }
}

fn via_explain(q: &Question, cfg: &Config, snap: &Snapshot) -> Answer {
    let args = explain::Args {
        config: ConfigArg { config: None },
        token: None,
        user: (!q.service).then(|| q.user.to_owned()),
        service: q.service.then(|| SERVICE.to_owned()),
        member: member(q),
        server: q.server.to_owned(),
        tool: q.tool.map(str::to_owned),
        action: Some(q.action.to_owned()),
        channel: q.channel.map(str::to_owned),
        arguments: q.arguments.as_ref().map(Value::to_string),
        requester: None,
        json: false,
    };
    let d = explain::decide(&args, cfg, snap).unwrap().decision;
    let policies = if d.allowed { Vec::new() } else { d.policies };
    (d.allowed, policies)
}

/// Runs `q` as a policy test case expecting `want`; `Err` says how it differed.
fn via_case(q: &Question, cfg: &Config, snap: &Snapshot, want: &Answer) -> Result<(), String> {
    let mut case = json!({
        "name": "parity",
        "groups": q.groups,
        "business_groups": q.business_groups,
        "server": q.server,
        "action": q.action,
        "expect": if want.0 { "allow" } else { "deny" },
    });
    let who = if q.service { "service" } else { "user" };
    case[who] = json!(if q.service { SERVICE } else { q.user });
    for (k, v) in [
        ("surface", q.surface),
        ("channel", q.channel),
        ("tool", q.tool),
    ] {
        if let Some(v) = v {
            case[k] = json!(v);
        }
    }
    if let Some(a) = &q.arguments {
        case["arguments"] = a.clone();
    }
    if !want.0 {
        case["policies"] = json!(want.1);
    }
    let case: Case = serde_json::from_value(case).unwrap();
    case.run(snap, &cfg.surfaces).map(|_| ())
}

#[test]
fn check_explain_and_policy_cases_decide_alike() {
    let cfg = Arc::new(mcp_authz::config::load(None).unwrap());
    let verifier = Arc::new(Verifier::new(&cfg).unwrap());
    let registry = Arc::new(Registry::load(cfg.clone()).unwrap());
    let checker = Checker::new(cfg.clone(), verifier, registry);
    let snap = Snapshot::load(&cfg).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (allowed, denied) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    });
    runner
        .run(&question(), |q| {
            let check = rt.block_on(via_check(&q, &cfg, &checker));
            let explained = via_explain(&q, &cfg, &snap);
            prop_assert_eq!(&check, &explained, "Check vs explain for {:?}", q);
            let case = via_case(&q, &cfg, &snap, &check);
            prop_assert!(
                case.is_ok(),
                "policy case disagrees for {:?}: {:?}",
                q,
                case
            );
            let n = if check.0 { &allowed } else { &denied };
            n.set(n.get() + 1);
            Ok(())
        })
        .unwrap();
    // The generator must reach both outcomes, or the agreement proves little.
    let (allowed, denied) = (allowed.get(), denied.get());
    assert!(
        allowed > 20 && denied > 20,
        "allowed {allowed}, denied {denied}"
    );
}
