//! Services on the mTLS listener: the SPIFFE id of the client certificate is
//! the principal when no bearer token is sent. Certificates are made by the
//! test (`harness::pki`), never the committed demo ones.

use serde_json::{Value, json};

use crate::harness::demo::{client, connect_with, within};
use crate::harness::http::Reply;
use crate::harness::mcp_stack::{McpStack, Upstream};
use crate::harness::pki::Pki;
use crate::harness::rpc::{RpcError, bearer, send, tool_call, user_token};

const INDEXER: &str = "spiffe://example.org/ns/batch/sa/indexer";
const SEARCH: (&str, &str) = ("search_docs", r#"{"query":"spark memory"}"#);

async fn post(
    http: &reqwest::Client,
    stack: &McpStack,
    server: &str,
    headers: &[(&str, &str)],
    (tool, args): (&str, &str),
) -> Reply {
    let args: Value = serde_json::from_str(args).expect("arguments JSON");
    let body = tool_call(json!(41), tool, args).to_string().into_bytes();
    let url = stack.mtls_url(&format!("/mcp/{server}"));
    send(http, "POST", &url, headers, Some(body)).await
}

fn forbidden(stack: &McpStack, case: &str, reply: &Reply) -> Value {
    let want = RpcError {
        status: 403,
        code: Some(-32001),
        reason: "forbidden",
        id: Some(json!(41)),
    };
    want.check(reply)
        .unwrap_or_else(|e| panic!("{case}: {e}\n{}", stack.logs()))
}

#[tokio::test(flavor = "multi_thread")]
async fn service_calls_a_read_only_tool_and_the_upstream_sees_only_its_spiffe_id() {
    let pki = Pki::new();
    let stack = McpStack::start_with_tls(Upstream::Echo, pki.dir()).await;
    let http = pki.https_client(Some(&pki.client_identity("indexer", Some(INDEXER))));
    // Identity headers a client sends are never believed.
    let spoofed = [
        ("x-forwarded-user", "alice"),
        ("x-forwarded-groups", "ads-eng"),
        (
            "x-forwarded-service",
            "spiffe://example.org/ns/prod/sa/admin",
        ),
    ];
    let reply = post(&http, &stack, "knowledge", &spoofed, SEARCH).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let seen = reply.seen();
    assert_eq!(seen.all("x-forwarded-service"), [INDEXER], "{seen:?}");
    for header in [
        "x-forwarded-user",
        "x-forwarded-groups",
        "x-forwarded-business-groups",
        "x-forwarded-surface",
    ] {
        assert!(
            seen.all(header).is_empty(),
            "{header} reached the upstream: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn service_may_not_call_write_tools_nor_reach_sensitive_servers() {
    let pki = Pki::new();
    let stack = McpStack::start_with_tls(Upstream::Echo, pki.dir()).await;
    let http = pki.https_client(Some(&pki.client_identity("indexer", Some(INDEXER))));

    let reply = post(
        &http,
        &stack,
        "knowledge",
        &[],
        ("rate_doc", r#"{"page":"onboarding","stars":5}"#),
    )
    .await;
    let error = forbidden(&stack, "rate_doc", &reply);
    assert_eq!(
        error["data"]["policies"],
        json!(["services-read-only-tools-on-low-risk-servers"])
    );
    assert_eq!(
        error["message"],
        "services may call only read-only tools on low-risk servers; rate_doc on Knowledge is not one"
    );

    let reply = post(
        &http,
        &stack,
        "presto",
        &[],
        ("run_query", r#"{"sql":"SELECT 1"}"#),
    )
    .await;
    let error = forbidden(&stack, "presto", &reply);
    // A service is in no business group and comes from no surface.
    let mut policies: Vec<&str> = error["data"]["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    policies.sort_unstable();
    assert_eq!(
        policies,
        ["business-group-gate", "server-enabled-surfaces-only"]
    );

    // spark is medium-risk: no policy lets a service connect.
    let reply = post(
        &http,
        &stack,
        "spark",
        &[],
        ("get_job_logs", r#"{"job_id":"j"}"#),
    )
    .await;
    let error = forbidden(&stack, "spark", &reply);
    assert_eq!(error["data"]["policies"], json!([]));
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.ends_with("to reach Spark"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_without_spiffe_id_needs_a_token() {
    let pki = Pki::new();
    let stack = McpStack::start_with_tls(Upstream::Echo, pki.dir()).await;
    let want = RpcError {
        status: 401,
        code: Some(-32001),
        reason: "missing_token",
        id: Some(Value::Null),
    };
    for (case, uri_san) in [
        ("no URI SAN", None),
        (
            "a URI SAN that is no SPIFFE id",
            Some("https://example.org/indexer"),
        ),
    ] {
        let http = pki.https_client(Some(&pki.client_identity("batch-job", uri_san)));
        let reply = post(&http, &stack, "knowledge", &[], SEARCH).await;
        want.check(&reply)
            .unwrap_or_else(|e| panic!("{case}: {e}\n{}", stack.logs()));
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer realm=\"mcp-authz\""),
            "{case}: {reply:?}"
        );
    }

    // Over plain HTTP a SPIFFE id can only be claimed, never proven.
    let xfcc = format!("By=spiffe://example.org/envoy;URI={INDEXER}");
    let url = stack.url("/mcp/knowledge");
    let body = tool_call(json!(41), "search_docs", json!({"query": "x"}));
    let headers = [
        ("x-forwarded-client-cert", xfcc.as_str()),
        ("x-forwarded-service", INDEXER),
    ];
    let reply = send(
        &crate::harness::http_client(),
        "POST",
        &url,
        &headers,
        Some(body.to_string().into_bytes()),
    )
    .await;
    want.check(&reply)
        .unwrap_or_else(|e| panic!("claimed SPIFFE id over plain HTTP: {e}\n{}", stack.logs()));

    // No certificate at all: the TLS handshake itself fails.
    let anonymous = pki.https_client(None);
    let url = stack.mtls_url("/mcp/knowledge");
    let result = anonymous.post(&url).body("{}").send().await;
    assert!(
        result.is_err(),
        "mTLS listener answered a client without a certificate: {result:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_over_mtls_makes_the_user_the_principal() {
    let pki = Pki::new();
    let stack = McpStack::start_with_tls(Upstream::Echo, pki.dir()).await;
    let http = pki.https_client(Some(&pki.client_identity("indexer", Some(INDEXER))));
    let auth = bearer(&user_token("alice", &["eng"], &["ads"], "ide"));
    let rate = ("rate_doc", r#"{"page":"onboarding","stars":5}"#);
    let reply = post(
        &http,
        &stack,
        "knowledge",
        &[("authorization", &auth), ("x-forwarded-service", INDEXER)],
        rate,
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "a user may rate docs: {reply:?}\n{}",
        stack.logs()
    );
    let seen = reply.seen();
    assert_eq!(seen.all("x-forwarded-user"), ["alice"], "{seen:?}");
    assert!(seen.all("x-forwarded-service").is_empty(), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn service_session_with_a_real_mcp_client_over_mtls() {
    let pki = Pki::new();
    let stack = McpStack::start_with_tls(Upstream::DemoServers, pki.dir()).await;
    let http = pki.https_client(Some(&pki.client_identity("indexer", Some(INDEXER))));
    let url = stack.mtls_url("/mcp/knowledge");
    let session = within("initialize", connect_with(http, &url, &[]))
        .await
        .unwrap_or_else(|e| panic!("initialize {url}: {e:#}\n{}", stack.logs()));
    let tools = within("tools/list", client::tool_names(&session))
        .await
        .expect("tools/list");
    // The list holds only what the service may call: `rate_doc` writes, and
    // services may call only read-only tools on low-risk servers.
    assert_eq!(tools, ["search_docs"]);
    let search = client::call_tool(&session, "search_docs", json!({"query": "onboarding"}));
    let result = within("search_docs", search)
        .await
        .unwrap_or_else(|e| panic!("search_docs: {}\n{}", client::error_text(&e), stack.logs()));
    assert!(client::result_text(&result).contains("Onboarding guide"));
    let rate = client::call_tool(
        &session,
        "rate_doc",
        json!({"page": "onboarding", "stars": 1}),
    );
    let denied = within("rate_doc", rate).await;
    let text = denied
        .map(|r| client::result_text(&r))
        .map_err(|e| client::error_text(&e));
    assert!(
        text.as_ref().is_err_and(
            |e| e.contains("HTTP 403") && e.contains("services may call only read-only tools")
        ),
        "{text:?}"
    );
    session.cancel().await.expect("close session");
}
