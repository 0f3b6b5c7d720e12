//! Validation of `claims`, `surfaces[]` and `identity_headers`.

use std::collections::HashSet;
use std::sync::Arc;

use super::super::raw::{RawClaims, RawIdentityHeaders, RawSurface};
use super::super::*;
use super::Problems;

/// `claims.*`: each a top-level claim name, or a JSON Pointer (RFC 6901) starting with `/`.
pub(super) fn claims(p: &mut Problems, raw: RawClaims) -> ClaimMapping {
    let mapping = ClaimMapping {
        user: raw.user.unwrap_or_else(|| DEFAULT_USER_CLAIM.into()),
        groups: raw.groups,
        business_groups: raw.business_groups,
        surface: raw.surface.unwrap_or_else(|| DEFAULT_SURFACE_CLAIM.into()),
    };
    for (key, value) in [
        ("user", Some(&mapping.user)),
        ("groups", mapping.groups.as_ref()),
        ("business_groups", mapping.business_groups.as_ref()),
        ("surface", Some(&mapping.surface)),
    ] {
        if let Some(message) = value.and_then(|v| claim_path_problem(v)) {
            p.push(format!("claims.{key}"), message);
        }
    }
    mapping
}

/// Why `v` is neither a plain claim name nor a JSON Pointer.
fn claim_path_problem(v: &str) -> Option<String> {
    if let Some(pointer) = v.strip_prefix('/') {
        let mut rest = pointer;
        while let Some(i) = rest.find('~') {
            if !matches!(rest.as_bytes().get(i + 1), Some(b'0' | b'1')) {
                return Some(format!(
                    "`{v}`: in a JSON Pointer `~` must be followed by `0` (for `~`) or `1` (for `/`)"
                ));
            }
            rest = &rest[i + 2..];
        }
        return None;
    }
    if v.is_empty() {
        return Some("must not be empty".into());
    }
    if v.contains(['.', '/']) {
        let pointer = v.replace('~', "~0").replace('.', "/");
        return Some(format!(
            "`{v}` looks like a path: write it as a JSON Pointer `/{pointer}` (a top-level claim whose \
             name has dots is written `/{}`)",
            v.replace('~', "~0").replace('/', "~1")
        ));
    }
    None
}

pub(super) fn surfaces(p: &mut Problems, raw: &[RawSurface]) -> Vec<Arc<Surface>> {
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let path = format!("surfaces[{i}]");
        if !names.insert(s.name.as_str()) {
            p.push(
                format!("{path}.name"),
                format!("surface `{}` is defined twice", s.name),
            );
        }
        if s.client_ids.is_empty() {
            p.push(
                format!("{path}.client_ids"),
                "at least one client id is required",
            );
        }
        for (j, id) in s.client_ids.iter().enumerate() {
            if !ids.insert(id.as_str()) {
                p.push(
                    format!("{path}.client_ids[{j}]"),
                    format!("client id `{id}` belongs to two surfaces"),
                );
            }
        }
        let environment = match s.environment.as_str() {
            _ if s.name == UNKNOWN_SURFACE => {
                p.push(
                    format!("{path}.name"),
                    format!("`{UNKNOWN_SURFACE}` is reserved for unrecognized clients"),
                );
                Environment::Dev
            }
            "prod" => Environment::Prod,
            "dev" => Environment::Dev,
            other => {
                p.push(
                    format!("{path}.environment"),
                    format!("unknown environment `{other}`, expected `prod` or `dev`"),
                );
                Environment::Dev
            }
        };
        out.push(Arc::new(Surface {
            name: s.name.clone(),
            client_ids: s.client_ids.clone(),
            environment,
            trusted_for_context: s.trusted_for_context,
        }));
    }
    out
}

/// Headers that carry something else than identity and can never be set by
/// mcp-authz as one.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "origin",
    "cookie",
    "content-length",
    "content-type",
    "transfer-encoding",
    "te",
    "connection",
];

pub(super) fn identity_headers(p: &mut Problems, raw: RawIdentityHeaders) -> IdentityHeaders {
    let user = p.header_name(
        "identity_headers.user".into(),
        raw.user.as_deref().unwrap_or(DEFAULT_USER_HEADER),
    );
    let groups = p.header_name(
        "identity_headers.groups".into(),
        raw.groups.as_deref().unwrap_or(DEFAULT_GROUPS_HEADER),
    );
    let business_groups = raw
        .business_groups
        .map(|h| p.header_name("identity_headers.business_groups".into(), &h));
    let surface = raw
        .surface
        .map(|h| p.header_name("identity_headers.surface".into(), &h));
    let service = p.header_name(
        "identity_headers.service".into(),
        raw.service.as_deref().unwrap_or(DEFAULT_SERVICE_HEADER),
    );
    let strip_src: Vec<String> = raw.strip.unwrap_or_else(|| {
        DEFAULT_STRIP_HEADERS
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let mut strip: Vec<String> = Vec::new();
    for (i, h) in strip_src.iter().enumerate() {
        let h = p.header_name(format!("identity_headers.strip[{i}]"), h);
        if !strip.contains(&h) {
            strip.push(h);
        }
    }
    // Every header we may set is also one a client must never get through.
    for h in [
        Some(&user),
        Some(&groups),
        business_groups.as_ref(),
        surface.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if !strip.contains(h) {
            strip.push(h.clone());
        }
    }
    // Collisions among every header mcp-authz can set, and with the headers
    // it reads: one name, one meaning.
    let mut seen = HashSet::new();
    for (key, h) in [
        ("user", Some(&user)),
        ("groups", Some(&groups)),
        ("business_groups", business_groups.as_ref()),
        ("surface", surface.as_ref()),
        ("service", Some(&service)),
    ] {
        if let Some(h) = h {
            if !seen.insert(h.clone()) {
                p.push(
                    format!("identity_headers.{key}"),
                    format!("header `{h}` is used twice"),
                );
            }
            if RESERVED_HEADERS.contains(&h.as_str())
                || h.starts_with(':')
                || h.starts_with("mcp-")
                || h.starts_with("x-envoy-")
            {
                p.push(
                    format!("identity_headers.{key}"),
                    format!("`{h}` cannot carry identity"),
                );
            }
            if h.contains('_') {
                p.push(
                    format!("identity_headers.{key}"),
                    format!("`{h}` has an underscore: Envoy refuses such headers and frameworks read `_` as `-`"),
                );
            }
        }
    }
    IdentityHeaders {
        user,
        groups,
        business_groups,
        surface,
        service,
        strip,
        strip_authorization: raw.strip_authorization,
    }
}
