//! Logs (and their OTLP export), the audit log, metrics and usage, and the
//! admin HTTP endpoints (`/healthz`, `/readyz`, `/metrics`, `/usage`).

mod admin;
mod audit;
mod audit_writer;
mod batch;
pub mod host_guard;
mod metrics;
mod metrics_http;
mod metrics_scrape;
mod trace;
mod usage;

pub use admin::{AdminState, router as admin_router};
pub use audit::{AuditFormat, AuditLine, traceparent};
pub use audit_writer::AuditLog;
pub use metrics::Metrics;
pub use metrics_http::{prometheus_text, router as metrics_router};
pub use trace::{OtlpExport, remote_parent, start_otlp};
pub use usage::{Usage, router as usage_router};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log line format.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global tracing subscriber; the filter comes from `RUST_LOG`
/// (default `info`, and `warn` for the MCP client library: the status probe
/// would otherwise log every probe). Logs go to stderr so stdout stays for command output.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    // An empty slot for the OpenTelemetry exporter, filled by `start_otlp`
    // once the configuration is read.
    let (otel, handle) = trace::slot();
    let base = tracing_subscriber::registry().with(otel).with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let installed = match format {
        LogFormat::Text => base.with(fmt).try_init(),
        LogFormat::Json => base.with(fmt.json()).try_init(),
    };
    if installed.is_ok() {
        trace::installed(handle);
    }
}
