//! The Envoy ext_proc gRPC service (`envoy.service.ext_proc.v3.ExternalProcessor`):
//! what mcp-authz does to MCP **responses**, after ext_authz decided the request.
//!
//! Per HTTP stream Envoy sends the response headers (request headers and
//! bodies are skipped in the filter's `processing_mode`), with ext_authz's
//! dynamic metadata forwarded. From the sealed [`ResponseContext`] found there:
//!
//! 1. an upstream `Mcp-Session-Id` is replaced with a handle bound to the
//!    caller ([`crate::binding::session`]);
//! 2. when the request held list calls (`tools/list`, …) and the answer is
//!    2xx, the body is asked for (`mode_override`: `STREAMED`) and every list
//!    result is filtered for the caller ([`lists`]): `application/json` whole,
//!    `text/event-stream` event by event ([`sse`]); other events and
//!    messages pass unchanged, byte for byte.
//!
//! Fail closed: a 2xx response without a context, a session id that cannot
//! be bound, and (with `responses.unparsable: deny`) a list response that
//! cannot be read never reach the client as they are.

pub mod lists;
pub mod sse;

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, Metadata};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::{
    BodyMutation, BodyResponse, CommonResponse, HeaderMutation, HeadersResponse, HttpBody,
    HttpHeaders, ImmediateResponse, ProcessingRequest, ProcessingResponse, TrailersResponse,
    body_mutation::Mutation, processing_request::Request as Msg,
    processing_response::Response as Reply,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::value::Kind;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::binding::BindingKey;
use crate::binding::context::{ContextError, METADATA_KEY, ResponseContext};
use crate::binding::session::{SESSION_HEADER, bind};
use crate::config::{Config, Unparsable};
use crate::store::Registry;
use lists::{ListFilter, Removed, ResponseError, error_body};

/// gRPC service name of ext_proc, as registered with the health service.
pub const SERVICE_NAME: &str = "envoy.service.ext_proc.v3.ExternalProcessor";
/// The dynamic metadata namespace ext_authz writes and ext_proc reads.
pub const EXT_AUTHZ_NAMESPACE: &str = "envoy.filters.http.ext_authz";

/// The ext_proc service: registry, configuration and binding key.
pub struct ProcessorService {
    cfg: Arc<Config>,
    registry: Arc<Registry>,
    key: Arc<BindingKey>,
}

impl ProcessorService {
    /// Wraps the parts as a tonic service.
    pub fn server(
        cfg: Arc<Config>,
        registry: Arc<Registry>,
        key: Arc<BindingKey>,
    ) -> ExternalProcessorServer<Self> {
        ExternalProcessorServer::new(ProcessorService { cfg, registry, key })
    }
}

#[tonic::async_trait]
impl ExternalProcessor for ProcessorService {
    type ProcessStream = ReceiverStream<Result<ProcessingResponse, Status>>;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut stream =
            StreamState::new(self.cfg.clone(), self.registry.clone(), self.key.clone());
        tokio::spawn(async move {
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "ext_proc stream ended");
                        break;
                    }
                };
                // Filtering a large list takes milliseconds of CPU: off the
                // async workers, so that Checks never queue behind it. A
                // small body (most `tools/call` answers) is read in place:
                // handing it to a blocking thread cost more than reading it.
                let heavy = match &msg.request {
                    Some(Msg::ResponseBody(b)) => {
                        stream.reads_body() && stream.buffered() + b.body.len() > INLINE_BODY_BYTES
                    }
                    _ => false,
                };
                let (back, handled) = if heavy {
                    match tokio::task::spawn_blocking(move || {
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            stream.handle(msg)
                        }));
                        (stream, r)
                    })
                    .await
                    {
                        Ok((s, r)) => (Some(s), r.ok()),
                        Err(_) => (None, None),
                    }
                } else {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        stream.handle(msg)
                    }));
                    (Some(stream), r.ok())
                };
                // A clean end of this stream would let Envoy pass the response
                // unprocessed: a failure ends it with an error (Envoy: 500).
                let (Some(s), Some(reply)) = (back, handled) else {
                    tracing::error!(
                        "ext_proc: processing a response failed; ending the stream with an error"
                    );
                    let _ = tx
                        .send(Err(Status::internal(
                            "mcp-authz could not process the response",
                        )))
                        .await;
                    break;
                };
                stream = s;
                let last = matches!(reply.response, Some(Reply::ImmediateResponse(_)));
                if tx.send(Ok(reply)).await.is_err() || last {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// How the body of the current response is read.
/// Bodies up to this size (held plus the new chunk) are read on the async
/// worker; larger ones on a blocking thread.
const INLINE_BODY_BYTES: usize = 64 * 1024;

enum Body {
    /// Not read (no list to filter).
    Untouched,
    /// `application/json`: held whole, filtered at the end of the stream.
    Json(Vec<u8>),
    /// `text/event-stream`: filtered event by event.
    Sse(sse::Splitter),
    /// Reading failed; the rest of the body is dropped.
    Failed,
}

/// One HTTP stream's processing.
struct StreamState {
    cfg: Arc<Config>,
    registry: Arc<Registry>,
    key: Arc<BindingKey>,
    ctx: Option<ResponseContext>,
    body: Body,
    removed: Removed,
    /// The request held no list call: list-shaped results are still
    /// filtered, but what cannot be read passes (it is no list answer).
    lenient: bool,
}

impl StreamState {
    fn new(cfg: Arc<Config>, registry: Arc<Registry>, key: Arc<BindingKey>) -> Self {
        StreamState {
            cfg,
            registry,
            key,
            ctx: None,
            body: Body::Untouched,
            removed: Removed::default(),
            lenient: false,
        }
    }

    /// Whether the current response's body is being read (a list to filter).
    fn reads_body(&self) -> bool {
        matches!(self.body, Body::Json(_) | Body::Sse(_))
    }

    /// Bytes of a JSON body held so far (an SSE stream is read event by event).
    fn buffered(&self) -> usize {
        match &self.body {
            Body::Json(buf) => buf.len(),
            _ => 0,
        }
    }

    fn handle(&mut self, msg: ProcessingRequest) -> ProcessingResponse {
        match msg.request {
            Some(Msg::ResponseHeaders(h)) => {
                self.response_headers(&h, msg.metadata_context.as_ref())
            }
            Some(Msg::ResponseBody(b)) => self.response_body(b),
            Some(Msg::ResponseTrailers(_)) => {
                reply(Reply::ResponseTrailers(TrailersResponse::default()))
            }
            Some(Msg::RequestHeaders(_)) => {
                reply(Reply::RequestHeaders(HeadersResponse::default()))
            }
            Some(Msg::RequestBody(_)) => reply(Reply::RequestBody(BodyResponse::default())),
            Some(Msg::RequestTrailers(_)) => {
                reply(Reply::RequestTrailers(TrailersResponse::default()))
            }
            None => reply(Reply::ResponseHeaders(HeadersResponse::default())),
        }
    }

    fn response_headers(
        &mut self,
        h: &HttpHeaders,
        metadata: Option<&Metadata>,
    ) -> ProcessingResponse {
        let headers = Headers(h);
        let status = headers
            .get(":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let success = (200..300).contains(&status);
        self.ctx = match context(metadata, &self.key, &self.cfg) {
            Ok(c) => Some(c),
            Err(ContextError::Missing) if !success => None,
            // A headers-only answer no Check decided (a CORS preflight Envoy
            // answers itself): nothing in it to filter or to bind.
            Err(ContextError::Missing)
                if h.end_of_stream && headers.get(SESSION_HEADER).is_none() =>
            {
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, status, "ext_proc: refusing a response without a valid authorization context");
                return immediate(502, &failure("missing_authz_context", &e.to_string()));
            }
        };
        let mut mutation = HeaderMutation::default();
        if let Some(err) = self.bind_session(&headers, &mut mutation) {
            return err;
        }
        let Some(ctx) = &self.ctx else {
            return headers_reply(mutation, None);
        };
        if !self.cfg.responses.filter_lists || !success || h.end_of_stream {
            return headers_reply(mutation, None);
        }
        // A request with list calls must get readable lists. Any other answer
        // is read too, leniently: a server may route a list result to another
        // stream (two requests reusing one JSON-RPC id, a resumed GET stream),
        // so list-shaped results are filtered wherever they appear; what
        // cannot be read there is not a list answer and passes.
        self.lenient = ctx.lists.is_empty();
        let encoding = headers.get("content-encoding").map(str::trim);
        let media = headers.get("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let body = match (encoding, media.as_deref()) {
            (None | Some("identity"), Some("application/json")) => Body::Json(Vec::new()),
            (None | Some("identity"), Some("text/event-stream")) => {
                Body::Sse(sse::Splitter::new(self.cfg.responses.max_body_bytes))
            }
            _ if self.lenient => return headers_reply(mutation, None),
            _ => {
                let e = ResponseError::Unparsable(format!(
                    "content type `{}`{}",
                    media.as_deref().unwrap_or("(none)"),
                    encoding
                        .map(|e| format!(", content encoding `{e}`"))
                        .unwrap_or_default()
                ));
                return match self.cfg.responses.unparsable {
                    Unparsable::Pass => headers_reply(mutation, None),
                    Unparsable::Deny => {
                        self.log_unreadable(&e);
                        immediate(502, &error_body(self.ctx.as_ref(), &e))
                    }
                };
            }
        };
        self.body = body;
        // The body changes length: drop the upstream's `content-length`.
        mutation.remove_headers.push("content-length".into());
        headers_reply(mutation, Some(BodySendMode::Streamed))
    }

    /// Replaces an upstream `Mcp-Session-Id` with a handle bound to the
    /// caller; `Some` is the refusal when that is impossible.
    fn bind_session(
        &self,
        headers: &Headers<'_>,
        mutation: &mut HeaderMutation,
    ) -> Option<ProcessingResponse> {
        if !self.cfg.sessions.bind {
            return None;
        }
        let ids: Vec<&str> = headers.all(SESSION_HEADER).collect();
        if ids.is_empty() {
            return None;
        }
        let bound = match (&self.ctx, ids.as_slice()) {
            (Some(ctx), [one]) => {
                bind(&self.key, &ctx.caller, &ctx.server, one).map_err(|e| e.to_string())
            }
            (None, _) => Err("no authorization context to bind the session to".to_owned()),
            (Some(_), _) => Err("the upstream sent several session ids".to_owned()),
        };
        match bound {
            Ok(handle) => {
                mutation
                    .set_headers
                    .push(set_header(SESSION_HEADER, &handle));
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "ext_proc: cannot bind the upstream's MCP session id");
                Some(immediate(502, &failure("session_not_bindable", &e)))
            }
        }
    }

    fn response_body(&mut self, b: HttpBody) -> ProcessingResponse {
        let end = b.end_of_stream;
        let max = self.cfg.responses.max_body_bytes;
        // Taken out while read; `fail` and the filters put the next state back.
        let out = match std::mem::replace(&mut self.body, Body::Failed) {
            Body::Untouched => {
                self.body = Body::Untouched;
                return body_reply(None);
            }
            Body::Failed => Vec::new(),
            Body::Json(mut buf) => {
                buf.extend_from_slice(&b.body);
                if buf.len() > max {
                    self.too_large(buf, false)
                } else if end {
                    self.finish_json(buf)
                } else {
                    self.body = Body::Json(buf);
                    Vec::new()
                }
            }
            Body::Sse(mut splitter) => {
                let pushed = splitter.push(&b.body);
                self.body = Body::Sse(splitter);
                let mut out = self.filter_events(pushed.events);
                if let (Some(rest), Body::Sse(_)) = (pushed.too_large, &self.body) {
                    out.extend(self.too_large(rest, true));
                }
                // At the end, an unfinished event is dispatched by no client:
                // dropped on a list stream, passed on any other.
                if end
                    && self.lenient
                    && let Body::Sse(splitter) = &mut self.body
                {
                    out.extend(splitter.take_pending());
                }
                out
            }
        };
        if end
            && self.removed != Removed::default()
            && let Some(ctx) = &self.ctx
        {
            tracing::debug!(
                target: "mcp_authz::lists",
                server = %ctx.server,
                caller = %ctx.caller,
                removed = self.removed.items,
                kept = self.removed.kept,
                "filtered list response"
            );
        }
        body_reply(Some(out))
    }

    /// The current snapshot (a reload since the Check is logged: the
    /// newest policies decide, so a revocation applies at once).
    fn snapshot(&self, ctx: &ResponseContext) -> Arc<crate::authz::Snapshot> {
        let snapshot = self.registry.snapshot();
        if snapshot.generation != ctx.generation {
            tracing::debug!(
                decided = ctx.generation,
                current = snapshot.generation,
                "ext_proc: policies reloaded since the Check; filtering with the current ones"
            );
        }
        arc_swap::Guard::into_inner(snapshot)
    }

    fn finish_json(&mut self, whole: Vec<u8>) -> Vec<u8> {
        let Some(ctx) = self.ctx.take() else {
            return whole;
        };
        let snapshot = self.snapshot(&ctx);
        let result = ListFilter {
            snapshot: &snapshot,
            ctx: &ctx,
        }
        .filter_text(&whole);
        self.ctx = Some(ctx);
        match result {
            Ok(None) => whole,
            Ok(Some((bytes, removed))) => {
                self.removed = removed;
                bytes
            }
            Err(_) if self.lenient => whole,
            Err(e) => match self.cfg.responses.unparsable {
                Unparsable::Pass => whole,
                Unparsable::Deny => self.fail(e),
            },
        }
    }

    fn filter_events(&mut self, events: Vec<sse::RawEvent>) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(ctx) = self.ctx.take() else {
            return out;
        };
        let snapshot = self.snapshot(&ctx);
        let filter = ListFilter {
            snapshot: &snapshot,
            ctx: &ctx,
        };
        let mut failed = None;
        for ev in events {
            let fields = sse::fields(&ev);
            let data = fields.data.as_deref().filter(|d| !d.is_empty());
            match data.map(|d| filter.filter_text(d)) {
                None | Some(Ok(None)) => out.extend_from_slice(&ev.bytes),
                Some(Ok(Some((bytes, removed)))) => {
                    self.removed.items += removed.items;
                    self.removed.kept += removed.kept;
                    out.extend_from_slice(&sse::rebuild(&fields, &bytes));
                }
                Some(Err(_)) if self.lenient => out.extend_from_slice(&ev.bytes),
                Some(Err(e)) => match self.cfg.responses.unparsable {
                    Unparsable::Pass => out.extend_from_slice(&ev.bytes),
                    Unparsable::Deny => {
                        failed = Some(e);
                        break;
                    }
                },
            }
        }
        self.ctx = Some(ctx);
        if let Some(e) = failed {
            out.extend(self.fail(e));
        }
        out
    }

    /// A list response (JSON body, or SSE event) over the limit: with
    /// `unparsable: pass` the held bytes and the rest of the body pass
    /// unfiltered; with `deny` the error replaces them.
    fn too_large(&mut self, held: Vec<u8>, sse: bool) -> Vec<u8> {
        let max = self.cfg.responses.max_body_bytes;
        if self.lenient {
            // Not a list answer this large: pass it, and the rest, untouched.
            self.body = Body::Untouched;
            return held;
        }
        match self.cfg.responses.unparsable {
            Unparsable::Pass => {
                self.log_passed(&ResponseError::TooLarge(max));
                self.body = Body::Untouched;
                held
            }
            Unparsable::Deny => {
                if !sse {
                    self.body = Body::Json(Vec::new());
                }
                self.fail(ResponseError::TooLarge(max))
            }
        }
    }

    /// A list response that cannot be read: the JSON-RPC error (as a JSON
    /// body or an SSE event) replaces the rest of the body.
    fn fail(&mut self, e: ResponseError) -> Vec<u8> {
        self.log_unreadable(&e);
        let sse = matches!(self.body, Body::Sse(_));
        self.body = Body::Failed;
        let body = error_body(self.ctx.as_ref(), &e);
        if sse {
            let mut ev = b"event: message\ndata: ".to_vec();
            ev.extend_from_slice(&body);
            ev.extend_from_slice(b"\n\n");
            ev
        } else {
            body
        }
    }

    fn log_passed(&self, e: &ResponseError) {
        tracing::warn!(
            target: "mcp_authz::lists",
            reason = e.code(),
            error = %e,
            server = self.ctx.as_ref().map_or("-", |c| c.server.as_str()),
            "ext_proc: a list response could not be filtered; passed unfiltered (responses.unparsable: pass)"
        );
    }

    fn log_unreadable(&self, e: &ResponseError) {
        tracing::warn!(
            target: "mcp_authz::lists",
            reason = e.code(),
            error = %e,
            server = self.ctx.as_ref().map_or("-", |c| c.server.as_str()),
            "ext_proc: a list response could not be filtered; replaced with a JSON-RPC error"
        );
    }
}

/// The sealed context in ext_authz's forwarded metadata.
fn context(
    metadata: Option<&Metadata>,
    key: &BindingKey,
    cfg: &Config,
) -> Result<ResponseContext, ContextError> {
    let sealed = metadata
        .and_then(|m| m.filter_metadata.get(EXT_AUTHZ_NAMESPACE))
        .and_then(|s| s.fields.get(METADATA_KEY))
        .and_then(|v| match &v.kind {
            Some(Kind::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
        .ok_or(ContextError::Missing)?;
    ResponseContext::open(key, sealed, &cfg.surfaces)
}

/// Header lookups over Envoy's header list (`raw_value` preferred).
struct Headers<'a>(&'a HttpHeaders);

impl<'a> Headers<'a> {
    fn all(&self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .headers
            .iter()
            .flat_map(|m| m.headers.iter())
            .filter(move |h| h.key.eq_ignore_ascii_case(name))
            .map(|h| {
                if h.raw_value.is_empty() {
                    h.value.as_str()
                } else {
                    std::str::from_utf8(&h.raw_value).unwrap_or("\u{fffd}")
                }
            })
    }

    fn get(&self, name: &'a str) -> Option<&'a str> {
        self.all(name).next()
    }
}

fn set_header(key: &str, value: &str) -> HeaderValueOption {
    #[allow(deprecated)]
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: String::new(),
            raw_value: value.as_bytes().to_vec(),
        }),
        append: None,
        append_action: envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        keep_empty_value: false,
    }
}

fn reply(r: Reply) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(r),
        ..ProcessingResponse::default()
    }
}

fn headers_reply(mutation: HeaderMutation, body: Option<BodySendMode>) -> ProcessingResponse {
    let mut r = reply(Reply::ResponseHeaders(HeadersResponse {
        response: Some(CommonResponse {
            header_mutation: Some(mutation),
            ..CommonResponse::default()
        }),
    }));
    if let Some(mode) = body {
        r.mode_override = Some(ProcessingMode {
            response_body_mode: mode.into(),
            ..ProcessingMode::default()
        });
    }
    r
}

/// `None`: the chunk passes unchanged; `Some(bytes)`: it is replaced.
fn body_reply(body: Option<Vec<u8>>) -> ProcessingResponse {
    let mutation = body.map(|b| BodyMutation {
        mutation: Some(if b.is_empty() {
            Mutation::ClearBody(true)
        } else {
            Mutation::Body(b)
        }),
    });
    reply(Reply::ResponseBody(BodyResponse {
        response: Some(CommonResponse {
            body_mutation: mutation,
            ..CommonResponse::default()
        }),
    }))
}

/// A JSON-RPC error body for a refused response (no request id known).
fn failure(reason: &str, message: &str) -> Vec<u8> {
    let message = format!("mcp-authz refused the MCP server's response: {message}");
    serde_json::to_vec(&lists::error_object(
        serde_json::Value::Null,
        &message,
        reason,
    ))
    .unwrap_or_default()
}

fn immediate(status: u16, body: &[u8]) -> ProcessingResponse {
    reply(Reply::ImmediateResponse(ImmediateResponse {
        status: Some(HttpStatus {
            code: i32::from(status),
        }),
        headers: Some(HeaderMutation {
            set_headers: vec![set_header("content-type", "application/json")],
            ..HeaderMutation::default()
        }),
        body: body.to_vec(),
        details: "mcp_authz_response_refused".into(),
        ..ImmediateResponse::default()
    }))
}
