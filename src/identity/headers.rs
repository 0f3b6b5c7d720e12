//! Identity → the headers set on (and stripped from) the upstream request.
//!
//! Every configured identity header is either set by mcp-authz with overwrite
//! semantics or removed: a client-sent copy never reaches the upstream. A header
//! is never both set and removed, because Envoy applies removals after sets.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::Identity;
use crate::config::IdentityHeaders;

/// Bytes escaped in identity header values: `%` (the escape itself), `,` (the
/// list separator), control characters, and every non-ASCII byte.
const HEADER_ESCAPES: &AsciiSet = &CONTROLS.add(b'%').add(b',');

/// Percent-encodes one identity value so that it is a valid header value and
/// a comma always separates list items.
pub fn encode_header_value(v: &str) -> String {
    utf8_percent_encode(v, HEADER_ESCAPES).to_string()
}

/// Headers to set (overwriting) and to remove on an allowed request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UpstreamHeaders {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

/// Upstream headers for any caller: a user's identity, or a service's SPIFFE id.
pub fn caller_headers(caller: &crate::check::Caller, cfg: &IdentityHeaders) -> UpstreamHeaders {
    match caller {
        crate::check::Caller::User(id) => upstream_headers(id, cfg),
        crate::check::Caller::Service(spiffe) => {
            let mut out = UpstreamHeaders::default();
            out.set
                .push((cfg.service.clone(), encode_header_value(spiffe)));
            strip_unset(&mut out, cfg);
            out
        }
    }
}

fn strip_unset(out: &mut UpstreamHeaders, cfg: &IdentityHeaders) {
    for h in &cfg.strip {
        if !out.set.iter().any(|(n, _)| n == h) {
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
            groups: groups.iter().map(|s| s.to_string()).collect(),
            business_groups: vec![],
            surface: None,
            client_id: None,
            issuer: "demo".into(),
            expires_at: 0,
        }
    }

    #[test]
    fn comma_and_percent_in_group_names_are_escaped() {
        assert_eq!(encode_header_value("a,b"), "a%2Cb");
        assert_eq!(encode_header_value("100%"), "100%25");
        assert_eq!(encode_header_value("Zürich\n"), "Z%C3%BCrich%0A");
        assert_eq!(encode_header_value("data science"), "data science");
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
