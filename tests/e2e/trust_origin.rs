//! Browser-based MCP clients (issue 8, item 9): Envoy answers the CORS
//! preflight of an allowed origin before ext_authz, and mcp-authz refuses a
//! request whose `Origin` is not allowed (the MCP transport spec's DNS-rebinding rule).

use crate::harness::http::Reply;
use crate::harness::rpc::{RpcError, bearer, send, user_token};
use crate::harness::{MCP_BODY, Stack, http_client};

/// MCP Inspector's origin, allowed by `envoy/quickstart.yaml` and the quickstart config.
const INSPECTOR: &str = "http://localhost:6274";
const EVIL: &str = "http://evil.example";

async fn preflight(stack: &Stack, origin: &str) -> Reply {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id, mcp-protocol-version",
        ),
    ];
    let url = stack.envoy.url("/mcp/knowledge");
    send(&http_client(), "OPTIONS", &url, &headers, None).await
}

fn cors_headers(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_from_an_allowed_origin_is_answered_by_envoy() {
    let stack = Stack::quickstart().await;
    let checks = stack.envoy.authz_checks().await;
    for origin in [INSPECTOR, "http://127.0.0.1:6274"] {
        let reply = preflight(&stack, origin).await;
        assert_eq!(reply.status, 200, "{origin}: {reply:?}\n{}", stack.logs());
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(origin),
            "{reply:?}"
        );
        let allowed = reply
            .header("access-control-allow-headers")
            .expect("allow-headers");
        for h in [
            "authorization",
            "content-type",
            "mcp-session-id",
            "mcp-protocol-version",
        ] {
            assert!(allowed.contains(h), "`{h}` not allowed: {reply:?}");
        }
        let methods = reply
            .header("access-control-allow-methods")
            .expect("allow-methods");
        assert!(methods.contains("POST"), "{reply:?}");
        let exposed = reply
            .header("access-control-expose-headers")
            .expect("expose-headers");
        assert!(exposed.contains("mcp-session-id"), "{reply:?}");
        assert!(exposed.contains("www-authenticate"), "{reply:?}");
    }
    assert_eq!(
        stack.envoy.authz_checks().await,
        checks,
        "mcp-authz was asked"
    );
    assert_eq!(stack.echo.hits(), 0, "the upstream saw a preflight");
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_from_another_origin_gets_no_cors_headers() {
    let stack = Stack::quickstart().await;
    for origin in [EVIL, "http://localhost:6275", "null"] {
        let reply = preflight(&stack, origin).await;
        assert!(
            cors_headers(&reply).is_empty(),
            "{origin}: CORS headers {:?} in {reply:?}",
            cors_headers(&reply)
        );
        assert!(reply.status >= 400, "{origin}: {reply:?}\n{}", stack.logs());
    }
    assert_eq!(stack.echo.hits(), 0, "the upstream saw a preflight");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_decided_only_from_an_allowed_origin() {
    let stack = Stack::quickstart().await;
    let auth = bearer(&user_token("alice", &["eng"], &["ads"], "ai-chat"));
    let url = stack.envoy.url("/mcp/knowledge");
    let client = http_client();
    let body = || Some(MCP_BODY.as_bytes().to_vec());

    let invalid = RpcError {
        status: 403,
        code: None,
        reason: "invalid_origin",
        // Refused before the body is read.
        id: None,
    };
    for origin in [EVIL, "http://localhost:6275", "null"] {
        let headers = [("authorization", auth.as_str()), ("origin", origin)];
        let reply = send(&client, "POST", &url, &headers, body()).await;
        invalid
            .check(&reply)
            .unwrap_or_else(|e| panic!("{origin}: {e}\n{}", stack.logs()));
    }
    assert_eq!(
        stack.echo.hits(),
        0,
        "a refused request reached the upstream"
    );

    // Allowed origin, and no origin at all (not a browser): decided as usual.
    let headers = [("authorization", auth.as_str()), ("origin", INSPECTOR)];
    let reply = send(&client, "POST", &url, &headers, body()).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(INSPECTOR),
        "a browser could not read the answer: {reply:?}"
    );
    let headers = [("authorization", auth.as_str())];
    let reply = send(&client, "POST", &url, &headers, body()).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(stack.echo.hits(), 2);
}
