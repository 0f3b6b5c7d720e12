//! `mcp-authz serve`: the ext_authz gRPC server and the admin HTTP server.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::api::{ApiState, router as api_router};
use crate::check::{Checker, DecisionObserver};
use crate::ext_authz::{AuthzService, SERVICE_NAME};
use crate::jwt::Verifier;
use crate::store::Registry;
use crate::telemetry::{AdminState, admin_router};

use super::ConfigArg;

/// How long in-flight requests may take to finish after SIGTERM.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the audit writer may take to write its queue at shutdown.
const AUDIT_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Everything that can fail on bad input happens before a port is bound.
    let cfg = Arc::new(args.config.load()?);
    let verifier = Arc::new(Verifier::new(&cfg).map_err(anyhow::Error::msg)?);
    let registry = Arc::new(Registry::load(cfg.clone())?);
    for i in cfg.issuers.iter().filter(|i| i.demo_only) {
        tracing::warn!(issuer = %i.name, "DEMO-ONLY issuer trusted: anyone can mint its tokens");
    }
    // Outside the runtime: the OTLP exporter's HTTP client is blocking.
    let otlp = crate::telemetry::start_otlp(&cfg.tracing)?;
    let served = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(cfg, verifier, registry));
    if let Some(o) = otlp {
        o.shutdown();
    }
    served
}

async fn serve(
    cfg: Arc<crate::config::Config>,
    verifier: Arc<Verifier>,
    registry: Arc<Registry>,
) -> anyhow::Result<()> {
    let grpc = TcpListener::bind(cfg.listen.grpc)
        .await
        .with_context(|| format!("listen.grpc: cannot bind `{}`", cfg.listen.grpc))?;
    let admin = TcpListener::bind(cfg.listen.admin)
        .await
        .with_context(|| format!("listen.admin: cannot bind `{}`", cfg.listen.admin))?;
    let public = TcpListener::bind(cfg.listen.public)
        .await
        .with_context(|| format!("listen.public: cannot bind `{}`", cfg.listen.public))?;
    verifier.spawn_refreshers();
    tokio::spawn(registry.clone().watch());

    // Live server status: written by the probe, read by the UI (and the API)
    // and, with `pinning: enforce`, by Checks.
    let status = crate::probe::StatusBoard::default();
    // Every decision record goes to each observer (audit log, metrics).
    let mut observers: Vec<Arc<dyn DecisionObserver>> = Vec::new();
    let audit = crate::telemetry::AuditLog::start(&cfg.audit)?.map(Arc::new);
    if let Some(a) = &audit {
        observers.push(a.clone());
    }
    let metrics = Arc::new(crate::telemetry::Metrics::new(
        registry.clone(),
        verifier.clone(),
    ));
    observers.push(metrics.clone());
    let usage = Arc::new(
        crate::telemetry::Usage::start(registry.clone()).context("cannot start the usage tally")?,
    );
    observers.push(usage.clone());
    let checker = Arc::new(
        Checker::new(cfg.clone(), verifier.clone(), registry.clone())
            .with_status_board(status.clone())
            .with_observer(Arc::new(observers)),
    );
    let key = checker
        .binding_key()
        .cloned()
        .context("no key to bind MCP sessions and response contexts with")?;
    if key.is_ephemeral() {
        tracing::info!(
            "sessions.key_file is not set: MCP session handles and ext_proc contexts are bound with a random key of this process (one replica only; sessions end on restart)"
        );
    }
    let processor = crate::ext_proc::ProcessorService::server(cfg.clone(), registry.clone(), key);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
        .await;
    health
        .set_service_status(
            crate::ext_proc::SERVICE_NAME,
            tonic_health::ServingStatus::Serving,
        )
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let state = AdminState::new(verifier, registry.clone(), status.clone());
    crate::probe::spawn(cfg.clone(), registry.clone(), status.clone());
    let ui = Arc::new(crate::ui::UiState {
        cfg: cfg.clone(),
        registry: registry.clone(),
        checker: checker.clone(),
        status: status.clone(),
    });

    let api = Arc::new(ApiState {
        cfg: cfg.clone(),
        registry: registry.clone(),
        checker: checker.clone(),
        status: status.clone(),
    });
    health
        .set_service_status(
            crate::api::GRPC_SERVICE_NAME,
            tonic_health::ServingStatus::Serving,
        )
        .await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let grpc_addr = grpc.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let mut grpc_stop = stop_rx.clone();
    let grpc_server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(AuthzService::server(checker))
        .add_service(processor)
        .add_service(crate::api::RegistryApi::server(api.clone()))
        .serve_with_incoming_shutdown(
            // serve_with_incoming ignores the builder's TCP_NODELAY: without it
            // Nagle's algorithm meets delayed ACKs and some Checks stall ~40 ms.
            TcpIncoming::from(grpc).with_nodelay(Some(true)),
            async move {
                let _ = grpc_stop.wait_for(|s| *s).await;
            },
        );
    let mut admin_stop = stop_rx.clone();
    let admin_server = axum::serve(
        admin,
        admin_router(state.clone())
            .merge(crate::telemetry::metrics_router(metrics))
            .merge(crate::telemetry::usage_router(usage))
            .merge(crate::ui::router(ui))
            .layer(axum::middleware::from_fn({
                let allowed = Arc::new(crate::telemetry::host_guard::allowed_hosts(&cfg));
                move |req, next| crate::telemetry::host_guard::guard(allowed.clone(), req, next)
            })),
    )
    .with_graceful_shutdown(async move {
        let _ = admin_stop.wait_for(|s| *s).await;
    });
    let mut public_stop = stop_rx.clone();
    let public_server = axum::serve(public, api_router(api)).with_graceful_shutdown(async move {
        let _ = public_stop.wait_for(|s| *s).await;
    });
    state.set_serving(true);
    tracing::info!(grpc = %grpc_addr, admin = %admin_addr, "mcp-authz serving");

    let servers = async {
        tokio::try_join!(
            async { grpc_server.await.context("gRPC server failed") },
            async { admin_server.await.context("admin server failed") },
            async { public_server.await.context("public server failed") },
        )
    };
    tokio::pin!(servers);
    tokio::select! {
        r = &mut servers => {
            r?;
            anyhow::bail!("a server stopped without being asked to");
        }
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down: finishing in-flight checks");
    state.set_serving(false);
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DRAIN_TIMEOUT, servers).await {
        Ok(r) => {
            r?;
            tracing::info!("stopped");
        }
        Err(_) => {
            tracing::warn!(timeout = ?DRAIN_TIMEOUT, "connections still open after the drain timeout; stopping anyway")
        }
    }
    if let Some(a) = audit {
        // Lines of the last Checks reach the file before the process exits.
        tokio::task::spawn_blocking(move || a.flush(AUDIT_FLUSH_TIMEOUT)).await?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
