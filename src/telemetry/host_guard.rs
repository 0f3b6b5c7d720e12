//! DNS rebinding defence for the admin port (UI, `/metrics`, `/usage`,
//! `/readyz`): a page on `evil.example` whose name an attacker re-points to
//! 127.0.0.1 reaches the port with `Host: evil.example`. Only hosts this
//! deployment is known by are answered: IP literals (what Prometheus and
//! Kubernetes probes use), `localhost`, and the hosts of `origins.allowed`
//! and `resource_metadata.public_url`.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Config;

/// The host names (lowercase, no port) the admin port answers besides IP
/// literals and `localhost`.
pub fn allowed_hosts(cfg: &Config) -> Vec<String> {
    cfg.origins
        .allowed
        .iter()
        .chain(cfg.public_url.iter())
        .filter_map(|u| url::Url::parse(u).ok())
        .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
        .collect()
}

/// Whether a `Host` header value names this server.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:9192`
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    let name = name.to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok() || name == "localhost" || allowed.contains(&name)
}

/// Middleware: 421 Misdirected Request for any other `Host`.
pub async fn guard(allowed: std::sync::Arc<Vec<String>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match host {
        Some(h) if host_allowed(h, &allowed) => next.run(req).await,
        _ => (StatusCode::MISDIRECTED_REQUEST, "unknown host\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_hosts_are_answered() {
        let allowed = vec!["mcp.example.com".to_string()];
        for ok in [
            "127.0.0.1:9192",
            "10.1.2.3",
            "[::1]:9192",
            "localhost:9192",
            "LOCALHOST",
            "mcp.example.com:443",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "evil.example:9192",
            "evil.example",
            "127.0.0.1.evil.example",
            "[evil]:1",
            "",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
