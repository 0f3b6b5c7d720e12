//! Admin HTTP: liveness and readiness for Kubernetes probes and operators.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;

use crate::jwt::Verifier;
use crate::probe::StatusBoard;
use crate::store::Registry;

/// What readiness looks at.
pub struct AdminState {
    pub verifier: Arc<Verifier>,
    pub registry: Arc<Registry>,
    /// Set once the gRPC listener serves.
    pub serving: AtomicBool,
    /// Live server status (the probe writes it); drift is reported here.
    pub status: StatusBoard,
}

impl AdminState {
    /// Readiness state; not serving until [`AdminState::set_serving`].
    pub fn new(verifier: Arc<Verifier>, registry: Arc<Registry>, status: StatusBoard) -> Arc<Self> {
        Arc::new(AdminState {
            verifier,
            registry,
            serving: AtomicBool::new(false),
            status,
        })
    }

    /// Marks the gRPC server as serving (or draining).
    pub fn set_serving(&self, on: bool) {
        self.serving.store(on, Ordering::Release);
    }
}

/// The admin router.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// 200 when serving and every issuer holds keys. Stale keys (last fetch
/// failed) keep the replica ready, since they still verify tokens, but are
/// reported so an operator sees the identity provider outage; likewise a
/// failed policy reload is reported while the last good policies serve.
/// Server health and tool-definition drift (`servers`, `drift`) are reported
/// only: an MCP server being down or drifted does not make mcp-authz unready
/// (it still decides correctly; `pinning: enforce` denies drifted tools).
async fn readyz(State(s): State<Arc<AdminState>>) -> (StatusCode, Json<serde_json::Value>) {
    let serving = s.serving.load(Ordering::Acquire);
    let issuers = s.verifier.status();
    let keys = issuers.iter().all(|i| i.keys > 0);
    let ready = serving && keys;
    let board = s.status.all();
    let servers: std::collections::BTreeMap<_, _> = board
        .iter()
        .map(|(name, st)| (name.clone(), st.health.as_str()))
        .collect();
    let drift: std::collections::BTreeMap<_, _> = board
        .iter()
        .filter(|(_, st)| !st.drift.is_empty())
        .map(|(name, st)| (name.clone(), st.drift.clone()))
        .collect();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "ready": ready,
            "serving": serving,
            "issuers": issuers,
            "policies": s.registry.status(),
            "servers": servers,
            "drift": drift,
        })),
    )
}
