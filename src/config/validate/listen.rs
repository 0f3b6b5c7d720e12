//! Validation of the listeners (`listen.*`) and of how they serve and stop (`server.*`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::super::raw::{RawGrpcTls, RawListen, RawServer};
use super::super::*;
use super::{Problems, join_clean};

/// Longest Unix socket path: `sun_path` holds 108 bytes, the last one NUL.
const MAX_UNIX_PATH_BYTES: usize = 107;

/// `listen.*`: addresses (the gRPC one TCP or `unix:`), no two TCP listeners
/// on one address, TLS files present and PEM.
pub(super) fn listen(p: &mut Problems, raw: RawListen, base_dir: &Path) -> Listen {
    let grpc = grpc_addr(p, raw.grpc.as_deref());
    let admin = p.addr("listen.admin", raw.admin.as_deref(), DEFAULT_ADMIN_ADDR);
    let public = p.addr("listen.public", raw.public.as_deref(), DEFAULT_PUBLIC_ADDR);
    // Three servers, three sockets: `serve` could not bind a shared one
    // (port 0 asks the system for a free port each time). A Unix socket
    // shares no port.
    let tcp: Option<SocketAddr> = match grpc {
        GrpcAddr::Tcp(g) => Some(g),
        GrpcAddr::Unix(_) => None,
    };
    for (key, a, b) in [
        ("listen.admin", admin, tcp),
        ("listen.public", public, tcp),
        ("listen.public", public, Some(admin)),
    ] {
        if Some(a) == b && a.port() != 0 {
            p.push(key, format!("`{a}` is already used by another listener"));
        }
    }
    let grpc_tls = raw.grpc_tls.and_then(|t| grpc_tls(p, t, base_dir));
    if grpc_tls.is_some() && matches!(grpc, GrpcAddr::Unix(_)) {
        p.push(
            "listen.grpc_tls",
            "applies to a TCP `listen.grpc` only: a Unix socket is guarded by its file mode (0660)",
        );
    }
    Listen {
        grpc,
        grpc_tls,
        admin,
        public,
    }
}

/// `listen.grpc`: `host:port`, or `unix:` and an absolute path that fits a socket address.
fn grpc_addr(p: &mut Problems, value: Option<&str>) -> GrpcAddr {
    const KEY: &str = "listen.grpc";
    let Some(path) = value.and_then(|v| v.strip_prefix("unix:")) else {
        return GrpcAddr::Tcp(p.addr(KEY, value, DEFAULT_GRPC_ADDR));
    };
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        p.push(
            KEY,
            format!(
                "`unix:{}` is not an absolute path: write `unix:/run/mcp-authz/grpc.sock`",
                path.display()
            ),
        );
    } else if path.as_os_str().len() > MAX_UNIX_PATH_BYTES || path.file_name().is_none() {
        p.push(
            KEY,
            format!(
                "`unix:{}` is not a socket file path of at most {MAX_UNIX_PATH_BYTES} bytes",
                path.display()
            ),
        );
    }
    GrpcAddr::Unix(path)
}

/// `listen.grpc_tls`: certificate and key required, every file readable and PEM.
fn grpc_tls(p: &mut Problems, raw: RawGrpcTls, base_dir: &Path) -> Option<GrpcTls> {
    let mut pem = |key: &str, file: Option<String>, label: &str| -> Option<PathBuf> {
        let Some(file) = file else {
            p.push(
                format!("listen.grpc_tls.{key}"),
                "required with `listen.grpc_tls`",
            );
            return None;
        };
        let path = join_clean(base_dir, &file);
        match std::fs::read_to_string(&path) {
            Ok(text) if text.contains(label) => {}
            Ok(_) => p.push(
                format!("listen.grpc_tls.{key}"),
                format!("`{}` holds no PEM `{label}` block", path.display()),
            ),
            Err(e) => p.push(
                format!("listen.grpc_tls.{key}"),
                format!("cannot read `{}`: {e}", path.display()),
            ),
        }
        Some(path)
    };
    let certificate = pem("certificate", raw.certificate, "CERTIFICATE-----");
    let private_key = pem("private_key", raw.private_key, "PRIVATE KEY-----");
    let client_ca = match raw.client_ca {
        Some(f) => Some(pem("client_ca", Some(f), "CERTIFICATE-----")?),
        None => None,
    };
    Some(GrpcTls {
        certificate: certificate?,
        private_key: private_key?,
        client_ca,
    })
}

/// `server.*`: bounded durations and stream count.
pub(super) fn server(p: &mut Problems, raw: RawServer) -> ServerConfig {
    let mut bounded = |key: &str, value: Option<String>, default, bounds, why| {
        p.bounded(
            format!("server.{key}"),
            value.as_deref(),
            default,
            bounds,
            why,
        )
    };
    let drain_delay = bounded(
        "drain_delay",
        raw.drain_delay,
        DEFAULT_DRAIN_DELAY,
        DRAIN_DELAY_BOUNDS,
        "Kubernetes stops sending new requests within seconds; 0s stops at once",
    );
    let shutdown_timeout = bounded(
        "shutdown_timeout",
        raw.shutdown_timeout,
        DEFAULT_SHUTDOWN_TIMEOUT,
        SHUTDOWN_TIMEOUT_BOUNDS,
        "keep drain_delay plus shutdown_timeout below the pod's terminationGracePeriodSeconds",
    );
    let request_timeout = bounded(
        "request_timeout",
        raw.request_timeout,
        DEFAULT_REQUEST_TIMEOUT,
        REQUEST_TIMEOUT_BOUNDS,
        "a Check takes milliseconds; Envoy's own ext_authz timeout is shorter",
    );
    let http2_keepalive_interval = bounded(
        "http2_keepalive_interval",
        raw.http2_keepalive_interval,
        DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
        HTTP2_KEEPALIVE_INTERVAL_BOUNDS,
        "pings find dead connections",
    );
    let http2_keepalive_timeout = bounded(
        "http2_keepalive_timeout",
        raw.http2_keepalive_timeout,
        DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
        HTTP2_KEEPALIVE_TIMEOUT_BOUNDS,
        "an unanswered ping closes the connection",
    );
    let (lo, hi) = MAX_CONCURRENT_STREAMS_BOUNDS;
    let max_concurrent_streams = match raw.max_concurrent_streams {
        None => DEFAULT_MAX_CONCURRENT_STREAMS,
        Some(n) => match u32::try_from(n) {
            Ok(n) if (lo..=hi).contains(&n) => n,
            _ => {
                p.push(
                    "server.max_concurrent_streams",
                    format!("`{n}` is out of range: must be between {lo} and {hi}"),
                );
                DEFAULT_MAX_CONCURRENT_STREAMS
            }
        },
    };
    ServerConfig {
        drain_delay,
        shutdown_timeout,
        max_concurrent_streams,
        request_timeout,
        http2_keepalive_interval,
        http2_keepalive_timeout,
    }
}
