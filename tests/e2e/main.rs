//! End-to-end tests: MCP client → real Envoy → real mcp-authz → upstream.
//!
//! Needs `scripts/setup` (Envoy in `.venv`, the OIDC issuer's node modules).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

mod harness;

mod approvals;
mod approvals_ui;
mod audit;
mod audit_trace;
mod broken_files;
mod cli;
mod drift;
mod envoy_config;
mod envoy_render;
mod identity_headers;
mod invalid_tokens;
mod kubelet_reload;
mod list_filter;
mod list_responses;
mod log_lines;
mod long_streams;
mod mcp_bodies;
mod mcp_body_tricks;
mod mcp_channel;
mod mcp_client;
mod mcp_metadata;
mod mcp_services;
mod metrics;
mod policy_rules;
mod probe;
mod registry_api;
mod reload;
mod remote_jwks;
mod serving;
mod sessions;
mod trust_bodies;
mod trust_conformance;
mod trust_headers;
mod trust_origin;
mod trust_policies;
mod trust_routing;
mod trust_tokens;
mod ui;
mod ui_browser;
