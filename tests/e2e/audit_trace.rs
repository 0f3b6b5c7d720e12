//! OTLP export: with `tracing.otlp_endpoint` set, the span of a Check is sent
//! over OTLP/HTTP to a collector, in the trace and under the parent span the
//! client's `traceparent` named.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::json;

use crate::harness::rpc::{bearer, request, send, user_token};
use crate::harness::{
    Authz, AuthzOptions, Echo, PolicySources, envoy_in_front, http_client, poll_until,
};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN: &str = "b7ad6b7169203331";
/// The batch span processor sends every 5 s.
const EXPORT_DEADLINE: Duration = Duration::from_secs(20);

type Bodies = Arc<Mutex<Vec<Vec<u8>>>>;

/// A stand-in OpenTelemetry collector: keeps every `/v1/traces` body.
async fn collector() -> (u16, Bodies) {
    let bodies: Bodies = Arc::default();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(|State(b): State<Bodies>, body: Bytes| async move {
                b.lock().unwrap().push(body.to_vec());
                ""
            }),
        )
        .with_state(bodies.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, bodies)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checks_span_is_exported_over_otlp_under_the_callers_trace() {
    let (port, bodies) = collector().await;
    let echo = Echo::start().await;
    let authz = Authz::start_patched(&AuthzOptions::default(), &PolicySources::default(), |c| {
        // No path: mcp-authz adds `/v1/traces`.
        c["tracing"] = json!({"otlp_endpoint": format!("http://127.0.0.1:{port}")});
        c["audit"] = json!({"output": "off"});
    })
    .await;
    let envoy = envoy_in_front(&authz, [echo.port; 4]).await;
    let token = user_token("alice", &["ads-eng"], &["ads"], "ai-chat");
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN}-01");
    let reply = send(
        &http_client(),
        "POST",
        &envoy.url("/mcp/knowledge"),
        &[
            ("authorization", &bearer(&token)),
            ("traceparent", &traceparent),
        ],
        Some(request(json!(1), "tools/list").to_string().into_bytes()),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    let (trace, parent) = (hex(TRACE_ID), hex(PARENT_SPAN));
    let exported = poll_until(EXPORT_DEADLINE, || {
        let found = bodies.lock().unwrap().iter().any(|b| {
            contains(b, &trace)
                && contains(b, &parent)
                && contains(b, b"check")
                && contains(b, b"mcp-authz")
        });
        async move { found.then_some(()) }
    })
    .await;
    assert!(
        exported.is_some(),
        "no OTLP export of the `check` span in trace {TRACE_ID} under {PARENT_SPAN} \
         ({} bodies received)\n{}",
        bodies.lock().unwrap().len(),
        authz.log_tail()
    );
}
