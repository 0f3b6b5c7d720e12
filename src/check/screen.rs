//! Checks on the request's headers made before anything else: spellings of
//! trusted headers that a framework would normalise, and the browser origin.

use std::collections::HashSet;

use super::{Denial, DenyReason, RequestView};
use crate::config::Config;
use crate::mcp::strict::quoted;
use crate::mcp::{MCP_METHOD, MCP_NAME, MCP_PARAM_PREFIX, MCP_PROTOCOL_VERSION};

/// Header names a client must never be able to pass under another spelling:
/// every identity header mcp-authz sets or strips, the channel header, the
/// credential, the MCP mirror headers and Envoy's partial-body flag.
pub(super) fn protected_headers(cfg: &Config) -> HashSet<String> {
    let h = &cfg.identity_headers;
    let mut out: HashSet<String> = [
        Some(&h.user),
        Some(&h.groups),
        h.business_groups.as_ref(),
        h.surface.as_ref(),
        Some(&h.service),
        Some(&cfg.request_context.channel_header),
    ]
    .into_iter()
    .flatten()
    .chain(&h.strip)
    .cloned()
    .collect();
    out.extend(
        [
            "authorization",
            "origin",
            "mcp-session-id",
            MCP_METHOD,
            MCP_NAME,
            MCP_PROTOCOL_VERSION,
            super::PARTIAL_BODY_HEADER,
        ]
        .map(str::to_owned),
    );
    out
}

/// Refuses a header whose name, with `_` read as `-` (as WSGI, CGI and
/// several frameworks do), is a protected header or an `x-forwarded-*` /
/// `mcp-param-*` header. Envoy's `headers_with_underscores_action:
/// REJECT_REQUEST` stops these first; this check does not depend on it.
pub(super) fn spellings(
    req: &RequestView<'_>,
    protected: &HashSet<String>,
) -> Result<(), Box<Denial>> {
    let Some(headers) = req.headers else {
        return Ok(());
    };
    for name in headers.keys().filter(|n| n.contains('_')) {
        let dashed = name.to_ascii_lowercase().replace('_', "-");
        if protected.contains(&dashed)
            || dashed.starts_with("x-forwarded-")
            || dashed.starts_with(MCP_PARAM_PREFIX)
        {
            let mut d = Denial::new(DenyReason::ForbiddenHeader);
            d.message = format!(
                "header `{}` would be read as `{dashed}` by some servers: refused",
                quoted(name)
            );
            return Err(Box::new(d));
        }
    }
    Ok(())
}

/// The MCP transport requires servers to validate `Origin` (DNS rebinding):
/// a request that carries one must come from an allowed origin.
pub(super) fn origin(req: &RequestView<'_>, allowed: &[String]) -> Result<(), Box<Denial>> {
    match req.header("origin") {
        Some(o) if !allowed.iter().any(|a| a == o) => {
            let mut d = Denial::new(DenyReason::InvalidOrigin);
            d.message = format!("origin `{}` is not allowed", quoted(o));
            Err(Box::new(d))
        }
        _ => Ok(()),
    }
}

/// Whether the body Envoy sent may be shorter than the request's: Envoy's
/// partial-body flag, a declared size (`content-length`, the CheckRequest's
/// `size`) that differs from what arrived, or an unknown size with a body
/// that fills the buffer. Envoy does not always set the flag.
pub(super) fn body_cut(req: &RequestView<'_>, max_body_bytes: usize) -> bool {
    if req.header(super::PARTIAL_BODY_HEADER) == Some("true") {
        return true;
    }
    let got = req.body.len() as u64;
    let length = match req.header("content-length") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return true,
        },
    };
    match (length, req.declared_size) {
        (None, None) => req.body.len() >= max_body_bytes,
        (l, s) => l.is_some_and(|n| n != got) || s.is_some_and(|n| n != got),
    }
}

/// Whether the request announces a body (`content-length` other than 0, or
/// `transfer-encoding`).
pub(super) fn declares_body(req: &RequestView<'_>) -> bool {
    req.header("content-length").is_some_and(|v| v != "0")
        || req.header("transfer-encoding").is_some()
        || req.declared_size.is_some_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;

    fn view<'a>(
        h: &'a HashMap<String, String>,
        body: &'a [u8],
        size: Option<u64>,
    ) -> RequestView<'a> {
        RequestView {
            headers: Some(h),
            method: "POST",
            body,
            declared_size: size,
            ..Default::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn underscore_spellings_of_trusted_headers_are_refused() {
        let cfg = crate::config::load(None).unwrap();
        let protected = protected_headers(&cfg);
        for name in [
            "x_forwarded_groups",
            "x_forwarded_user",
            "x-forwarded_service",
            "x_mcp_channel",
            "mcp_method",
            "mcp_param_region",
            "x_forwarded_anything",
        ] {
            let h = headers(&[(name, "v")]);
            let d = spellings(&view(&h, b"", None), &protected).unwrap_err();
            assert_eq!(d.reason, DenyReason::ForbiddenHeader, "{name}");
        }
        let h = headers(&[("x_custom_trace", "v"), ("x-forwarded-groups", "g")]);
        assert!(spellings(&view(&h, b"", None), &protected).is_ok());
    }

    #[test]
    fn protected_names_follow_the_configured_identity_headers() {
        let mut cfg = crate::config::load(None).unwrap();
        cfg.identity_headers.service = "x-acme-workload".into();
        cfg.identity_headers.user = "x-acme-user".into();
        cfg.request_context.channel_header = "x-acme-channel".into();
        let protected = protected_headers(&cfg);
        for name in ["x_acme_workload", "x_acme_user", "X_ACME_CHANNEL"] {
            let h = headers(&[(name, "v")]);
            assert!(
                spellings(&view(&h, b"", None), &protected).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn only_listed_origins_pass() {
        let allowed = vec!["http://localhost:6274".to_string()];
        let h = headers(&[("origin", "http://evil.example")]);
        assert_eq!(
            origin(&view(&h, b"", None), &allowed).unwrap_err().reason,
            DenyReason::InvalidOrigin
        );
        let h = headers(&[("origin", "http://localhost:6274")]);
        assert!(origin(&view(&h, b"", None), &allowed).is_ok());
        assert!(origin(&view(&headers(&[]), b"", None), &allowed).is_ok());
    }

    #[test]
    fn a_body_shorter_than_declared_or_filling_the_buffer_is_cut() {
        let body = vec![b' '; 100];
        let cut = |pairs: &[(&str, &str)], size| body_cut(&view(&headers(pairs), &body, size), 100);
        assert!(!cut(&[("content-length", "100")], Some(100)));
        assert!(cut(&[("content-length", "117")], None));
        assert!(cut(&[], Some(117)));
        assert!(cut(&[("content-length", "100")], Some(117)));
        assert!(cut(&[("content-length", "100, 100")], None));
        assert!(cut(&[("x-envoy-auth-partial-body", "true")], Some(100)));
        // unknown size: at the limit it may have been cut
        assert!(cut(&[], None));
        let small = vec![b' '; 99];
        assert!(!body_cut(&view(&headers(&[]), &small, None), 100));
    }
}
