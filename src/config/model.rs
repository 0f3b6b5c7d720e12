//! The validated configuration: what the rest of mcp-authz reads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

/// Validated configuration of one mcp-authz process.
#[derive(Debug, Clone)]
pub struct Config {
    /// File the configuration came from (for messages).
    pub source: String,
    /// Directory relative paths were resolved against.
    pub base_dir: PathBuf,
    pub listen: Listen,
    /// Draining, shutdown and HTTP/2 limits of the listeners (`server.*`).
    pub server: ServerConfig,
    pub issuers: Vec<IssuerConfig>,
    pub claims: ClaimMapping,
    pub surfaces: Vec<Arc<Surface>>,
    pub identity_headers: IdentityHeaders,
    pub denials: Denials,
    pub limits: Limits,
    pub policies: PolicySources,
    pub registry: RegistrySources,
    /// How often policy and registry files are hashed to detect changes
    /// (file events trigger an earlier check).
    pub reload_interval: Duration,
    pub request_context: RequestContextConfig,
    /// Public base URL (scheme://host[:port]) MCP clients use; builds the
    /// RFC 9728 resource URLs. `None`: no resource metadata is advertised.
    pub public_url: Option<String>,
    pub routing: Routing,
    pub origins: Origins,
    pub api: ApiConfig,
    /// The background status probe of registered servers.
    pub probe: ProbeConfig,
    /// What tool-definition drift found by the probe does.
    pub pinning: Pinning,
    /// The audit log of decisions (`audit.*`).
    pub audit: AuditConfig,
    /// OpenTelemetry export of spans (`tracing.*`).
    pub tracing: TracingConfig,
    /// What ext_proc does to MCP responses (`responses.*`).
    pub responses: ResponsesConfig,
    /// MCP session handles bound to their caller (`sessions.*`).
    pub sessions: SessionsConfig,
    /// Approvals of held tool calls (`approvals.*`); `None`: every call that
    /// needs approval is refused (`approval_unavailable`).
    pub approvals: Option<ApprovalsConfig>,
}

/// ext_proc's treatment of MCP responses (`responses.*`).
#[derive(Debug, Clone)]
pub struct ResponsesConfig {
    /// Remove from `tools/list` (and `prompts/list`, `resources/list`,
    /// `resources/templates/list`) results what the caller may not use.
    pub filter_lists: bool,
    /// What happens to a list response mcp-authz cannot read.
    pub unparsable: Unparsable,
    /// The largest list response (JSON body, or one SSE event) read, in bytes.
    pub max_body_bytes: usize,
}

/// What ext_proc does with a list response it cannot parse (not JSON,
/// duplicate keys, over the size limit, compressed, unknown content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unparsable {
    /// Replace it with a JSON-RPC error (the default: fail closed).
    Deny,
    /// Let it through unfiltered (for a server known to answer oddly).
    Pass,
}

/// Where approvals live and how long they last (`approvals.*`).
#[derive(Clone)]
pub struct ApprovalsConfig {
    /// sqlx database URL: `sqlite://ABSOLUTE?mode=rwc` or `postgres://...`.
    pub database_url: Secret,
    /// Whether the URL names PostgreSQL (else SQLite).
    pub postgres: bool,
    /// How long a pending request waits for an approver.
    pub request_ttl: std::time::Duration,
    /// How long an approved grant stays usable (once).
    pub grant_ttl: std::time::Duration,
    /// Base URL of the approvals page; the request id is appended.
    pub approval_url: String,
}

impl std::fmt::Debug for ApprovalsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalsConfig")
            .field("database_url", &"<redacted>")
            .field("postgres", &self.postgres)
            .field("request_ttl", &self.request_ttl)
            .field("grant_ttl", &self.grant_ttl)
            .field("approval_url", &self.approval_url)
            .finish()
    }
}

/// Session binding (`sessions.*`).
#[derive(Debug, Clone)]
pub struct SessionsConfig {
    /// Bind `Mcp-Session-Id` handles to their caller (needs ext_proc on MCP routes).
    pub bind: bool,
    /// HMAC key shared by the replicas; `None`: a random key per process.
    pub key: Option<Secret>,
}

/// OpenTelemetry trace export (`tracing.*`); off unless an endpoint is set.
#[derive(Debug, Clone, Default)]
pub struct TracingConfig {
    /// OTLP/HTTP (protobuf) traces URL, `/v1/traces` included; `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

/// Where audit lines go (`audit.output`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuditOutput {
    /// No audit log.
    Off,
    /// Standard output (process logs go to stderr).
    #[default]
    Stdout,
    /// Appended to this file (created if missing).
    File(PathBuf),
}

/// The audit log (`audit.*`): one JSON line per Check.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub output: AuditOutput,
    /// Share of allowed Checks written, `0.0..=1.0`; denials are always written.
    pub sample_allowed: f64,
    /// Tools whose `tools/call` arguments are logged (truncated); empty: none.
    pub log_arguments: Vec<String>,
    /// Lines waiting for the writer; beyond it lines are dropped and counted,
    /// never waited for.
    pub queue_lines: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            output: AuditOutput::Stdout,
            sample_allowed: 1.0,
            log_arguments: Vec::new(),
            queue_lines: super::DEFAULT_AUDIT_QUEUE_LINES,
        }
    }
}

/// The background status probe (`probe.*`).
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Whether servers are probed at all.
    pub enabled: bool,
    /// Time between two probes of a server.
    pub interval: Duration,
    /// Longest one probe (connect, `initialize`, `tools/list`) may take;
    /// beyond it the server is `down`.
    pub timeout: Duration,
    /// A successful probe slower than this marks the server `degraded`.
    pub degraded_after: Duration,
    /// File holding the probe's bearer token (sent as `Authorization:
    /// Bearer`, never logged); `None`: no credential.
    pub bearer_token_file: Option<PathBuf>,
}

/// What tool-definition drift does (`pinning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pinning {
    /// Digests are not compared.
    Off,
    /// Drift is shown (`/readyz`, API, UI) but nothing is denied.
    #[default]
    Report,
    /// A `tools/call` of a drifted tool is denied (`tool_drifted`).
    Enforce,
}

impl Pinning {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Pinning::Off => "off",
            Pinning::Report => "report",
            Pinning::Enforce => "enforce",
        }
    }
}

/// How a request is matched to an MCP server.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// When Envoy sends no `mcp_server` context extension, guess the server
    /// from the registry's hosts and path prefixes. `false`: deny instead.
    pub fallback_host_path: bool,
}

/// Browser origins allowed to call MCP servers.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Exact origins (`scheme://host[:port]`, lowercase). A request carrying
    /// an `Origin` header is refused unless its origin is listed; requests
    /// without `Origin` are unaffected.
    pub allowed: Vec<String>,
}

/// Where the Cedar schema, policies and policy tests are.
#[derive(Debug, Clone)]
pub struct PolicySources {
    pub schema: PathBuf,
    /// Policy files, or directories whose `*.cedar` files are read.
    pub files: Vec<PathBuf>,
    /// Policies evaluated on every check but not enforced (empty: no shadow).
    pub shadow: Vec<PathBuf>,
    /// Policy test case files or directories (`*.yaml`).
    pub tests: Vec<PathBuf>,
}

/// Where the registry catalog is.
#[derive(Debug, Clone)]
pub struct RegistrySources {
    /// Catalog files, or directories whose `*.yaml` files are read.
    pub files: Vec<PathBuf>,
}

/// Addresses mcp-authz binds.
#[derive(Debug, Clone)]
pub struct Listen {
    /// ext_authz, ext_proc, the registry gRPC API and gRPC health.
    pub grpc: GrpcAddr,
    /// TLS (and with a client CA, mTLS) on a TCP `grpc` listener; `None`: plain text.
    pub grpc_tls: Option<GrpcTls>,
    pub admin: SocketAddr,
    /// Public HTTP: RFC 9728 protected resource metadata, routed by Envoy.
    pub public: SocketAddr,
}

/// Where the gRPC listener is (`listen.grpc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcAddr {
    /// A TCP address such as `127.0.0.1:9191`.
    Tcp(SocketAddr),
    /// A Unix domain socket (`unix:/absolute/path.sock`), for an Envoy in the same pod.
    Unix(PathBuf),
}

impl std::fmt::Display for GrpcAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrpcAddr::Tcp(a) => write!(f, "{a}"),
            GrpcAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// TLS files of the gRPC listener (`listen.grpc_tls.*`), PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcTls {
    /// Server certificate chain.
    pub certificate: PathBuf,
    /// Private key of the certificate.
    pub private_key: PathBuf,
    /// CA of client certificates; set: every client must present one it signed (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// Default `server.drain_delay`: time between SIGTERM and closing the listeners.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// Bounds of `server.drain_delay`.
pub const DRAIN_DELAY_BOUNDS: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(300));
/// Default `server.shutdown_timeout`: longest wait for in-flight requests after the delay.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds of `server.shutdown_timeout`.
pub const SHUTDOWN_TIMEOUT_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(600));
/// Default `server.max_concurrent_streams` (HTTP/2, per connection).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1024;
/// Bounds of `server.max_concurrent_streams`.
pub const MAX_CONCURRENT_STREAMS_BOUNDS: (u32, u32) = (1, 65_536);
/// Default `server.request_timeout` of one unary gRPC request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds of `server.request_timeout`.
pub const REQUEST_TIMEOUT_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(300));
/// Default `server.http2_keepalive_interval`.
pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Bounds of `server.http2_keepalive_interval`.
pub const HTTP2_KEEPALIVE_INTERVAL_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));
/// Default `server.http2_keepalive_timeout`.
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds of `server.http2_keepalive_timeout`.
pub const HTTP2_KEEPALIVE_TIMEOUT_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(300));

/// How the listeners serve and stop (`server.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// After SIGTERM: health `NOT_SERVING` and `/readyz` 503 while every
    /// listener still serves, for this long (Kubernetes removes the endpoint).
    pub drain_delay: Duration,
    /// After the delay: longest wait for in-flight requests and streams.
    pub shutdown_timeout: Duration,
    /// HTTP/2 streams one gRPC connection may hold at once.
    pub max_concurrent_streams: u32,
    /// Longest one unary gRPC request (ext_authz `Check`, registry API) may
    /// take, body read included; ext_proc and health streams are exempt.
    pub request_timeout: Duration,
    /// Time between HTTP/2 pings on an idle gRPC connection.
    pub http2_keepalive_interval: Duration,
    /// A connection whose ping is not answered within this is closed.
    pub http2_keepalive_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            drain_delay: DEFAULT_DRAIN_DELAY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            http2_keepalive_interval: DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
            http2_keepalive_timeout: DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
        }
    }
}

/// One trusted token issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Short name used in logs, metrics and `dev-token --issuer`.
    pub name: String,
    /// Exact `iss` claim value.
    pub issuer: String,
    /// Accepted `aud` values; a token must carry at least one.
    pub audiences: Vec<String>,
    /// Accepted `alg` header values.
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    /// Set only for the demo issuer whose private key is public.
    pub demo_only: bool,
    pub keys: KeySource,
    /// File holding the HMAC secret; required for and only used by HS* algorithms.
    pub hmac_secret_file: Option<PathBuf>,
    pub refresh_interval: Duration,
    pub min_refresh_interval: Duration,
    pub fetch_timeout: Duration,
    /// Prefix (`<ns>:`) given to this issuer's users, groups and business
    /// groups; required when several issuers are configured.
    pub user_namespace: Option<String>,
    /// RFC 8707: the token's `aud` must name the resource URL of the MCP
    /// server it is used on (checked after routing), instead of `audiences`.
    pub require_resource_audience: bool,
}

/// Where an issuer's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// No public keys: the issuer uses HMAC only.
    None,
    /// A JWKS file, read once at start.
    File(PathBuf),
    /// A JWKS URL, refreshed periodically.
    Url(String),
    /// OIDC discovery at `<issuer>/.well-known/openid-configuration`.
    Discovery(String),
}

impl KeySource {
    /// Whether keys are fetched over the network (and can go stale).
    pub fn is_remote(&self) -> bool {
        matches!(self, KeySource::Url(_) | KeySource::Discovery(_))
    }
}

/// Which claims carry which part of the identity.
#[derive(Debug, Clone)]
pub struct ClaimMapping {
    pub user: String,
    pub groups: Option<String>,
    pub business_groups: Option<String>,
    pub surface: String,
}

/// Whether a surface serves production users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Prod,
    Dev,
}

impl Environment {
    /// The name used in configuration and Cedar.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Prod => "prod",
            Environment::Dev => "dev",
        }
    }
}

/// An AI surface (chat app, IDE plugin, bot, CLI) known by its OAuth client ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surface {
    pub name: String,
    pub client_ids: Vec<String>,
    pub environment: Environment,
    /// Whether the surface may pass request context such as a channel.
    pub trusted_for_context: bool,
}

/// Names of the upstream identity headers.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user: String,
    pub groups: String,
    pub business_groups: Option<String>,
    pub surface: Option<String>,
    /// Carries the SPIFFE id of a service caller.
    pub service: String,
    /// Removed from every allowed request unless mcp-authz sets them.
    pub strip: Vec<String>,
    pub strip_authorization: bool,
}

/// How denials look to clients.
#[derive(Debug, Clone)]
pub struct Denials {
    pub realm: String,
    pub resource_metadata_url: Option<String>,
}

/// Size limits on untrusted input and caches.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_token_bytes: usize,
    pub token_cache_entries: u64,
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    pub max_batch: usize,
    /// Decisions cached per policy snapshot (0 disables).
    pub decision_cache_entries: u64,
    /// Approximate bytes of decision-cache keys and values per policy snapshot (0 disables).
    pub decision_cache_bytes: u64,
}

/// Request context a trusted surface may pass.
#[derive(Debug, Clone)]
pub struct RequestContextConfig {
    /// Header carrying the channel (e.g. `#airflow-support`); honoured only
    /// from surfaces with `trusted_for_context`, stripped from all others.
    pub channel_header: String,
}

/// The registry API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Reverse-DNS namespace of API server names: registry server `presto`
    /// is `<name_namespace>/presto` in `/v0.1/servers`.
    pub name_namespace: String,
    /// Groups whose members may ask `CheckAccess` about another identity;
    /// anyone else may ask only about themselves.
    pub auditor_groups: Vec<String>,
    /// `trust_forwarded_identity`: the shared secret a trusted proxy sends in
    /// [`crate::config::FORWARDED_SECRET_HEADER`]; only a request carrying it
    /// is identified by the `identity_headers`. `None`: never trusted.
    pub forwarded_secret: Option<Secret>,
}

/// A secret read from a file; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Arc<[u8]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
