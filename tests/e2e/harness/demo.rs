//! The example company's demo MCP servers (`examples/demo_mcp_servers`) as
//! Envoy's upstreams (answering with SSE, or with JSON: [`DemoStack`]), and
//! the rmcp client helpers the tests talk to them with.

#[path = "../../../examples/demo_mcp_servers/client.rs"]
pub mod client;
#[path = "../../../examples/demo_mcp_servers/servers.rs"]
pub mod servers;

use std::collections::HashMap;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

use client::McpClient;
use servers::{ResponseMode, RunningServer, ServerName, all_names};

use super::{Authz, AuthzOptions, Envoy, envoy_in_front};

/// The four demo servers, each on a free port of 127.0.0.1.
///
/// They are tasks of the test's runtime, not processes: they end with it.
pub struct DemoServers {
    running: Vec<RunningServer>,
}

impl DemoServers {
    /// Starts presto, spark, knowledge and experimental (stateful, SSE answers).
    pub async fn start() -> Self {
        Self::start_with(ResponseMode::Sse).await
    }

    /// Starts presto, spark, knowledge and experimental answering in `mode`.
    pub async fn start_with(mode: ResponseMode) -> Self {
        let mut running = Vec::new();
        for name in all_names() {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind demo server");
            running.push(servers::spawn_with(name, mode, listener).expect("spawn demo server"));
        }
        Self { running }
    }

    /// The server's own MCP endpoint (not through Envoy).
    pub fn direct_url(&self, name: ServerName) -> String {
        self.running
            .iter()
            .find(|s| s.name == name)
            .expect("every demo server runs")
            .url()
    }

    /// Ports in [`super::EnvoyPorts::upstreams`] order: presto, spark, knowledge, experimental.
    pub fn ports(&self) -> [u16; 4] {
        // `all_names()` is in that order too.
        std::array::from_fn(|i| self.running[i].addr.port())
    }
}

/// The demo servers in a chosen [`ResponseMode`] behind the quickstart Envoy
/// and mcp-authz (what `McpStack` is for the SSE servers).
pub struct DemoStack {
    // Field order is drop order: Envoy first, then mcp-authz, then the servers.
    pub envoy: Envoy,
    pub authz: Authz,
    pub servers: DemoServers,
}

impl DemoStack {
    /// Starts the demo servers in `mode`, mcp-authz (quickstart config) and Envoy.
    pub async fn start(mode: ResponseMode) -> Self {
        let servers = DemoServers::start_with(mode).await;
        let authz = Authz::start(&AuthzOptions::default()).await;
        let envoy = envoy_in_front(&authz, servers.ports()).await;
        Self {
            envoy,
            authz,
            servers,
        }
    }

    /// `http://127.0.0.1:<listener>{path}`.
    pub fn url(&self, path: &str) -> String {
        self.envoy.url(path)
    }

    /// Both processes' recent logs, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}\n{}", self.authz.log_tail(), self.envoy.log_tail())
    }
}

/// [`client::connect`] over a given HTTP client (e.g. one presenting a
/// client certificate), sending `headers` on every request.
pub async fn connect_with(
    http: reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<McpClient> {
    let custom_headers: HashMap<HeaderName, HeaderValue> = headers
        .iter()
        .map(|(n, v)| {
            (
                HeaderName::from_bytes(n.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            )
        })
        .collect();
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(url).custom_headers(custom_headers),
    );
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("mcp-authz-e2e", env!("CARGO_PKG_VERSION")),
    );
    Ok(info.serve(transport).await?)
}

/// How long one MCP exchange may take: a hung client is a failure, not a stall.
pub const EXCHANGE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// Awaits `fut`, panicking with `what` if it takes over [`EXCHANGE_DEADLINE`].
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(EXCHANGE_DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {EXCHANGE_DEADLINE:?}"))
}
