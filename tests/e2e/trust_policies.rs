//! Decisions that must not be bent (issue 8): a `forbid` whose evaluation errors
//! denies (item 5), nothing about a server's tools is revealed before `connect`
//! is allowed (item 6), and the decision cache never serves one identity's
//! decision to another (item 10).

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::authz::AUTHZ_BIN;
use crate::harness::http::Reply;
use crate::harness::policy_files::{Layout, PolicyFiles, REGISTRY};
use crate::harness::rpc::{RpcError, bearer, send, tool_call, user_token};
use crate::harness::{AuthzOptions, MCP_BODY, Stack, http_client, repo_path};

/// A strictly validated forbid whose arithmetic overflows on large limits.
const LIMIT_CAP: &str = r#"
@id("limit-cap")
@message("queries return at most 100 rows")
forbid (principal, action == Action::"call_tool", resource == Tool::"presto/run_query")
when {
  context.arguments has presto &&
  context.arguments.presto has run_query &&
  context.arguments.presto.run_query has limit &&
  context.arguments.presto.run_query.limit * 10 > 1000
};
"#;

/// The quickstart stack with an integer `limit` argument on presto's
/// `run_query` and [`LIMIT_CAP`], a forbid that overflows on large limits.
/// Keep the returned files alive as long as the stack.
pub(super) async fn limit_cap_stack() -> (Stack, PolicyFiles) {
    let mut files = PolicyFiles::new(Layout::InPlace);
    let registry = files.get(REGISTRY).replace(
        "            catalog: { type: string }\n",
        "            catalog: { type: string }\n            limit: { type: integer }\n",
    );
    assert_ne!(registry, files.get(REGISTRY), "run_query's schema moved");
    files.apply(&[
        (REGISTRY, Some(&registry)),
        ("limit-cap.cedar", Some(LIMIT_CAP)),
    ]);
    let stack = Stack::start_with(&AuthzOptions::default(), &files.sources("2s")).await;
    (stack, files)
}

async fn post(stack: &Stack, token: &str, body: &Value) -> Reply {
    let auth = bearer(token);
    let url = stack.envoy.url("/mcp/presto");
    let body = Some(body.to_string().into_bytes());
    send(
        &http_client(),
        "POST",
        &url,
        &[("authorization", &auth)],
        body,
    )
    .await
}

/// alice may connect to presto (business group `ads`) and run queries.
fn alice() -> String {
    user_token("alice", &["eng"], &["ads"], "ai-chat")
}

#[tokio::test(flavor = "multi_thread")]
async fn forbid_that_fails_to_evaluate_denies() {
    let (stack, _files) = limit_cap_stack().await;
    let call = |limit: Value| {
        tool_call(
            json!(1),
            "run_query",
            json!({"sql": "select 1", "limit": limit}),
        )
    };

    let reply = post(&stack, &alice(), &call(json!(5))).await;
    assert_eq!(reply.status, 200, "limit 5: {reply:?}\n{}", stack.logs());

    let forbidden = RpcError {
        status: 403,
        code: Some(-32001),
        reason: "forbidden",
        id: Some(json!(1)),
    };
    let error = forbidden
        .check(&post(&stack, &alice(), &call(json!(500))).await)
        .unwrap_or_else(|e| panic!("limit 500: {e}\n{}", stack.logs()));
    assert_eq!(error["data"]["policies"], json!(["limit-cap"]));

    let policy_error = RpcError {
        reason: "policy_error",
        ..forbidden
    };
    // Twice: a decision with errors must not be cached as anything else either.
    for attempt in 1..=2 {
        let reply = post(&stack, &alice(), &call(json!(922_337_203_685_477_581_i64))).await;
        let error = policy_error
            .check(&reply)
            .unwrap_or_else(|e| panic!("overflow, attempt {attempt}: {e}\n{}", stack.logs()));
        assert_eq!(error["data"]["policies"], json!(["limit-cap"]));
    }
    assert_eq!(
        stack.echo.hits(),
        1,
        "only the allowed call reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_about_tools_is_revealed_before_connect_is_allowed() {
    let stack = Stack::quickstart().await;
    let unknown = tool_call(json!(1), "no_such_tool", json!({}));
    let mistyped = tool_call(json!(1), "run_query", json!({"sql": 5}));

    // Marketing is not approved for presto: the connect denial, whatever the call.
    let outsider = user_token("mallory", &["eng"], &["marketing"], "ai-chat");
    let gate = RpcError {
        status: 403,
        code: Some(-32001),
        reason: "forbidden",
        id: Some(json!(1)),
    };
    for (case, body, tool) in [
        ("unknown tool", &unknown, "no_such_tool"),
        ("mistyped arguments", &mistyped, "run_query"),
    ] {
        let error = gate
            .check(&post(&stack, &outsider, body).await)
            .unwrap_or_else(|e| panic!("outsider, {case}: {e}\n{}", stack.logs()));
        assert_eq!(
            error["data"]["policies"],
            json!(["business-group-gate"]),
            "{case}"
        );
        let text = error.to_string();
        assert!(
            !text.contains(tool),
            "{case}: the denial names `{tool}`: {text}"
        );
    }

    // A user who may connect learns why the call is refused.
    let reply = post(&stack, &alice(), &unknown).await;
    let unknown_tool = RpcError {
        reason: "unknown_tool",
        ..gate.clone()
    };
    unknown_tool
        .check(&reply)
        .unwrap_or_else(|e| panic!("alice, unknown tool: {e}\n{}", stack.logs()));
    let invalid = RpcError {
        status: 400,
        code: None,
        reason: "invalid_arguments",
        id: Some(json!(1)),
    };
    invalid
        .check(&post(&stack, &alice(), &mistyped).await)
        .unwrap_or_else(|e| panic!("alice, mistyped arguments: {e}\n{}", stack.logs()));
    assert_eq!(stack.echo.hits(), 0);
}

/// `mcp-authz explain --token` for `list_tools` on presto, with the quickstart config.
fn explain(token: &str) -> Value {
    let out = Command::new(AUTHZ_BIN)
        .args(["explain", "--config", "examples/quickstart/mcp-authz.yaml"])
        .args([
            "--server",
            "presto",
            "--action",
            "list_tools",
            "--json",
            "--token",
        ])
        .arg(token)
        .current_dir(repo_path(""))
        .output()
        .expect("run mcp-authz explain");
    assert!(
        out.status.success(),
        "explain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("explain --json");
    v["decision"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn decision_cache_keeps_group_lists_apart() {
    let stack = Stack::quickstart().await;
    let split_groups = user_token("alice", &["eng", "|", "finance"], &[], "ai-chat");
    let split_business = user_token("alice", &["eng"], &["finance", "|"], "ai-chat");
    let a = explain(&split_groups);
    let b = explain(&split_business);
    assert_ne!(
        a["allowed"], b["allowed"],
        "the two cases must differ: {a} {b}"
    );
    // Alternate so each one meets the other's cached decision.
    for (case, token, want) in [
        ("business groups [finance, |]", &split_business, &b),
        ("groups [eng, |, finance]", &split_groups, &a),
        ("business groups [finance, |]", &split_business, &b),
        ("groups [eng, |, finance]", &split_groups, &a),
    ] {
        let auth = bearer(token);
        let reply = stack.post("/mcp/presto", &[("authorization", &auth)]).await;
        if want["allowed"] == true {
            assert_eq!(reply.status, 200, "{case}: {reply:?}\n{}", stack.logs());
            assert_eq!(reply.seen().body, MCP_BODY);
            continue;
        }
        assert_eq!(reply.status, 403, "{case}: {reply:?}\n{}", stack.logs());
        let error = &reply.json()["error"];
        assert_eq!(error["data"]["reason"], want["reason"], "{case}: {reply:?}");
        assert_eq!(
            error["data"]["policies"], want["policies"],
            "{case}: {reply:?}"
        );
        assert_eq!(error["message"], want["message"], "{case}: {reply:?}");
    }
}
