//! The registry API over gRPC (`mcp_authz.registry.v1.Registry`), served on
//! `listen.grpc` beside ext_authz; the same answers as the HTTP API.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::metadata::KeyAndValueRef;
use tonic::{Request, Response, Status};

use super::access::{self, AccessRequest};
use super::listing::{self, PageRequest};
use super::pb::registry_server::{Registry, RegistryServer};
use super::{ApiState, pb};

/// gRPC service name, for the health service.
pub const SERVICE_NAME: &str = "mcp_authz.registry.v1.Registry";

/// The tonic service.
pub struct RegistryApi {
    state: Arc<ApiState>,
}

impl RegistryApi {
    /// The service, ready to add to a tonic server.
    pub fn server(state: Arc<ApiState>) -> RegistryServer<RegistryApi> {
        RegistryServer::new(RegistryApi { state })
    }
}

fn headers<T>(req: &Request<T>) -> HashMap<String, String> {
    req.metadata()
        .iter()
        .filter_map(|kv| match kv {
            KeyAndValueRef::Ascii(k, v) => {
                Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))
            }
            KeyAndValueRef::Binary(..) => None,
        })
        .collect()
}

#[tonic::async_trait]
impl Registry for RegistryApi {
    async fn list_servers(
        &self,
        request: Request<pb::ListServersRequest>,
    ) -> Result<Response<pb::ListServersResponse>, Status> {
        let s = &self.state;
        let caller = s.authenticate(&headers(&request), SERVICE_NAME).await?;
        let r = request.into_inner();
        let caller = s.as_surface(caller, r.surface.as_deref())?;
        let req = PageRequest {
            cursor: Some(r.cursor.as_str()),
            limit: (r.limit != 0).then_some(r.limit),
            search: Some(r.search.as_str()),
            channel: r.channel.as_deref(),
        };
        let snap = s.registry.snapshot();
        Ok(Response::new(listing::list(
            &s.cfg, &snap, &s.status, &caller, &req,
        )?))
    }

    async fn get_server(
        &self,
        request: Request<pb::GetServerRequest>,
    ) -> Result<Response<pb::Server>, Status> {
        let s = &self.state;
        let caller = s.authenticate(&headers(&request), SERVICE_NAME).await?;
        let r = request.into_inner();
        let snap = s.registry.snapshot();
        Ok(Response::new(listing::get(
            &s.cfg,
            &snap,
            &s.status,
            &caller,
            &r.name,
            r.channel.as_deref(),
        )?))
    }

    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        let s = &self.state;
        let caller = s.authenticate(&headers(&request), SERVICE_NAME).await?;
        let req = AccessRequest::from_proto(request.into_inner())?;
        let snap = s.registry.snapshot();
        Ok(Response::new(access::check(&s.cfg, &snap, &caller, &req)?))
    }
}
