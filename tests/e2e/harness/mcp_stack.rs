//! Envoy + mcp-authz in front of a chosen upstream (the echo server or the
//! real demo MCP servers), optionally with test-made certificates on the mTLS
//! listener. [`super::Stack`] stays the echo-only stack other tests build.

use std::path::Path;

use super::demo::DemoServers;
use super::{Authz, AuthzOptions, Echo, Envoy, EnvoyPorts, ports, repo_path};

/// What answers behind Envoy's four MCP clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// One echo server: every allowed request comes back as [`super::Seen`].
    Echo,
    /// The real demo MCP servers, one per cluster.
    DemoServers,
}

// Held only so the upstream lives as long as the stack.
#[allow(dead_code, reason = "never read, only dropped")]
enum Running {
    Echo(Echo),
    Demo(DemoServers),
}

/// A running Envoy + mcp-authz (quickstart configuration) + upstream.
pub struct McpStack {
    // Field order is drop order: Envoy first, then mcp-authz, then the upstream.
    pub envoy: Envoy,
    pub authz: Authz,
    _upstream: Running,
}

impl McpStack {
    /// Starts the stack with the committed demo-only certificates.
    pub async fn start(upstream: Upstream) -> Self {
        Self::start_with_tls(upstream, &repo_path(super::envoy::CANONICAL_TLS_DIR)).await
    }

    /// Starts the stack; the mTLS listener uses `ca.pem`, `server.pem` and
    /// `server-key.pem` from `tls_dir` (see [`super::pki::Pki`]).
    pub async fn start_with_tls(upstream: Upstream, tls_dir: &Path) -> Self {
        let (running, upstreams) = match upstream {
            Upstream::Echo => {
                let echo = Echo::start().await;
                let port = echo.port;
                (Running::Echo(echo), [port; 4])
            }
            Upstream::DemoServers => {
                let demo = DemoServers::start().await;
                let ports = demo.ports();
                (Running::Demo(demo), ports)
            }
        };
        let authz = Authz::start(&AuthzOptions::default()).await;
        let [listener, admin, mtls_listener] = ports::free_ports();
        let envoy = Envoy::start_with_tls(
            EnvoyPorts {
                listener,
                admin,
                authz_grpc: authz.grpc_port,
                upstreams,
                mtls_listener,
                authz_public: authz.public_port,
            },
            tls_dir,
        )
        .await;
        Self {
            envoy,
            authz,
            _upstream: running,
        }
    }

    /// Requests the echo upstream has received; `None` with the demo servers.
    pub fn upstream_hits(&self) -> Option<usize> {
        match &self._upstream {
            Running::Echo(echo) => Some(echo.hits()),
            Running::Demo(_) => None,
        }
    }

    /// `http://127.0.0.1:<listener>{path}`.
    pub fn url(&self, path: &str) -> String {
        self.envoy.url(path)
    }

    /// `https://127.0.0.1:<mTLS listener>{path}`.
    pub fn mtls_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.envoy.ports.mtls_listener)
    }

    /// Both processes' recent logs, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}\n{}", self.authz.log_tail(), self.envoy.log_tail())
    }
}
