//! mcp-authz decides who may reach which MCP server and tool.
//!
//! Data flow of one Envoy `Check`: [`ext_authz`] turns the `CheckRequest` into
//! a [`check::RequestView`]; [`check`] takes the bearer token to [`jwt`], which
//! routes it to its issuer and verifies it; [`identity`] maps the verified
//! claims to an identity and the upstream `x-forwarded-*` headers; the outcome
//! (allow with headers, or a denial with a JSON-RPC error body) goes back to
//! Envoy. [`config`] loads and validates the YAML configuration before any
//! port is bound; [`telemetry`] holds logging and the admin HTTP endpoint;
//! [`cli`] is the command line.

pub mod api;
pub mod check;
pub mod cli;
pub mod config;
pub mod ext_authz;
pub mod identity;
pub mod jwt;
pub mod mcp;
pub mod policy;
pub mod registry;
pub mod telemetry;
