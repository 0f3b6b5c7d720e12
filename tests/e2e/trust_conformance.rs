//! Issue 8's examples that had only unit tests, sent through the real Envoy:
//! JSON Schema integers written `5.0` or `1e2` (item 9), Keycloak's nested
//! roles claim read by a JSON Pointer (item 9), `Mcp-Param-*` headers of an
//! argument the registry declares with `x-mcp-header` (item 2), and a client's
//! copy of a custom `identity_headers.service` (item 3).

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::harness::authz::{AUTHZ_BIN, authz_config};
use crate::harness::http::Reply;
use crate::harness::policy_files::{Layout, PolicyFiles, REGISTRY};
use crate::harness::rpc::{RpcError, bearer, send, tool_call, user_token};
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{
    Authz, AuthzOptions, Echo, PolicySources, Stack, envoy_in_front, http_client,
};

/// POSTs `body` (bytes as given) to `path` through Envoy with `token`.
async fn post(envoy_url: &str, token: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
    let auth = bearer(token);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    send(
        &http_client(),
        "POST",
        envoy_url,
        &headers,
        Some(body.to_vec()),
    )
    .await
}

/// alice: Ads business group, `ads-eng`, from `ai-chat`.
fn alice() -> String {
    user_token("alice", &["ads-eng"], &["ads"], "ai-chat")
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_number_floats_are_integers_and_reach_the_upstream_byte_for_byte() {
    let stack = Stack::quickstart().await;
    let url = stack.envoy.url("/mcp/knowledge");
    let body = |stars: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"rate_doc","arguments":{{"page":"onboarding","stars":{stars}}}}}}}"#
        )
    };
    for stars in ["5", "5.0", "1e2", "5E0", "-0.0"] {
        let sent = body(stars);
        let reply = post(&url, &alice(), &[], sent.as_bytes()).await;
        assert_eq!(
            reply.status,
            200,
            "stars {stars}: {reply:?}\n{}",
            stack.logs()
        );
        // What the MCP server reads is exactly what was decided on.
        assert_eq!(reply.seen().body, sent, "stars {stars}");
    }
    assert_eq!(stack.echo.hits(), 5);
    let invalid = RpcError {
        status: 400,
        code: Some(-32001),
        reason: "invalid_arguments",
        id: Some(json!(7)),
    };
    for stars in ["5.5", "1e300", "\"5\""] {
        let reply = post(&url, &alice(), &[], body(stars).as_bytes()).await;
        invalid
            .check(&reply)
            .unwrap_or_else(|e| panic!("stars {stars}: {e}\n{}", stack.logs()));
    }
    assert_eq!(stack.echo.hits(), 5, "a refused call reached the upstream");
}

/// A `get_revenue_metrics` call (presto; the policy wants group `ads-eng`).
fn revenue_call() -> Vec<u8> {
    tool_call(
        json!(3),
        "get_revenue_metrics",
        json!({"quarter": "2026-Q3"}),
    )
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn keycloak_roles_are_groups_through_a_json_pointer() {
    let echo = Echo::start().await;
    let authz = Authz::start_patched(&AuthzOptions::default(), &PolicySources::default(), |c| {
        c["claims"]["groups"] = json!("/realm_access/roles");
    })
    .await;
    let envoy = envoy_in_front(&authz, [echo.port; 4]).await;
    let url = envoy.url("/mcp/presto");
    let logs = || format!("{}\n{}", authz.log_tail(), envoy.log_tail());

    // Keycloak's shape: roles nested under `realm_access`.
    let mut claims = demo_claims("alice");
    claims.as_object_mut().unwrap().remove("groups");
    claims["realm_access"] = json!({"roles": ["ads-eng", "offline_access"]});
    claims["business_groups"] = json!(["ads"]);
    claims["azp"] = json!("ai-chat");
    let keycloak = demo_token(&claims);
    let reply = post(&url, &keycloak, &[], &revenue_call()).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", logs());
    let seen = reply.seen();
    let groups = seen.all("x-forwarded-groups").join(",");
    assert!(groups.split(',').any(|g| g == "ads-eng"), "{groups}");

    // A top-level `groups` claim is not read any more: the same user with
    // `ads-eng` only there is forbidden.
    let mut flat = demo_claims("alice");
    flat["groups"] = json!(["ads-eng"]);
    flat["business_groups"] = json!(["ads"]);
    flat["azp"] = json!("ai-chat");
    let reply = post(&url, &demo_token(&flat), &[], &revenue_call()).await;
    RpcError {
        status: 403,
        code: Some(-32001),
        reason: "forbidden",
        id: Some(json!(3)),
    }
    .check(&reply)
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(echo.hits(), 1);
}

#[test]
fn config_check_refuses_a_dotted_claim_path_and_names_the_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let check = |groups: &str| {
        let mut config = authz_config(&AuthzOptions::default(), &PolicySources::default(), 0, 0);
        config["claims"]["groups"] = json!(groups);
        let path = dir.path().join("claims.yaml");
        std::fs::write(&path, config.to_string()).unwrap();
        let out = Command::new(AUTHZ_BIN)
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = check("realm_access.roles");
    assert!(!ok, "accepted `realm_access.roles`: {stderr}");
    assert!(stderr.contains("claims.groups"), "{stderr}");
    assert!(stderr.contains("/realm_access/roles"), "{stderr}");
    // The pointer itself passes.
    let (ok, stderr) = check("/realm_access/roles");
    assert!(ok, "refused the pointer: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_param_headers_must_be_declared_and_match_the_argument() {
    let mut files = PolicyFiles::new(Layout::InPlace);
    let registry = files.get(REGISTRY).replace(
        "            sql: { type: string }\n",
        "            sql: { type: string, x-mcp-header: Sql }\n",
    );
    assert_ne!(registry, files.get(REGISTRY), "run_query's schema moved");
    files.apply(&[(REGISTRY, Some(&registry))]);
    let stack = Stack::start_with(&AuthzOptions::default(), &files.sources("2s")).await;
    let url = stack.envoy.url("/mcp/presto");
    let sql = "select région from t";
    let body = tool_call(json!(1), "run_query", json!({"sql": sql}))
        .to_string()
        .into_bytes();
    let b64 = format!("=?base64?{}?=", B64.encode(sql));
    let mismatch = RpcError {
        status: 400,
        code: Some(-32020),
        reason: "header_mismatch",
        id: Some(json!(1)),
    };
    for (case, headers) in [
        ("differing value", vec![("mcp-param-sql", "select 1")]),
        (
            "differing Base64 value",
            vec![("mcp-param-sql", "=?base64?c2VsZWN0IDE=?=")],
        ),
        (
            "undeclared argument",
            vec![
                ("mcp-param-sql", b64.as_str()),
                ("mcp-param-catalog", "hive"),
            ],
        ),
    ] {
        let reply = post(&url, &alice(), &headers, &body).await;
        mismatch
            .check(&reply)
            .unwrap_or_else(|e| panic!("{case}: {e}\n{}", stack.logs()));
    }
    assert_eq!(
        stack.echo.hits(),
        0,
        "a refused request reached the upstream"
    );
    let plain = tool_call(json!(1), "run_query", json!({"sql": "select 1"}))
        .to_string()
        .into_bytes();
    for (case, headers, body) in [
        ("no Mcp-Param header", vec![], &body),
        (
            "matching Base64 value",
            vec![("mcp-param-sql", b64.as_str())],
            &body,
        ),
        (
            "matching value, name in any case",
            vec![("Mcp-Param-SQL", "select 1")],
            &plain,
        ),
    ] {
        let reply = post(&url, &alice(), &headers, body).await;
        assert_eq!(reply.status, 200, "{case}: {reply:?}\n{}", stack.logs());
    }
    assert_eq!(stack.echo.hits(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_copy_of_a_custom_service_header_never_reaches_the_upstream() {
    let echo = Echo::start().await;
    let authz = Authz::start_patched(&AuthzOptions::default(), &PolicySources::default(), |c| {
        c["identity_headers"]["service"] = json!("x-acme-workload");
        c["identity_headers"]["user"] = json!("x-acme-user");
    })
    .await;
    let envoy = envoy_in_front(&authz, [echo.port; 4]).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        .to_string()
        .into_bytes();
    let reply = post(
        &envoy.url("/mcp/knowledge"),
        &alice(),
        &[
            ("x-acme-workload", "spiffe://evil.example/admin"),
            ("X-Acme-Workload", "spiffe://evil.example/second"),
            ("x-acme-user", "mallory"),
        ],
        &body,
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{reply:?}\n{}\n{}",
        authz.log_tail(),
        envoy.log_tail()
    );
    let seen = reply.seen();
    assert_eq!(seen.all("x-acme-workload"), Vec::<&str>::new(), "{seen:?}");
    assert_eq!(seen.all("x-acme-user"), ["alice"], "{seen:?}");
    // The default names are not mcp-authz's any more: it sets neither.
    assert_eq!(seen.all("x-forwarded-user"), Vec::<&str>::new(), "{seen:?}");
}
