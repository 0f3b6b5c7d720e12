//! Logs and the admin HTTP endpoint (`/healthz`, `/readyz`).

mod admin;

pub use admin::{AdminState, router as admin_router};

use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
