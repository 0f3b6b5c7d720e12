//! Live status of registered servers: what the background probe last saw of
//! each (health, latency, last success, tool-definition drift). The registry
//! API, the web UI and `/readyz` read it; a Check reads only the drift of the
//! tool it decides (with `pinning: enforce`), never waits for a probe.

pub mod client;
pub mod digest;
mod runner;

pub use runner::{probe_server, round, spawn};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// A server's health as the last probe saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not probed yet (or probing is off).
    #[default]
    Unknown,
    /// Answered `initialize` and `tools/list` in time.
    Up,
    /// Answered, but slowly or with errors.
    Degraded,
    /// Refused the probe's credential (401/403).
    AuthFailed,
    /// Did not answer (connection refused, timeout, not MCP).
    Down,
}

impl Health {
    /// Stable label for APIs, pages and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::AuthFailed => "auth_failed",
            Health::Down => "down",
        }
    }
}

/// How a live tool differs from its registered (pinned) definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Drift {
    /// The live definition's digest differs from the pinned one.
    Changed {
        tool: String,
        pinned: String,
        live: String,
    },
    /// A registered tool the server no longer lists.
    Missing { tool: String },
    /// A tool the server lists that the registry does not.
    Unregistered { tool: String },
}

impl Drift {
    /// The tool the drift is about.
    pub fn tool(&self) -> &str {
        match self {
            Drift::Changed { tool, .. }
            | Drift::Missing { tool }
            | Drift::Unregistered { tool } => tool,
        }
    }
}

/// What the last probe of one server found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServerStatus {
    pub health: Health,
    /// When the last probe ran.
    pub checked_at: Option<SystemTime>,
    /// When the server last answered successfully.
    pub last_success: Option<SystemTime>,
    /// Round-trip time of the last successful probe.
    pub latency: Option<Duration>,
    /// Why the last probe failed, if it did (no secrets).
    pub error: Option<String>,
    /// Tool-definition drift found by the last successful probe.
    pub drift: Vec<Drift>,
}

impl ServerStatus {
    /// Whether `tool` has drifted from its pinned definition.
    pub fn drifted(&self, tool: &str) -> bool {
        self.drift.iter().any(|d| d.tool() == tool)
    }
}

/// The status of every server, shared between the probe (writer) and its
/// readers. A server never probed reads as [`ServerStatus::default`].
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<RwLock<HashMap<String, ServerStatus>>>,
}

impl StatusBoard {
    /// The status of one server.
    pub fn get(&self, server: &str) -> ServerStatus {
        self.inner
            .read()
            .map(|m| m.get(server).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Records the result of a probe.
    pub fn set(&self, server: &str, status: ServerStatus) {
        if let Ok(mut m) = self.inner.write() {
            m.insert(server.to_owned(), status);
        }
    }

    /// Whether `tool` of `server` has drifted (no copy of the status is made:
    /// this is what a Check reads with `pinning: enforce`).
    pub fn drifted(&self, server: &str, tool: &str) -> bool {
        self.inner
            .read()
            .map(|m| m.get(server).is_some_and(|s| s.drifted(tool)))
            .unwrap_or(false)
    }

    /// Every server's status, by name.
    pub fn all(&self) -> HashMap<String, ServerStatus> {
        self.inner.read().map(|m| m.clone()).unwrap_or_default()
    }
}
