//! End-to-end tests: MCP client → real Envoy → real mcp-authz → upstream.
//!
//! Needs `scripts/setup` (Envoy in `.venv`, the OIDC issuer's node modules).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

mod harness;

mod cli;
mod envoy_config;
mod identity_headers;
mod invalid_tokens;
mod remote_jwks;
