//! Serving as Kubernetes expects, against the real `mcp-authz serve`: the
//! drain order on SIGTERM, TLS and mTLS on the gRPC listener, a Unix socket
//! for an Envoy in the same pod, and the `server.*` limits (request timeout,
//! HTTP/2 streams per connection, keepalive pings).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as AttrRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as Msg;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as Reply;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::authz::{AUTHZ_BIN, authz_config};
use crate::harness::decision::Expected;
use crate::harness::envoy::{CANONICAL_TLS_DIR, EnvoyPorts};
use crate::harness::pki::Pki;
use crate::harness::process::ChildGuard;
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{
    Authz, AuthzOptions, Echo, Envoy, MCP_BODY, PolicySources, http, poll_until, ports, repo_path,
};

/// gRPC health names mcp-authz registers: the whole server and each service.
const HEALTH_NAMES: [&str; 4] = [
    "",
    "envoy.service.auth.v3.Authorization",
    "envoy.service.ext_proc.v3.ExternalProcessor",
    "mcp_authz.registry.v1.Registry",
];
const PRESTO_GATE_MESSAGE: &str =
    "Presto is limited to the Ads, Finance and Infra business groups; ask in #presto-access";

/// mcp-authz with `server.*` (and `listen.*`) keys set as in `patch`.
async fn authz_with(patch: Value) -> Authz {
    Authz::start_patched(&AuthzOptions::default(), &PolicySources::default(), |c| {
        merge(c, patch)
    })
    .await
}

/// Merges `patch` into `config`, object by object.
fn merge(config: &mut Value, patch: Value) {
    match (config, patch) {
        (Value::Object(c), Value::Object(p)) => {
            for (k, v) in p {
                merge(c.entry(k).or_insert(Value::Null), v);
            }
        }
        (c, p) => *c = p,
    }
}

fn alice() -> String {
    demo_token(&demo_claims("alice"))
}

fn signal(authz: &mut Authz, sig: Signal) {
    kill(Pid::from_raw(authz.pid() as i32), sig).expect("signal mcp-authz");
}

/// Waits up to `limit` for the exit; panics with the log if it does not come.
async fn exit_within(authz: &mut Authz, limit: Duration) -> ExitStatus {
    let status = poll_until(limit, || {
        let s = authz.try_status();
        async move { s }
    })
    .await;
    status.unwrap_or_else(|| {
        panic!(
            "mcp-authz still running {limit:?} later\n{}",
            authz.log_tail()
        )
    })
}

fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

async fn channel(port: u16) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))
}

async fn health_on(channel: Channel, service: &str) -> Result<ServingStatus, String> {
    let resp = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map_err(|e| format!("health: {e:?}"))?;
    ServingStatus::try_from(resp.into_inner().status).map_err(|e| format!("{e:?}"))
}

/// Health of `service` over a new connection.
async fn health(port: u16, service: &str) -> Result<ServingStatus, String> {
    health_on(channel(port).await?, service).await
}

/// A `Check` of a `tools/list` POST to `server`, as Envoy describes it.
fn check_request(token: Option<&str>, server: &str) -> CheckRequest {
    let path = format!("/mcp/{server}");
    let mut headers: std::collections::HashMap<String, String> = [
        (":authority", "127.0.0.1"),
        (":method", "POST"),
        (":path", path.as_str()),
        (":scheme", "http"),
        ("content-type", "application/json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    headers.insert("content-length".into(), MCP_BODY.len().to_string());
    if let Some(t) = token {
        headers.insert("authorization".into(), format!("Bearer {t}"));
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer::default()),
            destination: Some(Peer::default()),
            request: Some(AttrRequest {
                time: None,
                http: Some(HttpRequest {
                    id: "1".into(),
                    method: "POST".into(),
                    headers,
                    path: path.clone(),
                    host: "127.0.0.1".into(),
                    scheme: "http".into(),
                    size: MCP_BODY.len() as i64,
                    protocol: "HTTP/1.1".into(),
                    raw_body: MCP_BODY.as_bytes().to_vec(),
                    ..Default::default()
                }),
            }),
            context_extensions: [("mcp_server".to_owned(), server.to_owned())].into(),
            ..Default::default()
        }),
    }
}

/// `allow`, or `deny <HTTP status>` of a Check answer.
fn verdict(resp: &CheckResponse) -> String {
    match (resp.status.as_ref().map(|s| s.code), &resp.http_response) {
        (Some(0), _) => "allow".into(),
        (_, Some(HttpResponse::DeniedResponse(d))) => {
            format!("deny {}", d.status.as_ref().map_or(0, |s| s.code))
        }
        other => format!("unexpected {other:?}"),
    }
}

async fn check_on(channel: Channel, req: CheckRequest) -> Result<String, String> {
    let resp = AuthorizationClient::new(channel)
        .check(req)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(verdict(&resp.into_inner()))
}

/// A `Check` whose request message is sent only when `release` gets it (or
/// never, if it is dropped): in flight on the server from the first byte.
fn slow_check(
    channel: Channel,
) -> (
    mpsc::Sender<CheckRequest>,
    tokio::task::JoinHandle<Result<CheckResponse, tonic::Status>>,
) {
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unknown(format!("not ready: {e}")))?;
        let path =
            ::http::uri::PathAndQuery::from_static("/envoy.service.auth.v3.Authorization/Check");
        let codec = tonic_prost::ProstCodec::<CheckRequest, CheckResponse>::default();
        grpc.client_streaming(tonic::Request::new(ReceiverStream::new(rx)), path, codec)
            .await
            .map(tonic::Response::into_inner)
    });
    (tx, task)
}

/// One ext_proc stream: messages go out one at a time, each answer is read back.
struct ExtProc {
    tx: mpsc::Sender<ProcessingRequest>,
    rx: tonic::Streaming<ProcessingResponse>,
}

impl ExtProc {
    async fn open(channel: Channel) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(4);
        let resp = ExternalProcessorClient::new(channel)
            .process(ReceiverStream::new(rx))
            .await?;
        Ok(ExtProc {
            tx,
            rx: resp.into_inner(),
        })
    }

    async fn exchange(&mut self, msg: ProcessingRequest) -> Result<ProcessingResponse, String> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| "request stream closed".to_owned())?;
        match self.rx.message().await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err("response stream ended".into()),
            Err(e) => Err(format!("{e:?}")),
        }
    }
}

/// The request headers of a stream (answered with an empty headers response).
fn request_headers() -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Msg::RequestHeaders(HttpHeaders::default())),
        ..Default::default()
    }
}

/// A 200 response without ext_authz's context: refused with a 502.
fn response_headers_without_context() -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Msg::ResponseHeaders(HttpHeaders {
            headers: Some(HeaderMap {
                headers: vec![HeaderValue {
                    key: ":status".into(),
                    raw_value: b"200".to_vec(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn is_request_headers_reply(r: &ProcessingResponse) -> bool {
    matches!(r.response, Some(Reply::RequestHeaders(_)))
}

/// The status of an immediate response (0 for any other reply).
fn immediate_status(r: &ProcessingResponse) -> i32 {
    match &r.response {
        Some(Reply::ImmediateResponse(i)) => i.status.as_ref().map_or(0, |s| s.code),
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_turns_unready_serves_through_the_drain_delay_then_finishes_in_flight_work() {
    const DELAY: Duration = Duration::from_secs(3);
    let mut authz =
        authz_with(json!({"server": {"drain_delay": "3s", "shutdown_timeout": "10s"}})).await;
    let port = authz.grpc_port;
    let token = alice();
    for name in HEALTH_NAMES {
        assert_eq!(
            health(port, name).await,
            Ok(ServingStatus::Serving),
            "{name}"
        );
    }
    // In flight before SIGTERM: a Check whose body has not arrived, and an
    // ext_proc stream (as long as an MCP response) past its first message.
    let held = channel(port).await.expect("connect");
    let (body, in_flight_check) = slow_check(held.clone());
    let mut stream = ExtProc::open(held.clone()).await.expect("ext_proc stream");
    let first = stream
        .exchange(request_headers())
        .await
        .expect("first ext_proc answer");
    assert!(is_request_headers_reply(&first), "{first:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sent = Instant::now();
    signal(&mut authz, Signal::SIGTERM);
    let not_serving = poll_until(Duration::from_secs(2), || async {
        (health(port, "").await == Ok(ServingStatus::NotServing)).then_some(())
    })
    .await;
    assert!(
        not_serving.is_some(),
        "health never NOT_SERVING\n{}",
        authz.log_tail()
    );
    for name in HEALTH_NAMES {
        assert_eq!(
            health(port, name).await,
            Ok(ServingStatus::NotServing),
            "{name}"
        );
    }
    let (status, ready) = authz.readyz().await;
    assert_eq!((status, &ready["serving"]), (503, &json!(false)), "{ready}");
    let live = crate::harness::http_client()
        .get(authz.admin_url("/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(live.status(), 200, "liveness must hold while draining");
    // New connections are accepted and new Checks decided, both ways.
    let allowed = check_on(
        channel(port).await.expect("connect"),
        check_request(Some(&token), "knowledge"),
    )
    .await;
    assert_eq!(allowed.as_deref(), Ok("allow"), "{}", authz.log_tail());
    let denied = check_on(
        channel(port).await.expect("connect"),
        check_request(None, "knowledge"),
    )
    .await;
    assert_eq!(denied.as_deref(), Ok("deny 401"), "{}", authz.log_tail());
    assert!(
        sent.elapsed() < DELAY,
        "the checks above took {:?}: they no longer prove anything about the delay",
        sent.elapsed()
    );

    // After the delay: the port is closed, the process waits for the work in flight.
    let closed = poll_until(DELAY + Duration::from_secs(3), || async {
        (!port_open(port)).then(|| sent.elapsed())
    })
    .await
    .unwrap_or_else(|| panic!("gRPC port still open\n{}", authz.log_tail()));
    assert!(
        closed >= DELAY,
        "port closed {closed:?} after SIGTERM, before the {DELAY:?} drain delay"
    );
    assert!(!port_open(authz.admin_port), "admin port still open");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        authz.try_status().is_none(),
        "exited with a Check and a stream in flight\n{}",
        authz.log_tail()
    );

    body.send(check_request(Some(&token), "knowledge"))
        .await
        .expect("send the held Check's body");
    drop(body);
    let answer = in_flight_check
        .await
        .expect("task")
        .unwrap_or_else(|e| panic!("in-flight Check failed: {e:?}\n{}", authz.log_tail()));
    assert_eq!(verdict(&answer), "allow");
    let last = stream
        .exchange(response_headers_without_context())
        .await
        .unwrap_or_else(|e| panic!("in-flight ext_proc stream cut: {e}\n{}", authz.log_tail()));
    assert_eq!(immediate_status(&last), 502, "{last:?}");
    drop(stream);

    let status = exit_within(&mut authz, Duration::from_secs(5)).await;
    assert!(status.success(), "exit {status}\n{}", authz.log_tail());
    assert!(
        !authz.log_tail().contains("after the shutdown timeout"),
        "in-flight work was cut, not finished\n{}",
        authz.log_tail()
    );
    assert!(!port_open(port) && !port_open(authz.admin_port));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_still_open_after_the_shutdown_timeout_does_not_hold_the_exit() {
    // The harness default drain delay is 0s.
    let mut authz = authz_with(json!({"server": {"shutdown_timeout": "1s"}})).await;
    let held = channel(authz.grpc_port).await.expect("connect");
    let mut stream = ExtProc::open(held).await.expect("ext_proc stream");
    assert!(is_request_headers_reply(
        &stream.exchange(request_headers()).await.expect("answer")
    ));
    let sent = Instant::now();
    signal(&mut authz, Signal::SIGTERM);
    let status = exit_within(&mut authz, Duration::from_secs(5)).await;
    let took = sent.elapsed();
    assert!(status.success(), "exit {status}\n{}", authz.log_tail());
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}: the open stream was not waited for"
    );
    assert!(took < Duration::from_secs(4), "exited after {took:?}");
    assert!(
        stream.exchange(request_headers()).await.is_err(),
        "the stream outlived the process"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_or_a_sigint_ends_the_drain_delay() {
    for (first, second) in [
        (Signal::SIGTERM, Some(Signal::SIGTERM)),
        (Signal::SIGINT, None),
    ] {
        let mut authz = authz_with(json!({"server": {"drain_delay": "60s"}})).await;
        let sent = Instant::now();
        signal(&mut authz, first);
        if let Some(second) = second {
            let unready = poll_until(Duration::from_secs(2), || async {
                (authz.readyz().await.0 == 503).then_some(())
            })
            .await;
            assert!(unready.is_some(), "/readyz never 503\n{}", authz.log_tail());
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                authz.try_status().is_none(),
                "exited inside the 60s drain delay\n{}",
                authz.log_tail()
            );
            signal(&mut authz, second);
        }
        let status = exit_within(&mut authz, Duration::from_secs(5)).await;
        assert!(
            status.success(),
            "{first:?}: exit {status}\n{}",
            authz.log_tail()
        );
        assert!(sent.elapsed() < Duration::from_secs(6), "{first:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_timeout_cuts_a_stuck_check_but_not_an_ext_proc_stream() {
    let authz = authz_with(json!({"server": {"request_timeout": "500ms"}})).await;
    let held = channel(authz.grpc_port).await.expect("connect");
    let mut stream = ExtProc::open(held.clone()).await.expect("ext_proc stream");
    assert!(is_request_headers_reply(
        &stream.exchange(request_headers()).await.expect("answer")
    ));
    let started = Instant::now();
    let (body, stuck) = slow_check(held.clone());
    let err = tokio::time::timeout(Duration::from_secs(5), stuck)
        .await
        .expect("a Check without a body still pending after 5s")
        .expect("task")
        .expect_err("a Check without a body was answered");
    let took = started.elapsed();
    drop(body);
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("request_timeout"), "{err:?}");
    assert!(
        (Duration::from_millis(450)..Duration::from_secs(3)).contains(&took),
        "cut after {took:?}"
    );
    // The stream has now lived longer than the timeout and still answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = stream
        .exchange(response_headers_without_context())
        .await
        .expect("ext_proc stream cut by the request timeout");
    assert_eq!(immediate_status(&last), 502, "{last:?}");
    // A Check that arrives whole is decided as always.
    let ok = check_on(held, check_request(Some(&alice()), "knowledge")).await;
    assert_eq!(ok.as_deref(), Ok("allow"), "{}", authz.log_tail());
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrent_streams_holds_a_third_stream_until_one_ends() {
    let authz = authz_with(json!({"server": {"max_concurrent_streams": 2}})).await;
    let conn = channel(authz.grpc_port).await.expect("connect");
    let mut a = ExtProc::open(conn.clone()).await.expect("stream 1");
    let mut b = ExtProc::open(conn.clone()).await.expect("stream 2");
    for s in [&mut a, &mut b] {
        assert!(is_request_headers_reply(
            &s.exchange(request_headers()).await.expect("answer")
        ));
    }
    let third = tokio::spawn(async move {
        let mut c = ExtProc::open(conn).await?;
        c.exchange(request_headers())
            .await
            .map_err(tonic::Status::unknown)
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !third.is_finished(),
        "a third stream ran beside two: {:?}",
        third.await
    );
    // Ending stream 1 (both directions) frees its slot.
    let ExtProc { tx, rx } = a;
    drop(tx);
    drop(rx);
    let answer = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("third stream still waiting after one ended")
        .expect("task")
        .expect("third stream");
    assert!(is_request_headers_reply(&answer), "{answer:?}");
    assert!(is_request_headers_reply(
        &b.exchange(request_headers()).await.expect("stream 2")
    ));
}

/// One HTTP/2 frame header field set: (type, flags).
fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, u8)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head)?;
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok((head[3], head[4]))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_is_pinged_and_closed_when_the_ping_goes_unanswered() {
    let authz = authz_with(json!({"server": {
        "http2_keepalive_interval": "1s", "http2_keepalive_timeout": "1s"
    }}))
    .await;
    let port = authz.grpc_port;
    // A raw HTTP/2 client that answers SETTINGS but never a PING.
    let (pinged, closed) = tokio::task::spawn_blocking(move || {
        const SETTINGS: u8 = 4;
        const PING: u8 = 6;
        const GOAWAY: u8 = 7;
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(8)))
            .expect("timeout");
        let start = Instant::now();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .expect("preface");
        let mut pinged = None;
        loop {
            match read_frame(&mut s) {
                Ok((SETTINGS, 0)) => s.write_all(b"\0\0\0\x04\x01\0\0\0\0").expect("ack"),
                Ok((PING, 0)) => {
                    pinged.get_or_insert(start.elapsed());
                }
                Ok((GOAWAY, _)) | Err(_) => return (pinged, start.elapsed()),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("raw client");
    let pinged = pinged.unwrap_or_else(|| panic!("no PING within {closed:?}"));
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&pinged),
        "first PING after {pinged:?}"
    );
    let unanswered = closed - pinged;
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&unanswered),
        "closed {unanswered:?} after the unanswered PING"
    );
}

/// A TLS client of the gRPC port trusting `ca`, presenting `identity` (PEM
/// certificate and key) if any; `Err` when the connection or the call fails.
async fn tls_health(port: u16, ca: &str, identity: Option<&str>) -> Result<ServingStatus, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(pem) = identity {
        tls = tls.identity(Identity::from_pem(pem, pem));
    }
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls config")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    health_on(channel, "").await
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_tls_serves_clients_that_trust_it_and_mtls_requires_a_client_certificate() {
    let pki = Pki::new();
    let other = Pki::new();
    let ca = read(&pki.dir().join("ca.pem"));
    let other_ca = read(&other.dir().join("ca.pem"));
    let file = |name: &str| json!(pki.dir().join(name).to_str().expect("utf-8"));
    let tls = json!({"certificate": file("server.pem"), "private_key": file("server-key.pem")});

    // TLS: any client trusting the CA; not one trusting another CA, not plain text.
    let authz = authz_with(json!({"listen": {"grpc_tls": tls.clone()}})).await;
    let port = authz.grpc_port;
    assert_eq!(
        tls_health(port, &ca, None).await,
        Ok(ServingStatus::Serving),
        "{}",
        authz.log_tail()
    );
    assert!(
        tls_health(port, &other_ca, None).await.is_err(),
        "a client trusting another CA connected"
    );
    assert!(
        health(port, "").await.is_err(),
        "plain text answered on the TLS port"
    );
    drop(authz);

    // mTLS: a client certificate signed by `client_ca` is required.
    let mut mtls = tls;
    mtls["client_ca"] = file("ca.pem");
    let authz = authz_with(json!({"listen": {"grpc_tls": mtls}})).await;
    let port = authz.grpc_port;
    let client = pki.client_identity("envoy", None);
    assert_eq!(
        tls_health(port, &ca, Some(&client)).await,
        Ok(ServingStatus::Serving),
        "{}",
        authz.log_tail()
    );
    let refused = tls_health(port, &ca, None).await;
    assert!(refused.is_err(), "no client certificate, yet {refused:?}");
    let stranger = other.client_identity("envoy", None);
    let refused = tls_health(port, &ca, Some(&stranger)).await;
    assert!(
        refused.is_err(),
        "a certificate of another CA, yet {refused:?}"
    );
    assert!(
        health(port, "").await.is_err(),
        "plain text answered on the mTLS port"
    );
    // The services behind it decide as always.
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca))
                .identity(Identity::from_pem(&client, &client))
                .domain_name("localhost"),
        )
        .expect("tls")
        .connect()
        .await
        .expect("mTLS connect");
    let verdict = check_on(channel, check_request(Some(&alice()), "knowledge")).await;
    assert_eq!(verdict.as_deref(), Ok("allow"), "{}", authz.log_tail());
}

/// `envoy/quickstart.yaml` with the `mcp_authz` cluster on Unix socket `sock`.
fn envoy_template_with_pipe(sock: &Path) -> String {
    let template =
        std::fs::read_to_string(repo_path("envoy/quickstart.yaml")).expect("read quickstart");
    let tcp = "socket_address: { address: 127.0.0.1, port_value: 9191 }";
    assert_eq!(
        template.matches(tcp).count(),
        1,
        "the mcp_authz endpoint moved"
    );
    // The port stays in a comment: the harness maps every canonical port.
    template.replace(
        tcp,
        &format!(
            "pipe: {{ path: {} }}  # was port_value: 9191",
            sock.display()
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_reaches_mcp_authz_on_a_unix_socket_that_replaced_a_stale_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("grpc.sock");
    // A socket file left by a killed process: nobody listens on it.
    drop(std::os::unix::net::UnixListener::bind(&sock).expect("stale socket"));
    assert!(sock.exists());
    let echo = Echo::start().await;
    let unix = format!("unix:{}", sock.display());
    let mut authz = authz_with(json!({"listen": {"grpc": unix}})).await;
    let meta = std::fs::metadata(&sock).expect("socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    let [listener, admin, mtls_listener, unused_grpc] = ports::free_ports();
    let envoy = Envoy::start_from(
        EnvoyPorts {
            listener,
            admin,
            authz_grpc: unused_grpc,
            upstreams: [echo.port; 4],
            mtls_listener,
            authz_public: authz.public_port,
        },
        &repo_path(CANONICAL_TLS_DIR),
        &envoy_template_with_pipe(&sock),
    )
    .await;
    let auth = format!("Bearer {}", alice());
    let reply = http::post(&envoy.url("/mcp/knowledge"), &[("authorization", &auth)]).await;
    assert_eq!(
        reply.seen().all("x-forwarded-user"),
        ["alice"],
        "{}",
        authz.log_tail()
    );
    let mut claims = demo_claims("mallory");
    claims["business_groups"] = json!(["marketing"]);
    let auth = format!("Bearer {}", demo_token(&claims));
    let reply = http::post(&envoy.url("/mcp/presto"), &[("authorization", &auth)]).await;
    Expected::forbidden(&["business-group-gate"], PRESTO_GATE_MESSAGE)
        .check(reply.status, &reply.body)
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", authz.log_tail(), envoy.log_tail()));
    assert_eq!(echo.hits(), 1, "the denied request reached the upstream");

    drop(envoy);
    let status = authz.terminate();
    assert!(status.success(), "exit {status}\n{}", authz.log_tail());
    assert!(!sock.exists(), "socket file left behind");
}

/// `mcp-authz serve` with `listen.grpc: unix:<sock>`: its exit status and output.
fn serve_on_socket(sock: &Path) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let [grpc, admin] = ports::free_ports();
    let mut config = authz_config(
        &AuthzOptions::default(),
        &PolicySources::default(),
        grpc,
        admin,
    );
    config["listen"]["grpc"] = json!(format!("unix:{}", sock.display()));
    let path = dir.path().join("mcp-authz.yaml");
    std::fs::write(&path, config.to_string()).expect("write config");
    let log = dir.path().join("serve.log");
    let mut cmd = Command::new(AUTHZ_BIN);
    cmd.arg("serve").arg("--config").arg(&path);
    let mut child = ChildGuard::spawn("mcp-authz serve", &mut cmd, &log, false);
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_status() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "serve still running\n{}",
            child.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&log).expect("read log"))
}

#[test]
fn serve_refuses_a_socket_path_held_by_a_file_or_a_live_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").expect("write");
    let (status, out) = serve_on_socket(&file);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("listen.grpc") && out.contains("is not a socket"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("file kept"),
        "keep me"
    );

    let live = dir.path().join("live.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&live).expect("bind");
    let (status, out) = serve_on_socket(&live);
    assert!(!status.success(), "{out}");
    assert!(out.contains("another process is listening"), "{out}");
    assert!(live.exists(), "the live socket file was removed");
}
