//! Test harness: real processes (Envoy, mcp-authz, an OIDC issuer) on free ports.
//!
//! Every process is stopped on drop and every wait polls against a deadline.

pub mod authz;
pub mod bad_tokens;
pub mod broken;
pub mod decision;
pub mod demo;
pub mod echo;
pub mod envoy;
pub mod grpc_check;
pub mod h2;
pub mod http;
pub mod list_upstream;
pub mod mcp_stack;
pub mod oidc;
pub mod pki;
pub mod policy_files;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod rpc;
pub mod tokens;
pub mod traffic;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use authz::{Authz, AuthzOptions, PolicySources};
pub use echo::{Echo, Seen};
pub use envoy::{Envoy, EnvoyPorts};
pub use http::Reply;

/// How often a poll retries.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// `path` inside the repository.
pub fn repo_path(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// An HTTP client that ignores proxy settings: every target is on loopback.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// Calls `f` until it returns `Some`, or `None` once `deadline` has passed.
pub async fn poll_until<T, F, Fut>(deadline: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// `limits.max_body_bytes` of the shipped quickstart configuration, rendered
/// into Envoy's `with_request_body.max_request_bytes` (checked by
/// `envoy_render` and `quickstart_body_limit_is_the_harness_constant`).
pub const QUICKSTART_MAX_BODY_BYTES: usize = 1_048_576;

/// Every value of header `name` (case-insensitive) in `headers`, in order:
/// what the test upstreams recorded, repeated headers as separate entries.
pub fn header_values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A small MCP JSON-RPC request body.
pub const MCP_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// The quickstart Envoy (free ports) in front of `authz`, with `upstreams`
/// behind the presto, spark, knowledge and experimental clusters.
pub async fn envoy_in_front(authz: &Authz, upstreams: [u16; 4]) -> Envoy {
    let [listener, admin, mtls_listener] = ports::free_ports();
    Envoy::start(EnvoyPorts {
        listener,
        admin,
        authz_grpc: authz.grpc_port,
        upstreams,
        mtls_listener,
        authz_public: authz.public_port,
    })
    .await
}

/// Echo upstream + mcp-authz + Envoy, wired as in the quickstart.
pub struct Stack {
    // Field order is drop order: Envoy first, then mcp-authz, then the upstream.
    pub envoy: Envoy,
    pub authz: Authz,
    /// The upstream of all four clusters.
    pub echo: Echo,
}

impl Stack {
    /// Starts the echo upstream (all four clusters), mcp-authz and Envoy.
    pub async fn start(opts: &AuthzOptions) -> Self {
        Self::start_with(opts, &PolicySources::default()).await
    }

    /// [`Stack::start`] with policies and registry from `sources`.
    pub async fn start_with(opts: &AuthzOptions, sources: &PolicySources) -> Self {
        let echo = Echo::start().await;
        let authz = Authz::start_with(opts, sources).await;
        let envoy = envoy_in_front(&authz, [echo.port; 4]).await;
        Self { envoy, authz, echo }
    }

    /// The quickstart stack with no extra options.
    pub async fn quickstart() -> Self {
        Self::start(&AuthzOptions::default()).await
    }

    /// POSTs [`MCP_BODY`] to `path` on Envoy's listener with `headers` (repeats allowed).
    pub async fn post(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        http::post(&self.envoy.url(path), headers).await
    }

    /// POSTs to the knowledge server with `Authorization: Bearer <token>`.
    pub async fn call_knowledge(&self, token: &str) -> Reply {
        self.post(
            "/mcp/knowledge",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    /// Both processes' recent logs, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}\n{}", self.authz.log_tail(), self.envoy.log_tail())
    }
}
