//! `mcp-authz serve`: the gRPC server (ext_authz, ext_proc, registry API,
//! health) on TCP, TLS or a Unix socket, the admin and public HTTP servers,
//! and their shutdown in the order Kubernetes expects: not ready first, then
//! after `server.drain_delay` no new connections, then in-flight work ends.

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::api::{ApiState, router as api_router};
use crate::check::{Checker, DecisionObserver};
use crate::config::{GrpcAddr, GrpcTls};
use crate::ext_authz::{AuthzService, SERVICE_NAME};
use crate::jwt::Verifier;
use crate::store::Registry;
use crate::telemetry::{AdminState, admin_router};

use super::ConfigArg;

/// How long the audit writer may take to write its queue at shutdown.
const AUDIT_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest TLS handshake on the gRPC listener.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Mode of the gRPC Unix socket: the owner and its group (the pod's Envoy) may connect.
const SOCKET_MODE: u32 = 0o660;
/// gRPC health names: the whole server (`""`) and every service.
const HEALTH_NAMES: [&str; 4] = [
    "",
    SERVICE_NAME,
    crate::ext_proc::SERVICE_NAME,
    crate::api::GRPC_SERVICE_NAME,
];

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
    let workers = worker_threads(
        std::env::var("TOKIO_WORKER_THREADS").ok().as_deref(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    )?;
    tracing::info!(workers, "async worker threads");
    let served = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(cfg, verifier, registry));
    if let Some(o) = otlp {
        o.shutdown();
    }
    served
}

/// Async worker threads: `TOKIO_WORKER_THREADS` when set (a positive
/// integer, else an error naming it), otherwise one fewer than the cores
/// this process may use (`cores`, which honours cgroup CPU quotas), at least
/// one. mcp-authz shares its cores with Envoy (a sidecar or node proxy), the
/// audit writer and list filtering (blocking threads): on 2 cores one worker
/// gave 37 µs of CPU per request through Envoy against 50 µs with two, and
/// more raw Checks/s (README, Benchmarks).
fn worker_threads(env: Option<&str>, cores: usize) -> anyhow::Result<usize> {
    match env {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("TOKIO_WORKER_THREADS must be a positive integer, not `{v}`")),
        None => Ok(cores.saturating_sub(1).max(1)),
    }
}

async fn serve(
    cfg: Arc<crate::config::Config>,
    verifier: Arc<Verifier>,
    registry: Arc<Registry>,
) -> anyhow::Result<()> {
    // TLS files are read and checked before any port is bound.
    let limits = &cfg.server;
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        // Envoy resets each ext_proc stream when its HTTP request ends; under
        // load many resets can land on streams not yet accepted, and h2's
        // default limit (20) would then close Envoy's whole connection
        // (GOAWAY), failing every Check on it. Envoy is the trusted peer here.
        .http2_max_pending_accept_reset_streams(Some(limits.max_concurrent_streams as usize));
    if let Some(tls) = &cfg.listen.grpc_tls {
        builder = builder
            .tls_config(server_tls(tls)?)
            .context("listen.grpc_tls: the certificate, key or client CA cannot be used")?;
    }
    let grpc = GrpcListener::bind(&cfg.listen.grpc).await?;
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
    let mut checker = Checker::new(cfg.clone(), verifier.clone(), registry.clone())
        .with_status_board(status.clone())
        .with_observer(Arc::new(observers));
    if let Some(a) = &cfg.approvals {
        let decided = metrics.clone();
        let approvals = Arc::new(
            crate::approvals::Approvals::connect(a)
                .await
                .context("approvals.database: cannot open the approvals database")?
                .with_decision_hook(Box::new(move |r, approved| {
                    decided.approval_decided(r, approved)
                })),
        );
        metrics.watch_approvals(
            approvals.clone(),
            crate::telemetry::Metrics::APPROVALS_PENDING_INTERVAL,
        );
        checker = checker.with_approvals(approvals);
    }
    let checker = Arc::new(checker);
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
    let (mut health, health_service) = tonic_health::server::health_reporter();
    for name in HEALTH_NAMES {
        health
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let admin_addr = admin.local_addr()?;
    let grpc_addr = grpc.describe()?;
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // ext_proc streams last as long as an MCP response and health is
    // answered from memory: only the unary services get the deadline.
    let router = builder
        .add_service(health_service)
        .add_service(Deadline::new(
            AuthzService::server(checker),
            limits.request_timeout,
        ))
        .add_service(processor)
        .add_service(Deadline::new(
            crate::api::RegistryApi::server(api.clone()),
            limits.request_timeout,
        ));
    // Removed once the gRPC server has stopped (and on every early return).
    let mut _socket_file = None;
    let grpc_server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match grpc {
            GrpcListener::Tcp(listener) => Box::pin(router.serve_with_incoming_shutdown(
                // serve_with_incoming ignores the builder's TCP_NODELAY: without it
                // Nagle's algorithm meets delayed ACKs and some Checks stall ~40 ms.
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                stopped(stop_rx.clone()),
            )),
            GrpcListener::Unix(listener, file) => {
                _socket_file = Some(file);
                Box::pin(router.serve_with_incoming_shutdown(
                    tokio_stream::wrappers::UnixListenerStream::new(listener),
                    stopped(stop_rx.clone()),
                ))
            }
        };
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
    .with_graceful_shutdown(stopped(stop_rx.clone()));
    let public_server =
        axum::serve(public, api_router(api)).with_graceful_shutdown(stopped(stop_rx.clone()));
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
    let mut signals = Signals::new();
    let signal = tokio::select! {
        r = &mut servers => {
            r?;
            anyhow::bail!("a server stopped without being asked to");
        }
        s = signals.next() => s,
    };

    // 1. Not ready, still serving: load balancers and Kubernetes endpoints
    // stop sending new work while requests already on their way are answered.
    state.set_serving(false);
    for name in HEALTH_NAMES {
        health
            .set_service_status(name, tonic_health::ServingStatus::NotServing)
            .await;
    }
    // Ctrl-C is an operator at a terminal, not a rollout: no delay.
    let delay = match signal {
        Stop::Terminate => limits.drain_delay,
        Stop::Interrupt => Duration::ZERO,
    };
    tracing::info!(
        signal = signal.name(),
        drain_delay = %humantime::format_duration(delay),
        "shutting down: gRPC health NOT_SERVING and /readyz 503; listeners serve until the drain delay ends"
    );
    if !delay.is_zero() {
        tokio::select! {
            r = &mut servers => {
                r?;
                anyhow::bail!("a server stopped during the drain delay");
            }
            () = tokio::time::sleep(delay) => {}
            s = signals.next() => {
                tracing::info!(signal = s.name(), "second signal: ending the drain delay now");
            }
        }
    }

    // 2. No new connections; in-flight Checks and ext_proc streams finish.
    tracing::info!(
        shutdown_timeout = %humantime::format_duration(limits.shutdown_timeout),
        "closing the listeners; finishing in-flight requests and streams"
    );
    let _ = stop_tx.send(true);
    // Health watchers would otherwise hold their connections open to the end.
    for name in HEALTH_NAMES {
        health.clear_service_status(name).await;
    }
    match tokio::time::timeout(limits.shutdown_timeout, servers).await {
        Ok(r) => {
            r?;
            tracing::info!("stopped");
        }
        Err(_) => {
            tracing::warn!(
                shutdown_timeout = %humantime::format_duration(limits.shutdown_timeout),
                "requests or streams still open after the shutdown timeout; stopping anyway"
            )
        }
    }
    if let Some(a) = audit {
        // Lines of the last Checks reach the file before the process exits.
        tokio::task::spawn_blocking(move || a.flush(AUDIT_FLUSH_TIMEOUT)).await?;
    }
    Ok(())
}

/// The bound gRPC listener.
enum GrpcListener {
    Tcp(TcpListener),
    Unix(tokio::net::UnixListener, SocketFile),
}

impl GrpcListener {
    /// Binds `listen.grpc`; a Unix socket replaces a stale socket file and gets [`SOCKET_MODE`].
    async fn bind(addr: &GrpcAddr) -> anyhow::Result<Self> {
        match addr {
            GrpcAddr::Tcp(a) => {
                Ok(GrpcListener::Tcp(TcpListener::bind(a).await.with_context(
                    || format!("listen.grpc: cannot bind `{a}`"),
                )?))
            }
            GrpcAddr::Unix(path) => bind_unix(path),
        }
    }

    /// The address for the log line (the port the system chose, if it was 0).
    fn describe(&self) -> anyhow::Result<String> {
        Ok(match self {
            GrpcListener::Tcp(l) => l.local_addr()?.to_string(),
            GrpcListener::Unix(_, file) => format!("unix:{}", file.0.display()),
        })
    }
}

/// Binds a Unix socket at `path`: a socket file nobody listens on is
/// removed first; anything else there (a live socket, a regular file) is an error.
fn bind_unix(path: &Path) -> anyhow::Result<GrpcListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!("listen.grpc: another process is listening on `unix:{shown}`");
            }
            std::fs::remove_file(path).with_context(|| {
                format!("listen.grpc: cannot remove the stale socket `{shown}`")
            })?;
            tracing::info!(path = %shown, "removed a stale socket file");
        }
        Ok(_) => anyhow::bail!("listen.grpc: `{shown}` exists and is not a socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("listen.grpc: cannot inspect `{shown}`"));
        }
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listen.grpc: cannot bind `unix:{shown}`"))?;
    let file = SocketFile(path.to_path_buf());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("listen.grpc: cannot set the mode of `{shown}`"))?;
    Ok(GrpcListener::Unix(listener, file))
}

/// A socket file this process created; removed on drop.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot remove the socket file");
        }
    }
}

/// `listen.grpc_tls` as tonic's TLS settings: files read now, names in errors.
fn server_tls(tls: &GrpcTls) -> anyhow::Result<ServerTlsConfig> {
    let read = |key: &str, path: &Path| {
        std::fs::read(path)
            .with_context(|| format!("listen.grpc_tls.{key}: cannot read `{}`", path.display()))
    };
    let identity = Identity::from_pem(
        read("certificate", &tls.certificate)?,
        read("private_key", &tls.private_key)?,
    );
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(TLS_HANDSHAKE_TIMEOUT);
    if let Some(ca) = &tls.client_ca {
        config = config.client_ca_root(Certificate::from_pem(read("client_ca", ca)?));
    }
    Ok(config)
}

/// A unary gRPC service whose every request is answered within `limit`,
/// reading its body included; past it the caller gets `DEADLINE_EXCEEDED`.
/// (tonic's `Server::timeout` would also cover streaming services.)
#[derive(Clone)]
struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S> Deadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Deadline { inner, limit }
    }
}

impl<S: NamedService> NamedService for Deadline<S> {
    const NAME: &'static str = S::NAME;
}

type HttpRequest = http::Request<tonic::body::Body>;
type HttpResponse = http::Response<tonic::body::Body>;

impl<S> tonic::codegen::Service<HttpRequest> for Deadline<S>
where
    S: tonic::codegen::Service<HttpRequest, Response = HttpResponse, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        let limit = self.limit;
        let method = req.uri().path().to_owned();
        let answer = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(limit, answer).await {
                Ok(answered) => answered,
                Err(_) => {
                    let limit = humantime::format_duration(limit);
                    tracing::warn!(%method, %limit, "gRPC request exceeded server.request_timeout");
                    Ok(tonic::Status::deadline_exceeded(format!(
                        "not answered within server.request_timeout ({limit})"
                    ))
                    .into_http())
                }
            }
        })
    }
}

/// What asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM: Kubernetes (or any supervisor) stopping the pod.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Terminate => "SIGTERM",
            Stop::Interrupt => "SIGINT",
        }
    }
}

/// SIGTERM and SIGINT, listened to from the moment this is created.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only"))
            .ok();
        Signals { term }
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) -> Stop {
        let term = async {
            match &mut self.term {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Stop::Interrupt,
            () = term => Stop::Terminate,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod worker_tests {
    use super::worker_threads;

    #[test]
    fn one_core_is_left_to_envoy_and_blocking_work() {
        assert_eq!(worker_threads(None, 1).unwrap(), 1);
        assert_eq!(worker_threads(None, 2).unwrap(), 1);
        assert_eq!(worker_threads(None, 8).unwrap(), 7);
    }

    #[test]
    fn the_environment_wins_and_must_be_a_positive_integer() {
        assert_eq!(worker_threads(Some("4"), 2).unwrap(), 4);
        for bad in ["0", "-1", "two", ""] {
            let e = worker_threads(Some(bad), 2).unwrap_err().to_string();
            assert!(e.contains("TOKIO_WORKER_THREADS"), "{bad}: {e}");
        }
    }
}
