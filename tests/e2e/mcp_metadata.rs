//! OAuth protected resource metadata (RFC 9728): a 401 names the metadata
//! document of the server asked for, and Envoy serves that document from
//! mcp-authz without authorization.

use rmcp::service::ClientInitializeError;
use serde_json::json;

use crate::harness::demo::{client, within};
use crate::harness::http::Reply;
use crate::harness::mcp_stack::{McpStack, Upstream};
use crate::harness::rpc::{bearer, request, send, user_token};
use crate::harness::{bad_tokens, http_client};

const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";

async fn post(stack: &McpStack, server: &str, headers: &[(&str, &str)]) -> Reply {
    let body = request(json!(1), "initialize").to_string().into_bytes();
    let url = stack.url(&format!("/mcp/{server}"));
    send(&http_client(), "POST", &url, headers, Some(body)).await
}

async fn get(stack: &McpStack, path: &str) -> Reply {
    send(&http_client(), "GET", &stack.url(path), &[], None).await
}

/// The `resource_metadata` URL of a `WWW-Authenticate: Bearer ...` challenge.
fn resource_metadata(challenge: &str) -> &str {
    let (_, rest) = challenge
        .split_once("resource_metadata=\"")
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge:?}"));
    rest.split('"').next().expect("closing quote")
}

/// The path of an absolute `http://host:port/path` URL.
fn path_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not http: {url}"));
    &rest[rest.find('/').unwrap_or(rest.len())..]
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_request_is_told_where_the_servers_metadata_is() {
    let stack = McpStack::start(Upstream::Echo).await;
    let invalid = bearer(&bad_tokens::expired());
    for (case, headers, error) in [
        ("no token", vec![], None),
        (
            "expired token",
            vec![("authorization", invalid.as_str())],
            Some("invalid_token"),
        ),
    ] {
        let reply = post(&stack, "knowledge", &headers).await;
        assert_eq!(reply.status, 401, "{case}: {reply:?}\n{}", stack.logs());
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer realm=\"mcp-authz\""),
            "{case}: {challenge}"
        );
        assert_eq!(
            challenge.contains("error=\"invalid_token\""),
            error.is_some(),
            "{case}: {challenge}"
        );
        let url = resource_metadata(challenge);
        assert_eq!(
            path_of(url),
            format!("{METADATA_PREFIX}/mcp/knowledge"),
            "{case}: {challenge}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_document_is_served_through_envoy_without_a_token() {
    let stack = McpStack::start(Upstream::Echo).await;
    let reply = get(&stack, &format!("{METADATA_PREFIX}/mcp/presto")).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let doc = reply.json();
    let resource = doc["resource"].as_str().unwrap_or_default();
    assert!(resource.ends_with("/mcp/presto"), "{doc}");
    assert_eq!(doc["resource_name"], "Presto", "{doc}");
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]), "{doc}");
    // The quickstart's only issuer is demo-only and never advertised.
    assert_eq!(doc["authorization_servers"], json!([]), "{doc}");

    // The URL a 401 names leads to the document of the server asked for.
    let denied = post(&stack, "knowledge", &[]).await;
    let url = resource_metadata(denied.header("www-authenticate").unwrap_or_default()).to_owned();
    let doc = get(&stack, path_of(&url)).await.json();
    assert_eq!(doc["resource_name"], "Knowledge", "{doc}");
    assert!(
        doc["resource"]
            .as_str()
            .is_some_and(|r| r.ends_with("/mcp/knowledge")),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_of_an_unregistered_path_is_404() {
    let stack = McpStack::start(Upstream::Echo).await;
    for path in ["/mcp/nothing", "/mcp", "/mcp/presto/extra", ""] {
        let reply = get(&stack, &format!("{METADATA_PREFIX}{path}")).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}\n{}", stack.logs());
        assert!(!reply.body.contains("resource_name"), "{path}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_requests_carry_no_challenge() {
    let stack = McpStack::start(Upstream::Echo).await;
    let mallory = bearer(&user_token(
        "mallory",
        &["marketing-ops"],
        &["marketing"],
        "ai-chat",
    ));
    let reply = post(&stack, "presto", &[("authorization", &mallory)]).await;
    assert_eq!(reply.status, 403, "{reply:?}\n{}", stack.logs());
    assert!(reply.header("www-authenticate").is_none(), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_client_without_a_token_gets_the_metadata_challenge() {
    let stack = McpStack::start(Upstream::DemoServers).await;
    let url = stack.url("/mcp/knowledge");
    let err = match within("initialize", client::connect(&url, vec![])).await {
        Ok(_) => panic!("connected without a token\n{}", stack.logs()),
        Err(e) => e,
    };
    let challenge = err
        .downcast_ref::<ClientInitializeError>()
        .and_then(ClientInitializeError::auth_challenge)
        .unwrap_or_else(|| panic!("no auth challenge in {err:#}"));
    let url = resource_metadata(challenge);
    assert_eq!(
        path_of(url),
        format!("{METADATA_PREFIX}/mcp/knowledge"),
        "{challenge}"
    );
}
