//! The registry's data: the validated catalog of MCP servers and tools (read
//! from YAML files), indexed for routing. No Envoy, no gRPC, no Cedar
//! evaluation.

mod arg_types;
mod load;
mod raw;

pub use arg_types::{ArgType, record_type};
pub use load::{expand, is_definition_digest, load_catalog, read};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Path under which RFC 9728 protected resource metadata is served.
pub const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// The RFC 9728 `resource` of a server (its URL under the public base URL),
/// which a token must name in `aud` when its issuer binds audiences to
/// resources (RFC 8707).
pub fn resource_url(public_url: &str, path_prefix: &str) -> String {
    format!("{public_url}{}", path_prefix.trim_end_matches('/'))
}

/// URL of a server's RFC 9728 metadata document, for `WWW-Authenticate`.
pub fn metadata_url(public_url: &str, path_prefix: &str) -> String {
    format!(
        "{public_url}{METADATA_PREFIX}{}",
        path_prefix.trim_end_matches('/')
    )
}

/// Namespace a server runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    Prod,
    Dev,
}

/// How sensitive a server's data is; fixed at its security review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    Low,
    Medium,
    Sensitive,
}

impl Namespace {
    /// Name used in YAML and Cedar.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Prod => "prod",
            Namespace::Dev => "dev",
        }
    }
}

impl Sensitivity {
    /// Name used in YAML and Cedar.
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Medium => "medium",
            Sensitivity::Sensitive => "sensitive",
        }
    }
}

/// One tool of a server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub read_only: bool,
    pub destructive: bool,
    pub requires_approval: bool,
    /// Owner's estimate of minutes saved per call (the time-saved metric).
    pub minutes_saved_per_call: f64,
    pub input_schema: Option<serde_json::Value>,
    /// Arguments typed for Cedar, from `input_schema`.
    #[serde(skip)]
    pub arguments: Vec<(String, ArgType)>,
    /// Pinned digest of the approved live definition (`sha256:<hex>` over
    /// name, description, input schema and annotations; see `probe::digest`).
    pub definition_digest: Option<String>,
}

/// How Envoy routes to a server.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Route {
    pub context_extension: String,
    pub hosts: Vec<String>,
    pub path_prefixes: Vec<String>,
}

/// One registered MCP server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Server {
    pub name: String,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub support_channel: Option<String>,
    pub namespace: Namespace,
    pub sensitivity: Sensitivity,
    pub route: Route,
    pub approved_business_groups: Vec<String>,
    pub allowed_surfaces: Option<Vec<String>>,
    pub channels: Vec<String>,
    pub health_check_url: Option<String>,
    /// MCP endpoint (streamable HTTP) the status probe calls directly.
    pub probe_url: Option<String>,
    pub tools: Vec<Tool>,
}

impl Server {
    /// The tool named `name`, if the server has it.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }
}

/// All registered servers and business groups.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Business group id → display title.
    pub business_groups: BTreeMap<String, String>,
    pub servers: Vec<Arc<Server>>,
    pub(super) by_name: HashMap<String, usize>,
    pub(super) by_extension: HashMap<String, usize>,
    pub(super) by_host: HashMap<String, usize>,
    /// Path prefixes, longest first.
    pub(super) prefixes: Vec<(String, usize)>,
}

/// How a request named (or failed to name) its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey<'a> {
    /// Envoy's per-route `mcp_server` context extension.
    Extension(&'a str),
    /// No extension: match the `:authority` and the path.
    HostPath { host: &'a str, path: &'a str },
}

impl Catalog {
    /// The server with this name.
    pub fn server(&self, name: &str) -> Option<&Arc<Server>> {
        self.by_name.get(name).and_then(|i| self.servers.get(*i))
    }

    /// Finds the server a request is for: the context extension decides when
    /// present (an unknown value finds nothing); otherwise the host, then the
    /// longest path prefix ending at a segment boundary.
    pub fn route(&self, key: &RouteKey<'_>) -> Option<&Arc<Server>> {
        let i = match key {
            RouteKey::Extension(ext) => self.by_extension.get(*ext).copied(),
            RouteKey::HostPath { host, path } => {
                let host = host.rsplit_once(':').map_or(*host, |(h, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        h
                    } else {
                        host
                    }
                });
                self.by_host
                    .get(&host.to_ascii_lowercase())
                    .copied()
                    .or_else(|| {
                        let path = path.split(['?', '#']).next().unwrap_or("");
                        self.prefixes
                            .iter()
                            .find(|(p, _)| prefix_matches(p, path))
                            .map(|(_, i)| *i)
                    })
            }
        }?;
        self.servers.get(i)
    }

    /// Display title of a business group (its id when it has none).
    pub fn business_group_title<'a>(&'a self, id: &'a str) -> &'a str {
        self.business_groups.get(id).map_or(id, String::as_str)
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_match_stops_at_segment_boundaries() {
        assert!(prefix_matches("/mcp/presto", "/mcp/presto"));
        assert!(prefix_matches("/mcp/presto", "/mcp/presto/x"));
        assert!(prefix_matches("/mcp/presto/", "/mcp/presto/x"));
        assert!(!prefix_matches("/mcp/presto", "/mcp/prestoevil"));
    }
}
