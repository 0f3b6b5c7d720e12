//! OpenTelemetry export of mcp-authz's spans over OTLP/HTTP (protobuf), off
//! unless `tracing.otlp_endpoint` is set. The log subscriber is installed
//! before the configuration is read, so it carries an empty, reloadable slot
//! that [`start_otlp`] fills. Only spans of mcp-authz itself are exported
//! (never those of the HTTP client doing the export).

use std::sync::OnceLock;

use anyhow::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::{Layer, Registry, reload};

use crate::config::TracingConfig;

/// The OpenTelemetry layer, once export is on.
pub type OtelLayer = Box<dyn Layer<Registry> + Send + Sync>;
type Slot = reload::Layer<Option<OtelLayer>, Registry>;

static SLOT: OnceLock<reload::Handle<Option<OtelLayer>, Registry>> = OnceLock::new();

/// The empty slot for the subscriber, filtered to mcp-authz's own spans.
pub(super) fn slot() -> (
    tracing_subscriber::filter::Filtered<Slot, Targets, Registry>,
    reload::Handle<Option<OtelLayer>, Registry>,
) {
    let (layer, handle) = reload::Layer::new(None);
    let own = Targets::new().with_target("mcp_authz", LevelFilter::TRACE);
    (layer.with_filter(own), handle)
}

/// Remembers the slot of the installed subscriber.
pub(super) fn installed(handle: reload::Handle<Option<OtelLayer>, Registry>) {
    let _ = SLOT.set(handle);
}

/// Spans being exported; [`OtlpExport::shutdown`] sends the last batch.
pub struct OtlpExport(SdkTracerProvider);

impl OtlpExport {
    /// Flushes queued spans (blocking, up to the exporter's timeout).
    pub fn shutdown(self) {
        if let Err(e) = self.0.shutdown() {
            tracing::warn!(error = %e, "OTLP span export did not shut down cleanly");
        }
    }
}

/// Starts exporting spans to `cfg.otlp_endpoint`; `None` when unset. Call
/// outside the async runtime (the exporter's HTTP client is blocking and
/// runs on the batch processor's own thread).
///
/// Errors: the exporter cannot be built, or no subscriber was installed by
/// [`super::init`].
pub fn start_otlp(cfg: &TracingConfig) -> anyhow::Result<Option<OtlpExport>> {
    let Some(endpoint) = &cfg.otlp_endpoint else {
        return Ok(None);
    };
    let slot = SLOT
        .get()
        .context("tracing.otlp_endpoint: no log subscriber to attach the exporter to")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
        .with_context(|| format!("tracing.otlp_endpoint: cannot export to `{endpoint}`"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(cfg.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("mcp-authz");
    slot.reload(Some(
        tracing_opentelemetry::layer().with_tracer(tracer).boxed(),
    ))
    .context("cannot attach the OTLP exporter to the log subscriber")?;
    tracing::info!(endpoint = %endpoint, "exporting spans over OTLP");
    Ok(Some(OtlpExport(provider)))
}

/// The remote parent of a validated `traceparent`: attach it while creating
/// a root span and the exported span joins that trace (`set_parent` cannot
/// reach the exporter through the reloadable slot).
pub fn remote_parent(traceparent: &str) -> Option<opentelemetry::Context> {
    let mut parts = traceparent.split('-').skip(1);
    let trace = TraceId::from_hex(parts.next()?).ok()?;
    let span = SpanId::from_hex(parts.next()?).ok()?;
    let flags = u8::from_str_radix(parts.next()?, 16).ok()?;
    let cx = SpanContext::new(
        trace,
        span,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    Some(opentelemetry::Context::new().with_remote_span_context(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_becomes_a_sampled_remote_parent() {
        let cx = remote_parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let Some(cx) = cx else { panic!("parsed") };
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_remote() && sc.is_sampled());
    }
}
