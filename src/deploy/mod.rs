//! The paved path from registry to Envoy: `mcp-authz envoy render` turns the
//! registry, the mcp-authz configuration and a small deployment description
//! ([`description`]) into Envoy's configuration ([`render`]), so that a
//! registered server gets its route (with its `mcp_server` context
//! extension) and nothing else can.

pub mod description;
pub mod render;

pub use description::{Deployment, DeploymentError};
pub use render::{RenderError, Sources, render};
