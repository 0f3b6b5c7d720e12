//! Raw registry catalog as written in YAML: serde types only.

use serde::Deserialize;

/// One registry file. Several files are merged (servers must not repeat).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalog {
    #[serde(default)]
    pub business_groups: Vec<RawBusinessGroup>,
    #[serde(default)]
    pub servers: Vec<RawServer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBusinessGroup {
    pub id: String,
    pub title: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub name: String,
    pub title: Option<String>,
    #[serde(default)]
    pub description: String,
    pub owner: String,
    pub support_channel: Option<String>,
    pub namespace: String,
    pub sensitivity: String,
    #[serde(default)]
    pub route: RawRoute,
    #[serde(default)]
    pub approved_business_groups: Vec<String>,
    pub allowed_surfaces: Option<Vec<String>>,
    #[serde(default)]
    pub channels: Vec<String>,
    pub health_check_url: Option<String>,
    /// MCP endpoint the status probe talks to (`initialize` + `tools/list`).
    pub probe_url: Option<String>,
    #[serde(default)]
    pub tools: Vec<RawTool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Value of Envoy's `mcp_server` context extension; defaults to the server name.
    pub context_extension: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub path_prefixes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub destructive: bool,
    #[serde(default)]
    pub requires_approval: bool,
    pub minutes_saved_per_call: Option<f64>,
    pub input_schema: Option<serde_json::Value>,
    /// Pinned digest of the live definition (`sha256:<hex>`), see `probe::digest`.
    pub definition_digest: Option<String>,
}
