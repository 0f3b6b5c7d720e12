//! mcp-authz decides who may reach which MCP server and tool.
//!
//! Data flow of one Envoy `Check`: [`ext_authz`] (the only module that knows
//! Envoy's types) turns the `CheckRequest` into a [`check::RequestView`].
//! [`check`] screens header spellings and the browser origin, takes the
//! bearer token to [`jwt`] (routed to its issuer by `iss`, verified with that
//! issuer's keys) or the mTLS SPIFFE id, and [`identity`] maps the verified
//! claims to a [`identity::Caller`]. The server comes from Envoy's
//! `mcp_server` context extension, looked up in the [`catalog`] (the
//! registry's servers and tools); [`mcp`] parses the JSON-RPC body strictly
//! (one meaning for every decoder) and checks the MCP mirror headers against
//! it. Each message becomes an [`authz::Access`], which the one decision core
//! [`authz`] turns into a Cedar query over the current snapshot (catalog,
//! entities, [`policy`] engine) and a [`authz::Decision`]; [`store`] holds that
//! snapshot and swaps it on hot reload. The outcome (allow with the upstream
//! identity headers, or a denial with a JSON-RPC error body) goes back to
//! Envoy. `explain`, `policy test` and the registry API ([`api`]) ask the same
//! core through the same [`authz::Access`]. [`config`] loads and validates
//! the YAML configuration before any port is bound; [`telemetry`] holds
//! logging and the admin HTTP endpoint; [`cli`] is the command line.

pub mod api;
pub mod approvals;
pub mod authz;
pub mod binding;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod deploy;
pub mod ext_authz;
pub mod ext_proc;
pub mod identity;
pub mod jwt;
pub mod mcp;
pub mod policy;
pub mod probe;
pub mod store;
pub mod telemetry;
pub mod ui;
