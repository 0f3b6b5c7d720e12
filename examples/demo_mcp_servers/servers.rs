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
    handler::server::router::tool::ToolRouter,
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

/// A demo server whose tool definitions can be changed when it starts.
pub trait Tools: Sized {
    /// The server's tools, as `tools/list` lists them.
    fn tools_mut(&mut self) -> &mut ToolRouter<Self>;
}

/// Descriptions that replace the compiled-in ones, `(tool, description)`:
/// a server that changed a tool after its definition was pinned (drift).
pub type Descriptions = std::sync::Arc<Vec<(String, String)>>;

fn mcp_service<S: ServerHandler + Tools + Send + 'static>(
    make: fn() -> S,
    mode: ResponseMode,
    shutdown: &CancellationToken,
    descriptions: Descriptions,
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
    let make = move || {
        let mut server = make();
        for (tool, description) in descriptions.iter() {
            if let Some(route) = server.tools_mut().map.get_mut(tool.as_str()) {
                route.attr.description = Some(description.clone().into());
            }
        }
        Ok(server)
    };
    StreamableHttpService::new(make, Default::default(), config)
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
    router_changed(name, mode, shutdown, Descriptions::default())
}

/// [`router_with`] listing the tools of `descriptions` with those descriptions.
pub fn router_changed(
    name: ServerName,
    mode: ResponseMode,
    shutdown: &CancellationToken,
    descriptions: Descriptions,
) -> axum::Router {
    let router = axum::Router::new();
    let d = descriptions;
    match name {
        ServerName::Presto => {
            router.nest_service("/mcp", mcp_service(Presto::new, mode, shutdown, d))
        }
        ServerName::Spark => {
            router.nest_service("/mcp", mcp_service(Spark::new, mode, shutdown, d))
        }
        ServerName::Knowledge => {
            router.nest_service("/mcp", mcp_service(Knowledge::new, mode, shutdown, d))
        }
        ServerName::Experimental => {
            router.nest_service("/mcp", mcp_service(Experimental::new, mode, shutdown, d))
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
    serve_changed(name, mode, listener, shutdown, Descriptions::default()).await
}

/// [`serve_with`] with the tool descriptions of `descriptions` replaced.
async fn serve_changed(
    name: ServerName,
    mode: ResponseMode,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    descriptions: Descriptions,
) -> anyhow::Result<()> {
    let app = router_changed(name, mode, &shutdown, descriptions);
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
    spawn_changed(name, mode, listener, &[])
}

/// [`spawn_with`] listing each `(tool, description)` of `descriptions` with
/// that description instead of its own: the server as it would be after its
/// owner changed a tool (a tool it does not serve is an error).
pub fn spawn_changed(
    name: ServerName,
    mode: ResponseMode,
    listener: tokio::net::TcpListener,
    descriptions: &[(&str, &str)],
) -> anyhow::Result<RunningServer> {
    if let Some((tool, _)) = descriptions
        .iter()
        .find(|(tool, _)| !name.tool_names().contains(tool))
    {
        anyhow::bail!("the {name} demo server has no tool `{tool}`");
    }
    let descriptions: Descriptions = std::sync::Arc::new(
        descriptions
            .iter()
            .map(|(t, d)| ((*t).to_owned(), (*d).to_owned()))
            .collect(),
    );
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_changed(
        name,
        mode,
        listener,
        shutdown.clone(),
        descriptions,
    ));
    Ok(RunningServer {
        name,
        addr,
        shutdown,
        task,
    })
}
