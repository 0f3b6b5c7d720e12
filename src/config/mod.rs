//! Configuration: YAML file → raw serde types → validated [`Config`].
//!
//! Loading never binds a port or touches the network; every error names the
//! file, the key path and, for syntax errors, the line.

mod load;
mod model;
mod raw;
mod validate;

pub use load::{ConfigError, EMBEDDED_QUICKSTART, Problem, load, load_str, parse_yaml};
pub use model::*;
pub use validate::remote_url_problem;

use std::time::Duration;

/// Default ext_authz gRPC listen address.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:9191";
/// Default admin HTTP listen address (`/healthz`, `/readyz`).
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9192";
/// Default clock leeway applied to `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Largest leeway we accept: more would make expiry meaningless.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Bounds of `refresh_interval`: `0s` would spin against the identity
/// provider; beyond a day rotated keys go unseen. (1s is allowed for tests
/// that watch a rotation; production wants minutes.)
pub const REFRESH_INTERVAL_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));
/// Shortest `min_refresh_interval` (its longest is `refresh_interval`).
pub const MIN_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Bounds of `fetch_timeout`.
pub const FETCH_TIMEOUT_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));
/// Bounds of `reload.interval`.
pub const RELOAD_INTERVAL_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(3600));
/// Longest a Check waits for a key fetch triggered by an unknown `kid`; the
/// fetch itself goes on in the background (up to `fetch_timeout` per request)
/// so a later Check finds the keys. Keep Envoy's ext_authz timeout above this
/// plus normal Check time (the shipped configs use 1s).
pub const CHECK_KEY_WAIT: Duration = Duration::from_millis(400);
/// Largest OIDC discovery or JWKS document read; larger ones are refused.
pub const MAX_KEY_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Default interval between JWKS refreshes of a remote issuer.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Default minimum time between two fetches triggered by unknown key ids.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Default timeout of one JWKS or discovery fetch.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_millis(500);
/// Default claim naming the user.
pub const DEFAULT_USER_CLAIM: &str = "sub";
/// Default claim naming the surface (OAuth client) the token was issued to.
pub const DEFAULT_SURFACE_CLAIM: &str = "azp";
/// Default upstream header carrying the user.
pub const DEFAULT_USER_HEADER: &str = "x-forwarded-user";
/// Default upstream header carrying the groups.
pub const DEFAULT_GROUPS_HEADER: &str = "x-forwarded-groups";
/// Identity headers always removed from client requests unless mcp-authz sets them.
pub const DEFAULT_STRIP_HEADERS: [&str; 6] = [
    "x-forwarded-user",
    "x-forwarded-service",
    "x-forwarded-groups",
    "x-forwarded-business-groups",
    "x-forwarded-surface",
    "x-forwarded-email",
];
/// Default public HTTP address (RFC 9728 resource metadata).
pub const DEFAULT_PUBLIC_ADDR: &str = "127.0.0.1:9193";
/// Default upstream header carrying a service caller's SPIFFE id.
pub const DEFAULT_SERVICE_HEADER: &str = "x-forwarded-service";
/// Default header a trusted surface uses to pass its channel.
pub const DEFAULT_CHANNEL_HEADER: &str = "x-mcp-channel";
/// Default largest MCP request body (Envoy's `with_request_body.max_request_bytes`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default `responses.max_body_bytes`: a list response (or SSE event) of up
/// to 4 MiB, about 8,000 tool definitions of 500 bytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Default deepest JSON nesting accepted in a body.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;
/// Default number of decisions cached per policy snapshot.
pub const DEFAULT_DECISION_CACHE_ENTRIES: u64 = 10_000;
/// Default size bound of the decision cache, in bytes.
pub const DEFAULT_DECISION_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Largest decision cache size accepted, in bytes.
pub const MAX_DECISION_CACHE_BYTES: u64 = 1024 * 1024 * 1024;
/// Default of `routing.fallback_host_path`: without Envoy's `mcp_server`
/// context extension the request is denied, not routed by guess.
pub const DEFAULT_FALLBACK_HOST_PATH: bool = false;
/// Default largest JSON-RPC batch.
pub const DEFAULT_MAX_BATCH: usize = 32;
/// Default `realm` in `WWW-Authenticate`.
pub const DEFAULT_REALM: &str = "mcp-authz";
/// Default largest bearer token accepted, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default number of verified tokens cached.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: u64 = 100_000;
/// Default interval between content-hash checks of policy and registry files.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// Default `service.name` of exported spans (`tracing.service_name`).
pub const DEFAULT_SERVICE_NAME: &str = "mcp-authz";
/// Path of the OTLP/HTTP traces endpoint, added to a `tracing.otlp_endpoint` without a path.
pub const OTLP_TRACES_PATH: &str = "/v1/traces";
/// Default of `audit.queue_lines`: lines waiting for the audit writer.
pub const DEFAULT_AUDIT_QUEUE_LINES: usize = 16_384;
/// Bounds of `audit.queue_lines`.
pub const AUDIT_QUEUE_LINES_BOUNDS: (usize, usize) = (16, 1_048_576);
/// Default of `probe.enabled`.
pub const DEFAULT_PROBE_ENABLED: bool = true;
/// Default time between two probes of a server.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// Bounds of `probe.interval`: faster would load the MCP servers; slower
/// leaves an outage or a changed tool unseen for too long.
pub const PROBE_INTERVAL_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(200), Duration::from_secs(3600));
/// Default longest one probe may take.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds of `probe.timeout` (at most `probe.interval` too).
pub const PROBE_TIMEOUT_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(60));
/// Default latency above which an answering server is `degraded`.
pub const DEFAULT_PROBE_DEGRADED_AFTER: Duration = Duration::from_secs(1);

/// Surface name given to tokens whose client id is not a configured surface.
pub const UNKNOWN_SURFACE: &str = "unknown";
/// Default `api.name_namespace`: reverse DNS of `mcp-authz.dev`.
pub const DEFAULT_API_NAME_NAMESPACE: &str = "dev.mcp-authz";
/// Default `api.trust_forwarded_identity`: identity headers are never trusted.
pub const DEFAULT_TRUST_FORWARDED_IDENTITY: bool = false;
/// Header carrying `api.forwarded_secret_file`'s secret from a trusted proxy.
pub const FORWARDED_SECRET_HEADER: &str = "x-mcp-authz-proxy-secret";
/// Shortest accepted forwarded-identity secret, in bytes.
pub const MIN_FORWARDED_SECRET_BYTES: usize = 32;
