//! One authorization check, independent of Envoy: request attributes in,
//! [`Outcome`] out (allow with upstream headers, or a [`Denial`]).

mod deny;

pub use deny::{Denial, DenyReason, JSONRPC_AUTHZ_ERROR};

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::identity::{Identity, UpstreamHeaders, upstream_headers};
use crate::jwt::{TokenCache, Verifier};
use crate::policy::Action;
use crate::registry::{DecisionReason, Principal, Query, Registry, RouteKey};

/// Envoy per-route context extension naming the target server.
pub const SERVER_EXTENSION: &str = "mcp_server";

/// The parts of a request an authorization decision may use.
#[derive(Debug, Default)]
pub struct RequestView<'a> {
    /// Lowercase header names; repeated headers joined with `,` (as Envoy sends them).
    pub headers: Option<&'a HashMap<String, String>>,
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    pub body: &'a [u8],
    /// Per-route `context_extensions` set in Envoy.
    pub context_extensions: Option<&'a HashMap<String, String>>,
    /// Peer principal from the client certificate (SPIFFE id), if any.
    pub source_principal: &'a str,
}

impl RequestView<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers?.get(name).map(String::as_str)
    }
}

/// The decision on one request.
#[derive(Debug)]
pub enum Outcome {
    Allow {
        identity: Arc<Identity>,
        headers: UpstreamHeaders,
    },
    Deny(Denial),
}

/// Decides requests: holds verifier, token cache, registry and configuration.
pub struct Checker {
    cfg: Arc<Config>,
    verifier: Arc<Verifier>,
    registry: Arc<Registry>,
    cache: TokenCache<Arc<Identity>>,
}

impl Checker {
    /// A checker over a configuration and its issuers.
    pub fn new(cfg: Arc<Config>, verifier: Arc<Verifier>, registry: Arc<Registry>) -> Self {
        let cache = TokenCache::new(cfg.limits.token_cache_entries);
        Checker {
            cfg,
            verifier,
            registry,
            cache,
        }
    }

    /// The configuration this checker enforces.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Decides one request.
    pub async fn check(&self, req: &RequestView<'_>) -> Outcome {
        let identity = match self.authenticate(req).await {
            Ok(id) => id,
            Err(d) => return Outcome::Deny(d),
        };
        if let Some(d) = self.authorize(req, &identity) {
            return Outcome::Deny(d);
        }
        let headers = upstream_headers(&identity, &self.cfg.identity_headers);
        Outcome::Allow { identity, headers }
    }

    /// Finds the server and asks the registry's policies; `None` allows.
    fn authorize(&self, req: &RequestView<'_>, id: &Identity) -> Option<Denial> {
        let snapshot = self.registry.snapshot();
        let key = match req.context_extensions.and_then(|c| c.get(SERVER_EXTENSION)) {
            Some(ext) => RouteKey::Extension(ext),
            None => RouteKey::HostPath {
                host: req.host,
                path: req.path,
            },
        };
        let server = snapshot.catalog.route(&key).map(|s| s.name.as_str());
        let query = Query {
            principal: Principal::User {
                id: &id.user,
                groups: &id.groups,
                business_groups: &id.business_groups,
            },
            surface: id.surface.as_deref().map(|s| s.name.as_str()),
            // An unroutable request asks for a server no registry can hold.
            server: server.unwrap_or(""),
            action: Action::Connect,
            tool: None,
        };
        let decision = snapshot.decide(&query);
        let log_server = server.unwrap_or("-");
        if decision.allowed {
            tracing::debug!(
                target: "mcp_authz::decision",
                decision = "allow",
                user = %id.user,
                server = log_server,
                policies = ?decision.policies,
            );
            return None;
        }
        let reason = match decision.reason {
            DecisionReason::UnknownServer | DecisionReason::UnknownTool => {
                DenyReason::UnknownServer
            }
            DecisionReason::Forbidden | DecisionReason::Allowed => DenyReason::Forbidden,
            DecisionReason::Internal => DenyReason::Internal,
        };
        tracing::info!(
            target: "mcp_authz::decision",
            decision = "deny",
            reason = reason.code(),
            user = %id.user,
            server = log_server,
            path = req.path,
            policies = ?decision.policies,
            errors = ?decision.errors,
        );
        let message = if server.is_none() {
            "this route names no registered MCP server".to_owned()
        } else {
            decision.message
        };
        Some(Denial {
            reason,
            message,
            jsonrpc_id: None,
            policies: decision.policies,
        })
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Arc<Identity>, Denial> {
        let deny = |reason: DenyReason, detail: &dyn std::fmt::Display| {
            tracing::info!(
                target: "mcp_authz::decision",
                decision = "deny",
                reason = reason.code(),
                detail = %detail,
                path = req.path,
            );
            Denial::new(reason)
        };
        let Some(value) = req.header("authorization") else {
            return Err(deny(DenyReason::MissingToken, &"no authorization header"));
        };
        // Envoy joins repeated headers with a comma; a JWT never contains one.
        if value.contains(',') {
            return Err(deny(
                DenyReason::InvalidRequest,
                &"several authorization headers",
            ));
        }
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(deny(
                    DenyReason::MissingToken,
                    &"authorization is not a bearer token",
                ));
            }
        };
        let key = TokenCache::<Arc<Identity>>::hash(token);
        if let Some(id) = self.cache.get(&key) {
            return Ok(id);
        }
        let verified = self
            .verifier
            .verify(token)
            .await
            .map_err(|e| deny(DenyReason::InvalidToken, &e))?;
        let identity = Identity::from_token(&verified, &self.cfg.claims, &self.cfg.surfaces)
            .map_err(|e| deny(DenyReason::InvalidToken, &e))?;
        let identity = Arc::new(identity);
        self.cache
            .insert(key, identity.clone(), identity.expires_at);
        Ok(identity)
    }
}
