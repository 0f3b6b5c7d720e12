//! The four demo MCP servers of the fictional "Acme" company (presto, spark, knowledge, experimental), served over streamable HTTP at `/mcp` (stateful with SSE answers by default, or stateless with JSON answers: [`ResponseMode`]); shared by the `demo_mcp_servers` example and the integration tests.
//!
//! Include from a test with
//! `#[path = "../../examples/demo_mcp_servers/servers.rs"] mod servers;`.
//! Every tool answers deterministically (no randomness, no clock) so tests can
//! assert on the content.

// Each including target (the example binary, several integration tests) uses a
// different subset of this module.
#![allow(dead_code)]

use std::net::SocketAddr;

use anyhow::Context as _;
use rmcp::{
    ServerHandler,
    model::{Implementation, ServerCapabilities, ServerConfig},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

// One file per server; `#[path]` keeps the lookup relative to this file's
// directory however this file is itself included.
#[path = "experimental.rs"]
pub mod experimental;
#[path = "knowledge.rs"]
pub mod knowledge;
#[path = "presto.rs"]
pub mod presto;
#[path = "spark.rs"]
pub mod spark;

use experimental::Experimental;
use knowledge::Knowledge;
use presto::Presto;
use spark::Spark;

/// Which demo server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerName {
    Presto,
    Spark,
    Knowledge,
    Experimental,
}

impl ServerName {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerName::Presto => "presto",
            ServerName::Spark => "spark",
            ServerName::Knowledge => "knowledge",
            ServerName::Experimental => "experimental",
        }
    }

    /// Exact tool names the server lists, in `tools/list` order (sorted).
    pub fn tool_names(self) -> &'static [&'static str] {
        match self {
            ServerName::Presto => &["drop_table", "get_revenue_metrics", "run_query"],
            ServerName::Spark => &["get_job_logs", "summarize_failure"],
            ServerName::Knowledge => &["rate_doc", "search_docs"],
            ServerName::Experimental => &["try_anything"],
        }
    }
}

impl std::fmt::Display for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// All four servers, in a fixed order.
pub fn all_names() -> [ServerName; 4] {
    [
        ServerName::Presto,
        ServerName::Spark,
        ServerName::Knowledge,
        ServerName::Experimental,
    ]
}

pub(crate) fn server_config(name: &str, title: &str, instructions: &str) -> ServerConfig {
    ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        .with_server_info(Implementation::new(name, env!("CARGO_PKG_VERSION")).with_title(title))
        .with_instructions(instructions)
}

/// How a demo server answers MCP POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// rmcp's default: stateful sessions (`Mcp-Session-Id`, a GET stream,
    /// DELETE), every request answered with a `text/event-stream` body.
    #[default]
    Sse,
    /// Stateless (no `Mcp-Session-Id`; POST only), a request answered with
    /// one `application/json` body (rmcp falls back to SSE for a request
    /// whose handler sends a notification or request before its result).
    Json,
}

fn mcp_service<S: ServerHandler + Send + 'static>(
    make: fn() -> S,
    mode: ResponseMode,
    shutdown: &CancellationToken,
) -> StreamableHttpService<S, LocalSessionManager> {
    // Host validation (rmcp's DNS-rebinding guard, loopback only by default) is
    // off: these servers sit behind Envoy, which forwards arbitrary Host values.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(shutdown.child_token());
    let config = match mode {
        ResponseMode::Sse => config,
        ResponseMode::Json => config
            .with_legacy_session_mode(false)
            .with_json_response(true),
    };
    StreamableHttpService::new(move || Ok(make()), Default::default(), config)
}

/// The axum router of one server: its MCP endpoint at `/mcp`, answering with SSE.
pub fn router(name: ServerName, shutdown: &CancellationToken) -> axum::Router {
    router_with(name, ResponseMode::Sse, shutdown)
}

/// [`router`] answering in `mode`.
pub fn router_with(
    name: ServerName,
    mode: ResponseMode,
    shutdown: &CancellationToken,
) -> axum::Router {
    let router = axum::Router::new();
    match name {
        ServerName::Presto => router.nest_service("/mcp", mcp_service(Presto::new, mode, shutdown)),
        ServerName::Spark => router.nest_service("/mcp", mcp_service(Spark::new, mode, shutdown)),
        ServerName::Knowledge => {
            router.nest_service("/mcp", mcp_service(Knowledge::new, mode, shutdown))
        }
        ServerName::Experimental => {
            router.nest_service("/mcp", mcp_service(Experimental::new, mode, shutdown))
        }
    }
}

/// Serves `name` on `listener` until `shutdown` is cancelled, answering with SSE.
pub async fn serve(
    name: ServerName,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_with(name, ResponseMode::Sse, listener, shutdown).await
}

/// [`serve`] answering in `mode`.
pub async fn serve_with(
    name: ServerName,
    mode: ResponseMode,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = router_with(name, mode, &shutdown);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .with_context(|| format!("demo MCP server {name} failed"))
}

/// A server started by [`spawn`]; cancel it with [`RunningServer::stop`].
pub struct RunningServer {
    pub name: ServerName,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// The MCP endpoint, e.g. `http://127.0.0.1:18001/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.context("demo MCP server task panicked")?
    }
}

/// Starts `name` on `listener` in a background task, answering with SSE.
pub fn spawn(name: ServerName, listener: tokio::net::TcpListener) -> anyhow::Result<RunningServer> {
    spawn_with(name, ResponseMode::Sse, listener)
}

/// [`spawn`] answering in `mode`.
pub fn spawn_with(
    name: ServerName,
    mode: ResponseMode,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_with(name, mode, listener, shutdown.clone()));
    Ok(RunningServer {
        name,
        addr,
        shutdown,
        task,
    })
}
