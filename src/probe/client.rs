//! Talking to one MCP server as the probe does: rmcp's streamable HTTP client
//! runs `initialize`, `notifications/initialized` and `tools/list`; a server
//! with only a health URL gets a plain `GET`. Shared by the background probe
//! and `mcp-authz registry pin` / `validate --live`.

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::ClientInitializeError;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use serde_json::Value;

/// Why a probe failed, already classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The server refused the probe's credential (HTTP 401 or 403).
    #[error("credential refused: {0}")]
    AuthFailed(String),
    /// No usable answer: connection refused, timeout, not MCP.
    #[error("{0}")]
    Down(String),
    /// `initialize` succeeded but `tools/list` failed.
    #[error("tools/list failed: {0}")]
    ToolsFailed(String),
}

/// A successful `tools/list`: every tool as the server sent it (JSON).
#[derive(Debug, Clone)]
pub struct LiveTools {
    pub tools: Vec<Value>,
    /// Time from connecting to the end of `tools/list`.
    pub latency: Duration,
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, ProbeError> {
    // Probe URLs are direct addresses of the servers: no proxy.
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| ProbeError::Down(format!("cannot build an HTTP client: {e}")))
}

/// Runs `initialize` + `tools/list` against the MCP endpoint `url`, within
/// `timeout` in all, sending `bearer` (if any) as `Authorization: Bearer`.
pub async fn list_tools(
    url: &str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<LiveTools, ProbeError> {
    let start = Instant::now();
    let work = async {
        let mut config = StreamableHttpClientTransportConfig::with_uri(url);
        if let Some(token) = bearer {
            config = config.auth_header(token);
        }
        let transport = StreamableHttpClientTransport::with_client(http_client(timeout)?, config);
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcp-authz-probe", env!("CARGO_PKG_VERSION")),
        );
        let mut client = info.serve(transport).await.map_err(classify_init)?;
        let listed = client.list_all_tools().await;
        // Ends the session (HTTP DELETE) so probes leave nothing behind.
        let _ = client.close().await;
        let tools = listed.map_err(|e| ProbeError::ToolsFailed(e.to_string()))?;
        let tools = tools
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProbeError::ToolsFailed(e.to_string()))?;
        Ok(LiveTools {
            tools,
            latency: start.elapsed(),
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Down(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        ))),
    }
}

/// `GET url`: 2xx is up, 401/403 a refused credential, anything else down.
/// Returns the latency.
pub async fn health_get(
    url: &str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<Duration, ProbeError> {
    let start = Instant::now();
    let mut req = http_client(timeout)?.get(url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ProbeError::Down(without_url(&e)))?;
    match resp.status().as_u16() {
        200..=299 => Ok(start.elapsed()),
        s @ (401 | 403) => Err(ProbeError::AuthFailed(format!("HTTP {s}"))),
        s => Err(ProbeError::Down(format!("HTTP {s}"))),
    }
}

/// A reqwest error without the URL (which may carry credentials).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        let text = e.to_string();
        match e.url() {
            Some(u) => text.replace(u.as_str(), "<url>"),
            None => text,
        }
    }
}

/// Sorts an `initialize` failure into a refused credential or a down server.
fn classify_init(e: ClientInitializeError) -> ProbeError {
    let text = e.to_string();
    if let ClientInitializeError::TransportError { error, .. } = &e {
        match error
            .error
            .downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            Some(StreamableHttpError::AuthRequired(_)) => {
                return ProbeError::AuthFailed("HTTP 401".into());
            }
            Some(StreamableHttpError::InsufficientScope(_)) => {
                return ProbeError::AuthFailed("HTTP 403".into());
            }
            Some(StreamableHttpError::Client(c)) => return ProbeError::Down(without_url(c)),
            _ => {}
        }
    }
    // A 401/403 without a challenge comes back as an unexpected response
    // naming its status.
    for status in ["HTTP 401", "HTTP 403"] {
        if text.contains(status) {
            return ProbeError::AuthFailed(status.into());
        }
    }
    ProbeError::Down(shorten(&text))
}

/// At most 200 characters of an error text (server answers can be long).
fn shorten(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
