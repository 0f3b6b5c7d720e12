//! The deployment description `mcp-authz envoy render` reads besides the
//! configuration and registry: where Envoy listens, where mcp-authz and each
//! MCP server are reached, TLS files and timeouts. YAML, unknown keys are
//! errors, every error names its key path.
//!
//! ```yaml
//! admin: 127.0.0.1:9901
//! listeners:
//!   - { name: mcp, address: 127.0.0.1:10000 }
//!   - name: mcp_mtls
//!     address: 127.0.0.1:10443
//!     tls: { certificate: tls/server.pem, private_key: tls/server-key.pem, client_ca: tls/ca.pem }
//! authz:
//!   grpc: 127.0.0.1:9191           # or unix:/run/mcp-authz/grpc.sock
//!   public: 127.0.0.1:9193
//!   timeout: 1s
//! upstreams:                       # default: each server's registry `probe_url`
//!   presto: http://presto.mcp.svc:8080/mcp
//! stream_idle_timeout: 5m
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// A parsed and validated deployment description.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Envoy's admin listener.
    pub admin: Endpoint,
    pub listeners: Vec<Listener>,
    /// ext_authz + ext_proc gRPC.
    pub authz_grpc: AuthzAddress,
    /// mcp-authz's public HTTP port (RFC 9728 metadata, registry API).
    pub authz_public: Endpoint,
    /// Envoy's gRPC timeout for ext_authz (ext_proc gets twice this).
    pub authz_timeout: Duration,
    /// MCP upstream URLs by registry server name (overrides of `probe_url`).
    pub upstreams: BTreeMap<String, String>,
    /// Envoy's `stream_idle_timeout`: the longest silence on an MCP stream.
    pub stream_idle_timeout: Duration,
    /// Write Envoy's JSON access log to stdout.
    pub access_log: bool,
}

/// A TCP address as Envoy's `socket_address` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// How Envoy reaches mcp-authz's gRPC port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzAddress {
    Tcp(Endpoint),
    /// A Unix domain socket path (same pod).
    Unix(String),
}

/// One Envoy listener for MCP clients.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub address: Endpoint,
    pub tls: Option<Tls>,
}

/// Downstream TLS of a listener; with `client_ca`, client certificates are
/// required and their SPIFFE id reaches mcp-authz as the source principal.
#[derive(Debug, Clone)]
pub struct Tls {
    pub certificate: String,
    pub private_key: String,
    pub client_ca: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    admin: Option<String>,
    #[serde(default)]
    listeners: Vec<RawListener>,
    authz: Option<RawAuthz>,
    #[serde(default)]
    upstreams: BTreeMap<String, String>,
    stream_idle_timeout: Option<String>,
    access_log: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    name: String,
    address: String,
    tls: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: String,
    private_key: String,
    client_ca: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthz {
    grpc: Option<String>,
    public: Option<String>,
    timeout: Option<String>,
}

/// `host:port` (IPv6 hosts in brackets).
pub fn endpoint(s: &str) -> Option<Endpoint> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    ok.then(|| Endpoint {
        host: host.to_owned(),
        port,
    })
}

/// `value` (else `default`) as an endpoint; a problem at `key` otherwise.
fn addr(
    problems: &mut Vec<String>,
    source: &str,
    key: &str,
    value: Option<&str>,
    default: &str,
) -> Endpoint {
    let v = value.unwrap_or(default);
    endpoint(v).unwrap_or_else(|| {
        problems.push(format!("{source}: {key}: `{v}` is not `host:port`"));
        Endpoint {
            host: "0.0.0.0".into(),
            port: 1,
        }
    })
}

/// `value` as a duration in `(0, max]`, else `default`; a problem at `key`.
fn duration(
    problems: &mut Vec<String>,
    source: &str,
    key: &str,
    value: Option<&str>,
    (default, max): (Duration, Duration),
) -> Duration {
    let Some(v) = value else { return default };
    match humantime::parse_duration(v) {
        Ok(d) if d > Duration::ZERO && d <= max => d,
        _ => {
            problems.push(format!(
                "{source}: {key}: `{v}` is not a duration between 1ms and {}",
                humantime::format_duration(max)
            ));
            default
        }
    }
}

/// Why a deployment description is refused: one line per problem, each
/// starting with the file and key path.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct DeploymentError(pub Vec<String>);

impl Deployment {
    /// Reads and validates a deployment description.
    ///
    /// # Errors
    /// Every problem, each naming `<file>: <key path>: <why>`.
    pub fn load(file: &Path) -> Result<Self, DeploymentError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| DeploymentError(vec![format!("{}: cannot read: {e}", file.display())]))?;
        Self::parse(&text, &file.display().to_string())
    }

    /// Parses a description; `source` names it in errors.
    ///
    /// # Errors
    /// As [`Deployment::load`].
    pub fn parse(text: &str, source: &str) -> Result<Self, DeploymentError> {
        let raw: Raw = serde_saphyr::from_str(text)
            .map_err(|e| DeploymentError(vec![format!("{source}: {e}")]))?;
        let mut problems = Vec::new();
        let p = &mut problems;
        let admin = addr(p, source, "admin", raw.admin.as_deref(), "127.0.0.1:9901");
        let authz = raw.authz.unwrap_or(RawAuthz {
            grpc: None,
            public: None,
            timeout: None,
        });
        let authz_public = addr(
            p,
            source,
            "authz.public",
            authz.public.as_deref(),
            "127.0.0.1:9193",
        );
        let grpc = authz.grpc.as_deref().unwrap_or("127.0.0.1:9191");
        let authz_grpc = match grpc.strip_prefix("unix:") {
            Some(path) if path.starts_with('/') => AuthzAddress::Unix(path.to_owned()),
            Some(_) => {
                p.push(format!(
                    "{source}: authz.grpc: a Unix socket is `unix:/absolute/path`"
                ));
                AuthzAddress::Unix(String::new())
            }
            None => AuthzAddress::Tcp(addr(p, source, "authz.grpc", Some(grpc), grpc)),
        };
        let authz_timeout = duration(
            p,
            source,
            "authz.timeout",
            authz.timeout.as_deref(),
            (Duration::from_secs(1), Duration::from_secs(10)),
        );
        let stream_idle_timeout = duration(
            p,
            source,
            "stream_idle_timeout",
            raw.stream_idle_timeout.as_deref(),
            (Duration::from_secs(300), Duration::from_secs(24 * 3600)),
        );
        if raw.listeners.is_empty() {
            problems.push(format!("{source}: listeners: list at least one listener"));
        }
        let mut listeners = Vec::new();
        for (i, l) in raw.listeners.into_iter().enumerate() {
            let key = format!("listeners[{i}]");
            let name_ok = !l.name.is_empty()
                && l.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !name_ok {
                problems.push(format!(
                    "{source}: {key}.name: `{}` is not [a-z0-9_]+",
                    l.name
                ));
            }
            let Some(address) = endpoint(&l.address) else {
                problems.push(format!(
                    "{source}: {key}.address: `{}` is not `host:port`",
                    l.address
                ));
                continue;
            };
            listeners.push(Listener {
                name: l.name,
                address,
                tls: l.tls.map(|t| Tls {
                    certificate: t.certificate,
                    private_key: t.private_key,
                    client_ca: t.client_ca,
                }),
            });
        }
        let mut names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            problems.push(format!("{source}: listeners: two listeners share a name"));
        }
        for (name, url) in &raw.upstreams {
            if let Err(e) = upstream_url(url) {
                problems.push(format!("{source}: upstreams.{name}: {e}"));
            }
        }
        if !problems.is_empty() {
            return Err(DeploymentError(problems));
        }
        Ok(Deployment {
            admin,
            listeners,
            authz_grpc,
            authz_public,
            authz_timeout,
            upstreams: raw.upstreams,
            stream_idle_timeout,
            access_log: raw.access_log.unwrap_or(true),
        })
    }
}

/// An MCP server's upstream: scheme, endpoint and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub tls: bool,
    pub endpoint: Endpoint,
    /// The MCP endpoint path on the upstream (`/mcp`).
    pub path: String,
}

/// Parses `http(s)://host[:port]/path`.
///
/// # Errors
/// A message for anything else (query, fragment, credentials, other schemes).
pub fn upstream_url(url: &str) -> Result<Upstream, String> {
    let u = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let tls = match u.scheme() {
        "http" => false,
        "https" => true,
        s => return Err(format!("`{url}`: scheme `{s}` is not http or https")),
    };
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err(format!(
            "`{url}`: no query, fragment or credentials in an upstream URL"
        ));
    }
    let host = u.host_str().ok_or_else(|| format!("`{url}` has no host"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = u
        .port_or_known_default()
        .ok_or_else(|| format!("`{url}` has no port"))?;
    Ok(Upstream {
        tls,
        endpoint: Endpoint {
            host: host.to_owned(),
            port,
        },
        path: u.path().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_problem_names_its_key() {
        let text = "admin: nowhere\nlisteners: [{name: Bad, address: x}]\nauthz: {grpc: 'unix:rel', timeout: 0s}\nupstreams: {presto: 'ftp://x/mcp'}\nstream_idle_timeout: forever\n";
        let e = Deployment::parse(text, "d.yaml").unwrap_err().0;
        for key in [
            "d.yaml: admin:",
            "d.yaml: listeners[0].name:",
            "d.yaml: listeners[0].address:",
            "d.yaml: authz.grpc:",
            "d.yaml: authz.timeout:",
            "d.yaml: upstreams.presto:",
            "d.yaml: stream_idle_timeout:",
        ] {
            assert!(e.iter().any(|p| p.starts_with(key)), "{key} in {e:?}");
        }
        let unknown = Deployment::parse("listenrs: []", "d.yaml").unwrap_err().0;
        assert!(unknown[0].contains("listenrs"), "{unknown:?}");
    }

    #[test]
    fn upstream_urls() {
        let u = upstream_url("http://presto.mcp.svc:8080/mcp").unwrap();
        assert_eq!(u.endpoint.port, 8080);
        assert_eq!(u.path, "/mcp");
        assert!(!u.tls);
        assert_eq!(upstream_url("https://h/x").unwrap().endpoint.port, 443);
        assert!(upstream_url("http://u:p@h/x").is_err());
        assert!(upstream_url("http://h/x?y=1").is_err());
    }
}
