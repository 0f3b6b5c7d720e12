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

use std::time::Duration;

/// Default ext_authz gRPC listen address.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:9191";
/// Default admin HTTP listen address (`/healthz`, `/readyz`).
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9192";
/// Default clock leeway applied to `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Largest leeway we accept: more would make expiry meaningless.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
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
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default deepest JSON nesting accepted in a body.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;
/// Default number of decisions cached per policy snapshot.
pub const DEFAULT_DECISION_CACHE_ENTRIES: u64 = 10_000;
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
/// Surface name given to tokens whose client id is not a configured surface.
pub const UNKNOWN_SURFACE: &str = "unknown";
