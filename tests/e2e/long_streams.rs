//! MCP streams outlive Envoy's default 15 s route timeout: a tool call that
//! reports progress for 25 s and a GET (SSE) stream held open for a minute
//! both reach the client whole through the rendered quickstart Envoy (no
//! route timeout on MCP routes, `stream_idle_timeout` instead). A control
//! run with a short route timeout proves the test sees a cut stream.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Response, StatusCode, header};
use axum::routing::any;
use tokio_stream::wrappers::ReceiverStream;

use crate::harness::envoy::CANONICAL_TLS_DIR;
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{Authz, AuthzOptions, Envoy, EnvoyPorts, ports, repo_path};

/// A client without the harness's 10 s request timeout: these streams are long.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// How long the tool call reports progress before its result.
const CALL: Duration = Duration::from_secs(25);
/// How long the GET stream stays open.
const GET_STREAM: Duration = Duration::from_secs(60);

/// An SSE response whose events are sent at `gaps` apart.
fn sse(events: Vec<(Duration, String)>) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        for (wait, ev) in events {
            tokio::time::sleep(wait).await;
            if tx.send(Ok(Bytes::from(ev))).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .expect("response")
}

/// A slow MCP server: POST answers a `tools/call` (id 7) with a progress
/// notification every 5 s and the result after [`CALL`]; GET holds an SSE
/// stream open for [`GET_STREAM`] with a comment every 10 s.
async fn slow_upstream() -> u16 {
    let app = Router::new().fallback(any(|req: axum::extract::Request| async move {
        if req.method() == axum::http::Method::GET {
            let n = GET_STREAM.as_secs() / 10;
            let events = (1..=n)
                .map(|i| (Duration::from_secs(10), format!(": still here {i}\n\n")))
                .collect();
            return sse(events);
        }
        let steps = CALL.as_secs() / 5;
        let mut events: Vec<(Duration, String)> = (1..steps)
            .map(|i| {
                (
                    Duration::from_secs(5),
                    format!(
                        "event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progressToken\":\"t\",\"progress\":{i},\"total\":{steps}}}}}\n\n"
                    ),
                )
            })
            .collect();
        events.push((
            Duration::from_secs(5),
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n".into(),
        ));
        sse(events)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// Envoy from the shipped quickstart file with `edit` applied.
async fn envoy(authz: &Authz, upstream: u16, edit: impl Fn(String) -> String) -> Envoy {
    let [listener, admin, mtls_listener] = ports::free_ports();
    let template =
        std::fs::read_to_string(repo_path("envoy/quickstart.yaml")).expect("read quickstart");
    Envoy::start_from(
        EnvoyPorts {
            listener,
            admin,
            authz_grpc: authz.grpc_port,
            upstreams: [upstream; 4],
            mtls_listener,
            authz_public: authz.public_port,
        },
        &repo_path(CANONICAL_TLS_DIR),
        &edit(template),
    )
    .await
}

/// Reads the whole body; (text, how long the stream lasted, whether it ended cleanly).
async fn read_stream(resp: reqwest::Response, limit: Duration) -> (String, Duration, bool) {
    let started = Instant::now();
    let mut resp = resp;
    let mut text = String::new();
    let clean = loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), resp.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            Ok(Ok(None)) => break true,
            Ok(Err(_)) | Err(_) => break false,
        }
    };
    (text, started.elapsed(), clean)
}

const CALL_BODY: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"select 1"},"_meta":{"progressToken":"t"}}}"#;

async fn post_call(envoy: &Envoy, token: &str) -> reqwest::Response {
    http_client()
        .post(envoy.url("/mcp/presto"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(CALL_BODY)
        .send()
        .await
        .expect("POST tools/call")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_25_second_tool_call_and_a_minute_long_get_stream_arrive_whole() {
    let upstream = slow_upstream().await;
    let authz = Authz::start(&AuthzOptions::default()).await;
    let envoy = envoy(&authz, upstream, |t| t).await;
    let token = demo_token(&demo_claims("alice"));

    let call = tokio::spawn({
        let envoy_url = envoy.url("/mcp/presto");
        let token = token.clone();
        async move {
            let resp = http_client()
                .post(envoy_url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(CALL_BODY)
                .send()
                .await
                .expect("POST tools/call");
            assert_eq!(resp.status(), 200);
            read_stream(resp, CALL + Duration::from_secs(20)).await
        }
    });
    let get = http_client()
        .get(envoy.url("/mcp/presto"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET stream");
    assert_eq!(get.status(), 200);
    let (stream, lasted, clean) = read_stream(get, GET_STREAM + Duration::from_secs(20)).await;
    assert!(clean, "the GET stream was cut after {lasted:?}: {stream}");
    assert!(lasted >= GET_STREAM - Duration::from_secs(1), "{lasted:?}");
    assert_eq!(stream.matches(": still here").count(), 6, "{stream}");

    let (body, lasted, clean) = call.await.expect("call task");
    assert!(
        clean,
        "the tool call stream was cut after {lasted:?}: {body}"
    );
    assert!(lasted >= CALL - Duration::from_secs(1), "{lasted:?}");
    assert_eq!(body.matches("notifications/progress").count(), 4, "{body}");
    assert!(body.contains(r#""id":7,"result""#), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn control_a_short_route_timeout_cuts_the_call_and_the_test_sees_it() {
    let upstream = slow_upstream().await;
    let authz = Authz::start(&AuthzOptions::default()).await;
    // The shape of the old configuration (a route timeout), shortened to 3 s.
    let envoy = envoy(&authz, upstream, |t| {
        assert!(t.contains("timeout: 0s }"));
        t.replace("timeout: 0s }", "timeout: 3s }")
    })
    .await;
    let token = demo_token(&demo_claims("alice"));
    let resp = post_call(&envoy, &token).await;
    let (body, lasted, clean) = read_stream(resp, Duration::from_secs(20)).await;
    assert!(
        !(clean && body.contains(r#""id":7,"result""#)),
        "a 3 s route timeout did not cut a 25 s call: {body}"
    );
    assert!(lasted < Duration::from_secs(10), "{lasted:?}");
}
