//! Identity from a trusted proxy's `x-forwarded-*` headers
//! (`api.trust_forwarded_identity`). Off by default. When on, the headers are
//! read only from a request that carries the shared secret of
//! `api.forwarded_secret_file` in `x-mcp-authz-proxy-secret`: a proxy that
//! authenticated the caller itself adds it (overwriting any client copy),
//! and a client that reaches `listen.public` directly cannot. A wrong secret
//! is a 401, never a fallback to the headers.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use crate::config::{Config, FORWARDED_SECRET_HEADER, Secret};
use crate::identity::Caller;

/// What the forwarded headers of a request say.
#[derive(Debug)]
pub enum Forwarded {
    /// No secret header: authenticate the bearer token as usual.
    Absent,
    /// The secret matched: the caller the identity headers name.
    Caller(Caller),
    /// A secret that does not match, or trusted headers that name no caller.
    Rejected(&'static str),
}

/// Equal secrets, compared in constant time over their SHA-256 digests.
fn same_secret(given: &str, secret: &Secret) -> bool {
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(&secret.0);
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn decoded(v: &str) -> String {
    percent_decode_str(v.trim())
        .decode_utf8_lossy()
        .into_owned()
}

fn list(headers: &HashMap<String, String>, name: Option<&String>) -> Vec<String> {
    name.and_then(|n| headers.get(n))
        .map(|v| {
            v.split(',')
                .map(decoded)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the forwarded identity of a request (`headers` lowercase).
pub fn forwarded(cfg: &Config, headers: &HashMap<String, String>) -> Forwarded {
    let Some(secret) = &cfg.api.forwarded_secret else {
        return Forwarded::Absent;
    };
    let Some(given) = headers.get(FORWARDED_SECRET_HEADER) else {
        return Forwarded::Absent;
    };
    if !same_secret(given, secret) {
        return Forwarded::Rejected("the proxy secret does not match");
    }
    let h = &cfg.identity_headers;
    if let Some(user) = headers
        .get(&h.user)
        .map(|u| decoded(u))
        .filter(|u| !u.is_empty())
    {
        let surface = h
            .surface
            .as_ref()
            .and_then(|n| headers.get(n))
            .map(|s| decoded(s))
            .filter(|s| !s.is_empty());
        return match Caller::stated_user(
            &user,
            &list(headers, Some(&h.groups)),
            &list(headers, h.business_groups.as_ref()),
            surface.as_deref(),
            &cfg.surfaces,
        ) {
            Ok(c) => Forwarded::Caller(c),
            Err(_) => Forwarded::Rejected("the forwarded surface is not configured"),
        };
    }
    match headers.get(&h.service).map(|s| decoded(s)) {
        Some(s) if s.starts_with("spiffe://") => Forwarded::Caller(Caller::Service(s)),
        _ => Forwarded::Rejected("the trusted proxy forwarded no identity"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    fn cfg(trust: bool) -> Config {
        let mut cfg = crate::config::load(None).unwrap();
        if trust {
            cfg.api.forwarded_secret = Some(Secret(Arc::from(
                &b"s3cret-s3cret-s3cret-s3cret-s3cret"[..],
            )));
        }
        cfg
    }

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forwarded_headers_are_ignored_unless_trusted_and_proven() {
        let h = headers(&[
            ("x-forwarded-user", "alice"),
            (
                FORWARDED_SECRET_HEADER,
                "s3cret-s3cret-s3cret-s3cret-s3cret",
            ),
        ]);
        assert!(matches!(forwarded(&cfg(false), &h), Forwarded::Absent));
        let no_secret = headers(&[("x-forwarded-user", "alice")]);
        assert!(matches!(
            forwarded(&cfg(true), &no_secret),
            Forwarded::Absent
        ));
        let wrong = headers(&[
            ("x-forwarded-user", "alice"),
            (FORWARDED_SECRET_HEADER, "guess"),
        ]);
        assert!(matches!(
            forwarded(&cfg(true), &wrong),
            Forwarded::Rejected(_)
        ));
    }

    #[test]
    fn a_proven_proxy_names_the_user_groups_and_surface() {
        let h = headers(&[
            (
                FORWARDED_SECRET_HEADER,
                "s3cret-s3cret-s3cret-s3cret-s3cret",
            ),
            ("x-forwarded-user", "alice"),
            ("x-forwarded-groups", "ads-eng,a%2Cb"),
            ("x-forwarded-business-groups", "ads"),
            ("x-forwarded-surface", "ai-chat"),
        ]);
        let Forwarded::Caller(Caller::User(id)) = forwarded(&cfg(true), &h) else {
            panic!("no user");
        };
        assert_eq!(id.user, "alice");
        assert_eq!(id.groups, ["ads-eng", "a,b"]);
        assert_eq!(id.business_groups, ["ads"]);
        assert_eq!(id.surface.as_ref().unwrap().name, "ai-chat");
    }
}
