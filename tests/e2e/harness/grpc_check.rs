//! ext_authz `Check` sent straight to mcp-authz over gRPC, without Envoy: for
//! requests the shipped Envoy config can no longer produce (no context extension).

use std::collections::HashMap;

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as AttrRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};

/// One HTTP request as Envoy would describe it to mcp-authz.
pub struct CheckInput<'a> {
    pub path: &'a str,
    /// Lowercase names, as Envoy sends them.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    /// Per-route `context_extensions` (e.g. `mcp_server`).
    pub context_extensions: &'a [(&'a str, &'a str)],
}

/// mcp-authz's answer.
#[derive(Debug)]
pub struct CheckOutcome {
    /// gRPC status code of the decision (0: allowed).
    pub code: i32,
    /// HTTP status of a denial (0 when allowed).
    pub status: i32,
    /// Body of a denial.
    pub body: String,
}

/// Sends one `Check` for a POST built from `input` to mcp-authz's gRPC port.
pub async fn check(grpc_port: u16, input: &CheckInput<'_>) -> CheckOutcome {
    let mut headers: HashMap<String, String> = [
        (":authority", "127.0.0.1"),
        (":method", "POST"),
        (":path", input.path),
        (":scheme", "http"),
        ("content-type", "application/json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    headers.insert("content-length".into(), input.body.len().to_string());
    for (name, value) in input.headers {
        headers.insert((*name).to_owned(), (*value).to_owned());
    }
    let http = HttpRequest {
        id: "1".into(),
        method: "POST".into(),
        headers,
        path: input.path.into(),
        host: "127.0.0.1".into(),
        scheme: "http".into(),
        size: i64::try_from(input.body.len()).expect("body size"),
        protocol: "HTTP/1.1".into(),
        raw_body: input.body.to_vec(),
        ..Default::default()
    };
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer::default()),
            destination: Some(Peer::default()),
            request: Some(AttrRequest {
                time: None,
                http: Some(http),
            }),
            context_extensions: input
                .context_extensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }),
    };
    let mut client = AuthorizationClient::connect(format!("http://127.0.0.1:{grpc_port}"))
        .await
        .expect("connect to mcp-authz gRPC");
    let resp = client.check(request).await.expect("Check RPC").into_inner();
    let code = resp.status.map_or(-1, |s| s.code);
    let (status, body) = match resp.http_response {
        Some(HttpResponse::DeniedResponse(d)) => (d.status.map_or(0, |s| s.code), d.body),
        _ => (0, String::new()),
    };
    CheckOutcome { code, status, body }
}
