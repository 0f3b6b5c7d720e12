//! Checks the demo MCP servers (examples/demo_mcp_servers) with the rmcp test client, directly (no Envoy), and how a gateway denial reaches that client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo_mcp_servers/client.rs"]
mod client;
#[path = "../examples/demo_mcp_servers/servers.rs"]
mod servers;

use axum::{
    body::{Body, Bytes},
    http::{Request, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use client::{call_tool, connect, error_text, result_text, tool_names};
use rmcp::service::ClientInitializeError;
use serde_json::{Value, json};
use servers::{RunningServer, ServerName, all_names};
use tokio_util::sync::CancellationToken;

async fn spawn_local(name: ServerName) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    servers::spawn(name, listener).unwrap()
}

#[tokio::test]
async fn each_server_lists_its_tools_and_answers() {
    let mut running = Vec::new();
    for name in all_names() {
        running.push(spawn_local(name).await);
    }
    for server in &running {
        let client = connect(&server.url(), vec![]).await.unwrap();
        let info = client.peer_info().expect("handshake done");
        let server_info = info.server_info.as_ref().expect("server info");
        assert_eq!(server_info.name, server.name.as_str());

        let names = tool_names(&client).await.unwrap();
        assert_eq!(names, server.name.tool_names(), "tools of {}", server.name);

        let (tool, args, expected): (&str, Value, &[&str]) = match server.name {
            ServerName::Presto => (
                "run_query",
                json!({"sql": "SELECT region, count(*) FROM orders GROUP BY 1", "catalog": "iceberg"}),
                &[
                    "\"catalog\":\"iceberg\"",
                    "SELECT region, count(*) FROM orders",
                    "EMEA",
                ],
            ),
            ServerName::Spark => (
                "get_job_logs",
                json!({"job_id": "job-20260914-0042", "lines": 2}),
                &["[job-20260914-0042] ERROR DAGScheduler: Stage 3"],
            ),
            ServerName::Knowledge => (
                "search_docs",
                json!({"query": "spark memory", "limit": 1}),
                &[
                    "Spark memory tuning",
                    "https://docs.acme.example/spark-memory",
                ],
            ),
            ServerName::Experimental => (
                "try_anything",
                json!({"prompt": "fly"}),
                &["[experimental] would try: fly"],
            ),
        };
        let result = call_tool(&client, tool, args).await.unwrap();
        assert_eq!(result.is_error, Some(false), "{tool}: {result:?}");
        let text = result_text(&result);
        for want in expected {
            assert!(
                text.contains(want),
                "{tool} answered {text:?}, missing {want:?}"
            );
        }
        client.cancel().await.unwrap();
    }
    for server in running {
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn tools_have_input_schemas_and_deterministic_answers() {
    let server = spawn_local(ServerName::Presto).await;
    let client = connect(&server.url(), vec![]).await.unwrap();
    let tools = client::list_tools(&client).await.unwrap();
    let run_query = tools.iter().find(|t| t.name == "run_query").unwrap();
    let schema = Value::Object((*run_query.input_schema).clone());
    assert_eq!(schema["properties"]["sql"]["type"], "string");
    assert_eq!(schema["required"], json!(["sql"]));
    assert!(run_query.description.as_deref().unwrap().contains("SQL"));

    let args = json!({"quarter": "2026-Q3", "region": "emea"});
    let first = call_tool(&client, "get_revenue_metrics", args.clone())
        .await
        .unwrap();
    let again = call_tool(&client, "get_revenue_metrics", args)
        .await
        .unwrap();
    assert_eq!(first.structured_content, again.structured_content);
    let metrics = first.structured_content.unwrap();
    assert_eq!(metrics["regions"], json!([["EMEA", 3_644_900]]));
    assert_eq!(metrics["total"], 3_644_900);

    let bad = call_tool(&client, "get_revenue_metrics", json!({"quarter": "Q3"}))
        .await
        .unwrap();
    assert_eq!(bad.is_error, Some(true));
    assert!(result_text(&bad).contains("invalid quarter"));
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

/// Stands in for Envoy + ext_authz: requests without the right bearer token
/// get 401; `tools/call` of `run_query` gets 403 with a JSON-RPC error body
/// (optionally with a `WWW-Authenticate` challenge).
async fn gate(req: Request<Body>, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let msg: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let deny = |status: StatusCode, challenge: Option<&str>, text: &str| {
        let body =
            json!({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32001, "message": text}});
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(c) = challenge {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, c.parse().unwrap());
        }
        resp
    };
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth {
        Some("Bearer alice") => {}
        Some("Bearer carol") if msg["method"] == "tools/call" => {
            let c = r#"Bearer error="insufficient_scope", scope="presto:query""#;
            return deny(StatusCode::FORBIDDEN, Some(c), "carol may not call tools");
        }
        Some("Bearer carol") => {}
        _ => {
            return deny(
                StatusCode::UNAUTHORIZED,
                None,
                "missing or invalid bearer token",
            );
        }
    }
    if msg["method"] == "tools/call" && msg["params"]["name"] == "run_query" {
        return deny(
            StatusCode::FORBIDDEN,
            None,
            "alice may not call presto/run_query",
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[tokio::test]
async fn gateway_denials_reach_the_client_with_status_and_message() {
    let shutdown = CancellationToken::new();
    let app = servers::router(ServerName::Presto, &shutdown).layer(middleware::from_fn(gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let stop = shutdown.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    });

    // Denied handshake: 401 without a challenge keeps status and body.
    let err = connect(&url, vec![]).await.unwrap_err();
    let init = err
        .downcast_ref::<ClientInitializeError>()
        .expect("an rmcp init error");
    assert!(
        matches!(init, ClientInitializeError::TransportError { .. }),
        "{init:?}"
    );
    let text = format!("{err:#}");
    assert!(text.contains("HTTP 401 Unauthorized"), "{text}");
    assert!(text.contains("missing or invalid bearer token"), "{text}");

    // Denied call after an allowed handshake: 403 + JSON-RPC error body.
    let alice = vec![("authorization".to_owned(), "Bearer alice".to_owned())];
    let client = connect(&url, alice).await.unwrap();
    let err = call_tool(&client, "run_query", json!({"sql": "SELECT 1"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, rmcp::ServiceError::TransportSend(_)),
        "{err:?}"
    );
    let text = error_text(&err);
    assert!(text.contains("HTTP 403 Forbidden"), "{text}");
    assert!(
        text.contains("alice may not call presto/run_query"),
        "{text}"
    );
    // The session survives the denial.
    let ok = call_tool(
        &client,
        "get_revenue_metrics",
        json!({"quarter": "2026-Q3"}),
    )
    .await;
    assert_eq!(ok.unwrap().is_error, Some(false));
    client.cancel().await.unwrap();

    // 403 with WWW-Authenticate: only the challenge survives, not the body.
    let carol = vec![("authorization".to_owned(), "Bearer carol".to_owned())];
    let client = connect(&url, carol).await.unwrap();
    let err = call_tool(
        &client,
        "get_revenue_metrics",
        json!({"quarter": "2026-Q3"}),
    )
    .await
    .unwrap_err();
    let text = error_text(&err);
    assert!(text.contains("insufficient scope"), "{text}");
    assert!(!text.contains("carol may not call tools"), "{text}");
    assert!(err.auth_challenge().unwrap().contains("presto:query"));
    client.cancel().await.unwrap();

    shutdown.cancel();
    task.await.unwrap().unwrap();
}
