//! Public HTTP for MCP clients, routed by Envoy without ext_authz: the OAuth
//! protected resource metadata (RFC 9728) of every registered server, which
//! the `resource_metadata` parameter of a 401 points to.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::authz::Snapshot;
use crate::config::Config;
use crate::store::Registry;

/// Well-known path prefix of RFC 9728 metadata.
pub use crate::catalog::{METADATA_PREFIX, metadata_url, resource_url};

/// Shared state of the public API.
pub struct ApiState {
    pub cfg: Arc<Config>,
    pub registry: Arc<Registry>,
}

/// The public router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(&format!("{METADATA_PREFIX}/{{*resource}}"), get(metadata))
        .with_state(state)
}

/// The RFC 9728 document of the server whose path prefix is `/{resource}`.
pub fn document(cfg: &Config, snap: &Snapshot, resource: &str) -> Option<serde_json::Value> {
    let public = cfg.public_url.as_deref()?;
    let path = format!("/{}", resource.trim_matches('/'));
    let server = snap.catalog.servers.iter().find(|s| {
        s.route
            .path_prefixes
            .iter()
            .any(|p| p.trim_end_matches('/') == path)
    })?;
    // Demo issuers are never advertised to third-party clients.
    let issuers: Vec<&str> = cfg
        .issuers
        .iter()
        .filter(|i| !i.demo_only)
        .map(|i| i.issuer.as_str())
        .collect();
    Some(json!({
        "resource": resource_url(public, &path),
        "authorization_servers": issuers,
        "bearer_methods_supported": ["header"],
        "resource_name": server.title,
        "resource_documentation": server.support_channel,
    }))
}

async fn metadata(State(s): State<Arc<ApiState>>, Path(resource): Path<String>) -> Response {
    let snap = s.registry.snapshot();
    match document(&s.cfg, &snap, &resource) {
        Some(doc) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            doc.to_string(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no registered MCP server at this path\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn metadata_names_the_resource_and_hides_demo_issuers() {
        let mut cfg = crate::config::load(None).unwrap();
        cfg.public_url = Some("https://mcp.example.com".into());
        let snap = Snapshot::load(&cfg).unwrap();
        let doc = document(&cfg, &snap, "mcp/presto").unwrap();
        assert_eq!(doc["resource"], "https://mcp.example.com/mcp/presto");
        assert_eq!(doc["authorization_servers"], json!([]));
        assert_eq!(doc["resource_name"], "Presto");
        assert!(document(&cfg, &snap, "mcp/nothing").is_none());
        assert_eq!(
            metadata_url("https://mcp.example.com", "/mcp/presto"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/presto"
        );
    }
}
