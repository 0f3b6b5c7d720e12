//! Raw configuration as written in YAML: serde types only, no validation.
//!
//! Every struct denies unknown keys so a typo is an error, not a silently
//! ignored setting. [`super::Config::from_raw`] turns these into the validated
//! configuration.

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory that relative paths resolve against; defaults to the
    /// directory of the configuration file itself.
    #[serde(default)]
    pub base_dir: Option<String>,
    #[serde(default)]
    pub listen: RawListen,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub claims: RawClaims,
    #[serde(default)]
    pub surfaces: Vec<RawSurface>,
    #[serde(default)]
    pub identity_headers: RawIdentityHeaders,
    #[serde(default)]
    pub denials: RawDenials,
    #[serde(default)]
    pub limits: RawLimits,
    pub policies: Option<RawPolicies>,
    pub registry: Option<RawRegistry>,
    #[serde(default)]
    pub reload: RawReload,
    #[serde(default)]
    pub request_context: RawRequestContext,
    #[serde(default)]
    pub resource_metadata: RawResourceMetadata,
    #[serde(default)]
    pub routing: RawRouting,
    #[serde(default)]
    pub origins: RawOrigins,
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub probe: RawProbe,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub tracing: RawTracing,
    #[serde(default)]
    pub responses: RawResponses,
    #[serde(default)]
    pub sessions: RawSessions,
    pub approvals: Option<RawApprovals>,
    /// `off`, `report` or `enforce`.
    pub pinning: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponses {
    pub filter_lists: Option<bool>,
    /// `deny` or `pass`.
    pub unparsable: Option<String>,
    pub max_body_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// `sqlite:PATH` (relative to base_dir) or `postgres://...`.
    pub database: Option<String>,
    /// A file holding the database URL (with its password).
    pub database_url_file: Option<String>,
    pub request_ttl: Option<String>,
    pub grant_ttl: Option<String>,
    pub approval_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    pub bind: Option<bool>,
    pub key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// `stdout`, `off`, or a file path.
    pub output: Option<String>,
    pub sample_allowed: Option<f64>,
    #[serde(default)]
    pub log_arguments: Vec<String>,
    pub queue_lines: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub enabled: Option<bool>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub degraded_after: Option<String>,
    pub bearer_token_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub fallback_host_path: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrigins {
    #[serde(default)]
    pub allowed: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    /// `host:port` or `unix:/absolute/path.sock`.
    pub grpc: Option<String>,
    pub admin: Option<String>,
    pub public: Option<String>,
    pub grpc_tls: Option<RawGrpcTls>,
}

/// `listen.grpc_tls`: PEM files of the gRPC listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrpcTls {
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub client_ca: Option<String>,
}

/// `server`: draining, shutdown and HTTP/2 limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub drain_delay: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub max_concurrent_streams: Option<u64>,
    pub request_timeout: Option<String>,
    pub http2_keepalive_interval: Option<String>,
    pub http2_keepalive_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub name: String,
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub algorithms: Vec<String>,
    pub leeway: Option<String>,
    #[serde(default)]
    pub demo_only: bool,
    pub jwks: Option<RawJwks>,
    pub hmac_secret_file: Option<String>,
    pub refresh_interval: Option<String>,
    pub min_refresh_interval: Option<String>,
    pub fetch_timeout: Option<String>,
    pub user_namespace: Option<String>,
    #[serde(default)]
    pub require_resource_audience: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwks {
    pub file: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub discovery: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaims {
    pub user: Option<String>,
    pub groups: Option<String>,
    pub business_groups: Option<String>,
    pub surface: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSurface {
    pub name: String,
    #[serde(default)]
    pub client_ids: Vec<String>,
    pub environment: String,
    #[serde(default)]
    pub trusted_for_context: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentityHeaders {
    pub user: Option<String>,
    pub groups: Option<String>,
    pub business_groups: Option<String>,
    pub surface: Option<String>,
    pub service: Option<String>,
    pub strip: Option<Vec<String>>,
    #[serde(default)]
    pub strip_authorization: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDenials {
    pub realm: Option<String>,
    pub resource_metadata_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_token_bytes: Option<usize>,
    pub token_cache_entries: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub max_json_depth: Option<usize>,
    pub max_batch: Option<usize>,
    pub decision_cache_entries: Option<u64>,
    pub decision_cache_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestContext {
    pub channel_header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResourceMetadata {
    /// Public base URL of the Envoy in front of the MCP servers.
    pub public_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicies {
    pub schema: String,
    pub files: Vec<String>,
    #[serde(default)]
    pub shadow: Vec<String>,
    #[serde(default)]
    pub tests: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub files: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReload {
    pub interval: Option<String>,
}

/// The registry API (`/v0.1/`, gRPC `mcp_authz.registry.v1.Registry`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub name_namespace: Option<String>,
    #[serde(default)]
    pub auditor_groups: Vec<String>,
    pub trust_forwarded_identity: Option<bool>,
    pub forwarded_secret_file: Option<String>,
}
