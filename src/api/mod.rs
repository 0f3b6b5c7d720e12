//! Public HTTP for MCP clients and AI surfaces, routed by Envoy without
//! ext_authz (mcp-authz authenticates these requests itself): the OAuth
//! protected resource metadata (RFC 9728) of every registered server, and
//! the registry API (`/v0.1/`, also served over gRPC on `listen.grpc`):
//! which servers and tools the caller may use, and `CheckAccess`; and the
//! approvals API (`/v0.1/approvals`) for held tool calls.
//!
//! Every answer about access comes from the decision core: listings from
//! [`Snapshot::visible_to`], questions from [`Snapshot::decide_access`]. The
//! caller is authenticated by [`Checker::authenticate`], exactly as in a
//! Check; identity headers are read only from a proxy proven by a shared
//! secret, and only when `api.trust_forwarded_identity` is set.

mod access;
pub mod approvals;
mod error;
mod forwarded;
mod grpc;
mod http;
mod listing;

/// Types generated from `proto/mcp_authz/registry/v1/registry.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("mcp_authz.registry.v1");
}

pub use access::{AccessRequest, StatedUser};
pub use error::{ApiError, NOT_FOUND_MESSAGE};
pub use grpc::{RegistryApi, SERVICE_NAME as GRPC_SERVICE_NAME};
pub use http::{META_KEY, SERVER_SCHEMA};
pub use listing::{
    DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, UNVERSIONED, api_name, decode_cursor, encode_cursor,
};

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::authz::Snapshot;
use crate::check::{Checker, RequestView};
use crate::config::Config;
use crate::identity::Caller;
use crate::probe::StatusBoard;
use crate::store::Registry;

/// Well-known path prefix of RFC 9728 metadata.
pub use crate::catalog::{METADATA_PREFIX, metadata_url, resource_url};

/// Path prefix of the registry API; also its RFC 9728 resource path.
pub const API_PREFIX: &str = "/v0.1";

/// Shared state of the public API.
pub struct ApiState {
    pub cfg: Arc<Config>,
    pub registry: Arc<Registry>,
    /// Authenticates callers exactly as a Check does.
    pub checker: Arc<Checker>,
    /// Live server status, written by the probe.
    pub status: StatusBoard,
}

/// The public router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(&format!("{METADATA_PREFIX}/{{*resource}}"), get(metadata))
        .route(&format!("{API_PREFIX}/servers"), get(http::list))
        .route(&format!("{API_PREFIX}/servers/{{name}}"), get(http::get))
        .route(
            &format!("{API_PREFIX}/servers/{{name}}/versions/{{version}}"),
            get(http::get_version),
        )
        // The same, with the name's `/` unescaped (Envoy unescapes `%2F`
        // before routing so that one path has one meaning).
        .route(
            &format!("{API_PREFIX}/servers/{{name}}/{{rest}}"),
            get(http::get_split),
        )
        .route(
            &format!("{API_PREFIX}/servers/{{name}}/{{rest}}/versions/{{version}}"),
            get(http::get_version_split),
        )
        .route(&format!("{API_PREFIX}/access"), post(http::check_access))
        .route(
            &format!("{API_PREFIX}/approvals"),
            get(approvals::list).post(approvals::decide_batch).layer(
                axum::extract::DefaultBodyLimit::max(approvals::MAX_BODY_BYTES),
            ),
        )
        .route(
            &format!("{API_PREFIX}/approvals/{{id}}"),
            get(approvals::get).post(approvals::decide).layer(
                axum::extract::DefaultBodyLimit::max(approvals::MAX_BODY_BYTES),
            ),
        )
        .with_state(state)
}

impl ApiState {
    /// The verified caller of an API request (`headers` lowercase). A user
    /// token whose issuer binds audiences to resources must name the API's
    /// resource URL. Failure: 401 with the RFC 9728 challenge.
    pub async fn authenticate(
        &self,
        headers: &HashMap<String, String>,
        path: &str,
    ) -> Result<Caller, ApiError> {
        let view = RequestView {
            headers: Some(headers),
            method: "GET",
            path,
            ..RequestView::default()
        };
        let metadata = self
            .cfg
            .public_url
            .as_deref()
            .map(|p| metadata_url(p, API_PREFIX));
        let challenge = |mut d: crate::check::Denial| {
            d.resource_metadata = metadata.clone();
            ApiError::Unauthenticated {
                challenge: d.www_authenticate(&self.cfg.denials).unwrap_or_default(),
                message: d.message,
            }
        };
        let caller = match forwarded::forwarded(&self.cfg, headers) {
            forwarded::Forwarded::Absent => {
                self.checker.authenticate(&view).await.map_err(challenge)?
            }
            forwarded::Forwarded::Caller(c) => return Ok(c),
            forwarded::Forwarded::Rejected(why) => {
                tracing::info!(target: "mcp_authz::decision", path, reason = why, "forwarded identity rejected");
                let mut d = crate::check::Denial::new(crate::check::DenyReason::InvalidToken);
                d.message = why.into();
                return Err(challenge(d));
            }
        };
        if let Caller::User(id) = &caller
            && id.require_resource_audience
        {
            let resource = self
                .cfg
                .public_url
                .as_deref()
                .map(|p| resource_url(p, API_PREFIX));
            if !resource.is_some_and(|r| id.accepts_resource(&r)) {
                let mut d = crate::check::Denial::new(crate::check::DenyReason::InvalidToken);
                d.message = "the token's audience does not name the registry API".into();
                return Err(challenge(d));
            }
        }
        Ok(caller)
    }

    /// The caller's own identity as if it came from `surface` (a configured
    /// surface name): "what could I use from there". Services have no surface.
    pub fn as_surface(&self, caller: Caller, surface: Option<&str>) -> Result<Caller, ApiError> {
        let Some(surface) = surface.filter(|s| !s.is_empty()) else {
            return Ok(caller);
        };
        match &caller {
            Caller::User(id) => Caller::stated_user(
                &id.user,
                &id.groups,
                &id.business_groups,
                Some(surface),
                &self.cfg.surfaces,
            )
            .map_err(|e| ApiError::bad("surface", e)),
            Caller::Service(_) => Err(ApiError::bad("surface", "a service caller has no surface")),
        }
    }
}

/// The RFC 9728 document of the server whose path prefix is `/{resource}`.
pub fn document(cfg: &Config, snap: &Snapshot, resource: &str) -> Option<serde_json::Value> {
    let public = cfg.public_url.as_deref()?;
    let path = format!("/{}", resource.trim_matches('/'));
    // Demo issuers are never advertised to third-party clients.
    let issuers: Vec<&str> = cfg
        .issuers
        .iter()
        .filter(|i| !i.demo_only)
        .map(|i| i.issuer.as_str())
        .collect();
    if path == API_PREFIX {
        return Some(json!({
            "resource": resource_url(public, API_PREFIX),
            "authorization_servers": issuers,
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-authz registry API",
        }));
    }
    let server = snap.catalog.servers.iter().find(|s| {
        s.route
            .path_prefixes
            .iter()
            .any(|p| p.trim_end_matches('/') == path)
    })?;
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

    fn app(cfg: Config) -> Router {
        let cfg = Arc::new(cfg);
        let verifier = Arc::new(crate::jwt::Verifier::new(&cfg).unwrap());
        let registry = Arc::new(Registry::load(cfg.clone()).unwrap());
        let checker = Arc::new(Checker::new(cfg.clone(), verifier, registry.clone()));
        router(Arc::new(ApiState {
            cfg,
            registry,
            checker,
            status: StatusBoard::default(),
        }))
    }

    async fn list(app: &Router, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
        use tower::ServiceExt;
        let mut req = axum::http::Request::get("/v0.1/servers");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const FORWARDED: [(&str, &str); 4] = [
        ("x-forwarded-user", "alice"),
        ("x-forwarded-groups", "ads-eng"),
        ("x-forwarded-business-groups", "ads"),
        ("x-forwarded-surface", "ai-chat"),
    ];

    #[tokio::test]
    async fn client_identity_headers_are_never_trusted_by_default() {
        let app = app(crate::config::load(None).unwrap());
        let mut h = FORWARDED.to_vec();
        h.push((crate::config::FORWARDED_SECRET_HEADER, SECRET));
        let (status, body) = list(&app, &h).await;
        assert_eq!(status, 401, "{body}");
    }

    #[tokio::test]
    async fn a_proxy_proving_the_secret_identifies_the_caller() {
        let mut cfg = crate::config::load(None).unwrap();
        cfg.api.forwarded_secret = Some(crate::config::Secret(Arc::from(SECRET.as_bytes())));
        let app = app(cfg);
        let (status, _) = list(&app, &FORWARDED).await;
        assert_eq!(status, 401, "no secret: the headers are not read");
        let mut wrong = FORWARDED.to_vec();
        wrong.push((
            crate::config::FORWARDED_SECRET_HEADER,
            "0123456789abcdef0123456789abcdeX",
        ));
        assert_eq!(list(&app, &wrong).await.0, 401);
        let mut proven = FORWARDED.to_vec();
        proven.push((crate::config::FORWARDED_SECRET_HEADER, SECRET));
        let (status, body) = list(&app, &proven).await;
        assert_eq!(status, 200, "{body}");
        let names: Vec<_> = body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["server"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "dev.mcp-authz/knowledge",
                "dev.mcp-authz/presto",
                "dev.mcp-authz/spark"
            ]
        );
    }
}
