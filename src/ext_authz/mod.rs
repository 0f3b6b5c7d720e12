//! The Envoy ext_authz gRPC service: the only module that knows Envoy's types.
//! `CheckRequest` → [`RequestView`] → [`Checker`] → `CheckResponse`.

mod response;

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse,
};
use tonic::{Request, Response, Status};

use crate::check::{Checker, RequestView};

/// gRPC service name of ext_authz, as registered with the health service.
pub const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

/// ext_authz `Check` implementation.
pub struct AuthzService {
    checker: Arc<Checker>,
}

impl AuthzService {
    /// Wraps a checker as a tonic service.
    pub fn server(checker: Arc<Checker>) -> AuthorizationServer<Self> {
        AuthorizationServer::new(AuthzService { checker })
    }
}

#[tonic::async_trait]
impl Authorization for AuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let req = request.into_inner();
        let attrs = req.attributes.as_ref();
        let http = attrs
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let body: &[u8] = match http {
            Some(h) if !h.raw_body.is_empty() => &h.raw_body,
            Some(h) => h.body.as_bytes(),
            None => &[],
        };
        let view = RequestView {
            headers: http.map(|h| &h.headers),
            method: http.map_or("", |h| h.method.as_str()),
            path: http.map_or("", |h| h.path.as_str()),
            host: http.map_or("", |h| h.host.as_str()),
            body,
            context_extensions: attrs.map(|a| &a.context_extensions),
            source_principal: attrs
                .and_then(|a| a.source.as_ref())
                .map_or("", |s| s.principal.as_str()),
            declared_size: http.and_then(|h| u64::try_from(h.size).ok()),
        };
        let outcome = self.checker.check(&view).await;
        // A denial is a successful RPC carrying a denied HTTP response, so that
        // no Envoy failure mode can turn it into an allow.
        Ok(Response::new(response::to_check_response(
            outcome,
            &self.checker.config().denials,
        )))
    }
}
