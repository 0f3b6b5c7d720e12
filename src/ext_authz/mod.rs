//! The Envoy ext_authz gRPC service: the only module that knows Envoy's types.
//! `CheckRequest` → [`RequestView`] → [`Checker`] → `CheckResponse`.

mod metadata;
mod response;

pub use metadata::KEYS as DYNAMIC_METADATA_KEYS;

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse,
};
use tonic::{Request, Response, Status};

use tracing::Instrument;

use crate::check::{Checker, REQUEST_ID_HEADER, RequestView, TRACEPARENT_HEADER};
use crate::mcp::{parent_span_id, trace_id, valid_traceparent};

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
        // One span per Check, continuing the caller's trace: its fields are
        // on every log line mcp-authz writes while deciding, and with OTLP
        // export the span is a child of the caller's span.
        let header = |name: &str| http.and_then(|h| h.headers.get(name)).map(String::as_str);
        let header_trace = header(TRACEPARENT_HEADER).and_then(valid_traceparent);
        let span = {
            // The exporter parents a new root span on the current OTel context.
            let _parent = header_trace
                .and_then(crate::telemetry::remote_parent)
                .map(opentelemetry::Context::attach);
            tracing::info_span!(
                "check",
                request_id = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                parent_span_id = tracing::field::Empty,
            )
        };
        if let Some(id) = header(REQUEST_ID_HEADER) {
            span.record("request_id", id);
        }
        record_trace(&span, header_trace);
        let (outcome, record) = self
            .checker
            .check_recorded(&view)
            .instrument(span.clone())
            .await;
        if header_trace.is_none() {
            // Only the body carried it (`params._meta.traceparent`).
            record_trace(&span, crate::telemetry::traceparent(&record));
        }
        // A denial is a successful RPC carrying a denied HTTP response, so that
        // no Envoy failure mode can turn it into an allow.
        let mut response = response::to_check_response(outcome, &self.checker.config().denials);
        let mut dynamic = metadata::dynamic_metadata(&record);
        if let Some(key) = self.checker.binding_key()
            && let Some((k, v)) = metadata::response_context(&record, key)
        {
            dynamic.fields.insert(k, v);
        }
        response.dynamic_metadata = Some(dynamic);
        Ok(Response::new(response))
    }
}

/// Sets the span's `trace_id` and `parent_span_id` from a validated `traceparent`.
fn record_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(tp) = traceparent {
        if let Some(t) = trace_id(tp) {
            span.record("trace_id", t);
        }
        if let Some(p) = parent_span_id(tp) {
            span.record("parent_span_id", p);
        }
    }
}
