//! Runs the four demo MCP servers (presto, spark, knowledge, experimental) used by the quickstart: `cargo run --example demo_mcp_servers -- [--presto ADDR ...] [--json-response]`.

mod servers;

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use servers::{ResponseMode, ServerName};
use tokio_util::sync::CancellationToken;

/// Demo MCP servers of the fictional Acme company, each serving streamable
/// HTTP at `http://ADDR/mcp`.
#[derive(Debug, Parser)]
struct Args {
    /// Listen address of the presto (data queries) server.
    #[arg(long, default_value = "127.0.0.1:18001")]
    presto: SocketAddr,
    /// Listen address of the spark (job debugging) server.
    #[arg(long, default_value = "127.0.0.1:18002")]
    spark: SocketAddr,
    /// Listen address of the knowledge (docs) server.
    #[arg(long, default_value = "127.0.0.1:18003")]
    knowledge: SocketAddr,
    /// Listen address of the experimental (dev namespace) server.
    #[arg(long, default_value = "127.0.0.1:18004")]
    experimental: SocketAddr,
    /// Serve statelessly (no `Mcp-Session-Id`) and answer each request with
    /// one `application/json` body instead of an SSE stream.
    #[arg(long)]
    json_response: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();

    let mode = if args.json_response {
        ResponseMode::Json
    } else {
        ResponseMode::Sse
    };
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (name, addr) in [
        (ServerName::Presto, args.presto),
        (ServerName::Spark, args.spark),
        (ServerName::Knowledge, args.knowledge),
        (ServerName::Experimental, args.experimental),
    ] {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the {name} server"))?;
        let local = listener.local_addr()?;
        tracing::info!(server = %name, ?mode, "demo MCP server {name} listening on http://{local}/mcp");
        tasks.spawn(servers::serve_with(name, mode, listener, shutdown.clone()));
    }

    tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            tracing::info!("shutting down");
        }
        // A server that stops on its own (it should not) brings the rest down.
        Some(done) = tasks.join_next() => {
            shutdown.cancel();
            done.context("demo MCP server task panicked")??;
            anyhow::bail!("a demo MCP server stopped unexpectedly");
        }
    }
    shutdown.cancel();
    while let Some(done) = tasks.join_next().await {
        done.context("demo MCP server task panicked")??;
    }
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot install the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}
