//! Headers that could make an allowed request mean something else upstream
//! (issue 8): identity headers spelled with underscores (item 3), MCP headers
//! that contradict the body (item 2), identity values HTTP would alter (item 11).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::harness::http::{Reply, raw_post};
use crate::harness::rpc::{RpcError, bearer, send, tool_call, user_token};
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{MCP_BODY, Stack, h2, http_client};

/// Every header mcp-authz sets or trusts, spelled as WSGI/CGI would map it.
const UNDERSCORE_SPELLINGS: [(&str, &str); 4] = [
    ("X_Forwarded_Groups", "platform-admins"),
    ("x_forwarded_user", "mallory"),
    ("X_MCP_Channel", "#finance"),
    ("x_forwarded_service", "spiffe://mcp-authz.invalid/admin"),
];

/// `MCP-Protocol-Version` of the 2026-07-28 revision.
const PROTOCOL: &str = "2026-07-28";

fn alice() -> String {
    user_token("alice", &["ads-eng", "eng"], &["ads"], "ai-chat")
}

#[tokio::test(flavor = "multi_thread")]
async fn underscore_spellings_of_trusted_headers_never_pass_envoy() {
    let stack = Stack::quickstart().await;
    let port = stack.envoy.ports.listener;
    let auth = bearer(&alice());
    let head = format!("POST /mcp/knowledge HTTP/1.1\r\nAuthorization: {auth}");

    // Controls: the same requests without the header pass, over both protocols.
    let reply = raw_post(port, &head).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let h2_headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let reply = h2::request(port, "POST", "/mcp/knowledge", &h2_headers, MCP_BODY.into())
        .await
        .unwrap_or_else(|e| panic!("HTTP/2 control: {e}\n{}", stack.logs()));
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(stack.echo.hits(), 2);
    let checks = stack.envoy.authz_checks().await;

    for (name, value) in UNDERSCORE_SPELLINGS {
        // HTTP/1.1: Envoy answers 400 itself.
        let reply = raw_post(port, &format!("{head}\r\n{name}: {value}")).await;
        assert_eq!(reply.status, 400, "{name}: {reply:?}\n{}", stack.logs());
        assert_eq!(reply.body, "Bad Request", "{name}: {reply:?}");

        // HTTP/2: Envoy resets the stream; no response at all.
        let mut headers = h2_headers.to_vec();
        let lower = name.to_ascii_lowercase();
        headers.push((lower.as_str(), value));
        let result = h2::request(port, "POST", "/mcp/knowledge", &headers, MCP_BODY.into()).await;
        let err = result.expect_err(&format!("{name} over HTTP/2 got a response"));
        // Envoy 1.40 sends RST_STREAM(INTERNAL_ERROR) before any response header.
        assert!(
            err.contains("Reset(StreamId(1), INTERNAL_ERROR, Remote)"),
            "{name} over HTTP/2: {err}"
        );
    }
    assert_eq!(
        stack.envoy.authz_checks().await,
        checks,
        "mcp-authz was asked"
    );
    assert_eq!(stack.echo.hits(), 2, "the upstream received a request");
}

async fn post_presto(stack: &Stack, extra: &[(&str, &str)], body: &Value) -> Reply {
    let auth = bearer(&alice());
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    let url = stack.envoy.url("/mcp/presto");
    send(
        &http_client(),
        "POST",
        &url,
        &headers,
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// A named case: extra headers and the body sent with them.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Value);

/// A `tools/call` of `tool` whose `_meta` names `version` (`None`: no `_meta`).
fn call(tool: &str, version: Option<&str>) -> Value {
    let mut body = tool_call(
        json!(1),
        tool,
        json!({"sql": "select 1", "quarter": "2026-Q3"}),
    );
    if let Some(v) = version {
        body["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": v});
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_headers_that_contradict_the_body_are_refused() {
    let stack = Stack::quickstart().await;
    let b64 = |s: &str| format!("=?base64?{}?=", B64.encode(s));
    let run_query_b64 = b64("run_query");
    let revenue_b64 = b64("get_revenue_metrics");
    let mismatch = RpcError {
        status: 400,
        code: Some(-32020),
        reason: "header_mismatch",
        id: Some(json!(1)),
    };
    let refused: Vec<Case> = vec![
        (
            "Mcp-Method differs",
            vec![("mcp-method", "tools/list")],
            call("run_query", None),
        ),
        (
            "Mcp-Name differs",
            vec![("mcp-method", "tools/call"), ("mcp-name", "run_query")],
            call("get_revenue_metrics", None),
        ),
        (
            "Base64 Mcp-Name differs",
            vec![("mcp-name", &revenue_b64)],
            call("run_query", None),
        ),
        (
            "MCP-Protocol-Version differs from _meta",
            vec![("mcp-protocol-version", PROTOCOL)],
            call("run_query", Some("2025-11-25")),
        ),
    ];
    for (case, headers, body) in &refused {
        let reply = post_presto(&stack, headers, body).await;
        mismatch
            .check(&reply)
            .unwrap_or_else(|e| panic!("{case}: {e}\n{}", stack.logs()));
    }
    assert_eq!(
        stack.echo.hits(),
        0,
        "a refused request reached the upstream"
    );

    let allowed: Vec<Case> = vec![
        ("no MCP headers", vec![], call("run_query", None)),
        (
            "matching headers",
            vec![
                ("mcp-method", "tools/call"),
                ("mcp-name", "run_query"),
                ("mcp-protocol-version", PROTOCOL),
            ],
            call("run_query", Some(PROTOCOL)),
        ),
        (
            "Base64 Mcp-Name matching",
            vec![("mcp-method", "tools/call"), ("mcp-name", &run_query_b64)],
            call("run_query", None),
        ),
        (
            "protocol header without _meta",
            vec![("mcp-protocol-version", PROTOCOL)],
            call("run_query", None),
        ),
    ];
    for (case, headers, body) in &allowed {
        let reply = post_presto(&stack, headers, body).await;
        assert_eq!(reply.status, 200, "{case}: {reply:?}\n{}", stack.logs());
        assert_eq!(reply.seen().body, body.to_string(), "{case}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_values_arrive_upstream_exactly_as_decided() {
    let stack = Stack::quickstart().await;
    let mut claims = demo_claims("  alice");
    claims["groups"] = json!([" ads-eng", "eng ", "say\"hi\""]);
    claims["business_groups"] = json!(["ads"]);
    let reply = stack.call_knowledge(&demo_token(&claims)).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let seen = reply.seen();
    assert_eq!(seen.all("x-forwarded-user"), ["%20%20alice"], "{seen:?}");
    assert_eq!(
        seen.all("x-forwarded-groups"),
        ["%20ads-eng,eng%20,say%22hi%22"],
        "{seen:?}"
    );
}
