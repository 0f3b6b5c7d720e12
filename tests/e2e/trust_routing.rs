//! One source of truth for routing (issue 8, item 8): Envoy's route table names
//! the server; a path no route names gets Envoy's own JSON-RPC 404, and a Check
//! without the `mcp_server` context extension is denied, never guessed.

use serde_json::{Value, json};

use crate::harness::grpc_check::{CheckInput, check};
use crate::harness::http::raw_request;
use crate::harness::rpc::{bearer, user_token};
use crate::harness::{Authz, AuthzOptions, MCP_BODY, Stack};

/// The body of `envoy/quickstart.yaml`'s catch-all `direct_response`.
fn unknown_route_body() -> Value {
    json!({
        "jsonrpc": "2.0", "id": null,
        "error": {
            "code": -32001,
            "message": "no MCP server is registered at this path",
            "data": {"reason": "unknown_route"},
        },
    })
}

/// alice may reach presto from ai-chat (business group `ads`).
fn alice() -> String {
    user_token("alice", &["eng"], &["ads"], "ai-chat")
}

#[tokio::test(flavor = "multi_thread")]
async fn unrouted_paths_get_a_json_rpc_404_from_envoy_alone() {
    let stack = Stack::quickstart().await;
    let auth = bearer(&alice());
    // Control: a routed path is checked once and reaches the upstream, so the
    // two counters below do move when a request goes through.
    let checks = stack.envoy.authz_checks().await;
    let reply = stack
        .post("/mcp/presto/", &[("authorization", &auth)])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(
        reply.seen().path,
        "/mcp/",
        "prefix rewritten at a `/` boundary"
    );
    assert_eq!(stack.envoy.authz_checks().await, checks + 1);
    assert_eq!(stack.echo.hits(), 1);

    for path in [
        "/anything",
        "/mcp/prestoXYZ",
        "/mcp/presto-admin",
        "/mcp/presto.json",
        "/mcp",
        "/",
        "/.well-known/oauth-protected-resourceX",
    ] {
        let checks = stack.envoy.authz_checks().await;
        let reply = stack.post(path, &[("authorization", &auth)]).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}\n{}", stack.logs());
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(reply.json(), unknown_route_body(), "{path}");
        assert_eq!(
            stack.envoy.authz_checks().await,
            checks,
            "{path}: mcp-authz was asked"
        );
    }
    assert_eq!(
        stack.echo.hits(),
        1,
        "an unrouted path reached the upstream"
    );
}

/// A path another parser reads differently is routed and authorized as the
/// upstream will read it: escaped slashes unescaped, dot segments removed and
/// `//` merged before routing.
#[tokio::test(flavor = "multi_thread")]
async fn paths_are_routed_and_authorized_as_normalized() {
    let stack = Stack::quickstart().await;
    // No business group: knowledge is open to this user, presto is not.
    let token = user_token("nora", &["eng"], &[], "ai-chat");
    let port = stack.envoy.ports.listener;
    let post = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{MCP_BODY}",
            MCP_BODY.len()
        )
    };
    // Control: knowledge itself is allowed and reaches the upstream.
    let reply = raw_request(port, post("/mcp//knowledge").as_bytes()).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(
        reply.seen().path,
        "/mcp",
        "`//` merged before the prefix rewrite"
    );
    let hits = stack.echo.hits();
    for path in [
        "/mcp/knowledge/../presto",
        "/mcp/knowledge/./../presto/",
        "/mcp/knowledge/..%2Fpresto",
        "/mcp/knowledge/..%2fpresto",
        "/mcp/knowledge%2F..%2Fpresto",
        "/mcp/knowledge%5C..%5Cpresto",
    ] {
        let reply = raw_request(port, post(path).as_bytes()).await;
        assert_eq!(
            reply.status,
            403,
            "{path} is presto: {reply:?}\n{}",
            stack.logs()
        );
        assert_eq!(
            reply.json()["error"]["data"]["reason"],
            "forbidden",
            "{path}"
        );
    }
    assert_eq!(
        stack.echo.hits(),
        hits,
        "a rewritten path reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_without_a_server_extension_is_denied_unknown_server() {
    let authz = Authz::start(&AuthzOptions::default()).await;
    let auth = bearer(&alice());
    let headers = [("authorization", auth.as_str())];
    let mut input = CheckInput {
        // A path and host the registry lists for presto: nothing may be guessed from it.
        path: "/mcp/presto",
        headers: &headers,
        body: MCP_BODY.as_bytes(),
        context_extensions: &[("mcp_server", "presto")],
    };
    // Control: the same request named by its route is allowed.
    let named = check(authz.grpc_port, &input).await;
    assert_eq!(named.code, 0, "{named:?}\n{}", authz.log_tail());

    for extensions in [&[][..], &[("other", "presto")][..]] {
        input.context_extensions = extensions;
        let outcome = check(authz.grpc_port, &input).await;
        assert_eq!(outcome.status, 403, "{outcome:?}\n{}", authz.log_tail());
        assert_ne!(outcome.code, 0, "{outcome:?}");
        let body: Value = serde_json::from_str(&outcome.body).expect("JSON denial");
        assert_eq!(body["error"]["data"]["reason"], "unknown_server", "{body}");
        assert_eq!(body["error"]["code"], -32001, "{body}");
        assert_eq!(body["id"], 1, "{body}");
    }
}
