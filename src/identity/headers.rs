//! Identity → the headers set on (and stripped from) the upstream request.
//!
//! Every configured identity header is either set by mcp-authz with overwrite
//! semantics or removed: a client-sent copy never reaches the upstream. A header
//! is never both set and removed, because Envoy applies removals after sets.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::Identity;
use crate::config::IdentityHeaders;

/// Bytes escaped in identity header values: `%` (the escape itself), `,` (the
/// list separator), `"` (RFC 9110 quoted strings in lists), control
/// characters, and every non-ASCII byte.
const HEADER_ESCAPES: &AsciiSet = &CONTROLS.add(b'%').add(b',').add(b'"');

/// Percent-encodes one identity value so that every byte arrives upstream as
/// it was decided: a valid header value, a comma always separates list items,
/// and leading or trailing spaces (which HTTP and list parsers trim) are
/// encoded as `%20`. The upstream percent-decodes each item.
pub fn encode_header_value(v: &str) -> String {
    let encoded = utf8_percent_encode(v, HEADER_ESCAPES).to_string();
    let inner = encoded.trim_matches(' ');
    if inner.len() == encoded.len() {
        return encoded;
    }
    let lead = encoded.len() - encoded.trim_start_matches(' ').len();
    let trail = encoded.len() - encoded.trim_end_matches(' ').len();
    if inner.is_empty() {
        return "%20".repeat(encoded.len());
    }
    format!("{}{inner}{}", "%20".repeat(lead), "%20".repeat(trail))
}

/// Headers to set (overwriting) and to remove on an allowed request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UpstreamHeaders {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

/// Upstream headers for any caller: a user's identity, or a service's SPIFFE id.
pub fn caller_headers(caller: &super::Caller, cfg: &IdentityHeaders) -> UpstreamHeaders {
    match caller {
        super::Caller::User(id) => upstream_headers(id, cfg),
        super::Caller::Service(spiffe) => {
            let mut out = UpstreamHeaders::default();
            out.set
                .push((cfg.service.clone(), encode_header_value(spiffe)));
            strip_unset(&mut out, cfg);
            out
        }
    }
}

/// Every header mcp-authz may set, plus the configured strip list: what a
/// client must never get through to the upstream.
fn identity_header_names(cfg: &IdentityHeaders) -> impl Iterator<Item = &String> {
    [
        Some(&cfg.user),
        Some(&cfg.groups),
        cfg.business_groups.as_ref(),
        cfg.surface.as_ref(),
        Some(&cfg.service),
    ]
    .into_iter()
    .flatten()
    .chain(&cfg.strip)
}

/// Removes every identity header the caller's own headers did not set.
fn strip_unset(out: &mut UpstreamHeaders, cfg: &IdentityHeaders) {
    for h in identity_header_names(cfg) {
        if !out.set.iter().any(|(n, _)| n == h) && !out.remove.contains(h) {
            out.remove.push(h.clone());
        }
    }
    if cfg.strip_authorization {
        out.remove.push("authorization".into());
    }
}

/// Computes the upstream identity headers for an identity.
pub fn upstream_headers(id: &Identity, cfg: &IdentityHeaders) -> UpstreamHeaders {
    let mut out = UpstreamHeaders::default();
    out.set
        .push((cfg.user.clone(), encode_header_value(&id.user)));
    let list = |items: &[String]| {
        (!items.is_empty()).then(|| {
            items
                .iter()
                .map(|g| encode_header_value(g))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    if let Some(groups) = list(&id.groups) {
        out.set.push((cfg.groups.clone(), groups));
    }
    if let (Some(h), Some(v)) = (&cfg.business_groups, list(&id.business_groups)) {
        out.set.push((h.clone(), v));
    }
    if let (Some(h), Some(s)) = (&cfg.surface, &id.surface) {
        out.set.push((h.clone(), encode_header_value(&s.name)));
    }
    strip_unset(&mut out, cfg);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg() -> IdentityHeaders {
        IdentityHeaders {
            user: "x-forwarded-user".into(),
            groups: "x-forwarded-groups".into(),
            business_groups: Some("x-forwarded-business-groups".into()),
            surface: None,
            service: "x-forwarded-service".into(),
            strip: vec![
                "x-forwarded-user".into(),
                "x-forwarded-groups".into(),
                "x-forwarded-business-groups".into(),
                "x-forwarded-surface".into(),
            ],
            strip_authorization: true,
        }
    }

    fn id(groups: &[&str]) -> Identity {
        Identity {
            user: "alice@example.com".into(),
            expires_at: 0,
            attributes: std::sync::Arc::new(super::super::Attributes {
                groups: groups.iter().map(|s| s.to_string()).collect(),
                business_groups: vec![],
                surface: None,
                client_id: None,
                issuer: "demo".into(),
                audiences: vec![],
                require_resource_audience: false,
            }),
        }
    }

    #[test]
    fn comma_and_percent_in_group_names_are_escaped() {
        assert_eq!(encode_header_value("a,b"), "a%2Cb");
        assert_eq!(encode_header_value("100%"), "100%25");
        assert_eq!(encode_header_value("Zürich\n"), "Z%C3%BCrich%0A");
        assert_eq!(encode_header_value("data science"), "data science");
        assert_eq!(encode_header_value("  alice"), "%20%20alice");
        assert_eq!(encode_header_value(" ads-eng "), "%20ads-eng%20");
        assert_eq!(encode_header_value("a\"b"), "a%22b");
        assert_eq!(encode_header_value("  "), "%20%20");
        assert_eq!(encode_header_value("\tx"), "%09x");
    }

    #[test]
    fn encoded_values_survive_http_trimming_and_list_splitting() {
        use percent_encoding::percent_decode_str;
        for v in [" a", "b ", " ", "x,y", "\"q\"", " c , d "] {
            let wire = encode_header_value(v);
            // what an HTTP parser does to a field value, then a list parser
            let item = wire.trim().split(',').map(str::trim).collect::<Vec<_>>();
            assert_eq!(item.len(), 1, "{v:?} became {wire:?}");
            assert_eq!(percent_decode_str(item[0]).decode_utf8().unwrap(), v);
        }
    }

    #[test]
    fn every_identity_header_is_set_or_removed_for_any_names() {
        let mut c = cfg();
        c.service = "x-acme-workload".into();
        c.user = "x-acme-user".into();
        c.strip = vec![];
        let user = upstream_headers(&id(&[]), &c);
        assert!(user.remove.contains(&"x-acme-workload".to_string()));
        let svc = caller_headers(&crate::identity::Caller::Service("spiffe://d/x".into()), &c);
        assert!(svc.remove.contains(&"x-acme-user".to_string()));
        assert!(svc.remove.contains(&"x-forwarded-groups".to_string()));
        assert!(svc.set.iter().any(|(n, _)| n == "x-acme-workload"));
    }

    #[test]
    fn set_headers_are_never_also_removed() {
        let h = upstream_headers(&id(&["eng", "a,b"]), &cfg());
        assert_eq!(
            h.set,
            [
                (
                    "x-forwarded-user".to_string(),
                    "alice@example.com".to_string()
                ),
                ("x-forwarded-groups".to_string(), "eng,a%2Cb".to_string())
            ]
        );
        for (n, _) in &h.set {
            assert!(!h.remove.contains(n), "{n} both set and removed");
        }
        assert!(
            h.remove
                .contains(&"x-forwarded-business-groups".to_string())
        );
        assert!(h.remove.contains(&"authorization".to_string()));
    }

    #[test]
    fn no_groups_means_the_groups_header_is_removed() {
        let h = upstream_headers(&id(&[]), &cfg());
        assert!(h.remove.contains(&"x-forwarded-groups".to_string()));
        assert!(!h.set.iter().any(|(n, _)| n == "x-forwarded-groups"));
    }
}
