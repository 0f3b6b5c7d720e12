//! Rules of the `api` section (the registry API).

use std::path::Path;
use std::sync::Arc;

use super::super::raw::RawApi;
use super::super::{
    ApiConfig, DEFAULT_API_NAME_NAMESPACE, DEFAULT_TRUST_FORWARDED_IDENTITY,
    MIN_FORWARDED_SECRET_BYTES, Secret,
};
use super::{Problems, join_clean};

/// Validates `api`: a reverse-DNS name namespace, non-empty auditor groups,
/// and a forwarded-identity secret exactly when forwarded identity is trusted.
pub(super) fn api(p: &mut Problems, raw: RawApi, base: &Path) -> ApiConfig {
    let name_namespace = raw
        .name_namespace
        .unwrap_or_else(|| DEFAULT_API_NAME_NAMESPACE.to_owned());
    let labels_ok = name_namespace.split('.').count() >= 2
        && name_namespace.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !labels_ok {
        p.push(
            "api.name_namespace",
            format!(
                "`{name_namespace}` is not a reverse-DNS name such as `com.example.mcp` (lowercase labels, at least two)"
            ),
        );
    }
    for (i, g) in raw.auditor_groups.iter().enumerate() {
        if g.trim().is_empty() {
            p.push(format!("api.auditor_groups[{i}]"), "empty group name");
        }
    }
    let trust = raw
        .trust_forwarded_identity
        .unwrap_or(DEFAULT_TRUST_FORWARDED_IDENTITY);
    let forwarded_secret = match (trust, raw.forwarded_secret_file) {
        (false, None) => None,
        (false, Some(_)) => {
            p.push(
                "api.forwarded_secret_file",
                "set only with `trust_forwarded_identity: true`",
            );
            None
        }
        (true, None) => {
            p.push(
                "api.forwarded_secret_file",
                "required with `trust_forwarded_identity: true`: identity headers are trusted only from a proxy that proves it knows this secret",
            );
            None
        }
        (true, Some(f)) => secret(
            p,
            "api.forwarded_secret_file",
            &join_clean(base, &f),
            MIN_FORWARDED_SECRET_BYTES,
        ),
    };
    ApiConfig {
        name_namespace,
        auditor_groups: raw.auditor_groups,
        forwarded_secret,
    }
}

/// Reads a secret file (surrounding whitespace trimmed) of at least `min`
/// bytes; a problem at `key` otherwise.
pub(super) fn secret(p: &mut Problems, key: &str, file: &Path, min: usize) -> Option<Secret> {
    match std::fs::read(file) {
        Ok(bytes) => {
            let trimmed = bytes.trim_ascii();
            if trimmed.len() < min {
                p.push(
                    key,
                    format!("`{}` holds fewer than {min} bytes", file.display()),
                );
                return None;
            }
            Some(Secret(Arc::from(trimmed)))
        }
        Err(e) => {
            p.push(key, format!("cannot read `{}`: {e}", file.display()));
            None
        }
    }
}
